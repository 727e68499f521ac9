package alex

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// guidRE is the RFC 4122 string form the client must send (lower case).
var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func TestCorrelationGUID(t *testing.T) {
	t.Parallel()
	// The namespace is what it says it is: uuid5(NAMESPACE_URL,
	// "clinicalimages mt-correlationid"), computed with Python's uuid.
	assert.Equal(t, "6426f162-6d7e-542c-af2b-7c379547ab06", CorrelationNamespace)
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"a GUID is kept", "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"},
		{"an upper-case GUID is lowered", "1B4E28BA-2FA1-11D2-883F-0016D3CCA427", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"},
		// Expected values from Python: uuid.uuid5(uuid.UUID(CorrelationNamespace), in).
		{"a caller's id", "corr-fixed-1", "caf563fb-33f4-54f9-bcb2-c57686c206ee"},
		{"braces are not RFC 4122 string form", "{1b4e28ba-2fa1-11d2-883f-0016d3cca427}", CorrelationGUID("{1b4e28ba-2fa1-11d2-883f-0016d3cca427}")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := CorrelationGUID(tc.in)
			assert.Equal(t, tc.want, got)
			if tc.in != "" {
				assert.Regexp(t, guidRE, got)
				assert.Equal(t, got, CorrelationGUID(tc.in), "stable")
			}
		})
	}
	assert.NotEqual(t, "{1b4e28ba-2fa1-11d2-883f-0016d3cca427}", CorrelationGUID("{1b4e28ba-2fa1-11d2-883f-0016d3cca427}"))
	assert.NotEqual(t, CorrelationGUID("a"), CorrelationGUID("b"))
	assert.Equal(t, "5", CorrelationGUID("x\r\ninjected")[14:15], "a header-breaking id becomes a version 5 GUID")
}

func TestIsGUID(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"1b4e28ba-2fa1-11d2-883f-0016d3cca427":   true,
		"1B4E28BA-2FA1-11D2-883F-0016D3CCA427":   true,
		"00000000-0000-0000-0000-000000000000":   false, // the nil UUID traces nothing
		"1b4e28ba2fa111d2883f0016d3cca427":       false,
		"1b4e28ba-2fa1-11d2-883f-0016d3cca42":    false,
		"1b4e28ba-2fa1-11d2-883f-0016d3cca427a":  false,
		"1b4e28ba-2fa1-11d2-883f_0016d3cca427":   false,
		"1b4e28ba-2fa1-11d2-883f-0016d3ccg427":   false,
		"{1b4e28ba-2fa1-11d2-883f-0016d3cca427}": false,
		"":                                       false,
	} {
		assert.Equal(t, want, IsGUID(s), s)
	}
	for range 100 {
		assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, newUUID())
	}
}

// TestCallerCorrelationIDIsAlwaysSentAsGUID: whatever the caller puts on the
// context, the header is a GUID, the same on every retry of a call, and the
// *Error reports what was sent.
func TestCallerCorrelationIDIsAlwaysSentAsGUID(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 503, outcome("exception", "Cannot establish connection to the facility. Please try again later."))
	})
	c := f.client(t)
	for _, id := range []string{"img_01HZX3K9F2Q7-1-abcdef", "1B4E28BA-2FA1-11D2-883F-0016D3CCA427", "not\r\na header"} {
		_, err := c.ReadPatient(WithCorrelationID(t.Context(), id), "0123456789abcdef0123456789abcdef")
		var ae *Error
		require.True(t, errors.As(err, &ae), "%v", err)
		assert.Equal(t, CorrelationGUID(id), ae.CorrelationID)
	}
	reqs, _ := f.recorded()
	require.Len(t, reqs, 3*4, "each call tried 1+3 times")
	for i, r := range reqs {
		got := r.Header.Get(HeaderCorrelationID)
		assert.Regexp(t, guidRE, got, "request %d", i)
		assert.Equal(t, reqs[i/4*4].Header.Get(HeaderCorrelationID), got, "one id across a call's retries")
	}
	assert.Equal(t, "1b4e28ba-2fa1-11d2-883f-0016d3cca427", reqs[4].Header.Get(HeaderCorrelationID))
}

func TestFacilityConfiguration(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, patientJSON) })
	const pid = "0123456789abcdef0123456789abcdef"
	type tenantKey struct{}

	t.Run("header name", func(t *testing.T) {
		c := f.client(t, WithFacilityHeader("Facility-Id"))
		assert.Equal(t, "Facility-Id", c.FacilityHeader())
		before, _ := f.recorded()
		_, err := c.ReadPatient(t.Context(), pid)
		require.NoError(t, err)
		reqs, _ := f.recorded()
		r := reqs[len(before)]
		assert.Equal(t, fakeFacility, r.Header.Get("Facility-Id"))
		assert.Empty(t, r.Header.Get(HeaderFacility))
	})
	t.Run("source", func(t *testing.T) {
		src := func(ctx context.Context) (string, error) {
			switch v, _ := ctx.Value(tenantKey{}).(string); v {
			case "au":
				return "", nil // an ALEX without facilities
			case "bad":
				return "F2N 060\r\nX: y", nil
			case "":
				return "", errors.New("no tenant")
			default:
				return v, nil
			}
		}
		c, err := New(f.base(), WithClientCredentials(f.creds()), WithFacilitySource(src), WithRetryPolicy(fastRetry))
		require.NoError(t, err)
		before, _ := f.recorded()
		_, err = c.ReadPatient(context.WithValue(t.Context(), tenantKey{}, "F99669-C"), pid)
		require.NoError(t, err)
		_, err = c.ReadPatient(context.WithValue(t.Context(), tenantKey{}, "au"), pid)
		require.NoError(t, err)
		_, err = c.ReadPatient(WithFacilityID(context.WithValue(t.Context(), tenantKey{}, "au"), "F2N060-E"), pid)
		require.NoError(t, err)
		_, err = c.ReadPatient(t.Context(), pid)
		require.ErrorIs(t, err, ErrValidation, "the source's error stops the call")
		_, err = c.ReadPatient(context.WithValue(t.Context(), tenantKey{}, "bad"), pid)
		require.ErrorIs(t, err, ErrValidation, "the source's value is checked")
		reqs, _ := f.recorded()
		reqs = reqs[len(before):]
		require.Len(t, reqs, 3, "refused calls send nothing")
		assert.Equal(t, "F99669-C", reqs[0].Header.Get(HeaderFacility))
		assert.NotContains(t, reqs[1].Header, http.CanonicalHeaderKey(HeaderFacility), "\"\" sends no facility header")
		assert.Equal(t, "F2N060-E", reqs[2].Header.Get(HeaderFacility), "WithFacilityID wins")
	})
	t.Run("invalid", func(t *testing.T) {
		for name, opts := range map[string][]Option{
			"source and fixed": {WithFacility("F2N060-E"), WithFacilitySource(func(context.Context) (string, error) { return "", nil })},
			"nil source":       {WithFacilitySource(nil)},
			"bad header":       {WithFacilityHeader("mt facility")},
			"empty header":     {WithFacilityHeader("")},
			"relative system":  {WithNHISystem("nhi-id")},
			"system with pipe": {WithNHISystem("https://x/ns|y")},
			"nil check":        {WithNHICheck(nil)},
		} {
			_, err := New(f.base(), append([]Option{WithClientCredentials(f.creds())}, opts...)...)
			assert.Error(t, err, name)
		}
	})
}

func TestPatientIdentifierConfiguration(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":`+patientJSON+`}]}`)
	})
	const system = "http://ns.electronichealth.net.au/id/medicare-number"
	errFormat := errors.New("not ten digits")
	check := func(s string) (string, error) {
		if !regexp.MustCompile(`^[0-9]{10}$`).MatchString(s) {
			return "", errFormat
		}
		return s, nil
	}
	c := f.client(t, WithNHISystem(system), WithNHICheck(check))
	assert.Equal(t, system, c.NHISystem())
	_, err := c.FindPatientByNHI(t.Context(), "2123456701")
	require.NoError(t, err)
	_, err = c.FindPatientByNHI(t.Context(), "ZZZ0016")
	require.ErrorIs(t, err, ErrValidation)
	require.ErrorIs(t, err, errFormat)
	for range c.SearchMediaByNHI(t.Context(), "2123456701") {
	}
	reqs, _ := f.recorded()
	require.Len(t, reqs, 2)
	assert.Equal(t, system+"|2123456701", reqs[0].URL.Query().Get("identifier"))
	assert.Equal(t, system+"|2123456701", reqs[1].URL.Query().Get("patient.identifier"))

	d := f.client(t)
	assert.Equal(t, NHISystem, d.NHISystem(), "New Zealand's NHI by default")
}

package alex

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseIssuesShapes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		body string
		want []Issue
	}{
		{"operation outcome", outcome("business-rule", "The mandatory Identifier.value with the reference number is missing"),
			[]Issue{{Severity: "error", Code: "business-rule", Diagnostics: "The mandatory Identifier.value with the reference number is missing"}}},
		{"details text", `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"forbidden","details":{"text":"Practice Facility not found"}}]}`,
			[]Issue{{Severity: "error", Code: "forbidden", Details: "Practice Facility not found"}}},
		{"non-FHIR 404", `{"statusCode":404,"message":"Resource not found"}`,
			[]Issue{{Severity: "error", Code: "http-404", Diagnostics: "Resource not found"}}},
		{"oauth shape", `{"error":"invalid_token","error_description":"expired"}`,
			[]Issue{{Severity: "error", Code: "invalid_token", Diagnostics: "expired"}}},
		{"html", `<html>Bad gateway</html>`, []Issue{{Severity: "error", Code: "unknown", Diagnostics: "<html>Bad gateway</html>"}}},
		{"empty", ``, nil},
		{"unknown code is kept", `{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"made-up"}]}`,
			[]Issue{{Severity: "fatal", Code: "made-up"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, parseIssues([]byte(tc.body)))
		})
	}
}

func TestErrorMatchesSentinels(t *testing.T) {
	t.Parallel()
	mk := func(status int, diag string) *Error {
		return &Error{Status: status, Method: "GET", URL: "https://x/FHIR/Patient", Issues: []Issue{{Code: "c", Diagnostics: diag}}}
	}
	cases := []struct {
		err  *Error
		is   []error
		isnt []error
	}{
		{mk(401, ""), []error{ErrUnauthorized}, []error{ErrForbidden}},
		{mk(403, "Authorization failed."), []error{ErrForbidden}, []error{ErrFacilityNotFound}},
		{mk(403, "Practice Facility not found"), []error{ErrForbidden, ErrFacilityNotFound}, nil},
		{mk(404, "Resource not found"), []error{ErrNotFound}, nil},
		{mk(400, ""), []error{ErrValidation}, nil},
		{mk(422, ""), []error{ErrValidation}, nil},
		{mk(429, ""), []error{ErrRateLimited}, nil},
		{mk(503, "Cannot establish connection to the facility. Please try again later."), []error{ErrFacilityUnavailable}, nil},
		{mk(503, "Service Unavailable"), nil, []error{ErrFacilityUnavailable, ErrOutcomeUnknown}},
	}
	for _, tc := range cases {
		for _, s := range tc.is {
			assert.ErrorIs(t, tc.err, s, "%d %v", tc.err.Status, tc.err.Issues)
		}
		for _, s := range tc.isnt {
			assert.NotErrorIs(t, tc.err, s, "%d %v", tc.err.Status, tc.err.Issues)
		}
	}
}

func TestErrorStringScrubsPatientIdentifiers(t *testing.T) {
	t.Parallel()
	e := &Error{Status: http.StatusNotFound, Method: "GET", URL: "https://x/FHIR/Patient/{id}", CorrelationID: "c1",
		Issues: []Issue{{Code: "not-found", Diagnostics: "No patient ZZZ0016 (ZBN77VL) id 0123456789abcdef0123456789abcdef " + strings.Repeat("x", 500)}}}
	s := e.Error()
	for _, leak := range []string{"ZZZ0016", "ZBN77VL", "0123456789abcdef0123456789abcdef"} {
		assert.NotContains(t, s, leak)
	}
	assert.Contains(t, s, "[redacted]")
	assert.Less(t, len(s), 400, "diagnostics are capped")
	assert.Contains(t, s, "[correlation c1]")
}

// FuzzParseIssues: any body, never a panic, and the error string built from
// it stays bounded and valid text.
func FuzzParseIssues(f *testing.F) {
	f.Add([]byte(outcome("business-rule", "missing")))
	f.Add([]byte(`{"statusCode":404,"message":"Resource not found"}`))
	f.Add([]byte(`{"resourceType":"OperationOutcome","issue":[{"details":{"text":1}}]}`))
	f.Add([]byte(`{"error":["x"],"error_description":"d"}`))
	f.Add([]byte("\xff\xfe<html>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		issues := parseIssues(body)
		e := &Error{Status: 400, Method: "POST", URL: "https://x/FHIR/Media", Issues: issues}
		s := e.Error()
		require.Less(t, len(s), 2000)
		_ = utf8.ValidString(s)
		for _, is := range issues {
			require.NotEmpty(t, is.Code+is.Diagnostics+is.Details+is.Severity)
		}
	})
}

// FuzzParseLaunch: whatever ALEX (or something in its place) answers to a
// launch-context request, parsing never panics, and a Launch it returns
// always has a facility.
func FuzzParseLaunch(f *testing.F) {
	f.Add([]byte(`{"patientId":"0123456789abcdef0123456789abcdef","facilityCode":"F2N060-E","providerId":"P1","createdTime":"2026-11-25T10:42:00+13:00"}`))
	f.Add([]byte(`{"patientId":null,"facilityCode":"F2N060-E","providerId":12,"createdTime":"2026-11-25 10:42:00"}`))
	f.Add([]byte(`{"facilityCode":{"x":1}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		l, err := parseLaunch(body)
		if err != nil {
			require.Nil(t, l)
			return
		}
		require.NotEmpty(t, l.FacilityCode)
	})
}

package alex

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	good := WithClientCredentials(Credentials{ClientID: "id", ClientSecret: "s", Scope: fakeScope})
	cases := []struct {
		name string
		base string
		opts []Option
	}{
		{"relative base", "/FHIR", []Option{good}},
		{"base with query", UATBaseURL + "?x=1", []Option{good}},
		{"no auth", UATBaseURL, nil},
		{"two auths", UATBaseURL, []Option{good, WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"}))}},
		{"bad scope", UATBaseURL, []Option{WithClientCredentials(Credentials{ClientID: "id", ClientSecret: "s", Scope: "https://graph/.default"})}},
		{"empty secret", UATBaseURL, []Option{WithClientCredentials(Credentials{ClientID: "id", Scope: fakeScope})}},
		{"bad facility", UATBaseURL, []Option{good, WithFacility("F2N 060\n")}},
		{"bad proxy", UATBaseURL, []Option{good, WithProxy("ftp://proxy")}},
		{"client and proxy", UATBaseURL, []Option{good, WithHTTPClient(&http.Client{}), WithProxy("http://proxy:3128")}},
		{"negative retry", UATBaseURL, []Option{good, WithRetryPolicy(RetryPolicy{MaxRetries: -1})}},
		{"nil logger", UATBaseURL, []Option{good, WithLogger(nil)}},
		{"header injection", UATBaseURL, []Option{good, WithAppID("a\r\nX: y")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tc.base, tc.opts...)
			require.Error(t, err)
			require.Nil(t, c)
			assert.NotContains(t, err.Error(), "s3cr3t")
		})
	}
	c, err := New(ProductionBaseURL, good, WithFacility("F99669-C"), WithAppID("app"), WithProxy("http://proxy:3128"), WithUserAgent("x/1"))
	require.NoError(t, err)
	assert.Equal(t, ProductionBaseURL, c.BaseURL())
	assert.Equal(t, "F99669-C", c.Facility())
}

func TestCredentialsNeverPrintSecret(t *testing.T) {
	t.Parallel()
	cr := Credentials{ClientID: "id", ClientSecret: fakeSecret, Scope: fakeScope}
	var sink logSink
	sink.logger().Info("creds", "creds", cr)
	for _, s := range []string{cr.String(), fmt.Sprintf("%v %+v %#v %s", cr, cr, cr, cr), sink.String()} {
		assert.NotContains(t, s, fakeSecret)
		assert.Contains(t, s, "REDACTED")
	}
	assert.Equal(t, "https://login.microsoftonline.com/"+TenantID+"/oauth2/v2.0/token", cr.tokenURL())
}

func TestEveryCallCarriesALEXHeaders(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.Header().Set("Location", "https://x/fhir/Patient/abc/_history/abc")
			writeJSON(w, 201, `{"resourceType":"Patient","id":"abc"}`)
			return
		}
		writeJSON(w, 200, patientJSON)
	})
	c := f.client(t, WithAppID("clinicpro-images"), WithUserAgent("test-agent/1"))

	ctx := WithCorrelationID(t.Context(), "corr-fixed-1")
	_, err := c.ReadPatient(ctx, "0123456789abcdef0123456789abcdef")
	require.NoError(t, err)
	// Another practice, chosen per call.
	_, err = Create(WithFacilityID(t.Context(), "F99669-C"), c, &fhir.Patient{})
	require.NoError(t, err)

	reqs, _ := f.recorded()
	require.Len(t, reqs, 2)
	get, post := reqs[0], reqs[1]
	assert.Equal(t, "/prefix/FHIR/Patient/0123456789abcdef0123456789abcdef", get.URL.Path)
	assert.Equal(t, "Bearer tok-1", get.Header.Get("Authorization"))
	assert.Equal(t, fakeFacility, get.Header.Get("mt-facilityid"))
	assert.Equal(t, "application/fhir+json", get.Header.Get("Accept"))
	// Not a GUID: replaced by its version 5 UUID (value computed with
	// Python's uuid.uuid5, an independent implementation).
	assert.Equal(t, "caf563fb-33f4-54f9-bcb2-c57686c206ee", get.Header.Get("mt-correlationid"))
	assert.Equal(t, "clinicpro-images", get.Header.Get("mt-appid"))
	assert.Equal(t, "test-agent/1", get.Header.Get("User-Agent"))
	assert.Empty(t, get.Header.Get("Content-Type"))

	assert.Equal(t, "F99669-C", post.Header.Get("mt-facilityid"))
	assert.Equal(t, "application/fhir+json", post.Header.Get("Content-Type"))
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, post.Header.Get("mt-correlationid"))
	assert.EqualValues(t, 1, c.TokenRequests())
}

func TestNoFacilityIsRefusedBeforeCalling(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	c, err := New(f.base(), WithClientCredentials(f.creds()))
	require.NoError(t, err)
	_, err = c.ReadPatient(t.Context(), "abc")
	require.ErrorIs(t, err, ErrValidation)
	reqs, _ := f.recorded()
	assert.Empty(t, reqs)
	assert.Zero(t, f.tokenCalls.Load())
}

func TestThousandConcurrentCallsMakeOneTokenRequest(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.tokenDelay = 50 * time.Millisecond // let the callers pile up behind one fetch
	f.handle(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, patientJSON) })
	c := f.client(t, WithHTTPClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}))

	var wg sync.WaitGroup
	var failures atomic.Int64
	start := make(chan struct{})
	for range 1000 {
		wg.Go(func() {
			<-start
			if _, err := c.ReadPatient(t.Context(), "0123456789abcdef0123456789abcdef"); err != nil {
				failures.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	require.Zero(t, failures.Load())
	assert.EqualValues(t, 1, f.tokenCalls.Load(), "token requests for 1,000 concurrent calls")
	assert.EqualValues(t, 1, c.TokenRequests())
}

func TestTokenRefreshedAheadOfExpiry(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, patientJSON) })
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	c := f.client(t, withClock(clock), WithTokenRefreshAhead(5*time.Minute))
	read := func() {
		_, err := c.ReadPatient(t.Context(), "0123456789abcdef0123456789abcdef")
		require.NoError(t, err)
	}
	read()
	// oauth2 stamps Expiry from the real clock: move ours relative to it.
	now.Store(time.Now().Add(50 * time.Minute).UnixNano())
	read()
	assert.EqualValues(t, 1, f.tokenCalls.Load(), "still fresh 50 minutes in")
	now.Store(time.Now().Add(56 * time.Minute).UnixNano())
	read()
	assert.EqualValues(t, 2, f.tokenCalls.Load(), "refreshed 5 minutes ahead of expiry")
}

func TestUnauthorizedRefreshesOnceAndRetriesOnce(t *testing.T) {
	t.Parallel()
	t.Run("recovers", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		var n atomic.Int64
		f.handle(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 1 {
				writeJSON(w, 401, `{"statusCode":401,"message":"Unauthorized"}`)
				return
			}
			writeJSON(w, 200, patientJSON)
		})
		c := f.client(t)
		_, err := c.ReadPatient(t.Context(), "0123456789abcdef0123456789abcdef")
		require.NoError(t, err)
		reqs, _ := f.recorded()
		require.Len(t, reqs, 2)
		assert.Equal(t, "Bearer tok-1", reqs[0].Header.Get("Authorization"))
		assert.Equal(t, "Bearer tok-2", reqs[1].Header.Get("Authorization"))
		assert.Equal(t, reqs[0].Header.Get("mt-correlationid"), reqs[1].Header.Get("mt-correlationid"))
	})
	t.Run("gives up after one refresh", func(t *testing.T) {
		t.Parallel()
		f := newFake(t)
		f.handle(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 401, `{"statusCode":401,"message":"Unauthorized"}`)
		})
		c := f.client(t)
		_, err := c.CreateMedia(t.Context(), testMedia(), BytesContent([]byte("img")))
		require.ErrorIs(t, err, ErrUnauthorized)
		reqs, _ := f.recorded()
		assert.Len(t, reqs, 2, "one retry, never a loop")
		assert.EqualValues(t, 2, f.tokenCalls.Load())
	})
}

func TestTokenErrorsAreTyped(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status int
		code   string
		want   TokenErrorKind
	}{
		{401, "invalid_client", TokenInvalidClient},
		{400, "invalid_scope", TokenInvalidScope},
		{400, "unauthorized_client", TokenUnauthorizedClient},
		{400, "invalid_request", TokenInvalidRequest},
		{500, "server_error", TokenOther},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.tokenStatus.Store(int64(tc.status))
			f.tokenError.Store(tc.code)
			c := f.client(t)
			_, err := c.ReadPatient(t.Context(), "abc")
			var te *TokenError
			require.ErrorAs(t, err, &te)
			assert.Equal(t, tc.want, te.Kind)
			assert.Equal(t, tc.status, te.Status)
			assert.ErrorIs(t, err, ErrUnauthorized)
			assert.Contains(t, err.Error(), string(tc.want))
			assert.NotContains(t, err.Error(), fakeSecret)
		})
	}
	t.Run("network", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		require.NoError(t, l.Close()) // nothing listens here now
		c, err := New("http://"+addr+"/FHIR", WithFacility(fakeFacility),
			WithClientCredentials(Credentials{TokenURL: "http://" + addr + "/t/oauth2/v2.0/token", ClientID: "id", ClientSecret: fakeSecret, Scope: fakeScope}))
		require.NoError(t, err)
		_, err = c.ReadPatient(t.Context(), "abc")
		var te *TokenError
		require.ErrorAs(t, err, &te)
		assert.Equal(t, TokenNetwork, te.Kind)
		assert.NotContains(t, err.Error(), fakeSecret)
	})
}

func TestReadsRetryTransientStatuses(t *testing.T) {
	t.Parallel()
	for _, status := range []int{429, 502, 503, 504} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			var n atomic.Int64
			f.handle(func(w http.ResponseWriter, r *http.Request) {
				if n.Add(1) <= 2 {
					writeJSON(w, status, outcome("transient", "try later"))
					return
				}
				writeJSON(w, 200, patientJSON)
			})
			c := f.client(t)
			_, err := c.ReadPatient(t.Context(), "0123456789abcdef0123456789abcdef")
			require.NoError(t, err)
			reqs, _ := f.recorded()
			require.Len(t, reqs, 3)
			for _, r := range reqs {
				assert.Equal(t, reqs[0].Header.Get("mt-correlationid"), r.Header.Get("mt-correlationid"), "one correlation id across retries")
			}
		})
	}
}

func TestReadsDoNotRetryClientErrors(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 400, outcome("invalid", "bad")) })
	_, err := f.client(t).ReadPatient(t.Context(), "abc")
	require.ErrorIs(t, err, ErrValidation)
	reqs, _ := f.recorded()
	assert.Len(t, reqs, 1)
}

func TestRetriesGiveUpWithTheLastError(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 503, outcome("exception", "Cannot establish connection to the facility. Please try again later."))
	})
	_, err := f.client(t).ReadPatient(t.Context(), "abc")
	require.ErrorIs(t, err, ErrFacilityUnavailable)
	var ae *Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 4, ae.Attempts, "1 attempt + MaxRetries 3")
	reqs, _ := f.recorded()
	assert.Len(t, reqs, 4)
}

func TestRetryAfterIsHonouredUpToTheTotalCap(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	var n atomic.Int64
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			writeJSON(w, 429, outcome("throttled", "slow down"))
			return
		}
		writeJSON(w, 200, patientJSON)
	})
	c := f.client(t)
	start := time.Now()
	_, err := c.ReadPatient(t.Context(), "0123456789abcdef0123456789abcdef")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "waited for Retry-After")

	// A Retry-After beyond the total cap is not waited for: the 429 comes back.
	f2 := newFake(t)
	f2.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		writeJSON(w, 429, outcome("throttled", "slow down"))
	})
	_, err = f2.client(t).ReadPatient(t.Context(), "abc")
	require.ErrorIs(t, err, ErrRateLimited)
	var ae *Error
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, time.Hour, ae.RetryAfter)
	reqs, _ := f2.recorded()
	assert.Len(t, reqs, 1)
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	assert.Equal(t, 7*time.Second, parseRetryAfter("7", now))
	assert.Equal(t, 90*time.Second, parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now))
	assert.Zero(t, parseRetryAfter(now.Add(-time.Minute).Format(http.TimeFormat), now))
	assert.Zero(t, parseRetryAfter("soon", now))
	assert.Zero(t, parseRetryAfter("-3", now))
	assert.Zero(t, parseRetryAfter("", now))
}

func TestCancelledContextStopsRetries(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		writeJSON(w, 503, outcome("exception", "busy"))
	})
	c := f.client(t, WithRetryPolicy(RetryPolicy{MaxRetries: 5, MaxTotalWait: 2 * time.Hour}))
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.ReadPatient(ctx, "abc")
		done <- err
	}()
	// The server asks for an hour's wait; the call must end with the
	// caller's context instead. (A guard against hanging, not a timing
	// measure: an hour against a minute cannot be confused.)
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(time.Minute):
		t.Fatal("the client sat out Retry-After past the caller's deadline")
	}
	reqs, _ := f.recorded()
	assert.Len(t, reqs, 1, "no retry after the deadline")
}

func TestWritesRetryOnlyWhenNothingWasCreated(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		status    int
		body      string
		wantCalls int
		wantErr   error
	}{
		{"429 is retried", 429, outcome("throttled", "x"), 4, ErrRateLimited},
		{"facility unavailable is retried", 503, outcome("exception", "Cannot establish connection to the facility. Please try again later."), 4, ErrFacilityUnavailable},
		{"other 503 is not", 503, `<html>gateway</html>`, 1, nil},
		{"502 is not", 502, outcome("exception", "bad gateway"), 1, nil},
		{"504 is not", 504, outcome("exception", "timeout"), 1, nil},
		{"400 is not", 400, outcome("business-rule", "The mandatory Identifier.value with the reference number is missing"), 1, ErrValidation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			f.handle(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, tc.status, tc.body) })
			_, err := f.client(t).CreateMedia(t.Context(), testMedia(), BytesContent([]byte("jpeg")))
			var ae *Error
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, tc.status, ae.Status)
			if tc.wantErr != nil {
				assert.ErrorIs(t, err, tc.wantErr)
			}
			assert.NotErrorIs(t, err, ErrOutcomeUnknown, "a reply was read: the outcome is known")
			reqs, bodies := f.recorded()
			assert.Len(t, reqs, tc.wantCalls)
			for _, b := range bodies {
				assert.Equal(t, bodies[0], b, "each retry re-streams the same body")
			}
		})
	}
}

func TestWriteRetriedWhenConnectionRefused(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", f.srv.URL+"/fhir/Media/m1/_history/m1")
		writeJSON(w, 201, `{"resourceType":"Media","id":"m1"}`)
	})
	// The first dial to ALEX is refused; the token endpoint is not affected.
	var dials atomic.Int64
	base := &net.Dialer{}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 2 { // dial 1 is the token request
			return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
		}
		return base.DialContext(ctx, network, addr)
	}, DisableKeepAlives: true}
	c := f.client(t, WithTransport(tr))
	cr, err := c.CreateMedia(t.Context(), testMedia(), BytesContent([]byte("jpeg")))
	require.NoError(t, err)
	assert.Equal(t, "m1", cr.ID)
	reqs, _ := f.recorded()
	assert.Len(t, reqs, 1, "the refused attempt never reached ALEX")
}

func TestWriteTimedOutAfterSendingIsOutcomeUnknownAndNotResent(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	release := make(chan struct{})
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		<-release // ALEX got the whole Media and is slow to answer
		writeJSON(w, 201, `{"resourceType":"Media","id":"late"}`)
	})
	t.Cleanup(func() { close(release) })
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 200 * time.Millisecond
	c := f.client(t, WithTransport(tr))

	_, err := c.CreateMedia(t.Context(), testMedia(), BytesContent(make([]byte, 100<<10)))
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	var ae *Error
	require.ErrorAs(t, err, &ae)
	assert.Zero(t, ae.Status)
	assert.NotEmpty(t, ae.CorrelationID)
	reqs, bodies := f.recorded()
	require.Len(t, reqs, 1, "not resent")
	assert.Greater(t, len(bodies[0]), 100<<10, "the whole body had been sent")

	// The same through the caller's deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err = f.client(t).CreateMedia(ctx, testMedia(), BytesContent([]byte("x")))
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	reqs, _ = f.recorded()
	assert.Len(t, reqs, 2)
}

func TestReadRetriedAfterTimeout(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	var n atomic.Int64
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			time.Sleep(400 * time.Millisecond)
		}
		writeJSON(w, 200, patientJSON)
	})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 150 * time.Millisecond
	_, err := f.client(t, WithTransport(tr)).ReadPatient(t.Context(), "0123456789abcdef0123456789abcdef")
	require.NoError(t, err)
	// At least one retry; more only if a loaded machine made a later
	// attempt miss the short header timeout too.
	assert.GreaterOrEqual(t, n.Load(), int64(2))
}

func TestErrorsAndLogsCarryNoSecretsOrPatientIdentifiers(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, outcome("not-found", "Patient ZZZ0016 / 0123456789abcdef0123456789abcdef not found"))
	})
	var sink logSink
	c := f.client(t, WithLogger(sink.logger()))
	_, err := c.FindPatientByNHI(t.Context(), testNHI)
	require.ErrorIs(t, err, ErrNotFound)
	_, err2 := c.ReadPatient(t.Context(), "0123456789abcdef0123456789abcdef")
	require.ErrorIs(t, err2, ErrNotFound)
	requireNoSecrets(t, err.Error()+err2.Error())
	requireNoSecrets(t, sink.String())
	assert.Contains(t, sink.String(), `"status":404`, "the client did log the attempts")
	assert.Contains(t, err2.Error(), "/prefix/FHIR/Patient/{id}")
	assert.Contains(t, err.Error(), "identifier=…")
}

func TestRedirectToAnotherHostIsRefused(t *testing.T) {
	t.Parallel()
	var leaked atomic.Bool
	other := newFake(t)
	other.handle(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("Authorization") != "")
	})
	f := newFake(t)
	f.handle(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(other.base(), "127.0.0.1", "localhost", 1)+"/Patient/x", http.StatusFound)
	})
	_, err := f.client(t).ReadPatient(t.Context(), "abc")
	require.Error(t, err)
	assert.False(t, leaked.Load())
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("https://alexapiuat.medtechglobal.com/FHIR/Media/4f2a9c0e1b3d5f7a9c0e1b3d5f7a9c0e/_history/2?patient.identifier=https://standards.digital.health.nz/ns/nhi-id|ZZZ0016&_count=5")
	got := redactURL(u)
	assert.Equal(t, "https://alexapiuat.medtechglobal.com/FHIR/Media/{id}/_history/{id}?_count=…&patient.identifier=…", got)
}

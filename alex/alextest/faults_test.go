package alextest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFailNext(t *testing.T) {
	t.Parallel()
	patientPath := "/FHIR/Patient?identifier=" + nhiQuery("ZZZ0016")
	cases := []struct {
		name        string
		fault       alextest.Fault
		n           int
		c           call
		wantCode    string // OperationOutcome code of the default body
		wantBody    string // exact custom body
		contentType string
	}{
		{name: "503 default body", n: 2, fault: alextest.Fault{Status: 503}, c: call{path: patientPath},
			wantCode: "exception", contentType: "application/fhir+json; charset=utf-8"},
		{name: "429 with Retry-After seconds", n: 1, fault: alextest.Fault{Status: 429, RetryAfter: "7"}, c: call{path: patientPath},
			wantCode: "throttled", contentType: "application/fhir+json; charset=utf-8"},
		{name: "502 with HTTP-date and plain body", n: 1,
			fault: alextest.Fault{Status: 502, RetryAfter: "Wed, 21 Oct 2026 07:28:00 GMT", Body: "<html>Bad Gateway</html>"},
			c:     call{path: patientPath}, wantBody: "<html>Bad Gateway</html>", contentType: "application/json; charset=utf-8"},
		{name: "custom OperationOutcome", n: 1,
			fault: alextest.Fault{Status: 500, Body: `{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception"}]}`},
			c:     call{path: patientPath}, wantBody: `{"resourceType":"OperationOutcome","issue":[{"severity":"fatal","code":"exception"}]}`,
			contentType: "application/fhir+json; charset=utf-8"},
		{name: "POST Media fails and stores nothing", n: 1, fault: alextest.Fault{Status: 503, Path: "/fhir/media"},
			c:        call{method: "POST", path: "/FHIR/Media"},
			wantCode: "exception", contentType: "application/fhir+json; charset=utf-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := alextest.NewTestServer(t)
			tc.c.tok = token(t, srv)
			if tc.c.method == "POST" {
				tc.c.body = mediaBody(t, srv.Patients()[0].ID, []byte("img"), nil)
			}
			srv.FailNext(tc.n, tc.fault)
			for i := range tc.n {
				r := do(t, srv, tc.c)
				require.Equal(t, tc.fault.Status, r.status, "attempt %d", i)
				assert.Equal(t, tc.fault.RetryAfter, r.header.Get("Retry-After"))
				assert.Equal(t, tc.contentType, r.header.Get("Content-Type"))
				if tc.wantBody != "" {
					assert.Equal(t, tc.wantBody, string(r.body))
				} else {
					code, _ := r.outcome(t)
					assert.Equal(t, tc.wantCode, code)
				}
			}
			assert.Empty(t, srv.Media())
			r := do(t, srv, tc.c)
			assert.Contains(t, []int{200, 201}, r.status, "fault used up: %s", r.body)
			assert.Len(t, srv.Requests(), tc.n+1, "faulted requests are recorded")
		})
	}
}

func TestFailNextPathFilterAndQueue(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	srv.FailNext(1, alextest.Fault{Status: 503, Path: "/FHIR/Media"})
	srv.FailNext(1, alextest.Fault{Status: 504})

	// Practitioner does not match the Media fault; it takes the 504.
	assert.Equal(t, 504, do(t, srv, call{path: "/FHIR/Practitioner", tok: tok}).status)
	assert.Equal(t, 200, do(t, srv, call{path: "/FHIR/Practitioner", tok: tok}).status)
	mediaSearch := call{path: "/FHIR/Media?patient.identifier=" + nhiQuery("ZZZ0016"), tok: tok}
	assert.Equal(t, 503, do(t, srv, mediaSearch).status)
	assert.Equal(t, 200, do(t, srv, mediaSearch).status)
	// A fault applies before authentication: it models the gateway failing.
	srv.FailNext(1, alextest.Fault{Status: 502})
	assert.Equal(t, 502, do(t, srv, call{path: "/FHIR/metadata"}).status)
}

func TestFailNextRejectsNonErrorStatus(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	assert.Panics(t, func() { srv.FailNext(1, alextest.Fault{Status: 200}) })
}

func TestDropNextStoresThenDrops(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	body := mediaBody(t, srv.Patients()[0].ID, bytes.Repeat([]byte("x"), 100_000), nil)
	srv.DropNext(1)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.BaseURL()+"/Media", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("mt-facilityid", srv.Facility())
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "the connection closes without a reply")
	assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF), "got %v", err)
	require.Len(t, srv.Media(), 1, "the dropped POST was acted on")
	reqs := srv.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, int64(len(body)), reqs[0].BodyBytes, "the whole body was read")

	// The next request is answered normally.
	r := do(t, srv, call{method: "POST", path: "/FHIR/Media", tok: tok, body: body})
	assert.Equal(t, 201, r.status)
	assert.Len(t, srv.Media(), 2)
}

func TestSetLatency(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	srv.SetLatency(time.Hour)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.BaseURL()+"/metadata", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	_, err = http.DefaultClient.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the client gives up while the server waits")

	srv.SetLatency(0)
	assert.Equal(t, 200, do(t, srv, call{path: "/FHIR/metadata", tok: tok}).status)

	// Close ends a pending delay instead of waiting an hour.
	srv2 := alextest.NewServer()
	tok2 := token(t, srv2)
	srv2.SetLatency(time.Hour)
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest(http.MethodGet, srv2.BaseURL()+"/metadata", nil)
		req.Header.Set("Authorization", "Bearer "+tok2)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	require.Eventually(t, func() bool { return len(srv2.Requests()) == 1 }, 5*time.Second, 5*time.Millisecond)
	srv2.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the injected latency")
	}
}

func TestSetFacilityUnavailable(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	pid := srv.Patients()[0].ID
	srv.SetFacilityUnavailable(alextest.DefaultFacility, true)

	for _, c := range []call{
		{path: "/FHIR/Location"},
		{path: "/FHIR/Patient?identifier=" + nhiQuery("ZZZ0016")},
		{method: "POST", path: "/FHIR/Media", body: mediaBody(t, pid, []byte("img"), nil)},
	} {
		c.tok = tok
		r := do(t, srv, c)
		require.Equal(t, 503, r.status, c.path)
		code, diag := r.outcome(t)
		assert.Equal(t, "exception", code)
		assert.Equal(t, "Cannot establish connection to the facility. Please try again later.", diag)
	}
	assert.Empty(t, srv.Media())
	// The other facility is up; an unknown one is still 403.
	assert.Equal(t, 200, do(t, srv, call{path: "/FHIR/Location", tok: tok, facility: alextest.LocalFacility}).status)
	assert.Equal(t, 403, do(t, srv, call{path: "/FHIR/Location", tok: tok, facility: "F00000-A"}).status)
	// A bad token is still 401 first.
	assert.Equal(t, 401, do(t, srv, call{path: "/FHIR/Location"}).status)

	srv.SetFacilityUnavailable(alextest.DefaultFacility, false)
	assert.Equal(t, 200, do(t, srv, call{path: "/FHIR/Location", tok: tok}).status)
}

// TestDropNextCreate: only the named resource's create is dropped; reads
// and other requests pass, and a DropNext queued before it is taken first by
// whatever request comes.
func TestDropNextCreate(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	pid := srv.Patients()[0].ID
	send := func(method, path string, body []byte) (int, error) {
		req, err := http.NewRequestWithContext(t.Context(), method, srv.URL()+path, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("mt-facilityid", srv.Facility())
		req.Header.Set("Content-Type", "application/fhir+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	srv.DropNextCreate(1, "media") // case-insensitive
	st, err := send(http.MethodGet, "/FHIR/Location", nil)
	require.NoError(t, err, "a read passes")
	assert.Equal(t, 200, st)
	st, err = send(http.MethodGet, "/FHIR/Media/0123456789abcdef0123456789abcdef", nil)
	require.NoError(t, err, "a read of the same resource type passes")
	assert.Equal(t, 404, st)
	_, err = send(http.MethodPost, "/FHIR/Media", mediaBody(t, pid, []byte("a"), nil))
	require.Error(t, err, "the create's reply is lost")
	require.Len(t, srv.Media(), 1, "and it was stored")
	st, err = send(http.MethodPost, "/FHIR/Media", mediaBody(t, pid, []byte("b"), nil))
	require.NoError(t, err, "used up")
	assert.Equal(t, 201, st)
	assert.Len(t, srv.Media(), 2)

	srv.DropNext(1)
	srv.DropNextCreate(1, "Media")
	_, err = send(http.MethodGet, "/FHIR/Location", nil)
	require.Error(t, err, "DropNext takes any request")
	_, err = send(http.MethodPost, "/FHIR/Media", mediaBody(t, pid, []byte("c"), nil))
	require.Error(t, err, "then the create drop")
	st, err = send(http.MethodPost, "/FHIR/Media", mediaBody(t, pid, []byte("d"), nil))
	require.NoError(t, err)
	assert.Equal(t, 201, st)
	assert.Len(t, srv.Media(), 4)

	assert.Panics(t, func() { srv.DropNextCreate(1, "") })
}

func TestReset(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	pid := srv.Patients()[0].ID
	require.Equal(t, 201, do(t, srv, call{method: "POST", path: "/FHIR/Media", tok: tok, body: mediaBody(t, pid, []byte("a"), nil)}).status)
	srv.FailNext(5, alextest.Fault{Status: 500})
	srv.DropNext(3)
	srv.DropNextCreate(1, "Media")
	srv.SetFacilityUnavailable(srv.Facility(), true)
	srv.FailTokenNext(2, "invalid_client")
	srv.SetLatency(time.Hour)
	ctx, sig := srv.IssueLaunch(pid, "", "p1")

	srv.Reset()
	assert.Empty(t, srv.Media())
	assert.Empty(t, srv.Requests())
	assert.Zero(t, srv.TokenRequests())
	tok = token(t, srv) // no token fault left
	assert.Equal(t, 200, do(t, srv, call{path: "/FHIR/Location", tok: tok}).status, "no fault, drop, latency or outage left")
	r := do(t, srv, call{path: launchPath(ctx, sig), tok: tok, facility: "-"})
	assert.Equal(t, 404, r.status, "launches are cleared")
}

// TestConcurrentUse hammers every kind of call at once; run with -race.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	pid := srv.Patients()[0].ID
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			switch i % 4 {
			case 0:
				assert.Equal(t, 201, do(t, srv, call{method: "POST", path: "/FHIR/Media", tok: tok, body: mediaBody(t, pid, []byte("img"), nil)}).status)
			case 1:
				assert.Equal(t, 200, do(t, srv, call{path: "/FHIR/Media?patient.identifier=" + nhiQuery("ZZZ0016"), tok: tok}).status)
			case 2:
				_ = srv.Media()
				_ = srv.Requests()
				srv.SetLatency(0)
			case 3:
				_ = token(t, srv)
			}
		})
	}
	wg.Wait()
	assert.Len(t, srv.Media(), 5)
	assert.Equal(t, 6, srv.TokenRequests())
}

func TestSetReplyLatencyActsThenDelays(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	srv.SetReplyLatency(time.Hour)

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	body := mediaBody(t, srv.Patients()[0].ID, []byte("img"), nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.BaseURL()+"/Media", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("mt-facilityid", srv.Facility())
	req.Header.Set("Content-Type", "application/fhir+json")
	_, err = http.DefaultClient.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Len(t, srv.Media(), 1, "the POST was acted on before the reply was delayed")

	srv.SetReplyLatency(0)
	assert.Equal(t, 201, do(t, srv, call{method: "POST", path: "/FHIR/Media", tok: tok, body: body}).status)
}

func TestSetEgressBlocked(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	srv.SetEgressBlocked(true)
	tok := token(t, srv) // the token endpoint still answers

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.BaseURL()+"/Location", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("mt-facilityid", srv.Facility())
	_, err = http.DefaultClient.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Empty(t, srv.Requests(), "blocked requests never reach ALEX")

	srv.SetEgressBlocked(false)
	assert.Equal(t, 200, do(t, srv, call{path: "/FHIR/Location", tok: tok}).status)
}

// TestLargeBodyRefusedEarlyIsReadFirst: a 403 for a big POST comes back as a
// reply, not a broken connection, because the simulator reads the body first.
func TestLargeBodyRefusedEarlyIsReadFirst(t *testing.T) {
	t.Parallel()
	srv := alextest.NewTestServer(t)
	tok := token(t, srv)
	body := mediaBody(t, srv.Patients()[0].ID, make([]byte, 4<<20), nil)
	for i := range 3 {
		r := do(t, srv, call{method: "POST", path: "/FHIR/Media", tok: tok, facility: "F00000-A", body: body})
		require.Equal(t, 403, r.status, "attempt %d", i)
	}
	for _, r := range srv.Requests() {
		assert.Equal(t, int64(len(body)), r.BodyBytes)
	}
}

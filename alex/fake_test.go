package alex

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fake is a minimal ALEX for unit tests: a token endpoint and a FHIR base
// mounted under a non-root prefix (so an absolute-path bug fails), with the
// FHIR handler swapped per test. Behaviour tests use alextest instead.
type fake struct {
	srv         *httptest.Server
	tokenCalls  atomic.Int64
	tokenStatus atomic.Int64 // non-zero: answer token requests with this status
	tokenError  atomic.Value // string: OAuth error code when tokenStatus set
	tokenDelay  time.Duration
	expiresIn   int

	mu       sync.Mutex
	handler  http.HandlerFunc
	requests []*http.Request
	bodies   [][]byte
}

const (
	fakeClientID = "client-id-123"
	fakeSecret   = "s3cr3t-value-never-logged"
	fakeScope    = "api://bf7945a6-e812-4121-898a-76fea7c13f4d/.default"
	fakeFacility = "F2N060-E"
	testNHI      = "ZZZ0016"
)

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{expiresIn: 3599}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tenant/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		n := f.tokenCalls.Add(1)
		if f.tokenDelay > 0 {
			time.Sleep(f.tokenDelay)
		}
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		if st := f.tokenStatus.Load(); st != 0 {
			w.WriteHeader(int(st))
			code, _ := f.tokenError.Load().(string)
			fmt.Fprintf(w, `{"error":%q,"error_description":"AADSTS000000: %s. Trace ID: x","error_codes":[1]}`, code, code)
			return
		}
		if r.PostForm.Get("client_secret") != fakeSecret || r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("scope") != fakeScope {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`)
			return
		}
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":%d,"access_token":"tok-%d"}`, f.expiresIn, n)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, r.Clone(context.Background()))
		f.bodies = append(f.bodies, body)
		h := f.handler
		f.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		if h == nil {
			http.NotFound(w, r)
			return
		}
		h(w, r)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) base() string     { return f.srv.URL + "/prefix/FHIR" }
func (f *fake) tokenURL() string { return f.srv.URL + "/tenant/oauth2/v2.0/token" }

func (f *fake) handle(h http.HandlerFunc) {
	f.mu.Lock()
	f.handler = h
	f.mu.Unlock()
}

func (f *fake) recorded() ([]*http.Request, [][]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*http.Request(nil), f.requests...), append([][]byte(nil), f.bodies...)
}

func (f *fake) creds() Credentials {
	return Credentials{TokenURL: f.tokenURL(), ClientID: fakeClientID, ClientSecret: fakeSecret, Scope: fakeScope}
}

// fastRetry keeps retry tests quick.
var fastRetry = RetryPolicy{MaxRetries: 3, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond, MaxTotalWait: 5 * time.Second}

func (f *fake) client(t *testing.T, opts ...Option) *Client {
	t.Helper()
	all := append([]Option{WithClientCredentials(f.creds()), WithFacility(fakeFacility), WithRetryPolicy(fastRetry)}, opts...)
	c, err := New(f.base(), all...)
	require.NoError(t, err)
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", ContentTypeFHIR)
	w.WriteHeader(status)
	switch b := v.(type) {
	case string:
		_, _ = io.WriteString(w, b)
	default:
		_ = json.NewEncoder(w).Encode(v)
	}
}

func outcome(code, diagnostics string) string {
	return fmt.Sprintf(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":%q,"diagnostics":%q}]}`, code, diagnostics)
}

const patientJSON = `{"resourceType":"Patient","id":"0123456789abcdef0123456789abcdef","identifier":[{"system":"https://standards.digital.health.nz/ns/nhi-id","value":"ZZZ0016"}],"name":[{"family":"Test","given":["Alex"]}]}`

// logSink captures everything a client logs, for leak checks.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *logSink) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func requireNoSecrets(t *testing.T, text string) {
	t.Helper()
	for _, s := range []string{fakeSecret, "tok-", testNHI, "0123456789abcdef0123456789abcdef"} {
		require.NotContains(t, text, s)
	}
	require.False(t, strings.Contains(text, "Bearer "), "bearer token leaked")
}

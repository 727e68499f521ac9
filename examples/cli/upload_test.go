package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
)

// runCLIWith runs the CLI in process with extra ALEX client options.
func runCLIWith(t *testing.T, env map[string]string, opts []alex.Option, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(t.Context(), args, stdio{Out: &out, Err: &errb, Getenv: func(k string) string { return env[k] }, alexOptions: opts})
	return code, out.String(), errb.String()
}

// mediaPosts sits between the CLI and the simulator. Before the n-th POST of
// a Media (1-based) it calls before(n), so a test arms a simulator fault for
// exactly that request; after it, after(n); and when lose(n) it plays a
// network that loses the reply ALEX sent. Other requests pass untouched.
type mediaPosts struct {
	base          http.RoundTripper
	before, after func(n int)
	lose          func(n int) bool

	mu sync.Mutex
	n  int
}

func (m *mediaPosts) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || !strings.HasSuffix(strings.ToLower(r.URL.Path), "/media") {
		return m.base.RoundTrip(r)
	}
	m.mu.Lock()
	m.n++
	n := m.n
	m.mu.Unlock()
	if m.before != nil {
		m.before(n)
	}
	resp, err := m.base.RoundTrip(r)
	if m.after != nil {
		m.after(n)
	}
	if err == nil && m.lose != nil && m.lose(n) {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return nil, errors.New("read: connection reset by peer (the reply was lost)")
	}
	return resp, err
}

func (m *mediaPosts) posts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n
}

func TestUploadAfterAnUnknownOutcome(t *testing.T) {
	t.Parallel()
	// ALEX fails before storing anything (the reply, a 500, is then lost on
	// the way back: the client saw its request sent and no reply).
	notStored := func(srv *alextest.Server) { srv.FailNext(1, alextest.Fault{Status: 500, Path: "/FHIR/Media"}) }
	// ALEX stores the Media, then the connection closes without a reply.
	storedLost := func(srv *alextest.Server) { srv.DropNext(1) }
	// The reconciling search is refused (403 is not retried).
	searchFails := func(srv *alextest.Server) { srv.FailNext(1, alextest.Fault{Status: 403, Path: "/FHIR/Media"}) }

	tests := []struct {
		name   string
		before map[int]func(*alextest.Server) // by POST number
		after  map[int]func(*alextest.Server)
		lose   map[int]bool
		code   int
		posts  int // POSTs of the Media the CLI made
		media  int // Media ALEX holds afterwards
		result string
	}{
		{name: "stored, reply lost: found by identifier, not resent",
			before: map[int]func(*alextest.Server){1: storedLost},
			code:   exitOK, posts: 1, media: 1, result: resultReconciled},
		{name: "not stored, reply lost: resent once",
			before: map[int]func(*alextest.Server){1: notStored}, lose: map[int]bool{1: true},
			code: exitOK, posts: 2, media: 1, result: resultResent},
		{name: "not stored, and the resend's reply lost too: outcome unknown",
			before: map[int]func(*alextest.Server){1: notStored, 2: storedLost}, lose: map[int]bool{1: true},
			code: exitFailed, posts: 2, media: 1, result: "no reply to the one resend either"},
		{name: "reply lost and the search fails: outcome unknown, not resent",
			before: map[int]func(*alextest.Server){1: storedLost}, after: map[int]func(*alextest.Server){1: searchFails},
			code: exitFailed, posts: 1, media: 1, result: "the search for this photo failed"},
		{name: "no fault: committed",
			code: exitOK, posts: 1, media: 1, result: resultCommitted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := alextest.NewTestServer(t)
			p := srv.Patients()[0]
			photo := writeImage(t, filepath.Join(t.TempDir(), "lesion.jpg"), 320, 240)
			rt := &mediaPosts{base: srv.Client().Transport,
				before: func(n int) {
					if f := tc.before[n]; f != nil {
						f(srv)
					}
				},
				after: func(n int) {
					if f := tc.after[n]; f != nil {
						f(srv)
					}
				},
				lose: func(n int) bool { return tc.lose[n] },
			}
			args := []string{"upload", "--nhi", p.NHI, "--practitioner", srv.Practitioners()[0].ID, photo}
			code, out, errOut := runCLIWith(t, envFor(srv), []alex.Option{alex.WithTransport(rt)}, args...)
			assert.Equal(t, tc.code, code, out+errOut)
			assert.Contains(t, out, tc.result)
			assert.Equal(t, tc.posts, rt.posts(), "POSTs of the Media")
			require.Len(t, srv.Media(), tc.media, "Media in ALEX")
			assert.NotContains(t, out+errOut, p.NHI, "no NHI in the output")
			if tc.code != exitOK {
				assert.Contains(t, out, "run the same upload again")
				// As the message says: the re-run finds what ALEX holds and sends nothing.
				code, out, errOut = runCLI(t, envFor(srv), args...)
				assert.Equal(t, exitOK, code, out+errOut)
				assert.Contains(t, out, "already in the record")
				assert.Len(t, srv.Media(), tc.media, "the re-run sent nothing")
			}
			// Every Media ALEX holds carries the photo's one identifier.
			ids := map[string]bool{}
			for _, m := range srv.Media() {
				for _, idf := range m.Identifier {
					ids[*idf.Value] = true
				}
			}
			assert.Len(t, ids, 1, "the resend used the same identifier")
		})
	}
}

func TestUploadUsageErrorsBeforeAnyWork(t *testing.T) {
	t.Parallel()
	// The simulator's default patients and practitioners; each case gets its
	// own simulator to prove nothing reached it.
	p := alextest.DefaultPatients()[0]
	prac := alextest.DefaultPractitioners()[0].ID
	photo := writeImage(t, filepath.Join(t.TempDir(), "lesion.jpg"), 64, 48)
	missing := filepath.Join(t.TempDir(), "missing.jpg")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no --practitioner", []string{"--nhi", p.NHI, photo}, "--practitioner is required"},
		{"no patient", []string{"--practitioner", prac, photo}, "--nhi or --patient-id is required"},
		{"both patient flags", []string{"--nhi", p.NHI, "--patient-id", p.ID, "--practitioner", prac, photo}, "not both"},
		{"invalid NHI", []string{"--nhi", "ZZZ0017", "--practitioner", prac, photo}, "not a valid NHI"},
		{"bad practitioner id", []string{"--nhi", p.NHI, "--practitioner", "dr who", photo}, "--practitioner is not an ALEX id"},
		{"bad body site", []string{"--nhi", p.NHI, "--practitioner", prac, "--body-site", "12345", photo}, "--body-site"},
		{"laterality without body site", []string{"--nhi", p.NHI, "--practitioner", prac, "--laterality", "7771000", photo}, "--laterality needs --body-site"},
		{"bad laterality", []string{"--nhi", p.NHI, "--practitioner", prac, "--laterality", "1", photo}, "--laterality must be"},
		{"bad view", []string{"--nhi", p.NHI, "--practitioner", prac, "--view", "sideways", photo}, "--view"},
		{"title too long", []string{"--nhi", p.NHI, "--practitioner", prac, "--title", strings.Repeat("x", 81), photo}, "--title"},
		{"no files", []string{"--nhi", p.NHI, "--practitioner", prac}, "at least one image file"},
		{"missing file", []string{"--nhi", p.NHI, "--practitioner", prac, photo, missing}, "missing.jpg: no such file"},
		{"bad --progress", []string{"--nhi", p.NHI, "--practitioner", prac, "--progress", "sometimes", photo}, "--progress"},
		{"bad --timeout", []string{"--nhi", p.NHI, "--practitioner", prac, "--timeout", "soon", photo}, "--timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := alextest.NewTestServer(t)
			code, out, errOut := runCLI(t, envFor(srv), append([]string{"upload"}, tc.args...)...)
			assert.Equal(t, exitUsage, code, out+errOut)
			assert.Contains(t, errOut, tc.want)
			assert.NotContains(t, out+errOut, "ZZZ0017", "the NHI is not echoed")
			assert.Empty(t, srv.Requests(), "nothing reached ALEX")
			assert.Zero(t, srv.TokenRequests(), "not even a token was asked for")
			assert.NotContains(t, out, "patient ", "no work began")
		})
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/internal/testenv"
)

// TestRealCredentialsHideTheSimulator: with ALEX_CLIENT_ID set there is no
// simulator, and /dev/launch and /dev/patients are 404.
func TestRealCredentialsHideTheSimulator(t *testing.T) {
	t.Parallel()
	sim := alextest.NewTestServer(t)
	id, secret, scope := sim.Credentials()
	cfg, err := parseConfig(nil, envOf(map[string]string{
		"ALEX_CLIENT_ID": id, "ALEX_CLIENT_SECRET": secret, "ALEX_SCOPE": scope,
		"ALEX_TOKEN_URL": sim.TokenURL(), "ALEX_BASE_URL": sim.BaseURL(),
	}), io.Discard)
	require.NoError(t, err)
	a, err := newApp(t.Context(), cfg, discardLogger(), appDeps{Sim: sim})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, a.Close()) })
	assert.Nil(t, a.sim, "no simulator with real credentials, even when one is handed in")
	srv := httpServe(t, a)
	for _, p := range []string{"/dev/launch", "/dev/launch?patient=" + sim.Patients()[0].ID, "/dev/patients"} {
		res, err := noRedirect().Get(srv + p)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusNotFound, res.StatusCode, p)
	}
	res, err := http.Get(srv + "/")
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.NotContains(t, string(b), "SIMULATED ALEX")
}

// httpServe serves a's handler on loopback as serve would (the public URL
// derived from the listener) and returns its base URL.
func httpServe(t *testing.T, a *app) string {
	t.Helper()
	_, base := serveRunning(t, a)
	return base
}

func serveRunning(t *testing.T, a *app) (stop func(), base string) {
	t.Helper()
	ln := listenLoopback(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx, ln) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			assert.NoError(t, <-done)
		}
	}
	t.Cleanup(stop)
	return stop, "http://" + ln.Addr().String()
}

// TestRefusesNetworkWithoutCredentials: without ALEX credentials the server
// will not start on a non-loopback address unless SIMULATE=true, and off
// loopback PUBLIC_URL is required.
func TestRefusesNetworkWithoutCredentials(t *testing.T) {
	t.Parallel()
	var errOut bytes.Buffer
	code := run(t.Context(), []string{"-listen", "0.0.0.0:0"}, envOf(map[string]string{"PUBLIC_URL": "https://photos.example.nz"}), io.Discard, &errOut)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut.String(), "SIMULATE=true")
	errOut.Reset()
	code = run(t.Context(), []string{"-listen", "0.0.0.0:0", "-simulate"}, envOf(nil), io.Discard, &errOut)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut.String(), "PUBLIC_URL")
}

// TestQRIgnoresHostHeader: without PUBLIC_URL on loopback the QR base is
// the listen address; a forged Host header does not make a QR code for
// another host.
func TestQRIgnoresHostHeader(t *testing.T) {
	t.Parallel()
	a, srv := testSite(t)
	post := func(host, phone string) int {
		b, _ := json.Marshal(map[string]string{"url": phone})
		req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/qr", bytes.NewReader(b))
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	assert.Equal(t, http.StatusBadRequest, post("evil.example", "http://evil.example/m#code=abc"))
	assert.Equal(t, http.StatusBadRequest, post("evil.example", "https://evil.example/m#code=abc"))
	assert.Equal(t, http.StatusOK, post("evil.example", a.publicURL()+"/m#code=abc"), "the listen address, whatever the Host")
	// The desktop page is told the public URL, so it never builds the phone
	// URL from its own location.
	res, err := http.Get(srv.URL + "/")
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Contains(t, string(b), `data-public-url="`+a.publicURL()+`"`)
}

// TestTLSPosture: served over TLS the desktop cookie is __Host-ci_desktop
// (Secure, Path=/, no Domain) and every answer carries HSTS; plain HTTP on
// loopback has neither.
func TestTLSPosture(t *testing.T) {
	t.Parallel()
	cert, key := selfSigned(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errOut testenv.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-tls-cert", cert, "-tls-key", key}, envOf(nil), &out, &errOut)
	}()
	var link string
	require.Eventually(t, func() bool {
		for _, f := range strings.Fields(out.String()) {
			if strings.HasPrefix(f, "https://127.0.0.1:") && strings.Contains(f, "/dev/launch") {
				link = f
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond)
	u, err := url.Parse(link)
	require.NoError(t, err)
	base := u.Scheme + "://" + u.Host
	hc := &http.Client{
		// HTTP/2, as browsers speak over TLS: the per-request deadlines
		// go through http.ResponseController on its streams too.
		Transport:     &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // a self-signed test certificate
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := hc.Get(link)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, "max-age=31536000", res.Header.Get("Strict-Transport-Security"))
	loc, _ := url.Parse(res.Header.Get("Location"))
	frag, _ := url.ParseQuery(loc.EscapedFragment())
	lb, _ := json.Marshal(map[string]string{"context": frag.Get("context"), "signature": frag.Get("signature")})
	req, _ := http.NewRequestWithContext(t.Context(), "POST", base+"/api/launch", bytes.NewReader(lb))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	lr, err := hc.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(lr.Body)
	lr.Body.Close()
	require.Equal(t, http.StatusCreated, lr.StatusCode, string(body))
	assert.Equal(t, 2, lr.ProtoMajor, "served over HTTP/2")
	assert.NotEmpty(t, lr.Header.Get("Strict-Transport-Security"))
	var names []string
	for _, c := range lr.Cookies() {
		names = append(names, c.Name)
		if c.Name == "__Host-ci_desktop" {
			assert.True(t, c.Secure)
			assert.Equal(t, "/", c.Path)
			assert.Empty(t, c.Domain)
		}
	}
	assert.Contains(t, names, "__Host-ci_desktop")
	cancel()
	assert.Equal(t, 0, <-done, errOut.String())

	// Plain HTTP on loopback: no HSTS, the plain cookie name.
	_, srv := testSite(t)
	res, err = http.Get(srv.URL + "/")
	require.NoError(t, err)
	res.Body.Close()
	assert.Empty(t, res.Header.Get("Strict-Transport-Security"))
}

// TestMemoryLimitFromConfig: MEMORY_LIMIT_MB sets the runtime's soft memory
// limit (GOMEMLIMIT) when the server starts.
func TestMemoryLimitFromConfig(t *testing.T) { //nolint:paralleltest // changes a process-wide setting
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	ctx, cancel := context.WithCancel(t.Context())
	var out, errOut testenv.SyncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0"}, envOf(map[string]string{"MEMORY_LIMIT_MB": "8192"}), &out, &errOut)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "listening on") }, 20*time.Second, 20*time.Millisecond)
	assert.Equal(t, int64(8192)<<20, debug.SetMemoryLimit(-1))
	cancel()
	assert.Equal(t, 0, <-done, errOut.String())
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

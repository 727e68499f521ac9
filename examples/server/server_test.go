package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"image"
	"image/png"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/internal/testenv"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseConfig(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("s", 32)
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c *config)
	}{
		{name: "defaults simulate", check: func(t *testing.T, c *config) {
			assert.True(t, c.simulated())
			assert.Equal(t, "127.0.0.1:8080", c.Listen)
			assert.Equal(t, slog.LevelInfo, c.LogLevel)
			assert.Equal(t, 30*time.Second, c.ShutdownTimeout)
			assert.Equal(t, 30, c.MaxUploadMB)
			assert.False(t, c.secure())
		}},
		{name: "flag beats env", args: []string{"-listen", "127.0.0.1:9000"}, env: map[string]string{"LISTEN_ADDR": "127.0.0.1:7000"},
			check: func(t *testing.T, c *config) { assert.Equal(t, "127.0.0.1:9000", c.Listen) }},
		{name: "env read", env: map[string]string{"LISTEN_ADDR": ":7000", "SIMULATE": "true", "LOG_LEVEL": "debug", "TRUST_PROXY_HEADERS": "true", "PUBLIC_URL": "https://photos.example.nz/", "MAX_IMAGES": "5"},
			check: func(t *testing.T, c *config) {
				assert.Equal(t, ":7000", c.Listen)
				assert.Equal(t, slog.LevelDebug, c.LogLevel)
				assert.True(t, c.TrustProxy)
				assert.Equal(t, "https://photos.example.nz", c.PublicURL, "trailing slash trimmed")
				assert.True(t, c.secure())
				assert.Equal(t, 5, c.MaxImages)
			}},
		{name: "real alex", env: map[string]string{"ALEX_CLIENT_ID": "id", "ALEX_CLIENT_SECRET": "x", "ALEX_SCOPE": "api://g/.default"},
			check: func(t *testing.T, c *config) { assert.False(t, c.simulated()) }},
		{name: "real alex with simulate refused", args: []string{"-simulate"}, env: map[string]string{"ALEX_CLIENT_ID": "id"}, wantErr: "never served with real ALEX"},
		{name: "real alex with SIMULATE refused", env: map[string]string{"SIMULATE": "true", "ALEX_CLIENT_ID": "id"}, wantErr: "never served with real ALEX"},
		{name: "bad simulate", env: map[string]string{"SIMULATE": "perhaps"}, wantErr: "SIMULATE"},
		{name: "simulator off loopback refused", env: map[string]string{"LISTEN_ADDR": "0.0.0.0:8080", "PUBLIC_URL": "https://photos.example.nz"}, wantErr: "SIMULATE=true"},
		{name: "every interface is not loopback", env: map[string]string{"LISTEN_ADDR": ":8080", "PUBLIC_URL": "https://photos.example.nz"}, wantErr: "not loopback"},
		{name: "simulator off loopback asked for", env: map[string]string{"LISTEN_ADDR": "0.0.0.0:8080", "SIMULATE": "true", "PUBLIC_URL": "https://photos.example.nz"},
			check: func(t *testing.T, c *config) { assert.True(t, c.simulated()) }},
		{name: "off loopback needs public url", env: map[string]string{"LISTEN_ADDR": "0.0.0.0:8080", "SIMULATE": "true"}, wantErr: "set PUBLIC_URL"},
		{name: "real alex off loopback needs public url", env: map[string]string{"LISTEN_ADDR": "10.0.0.5:8080", "ALEX_CLIENT_ID": "id", "ALEX_CLIENT_SECRET": "x", "ALEX_SCOPE": "api://g/.default"}, wantErr: "set PUBLIC_URL"},
		{name: "localhost is loopback", env: map[string]string{"LISTEN_ADDR": "localhost:8080"},
			check: func(t *testing.T, c *config) { assert.Equal(t, "ci_desktop", c.cookieName()) }},
		{name: "ipv6 loopback", env: map[string]string{"LISTEN_ADDR": "[::1]:8080"},
			check: func(t *testing.T, c *config) { assert.True(t, loopback(c.Listen)) }},
		{name: "https public url takes the __Host- cookie", env: map[string]string{"PUBLIC_URL": "https://photos.example.nz"},
			check: func(t *testing.T, c *config) { assert.Equal(t, "__Host-ci_desktop", c.cookieName()) }},
		{name: "edge defaults", check: func(t *testing.T, c *config) {
			assert.Equal(t, 10*time.Second, c.ReadHeaderTimeout)
			assert.Equal(t, 10*time.Second, c.BodyTimeout)
			assert.Equal(t, 8<<10, c.MinUploadRate)
			assert.Equal(t, 30*time.Second, c.WriteTimeout)
			assert.Equal(t, 2*time.Minute, c.IdleTimeout)
			assert.Equal(t, 1024, c.MaxConns)
			assert.Equal(t, 4, c.MaxStreams)
			assert.Zero(t, c.MemoryLimitMB)
			assert.Equal(t, time.Hour, c.Retention)
		}},
		{name: "edge from env", env: map[string]string{"BODY_TIMEOUT": "3s", "MIN_UPLOAD_RATE": "1000", "WRITE_TIMEOUT": "5s", "IDLE_TIMEOUT": "7s",
			"MAX_CONNECTIONS": "9", "MAX_STREAMS_PER_CREDENTIAL": "2", "MEMORY_LIMIT_MB": "512", "READ_HEADER_TIMEOUT": "4s", "RETENTION": "10m"},
			check: func(t *testing.T, c *config) {
				assert.Equal(t, 3*time.Second, c.BodyTimeout)
				assert.Equal(t, 1000, c.MinUploadRate)
				assert.Equal(t, 5*time.Second, c.WriteTimeout)
				assert.Equal(t, 7*time.Second, c.IdleTimeout)
				assert.Equal(t, 4*time.Second, c.ReadHeaderTimeout)
				assert.Equal(t, 9, c.MaxConns)
				assert.Equal(t, 2, c.MaxStreams)
				assert.Equal(t, 512, c.MemoryLimitMB)
				assert.Equal(t, 10*time.Minute, c.Retention)
			}},
		{name: "zero connections", env: map[string]string{"MAX_CONNECTIONS": "0"}, wantErr: "MAX_CONNECTIONS"},
		{name: "negative memory limit", env: map[string]string{"MEMORY_LIMIT_MB": "-1"}, wantErr: "MEMORY_LIMIT_MB"},
		{name: "short metrics token", env: map[string]string{"METRICS_TOKEN": "short"}, wantErr: "METRICS_TOKEN"},
		{name: "client id without secret", env: map[string]string{"ALEX_CLIENT_ID": "id"}, wantErr: "ALEX_CLIENT_SECRET"},
		{name: "bad public url", env: map[string]string{"PUBLIC_URL": "photos.example.nz"}, wantErr: "PUBLIC_URL"},
		{name: "bad log level", env: map[string]string{"LOG_LEVEL": "loud"}, wantErr: "LOG_LEVEL"},
		{name: "bad trust", env: map[string]string{"TRUST_PROXY_HEADERS": "maybe"}, wantErr: "TRUST_PROXY_HEADERS"},
		{name: "redis without secret", env: map[string]string{"REDIS_URL": "redis://127.0.0.1:6379/0"}, wantErr: "SESSION_SECRET"},
		{name: "short secret", env: map[string]string{"SESSION_SECRET": "short"}, wantErr: "32 bytes"},
		{name: "partial s3", env: map[string]string{"S3_ENDPOINT": "http://127.0.0.1:1"}, wantErr: "S3_BUCKET"},
		{name: "s3 and blob dir", env: map[string]string{"S3_ENDPOINT": "http://x", "S3_BUCKET": "b", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "s", "BLOB_DIR": "/tmp"}, wantErr: "not both"},
		{name: "tls half", env: map[string]string{"TLS_CERT_FILE": "c.pem"}, wantErr: "TLS_KEY_FILE"},
		{name: "launch key without audience", env: map[string]string{"LAUNCH_TOKEN_KEY": secret}, wantErr: "LAUNCH_AUDIENCE"},
		{name: "zero images", env: map[string]string{"MAX_IMAGES": "0"}, wantErr: "MAX_IMAGES"},
		{name: "launch limits", env: map[string]string{"LAUNCH_RATE_PER_CLIENT": "300", "LAUNCH_RATE_TOTAL": "900", "MAX_SESSIONS_PER_PRACTITIONER": "150", "MAX_SESSIONS_PER_FACILITY": "1000"},
			check: func(t *testing.T, c *config) {
				assert.Equal(t, [4]int{300, 900, 150, 1000}, [4]int{c.LaunchPerClient, c.LaunchTotal, c.SessionsPerPractitioner, c.SessionsPerFacility})
			}},
		{name: "zero launch rate", env: map[string]string{"LAUNCH_RATE_PER_CLIENT": "0"}, wantErr: "LAUNCH_RATE_PER_CLIENT"},
		{name: "launch window", env: map[string]string{"LAUNCH_RATE_WINDOW": "1h"}, check: func(t *testing.T, c *config) { assert.Equal(t, time.Hour, c.LaunchWindow) }},
		{name: "zero launch window", env: map[string]string{"LAUNCH_RATE_WINDOW": "0s"}, wantErr: "LAUNCH_RATE_WINDOW"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected argument"},
		{name: "redis with secret", env: map[string]string{"REDIS_URL": "redis://x", "SESSION_SECRET": secret},
			check: func(t *testing.T, c *config) { assert.Equal(t, secret, c.Secret) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseConfig(tc.args, envOf(tc.env), io.Discard)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}

func TestLaunchKey(t *testing.T) {
	t.Parallel()
	c := &config{LaunchKey: strings.Repeat("k", 32)}
	k, err := c.launchKey()
	require.NoError(t, err)
	assert.Len(t, k.Secret, 32)
	_, err = (&config{LaunchKey: "short"}).launchKey()
	assert.Error(t, err)
	_, err = (&config{LaunchKey: "-----BEGIN PUBLIC KEY-----\nbm9wZQ==\n-----END PUBLIC KEY-----"}).launchKey()
	assert.Error(t, err)
}

// testSite is the whole site on embedded defaults behind httptest.
func testSite(t *testing.T) (*app, *httptest.Server) {
	t.Helper()
	return testSiteEnv(t, nil)
}

func testSiteEnv(t *testing.T, env map[string]string) (*app, *httptest.Server) {
	t.Helper()
	cfg, err := parseConfig(nil, envOf(env), io.Discard)
	require.NoError(t, err)
	a, err := newApp(t.Context(), cfg, discardLogger(), appDeps{Sim: alextest.NewTestServer(t)})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, a.Close()) })
	srv := httptest.NewUnstartedServer(a.Handler())
	a.listening(srv.Listener.Addr()) // as serve does
	srv.Start()
	t.Cleanup(srv.Close)
	return a, srv
}

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestPagesAndEndpoints(t *testing.T) {
	t.Parallel()
	a, srv := testSite(t)
	get := func(path string) (*http.Response, string) {
		res, err := noRedirect().Get(srv.URL + path)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, p := range []string{"/", "/m"} {
		res, body := get(p)
		assert.Equal(t, 200, res.StatusCode, p)
		assert.Contains(t, body, "SIMULATED ALEX", p)
		assert.Contains(t, res.Header.Get("Content-Security-Policy"), "script-src 'self'", p)
	}
	res, body := get("/m")
	assert.Contains(t, body, `capture="environment"`)
	assert.NotContains(t, body, "/dev/launch", "the phone page offers no simulator links")
	_, body = get("/")
	assert.Contains(t, body, `href="/dev/launch"`)
	assert.NotContains(t, res.Header.Get("Content-Security-Policy"), "unsafe-inline")

	res, _ = get("/static/desktop.js")
	assert.Equal(t, 200, res.StatusCode)
	res, body = get("/api/healthz")
	assert.Equal(t, 200, res.StatusCode)
	assert.Contains(t, body, "ok")

	var sites []option
	_, body = get("/bodysites?q=forearm")
	require.NoError(t, json.Unmarshal([]byte(body), &sites))
	require.NotEmpty(t, sites)
	assert.Equal(t, "14975008", sites[0].Code)
	_, body = get("/bodysites")
	require.NoError(t, json.Unmarshal([]byte(body), &sites))
	assert.Greater(t, len(sites), 10)
	var vs struct{ Lateralities, Views []option }
	_, body = get("/valuesets.json")
	require.NoError(t, json.Unmarshal([]byte(body), &vs))
	assert.NotEmpty(t, vs.Lateralities)
	assert.NotEmpty(t, vs.Views)

	// The development launch link redirects with the launch pair in the
	// fragment, which the API accepts.
	pid := a.sim.Patients()[1].ID
	res, _ = get("/dev/launch?patient=" + pid)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	loc, err := url.Parse(res.Header.Get("Location"))
	require.NoError(t, err)
	assert.Equal(t, "/", loc.Path)
	assert.Empty(t, loc.RawQuery, "nothing in the query string")
	frag, err := url.ParseQuery(loc.EscapedFragment())
	require.NoError(t, err)
	lb, _ := json.Marshal(map[string]string{"context": frag.Get("context"), "signature": frag.Get("signature")})
	lr, err := http.Post(srv.URL+"/api/launch", "application/json", bytes.NewReader(lb))
	require.NoError(t, err)
	var launched struct {
		Session struct{ PatientID string } `json:"session"`
	}
	lbody, _ := io.ReadAll(lr.Body)
	lr.Body.Close()
	require.Equal(t, http.StatusCreated, lr.StatusCode, string(lbody))
	require.NoError(t, json.Unmarshal(lbody, &launched))
	assert.Equal(t, pid, launched.Session.PatientID)

	res, _ = get("/dev/launch?patient=nobody")
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
}

func TestQR(t *testing.T) {
	t.Parallel()
	_, srv := testSite(t)
	_, public := testSiteEnv(t, map[string]string{"PUBLIC_URL": "https://photos.example.nz"})
	cases := []struct {
		name string
		site *httptest.Server
		url  string
		want int
	}{
		{"own phone url", srv, srv.URL + "/m#code=abc123", 200},
		{"scheme other than the listener's", srv, strings.Replace(srv.URL, "http://", "https://", 1) + "/m#code=abc123", 400},
		{"public url", public, "https://photos.example.nz/m#code=abc123", 200},
		{"own host when a public url is set", public, public.URL + "/m#code=abc123", 400},
		{"other host", srv, "https://evil.example/m#code=abc", 400},
		{"not the phone page", srv, srv.URL + "/x#code=abc", 400},
		{"empty code", srv, srv.URL + "/m#code=", 400},
		{"code in query", srv, srv.URL + "/m?code=abc", 400},
		{"extra fragment parameters", srv, srv.URL + "/m#code=abc&x=1", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, _ := json.Marshal(map[string]string{"url": tc.url})
			res, err := http.Post(tc.site.URL+"/qr", "application/json", bytes.NewReader(b))
			require.NoError(t, err)
			defer res.Body.Close()
			assert.Equal(t, tc.want, res.StatusCode)
			if tc.want == 200 {
				img, err := png.Decode(res.Body)
				require.NoError(t, err)
				assert.GreaterOrEqual(t, img.Bounds().Dx(), 200)
			}
		})
	}
}

// TestShutdownEndsEventStreams: a desktop's open event stream does not hold
// shutdown until its timeout; serve returns promptly and cleanly.
func TestShutdownEndsEventStreams(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig([]string{"-shutdown-timeout", "20s"}, envOf(nil), io.Discard)
	require.NoError(t, err)
	a, err := newApp(t.Context(), cfg, discardLogger(), appDeps{Sim: alextest.NewTestServer(t)})
	require.NoError(t, err)
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	// Launch, then open the event stream with the cookie.
	res, err := noRedirect().Get(base + "/dev/launch")
	require.NoError(t, err)
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	frag, _ := url.ParseQuery(loc.EscapedFragment())
	lb, _ := json.Marshal(map[string]string{"context": frag.Get("context"), "signature": frag.Get("signature")})
	lr, err := http.Post(base+"/api/launch", "application/json", bytes.NewReader(lb))
	require.NoError(t, err)
	lr.Body.Close()
	require.Equal(t, http.StatusCreated, lr.StatusCode)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/api/events", nil)
	for _, c := range lr.Cookies() {
		req.AddCookie(c)
	}
	sres, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer sres.Body.Close()
	require.Equal(t, 200, sres.StatusCode)
	assert.Contains(t, sres.Header.Get("Content-Type"), "text/event-stream")

	stop()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown waited on the open event stream")
	}
	// The stream was ended by the server.
	_, err = io.Copy(io.Discard, bufio.NewReader(sres.Body))
	assert.NoError(t, err)
}

func TestRun(t *testing.T) {
	t.Parallel()
	t.Run("help", func(t *testing.T) {
		t.Parallel()
		var errOut bytes.Buffer
		assert.Equal(t, 0, run(t.Context(), []string{"-help"}, envOf(nil), io.Discard, &errOut))
		assert.Contains(t, errOut.String(), "PUBLIC_URL")
	})
	t.Run("bad configuration", func(t *testing.T) {
		t.Parallel()
		var errOut bytes.Buffer
		assert.Equal(t, 2, run(t.Context(), nil, envOf(map[string]string{"LOG_LEVEL": "loud"}), io.Discard, &errOut))
		assert.Contains(t, errOut.String(), "LOG_LEVEL")
	})
	t.Run("serves https", func(t *testing.T) {
		t.Parallel()
		cert, key := selfSigned(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var out, errOut testenv.SyncBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-tls-cert", cert, "-tls-key", key}, envOf(nil), &out, &errOut)
		}()
		require.Eventually(t, func() bool { return strings.Contains(out.String(), "https://127.0.0.1:") }, 20*time.Second, 20*time.Millisecond)
		var base string
		for _, f := range strings.Fields(out.String()) {
			if strings.HasPrefix(f, "https://127.0.0.1:") {
				u, err := url.Parse(f)
				require.NoError(t, err)
				base = u.Scheme + "://" + u.Host
				break
			}
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a self-signed test certificate
		res, err := hc.Get(base + "/api/healthz")
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, 200, res.StatusCode)
		assert.NotNil(t, res.TLS)
		cancel()
		assert.Equal(t, 0, <-done, errOut.String())
	})
	t.Run("serves until cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var out, errOut testenv.SyncBuffer
		done := make(chan int, 1)
		go func() { done <- run(ctx, []string{"-listen", "127.0.0.1:0"}, envOf(nil), &out, &errOut) }()
		require.Eventually(t, func() bool { return strings.Contains(out.String(), "/dev/launch?patient=") }, 20*time.Second, 20*time.Millisecond)
		assert.Contains(t, out.String(), "SIMULATED ALEX")
		var link string
		for _, f := range strings.Fields(out.String()) {
			if strings.Contains(f, "/dev/launch?patient=") {
				link = f
				break
			}
		}
		res, err := noRedirect().Get(link)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusSeeOther, res.StatusCode)
		cancel()
		select {
		case code := <-done:
			assert.Equal(t, 0, code, errOut.String())
		case <-time.After(20 * time.Second):
			t.Fatal("run did not return after cancel")
		}
	})
}

// selfSigned writes a throwaway certificate for 127.0.0.1 and returns the
// certificate and key file paths.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	kb, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600))
	return certFile, keyFile
}

// TestShutdownDrainsUploads: an upload in flight when shutdown begins still
// completes, and serve returns once it has.
func TestShutdownDrainsUploads(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig(nil, envOf(nil), io.Discard)
	require.NoError(t, err)
	a, err := newApp(t.Context(), cfg, discardLogger(), appDeps{Sim: alextest.NewTestServer(t)})
	require.NoError(t, err)
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	cookies, csrf := launchVia(t, base)

	var pic bytes.Buffer
	require.NoError(t, png.Encode(&pic, image.NewRGBA(image.Rect(0, 0, 300, 200))))
	data := pic.Bytes()
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", base+"/api/images", pr)
	req.Header.Set("Content-Type", "image/png")
	req.Header.Set("X-CSRF-Token", csrf)
	// With 100-continue the client sends the body only once the handler
	// reads it, so the first write below proves the upload is in the handler.
	req.Header.Set("Expect", "100-continue")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	type reply struct {
		status int
		err    error
	}
	replies := make(chan reply, 1)
	go func() {
		res, err := (&http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}).Do(req)
		if err != nil {
			replies <- reply{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		replies <- reply{status: res.StatusCode}
	}()
	_, err = pw.Write(data[:len(data)/2]) // returns once the handler is reading
	require.NoError(t, err)

	stop()
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 10*time.Second, 20*time.Millisecond, "shutdown began: no new connections")
	select {
	case err := <-done:
		t.Fatalf("serve returned with an upload in flight: %v", err)
	default:
	}

	_, err = pw.Write(data[len(data)/2:])
	require.NoError(t, err)
	require.NoError(t, pw.Close())
	r := <-replies
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusCreated, r.status, "the upload in flight completed")
	assert.NoError(t, <-done)
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex/alextest"
)

func TestNewAppRefusesUnusableBackends(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("s", 32)
	cases := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"unreachable redis", map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0", "SESSION_SECRET": secret}, "redis"},
		{"malformed redis url", map[string]string{"REDIS_URL": "http://x", "SESSION_SECRET": secret}, "REDIS_URL"},
		{"unreachable s3", map[string]string{"S3_ENDPOINT": "http://127.0.0.1:1", "S3_BUCKET": "b", "S3_ACCESS_KEY": "a", "S3_SECRET_KEY": "s"}, "s3"},
		{"bad launch key", map[string]string{"LAUNCH_TOKEN_KEY": "-----BEGIN PUBLIC KEY-----\nbm9wZQ==\n-----END PUBLIC KEY-----", "LAUNCH_AUDIENCE": "a"}, "LAUNCH_TOKEN_KEY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := parseConfig(nil, envOf(tc.env), io.Discard)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_, err = newApp(ctx, cfg, discardLogger(), appDeps{Sim: alextest.NewTestServer(t)})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.NotContains(t, err.Error(), secret, "no secret in the error")
		})
	}
}

// TestLaunchTokenAndBlobDir: with LAUNCH_TOKEN_KEY an integrating server's
// signed token opens a session, and with BLOB_DIR a desktop upload lands in
// that folder.
func TestLaunchTokenAndBlobDir(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("k", 40)
	dir := filepath.Join(t.TempDir(), "blobs")
	sim := alextest.NewTestServer(t)
	cfg, err := parseConfig(nil, envOf(map[string]string{"LAUNCH_TOKEN_KEY": key, "LAUNCH_AUDIENCE": "https://photos.example.nz", "BLOB_DIR": dir}), io.Discard)
	require.NoError(t, err)
	a, err := newApp(t.Context(), cfg, discardLogger(), appDeps{Sim: sim})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, a.Close()) })
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)

	p := sim.Patients()[0]
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"aud": "https://photos.example.nz", "iat": now.Unix(), "jti": "test-launch-1", "exp": now.Add(5 * time.Minute).Unix(),
		"facility": sim.Facility(), "patient": p.ID, "nhi": p.NHI, "practitioner": sim.Practitioners()[0].ID,
	}).SignedString([]byte(key))
	require.NoError(t, err)
	lb, _ := json.Marshal(map[string]string{"token": tok})
	res, err := http.Post(srv.URL+"/api/launch", "application/json", bytes.NewReader(lb))
	require.NoError(t, err)
	var launched struct {
		CSRF string `json:"csrf"`
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode, string(body))
	require.NoError(t, json.Unmarshal(body, &launched))

	var pic bytes.Buffer
	require.NoError(t, png.Encode(&pic, image.NewGray(image.Rect(0, 0, 64, 48))))
	req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/api/images", &pic)
	req.Header.Set("Content-Type", "image/png")
	req.Header.Set("X-CSRF-Token", launched.CSRF)
	for _, c := range res.Cookies() {
		req.AddCookie(c)
	}
	up, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	upBody, _ := io.ReadAll(up.Body)
	up.Body.Close()
	require.Equal(t, http.StatusCreated, up.StatusCode, string(upBody))

	files := 0
	require.NoError(t, filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return err
	}))
	assert.Positive(t, files, "the photo is stored under BLOB_DIR")
}

// TestAblyMirror: with ABLY_KEY the events the desktop receives are also
// mirrored to Ably's REST API (here a fake), and presence still works.
func TestAblyMirror(t *testing.T) {
	t.Parallel()
	var mu gosync.Mutex
	var names []string
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msgs []struct {
			Name string `json:"name"`
		}
		body, _ := io.ReadAll(r.Body)
		if json.Unmarshal(body, &msgs) != nil {
			var one struct {
				Name string `json:"name"`
			}
			_ = json.Unmarshal(body, &one)
			msgs = append(msgs, one)
		}
		mu.Lock()
		for _, m := range msgs {
			names = append(names, m.Name)
		}
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(fake.Close)
	_, srv := testSiteEnv(t, map[string]string{"ABLY_KEY": "app.key:not-a-real-secret", "ABLY_ENDPOINT": fake.URL})

	cookies, csrf := launchVia(t, srv.URL)
	call := func(method, path string) map[string]any {
		req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+"/api"+path, nil)
		req.Header.Set("X-CSRF-Token", csrf)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		require.Less(t, res.StatusCode, 300, out)
		return out
	}
	h := call("POST", "/handoff")
	cb, _ := json.Marshal(map[string]any{"code": h["code"]})
	res, err := http.Post(srv.URL+"/api/phone/claim", "application/json", bytes.NewReader(cb))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)

	assert.Equal(t, true, call("GET", "/presence")["phone"], "presence read through the mirror")
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(names, "phone.connected")
	}, time.Minute, 20*time.Millisecond, "the event reached Ably")
}

// launchVia opens a session through the development launch link and
// returns the desktop's cookies and CSRF token.
func launchVia(t *testing.T, base string) ([]*http.Cookie, string) {
	t.Helper()
	res, err := noRedirect().Get(base + "/dev/launch")
	require.NoError(t, err)
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	require.NoError(t, err)
	frag, err := url.ParseQuery(loc.EscapedFragment())
	require.NoError(t, err)
	lb, _ := json.Marshal(map[string]string{"context": frag.Get("context"), "signature": frag.Get("signature")})
	lr, err := http.Post(base+"/api/launch", "application/json", bytes.NewReader(lb))
	require.NoError(t, err)
	defer lr.Body.Close()
	var out struct {
		CSRF string `json:"csrf"`
	}
	require.NoError(t, json.NewDecoder(lr.Body).Decode(&out))
	require.Equal(t, http.StatusCreated, lr.StatusCode)
	return lr.Cookies(), out.CSRF
}

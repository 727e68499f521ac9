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
	"os"
	"path/filepath"
	"strings"
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
		"aud": "https://photos.example.nz", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
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

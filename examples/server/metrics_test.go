package main

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/internal/testenv"
)

// metricValue sums the samples of name whose labels contain every one of
// labels (`k="v"` strings) in a Prometheus text exposition.
func metricValue(t *testing.T, body, name string, labels ...string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `(\{[^}]*\})? ([0-9.e+-]+)$`)
	sum := 0.0
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(m[1], l)
		}
		if ok {
			v, err := strconv.ParseFloat(m[2], 64)
			require.NoError(t, err)
			sum += v
		}
	}
	return sum
}

// TestMetricsMoveWithTheFlow: after a GP's launch, upload and commit the
// counters on /metrics moved: uploads accepted, normalising time, commit
// outcomes, launches, ALEX calls by status with latency.
func TestMetricsMoveWithTheFlow(t *testing.T) {
	t.Parallel()
	base := startServer(t, nil, alextest.NewTestServer(t))
	before := scrape(t, base, "")
	require.NoError(t, gpFlow(t.Context(), base))
	after := scrape(t, base, "")

	moved := func(name string, labels ...string) {
		t.Helper()
		assert.Greater(t, metricValue(t, after, name, labels...), metricValue(t, before, name, labels...), "%s%v", name, labels)
	}
	moved("clinicalimages_uploads_total", `source="desktop"`, `result="accepted"`)
	moved("clinicalimages_upload_normalize_seconds_count", `source="desktop"`)
	moved("clinicalimages_commit_images_total", `state="committed"`)
	moved("clinicalimages_launches_total", `result="started"`)
	moved("clinicalimages_alex_requests_total", `op="write"`, `status="201"`)
	moved("clinicalimages_alex_requests_total", `op="token"`, `status="200"`)
	moved("clinicalimages_alex_request_seconds_count", `op="write"`)
	assert.Contains(t, after, "clinicalimages_event_streams 0")
	if _, ok := any((*compress.Normalizer)(nil)).(interface{ DecodeBudget() (inUse, limit int64) }); ok {
		assert.Contains(t, after, "clinicalimages_decode_budget_limit_bytes")
		assert.Contains(t, after, "clinicalimages_decode_budget_in_use_bytes 0")
	}
	assert.Contains(t, after, "go_goroutines")

	// A refused upload is counted under its code.
	cookies, csrf := launchVia(t, base)
	req, _ := http.NewRequestWithContext(t.Context(), "POST", base+"/api/images", strings.NewReader("not an image at all"))
	req.Header.Set("Content-Type", "image/png")
	req.Header.Set("X-CSRF-Token", csrf)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.GreaterOrEqual(t, res.StatusCode, 400)
	refused := scrape(t, base, "")
	assert.Positive(t, metricValue(t, refused, "clinicalimages_uploads_total", `source="desktop"`)-
		metricValue(t, refused, "clinicalimages_uploads_total", `result="accepted"`), "a refusal counted with its code")
}

// TestMetricsAccess: without METRICS_TOKEN /metrics is open only in
// development (loopback, no PUBLIC_URL) and 404 otherwise; with it, the
// bearer token is required.
func TestMetricsAccess(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		env          map[string]string
		auth         string
		want         int
		wantNoHeader int
	}{
		{"loopback open", nil, "", 200, 200},
		{"off loopback closed", map[string]string{"LISTEN_ADDR": "0.0.0.0:0", "SIMULATE": "true", "PUBLIC_URL": "https://photos.example.nz"}, "", 404, 404},
		{"loopback behind a proxy closed", map[string]string{"PUBLIC_URL": "https://photos.example.nz"}, "", 404, 404},
		{"token required", map[string]string{"METRICS_TOKEN": "a-long-enough-metrics-token"}, "Bearer a-long-enough-metrics-token", 200, 401},
		{"wrong token", map[string]string{"METRICS_TOKEN": "a-long-enough-metrics-token"}, "Bearer nope", 401, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, srv := testSiteEnv(t, tc.env)
			get := func(auth string) int {
				req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/metrics", nil)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				res, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				return res.StatusCode
			}
			assert.Equal(t, tc.want, get(tc.auth))
			assert.Equal(t, tc.wantNoHeader, get(""))
		})
	}
}

// TestReadyz: 200 while both stores answer; 503 naming the blob store once
// its folder is gone. /api/healthz stays 200 (liveness).
func TestReadyz(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg, err := parseConfig(nil, envOf(map[string]string{"BLOB_DIR": dir}), io.Discard)
	require.NoError(t, err)
	a, err := newApp(t.Context(), cfg, discardLogger(), appDeps{Sim: alextest.NewTestServer(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	base := httpServe(t, a)
	get := func(path string) (int, string) { return getText(t, base+path) }
	st, body := get("/readyz")
	assert.Equal(t, 200, st, body)
	require.NoError(t, os.RemoveAll(dir))
	st, body = get("/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, st)
	assert.Contains(t, body, `"blob_store":"unavailable"`)
	assert.Contains(t, body, `"session_store":"ok"`)
	st, _ = get("/api/healthz")
	assert.Equal(t, 200, st)
}

// TestReadyzSessionStoreDown: with Redis gone, /readyz answers 503 naming
// the session store; /api/healthz (liveness) stays 200.
func TestReadyzSessionStoreDown(t *testing.T) {
	t.Parallel()
	rs := testenv.StartRedis(t)
	cfg, err := parseConfig(nil, envOf(map[string]string{
		"REDIS_URL": "redis://" + rs.Addr + "/0", "SESSION_SECRET": "readiness-test-secret-0123456789abcdef",
		"BLOB_DIR": t.TempDir(),
	}), io.Discard)
	require.NoError(t, err)
	a, err := newApp(t.Context(), cfg, discardLogger(), appDeps{Sim: alextest.NewTestServer(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	base := httpServe(t, a)
	get := func(path string) (int, string) { return getText(t, base+path) }
	st, body := get("/readyz")
	require.Equal(t, 200, st, body)
	rs.Kill()
	st, body = get("/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, st)
	assert.Contains(t, body, `"session_store":"unavailable"`)
	assert.Contains(t, body, `"blob_store":"ok"`)
	st, _ = get("/api/healthz")
	assert.Equal(t, 200, st)
}

// getText GETs url and returns the status and body.
func getText(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, string(b)
}

package clinicalimages_test

import (
	"net/http"
	"os"
	"path/filepath"
	gosync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/compress/heic"
	"github.com/clinicpro/clinicalimages/session"
)

// TestHEICIsOptIn: the SDK refuses HEIC unless the caller turns its decoder
// on with WithCompressOptions(heic.Option()), as the reference server does;
// the upload limit of Limits still holds then.
func TestHEICIsOptIn(t *testing.T) {
	t.Parallel()
	photo, err := os.ReadFile(filepath.Join("compress", "enginetest", "testdata", "marker.heic"))
	require.NoError(t, err)

	for _, tc := range []struct {
		name   string
		opts   []ci.Option
		status int
		code   string
	}{
		{"default refuses", nil, http.StatusUnsupportedMediaType, "unsupported_format"},
		{"opted in", []ci.Option{ci.WithCompressOptions(heic.Option())}, http.StatusCreated, ""},
		{"opted in, upload limit kept", []ci.Option{ci.WithCompressOptions(heic.Option()),
			ci.WithLimits(ci.Limits{MaxUploadBytes: int64(len(photo) - 1)})}, http.StatusRequestEntityTooLarge, "too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, tc.opts...)
			desktop, _ := w.launch()
			st, body := w.call("POST", "/images", desktop, photo)
			require.Equal(t, tc.status, st, body)
			if tc.code != "" {
				assert.Equal(t, tc.code, body["error"].(map[string]any)["code"])
				return
			}
			assert.EqualValues(t, 240, body["width"])
			assert.EqualValues(t, 320, body["height"])
		})
	}
	ac := alexClient(t, alextest.NewTestServer(t), discardLogger())
	_, err = ci.New(ac, ci.WithCompressOptions(nil))
	assert.ErrorContains(t, err, "nil compress option")
}

// TestMetricsUpload: WithMetrics hears of every upload, accepted or not,
// with its source, code and normalising time.
func TestMetricsUpload(t *testing.T) {
	t.Parallel()
	type call struct {
		src  session.Source
		code ci.FailureCode
		took bool
	}
	var mu gosync.Mutex
	var calls []call
	w := newWorld(t, ci.WithMetrics(ci.Metrics{Upload: func(src session.Source, code ci.FailureCode, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{src, code, d > 0})
	}}))
	desktop, _ := w.launch()
	st, _ := w.call("POST", "/images", desktop, photo(t, 300, 200, 1))
	require.Equal(t, http.StatusCreated, st)
	st, _ = w.call("POST", "/images", desktop, []byte("not a photo at all"))
	require.Equal(t, http.StatusUnsupportedMediaType, st)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []call{
		{session.SourceDesktop, "", true},
		{session.SourceDesktop, ci.CodeUnsupportedFormat, true},
	}, calls)
}

package clinicalimages_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
)

// flakyBlobs fails Put while down is set, as an S3 server that stopped.
type flakyBlobs struct {
	*memory.BlobStore
	down atomic.Bool
}

func (f *flakyBlobs) Put(ctx context.Context, key session.BlobKey, r io.Reader, size int64, ct string) (session.BlobInfo, error) {
	if f.down.Load() {
		return session.BlobInfo{}, errors.New("dial tcp 127.0.0.1:7071: connect: connection refused")
	}
	return f.BlobStore.Put(ctx, key, r, size, ct)
}

func TestStorageOutageIsARetryable503(t *testing.T) {
	t.Parallel()
	mb, err := memory.NewBlobStore()
	require.NoError(t, err)
	blobs := &flakyBlobs{BlobStore: mb}
	w := newWorld(t, ci.WithBlobStore(blobs))
	desktop, _ := w.launch()
	blobs.down.Store(true)
	req, _ := http.NewRequest("POST", w.srv.URL+"/images", bytesReader(photo(t, 300, 200, 1)))
	req.Header.Set("Authorization", desktop)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "5", resp.Header.Get("Retry-After"))

	_, sess := w.call("GET", "/session", desktop, nil)
	assert.Empty(t, sess["images"], "nothing half-stored")

	blobs.down.Store(false)
	st, body := w.call("POST", "/images", desktop, photo(t, 300, 200, 1))
	assert.Equal(t, http.StatusCreated, st, body, "the retry succeeds once storage is back")
}

func TestALEXGatewayTroubleIsReportedAsBusy(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, _ := w.launch()
	w.call("POST", "/images", desktop, photo(t, 300, 200, 2))
	w.alex.FailNext(10, alextest.Fault{Status: 502, Path: "/FHIR/Media"})
	_, res := w.call("POST", "/commit", desktop, map[string]any{})
	o := res["images"].([]any)[0].(map[string]any)
	assert.Equal(t, "failed", o["state"])
	assert.Equal(t, "alex_busy", o["code"])
	assert.Contains(t, o["message"], "busy")
}

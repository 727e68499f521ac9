package clinicalimages_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
)

// flakyBlobs fails Put with fault while it is set, as an S3 server that
// stopped (a fault wrapping session.ErrUnavailable) or a store with a bug.
type flakyBlobs struct {
	*memory.BlobStore
	fault atomic.Pointer[error]
}

func (f *flakyBlobs) fail(err error) { f.fault.Store(&err) }
func (f *flakyBlobs) heal()          { f.fault.Store(nil) }

func (f *flakyBlobs) Put(ctx context.Context, key session.BlobKey, r io.Reader, size int64, ct string) (session.BlobInfo, error) {
	if err := f.fault.Load(); err != nil {
		return session.BlobInfo{}, *err
	}
	return f.BlobStore.Put(ctx, key, r, size, ct)
}

// errRefused is what s3blob returns for a stopped server.
var errRefused = fmt.Errorf("s3blob: put: %w: %w", session.ErrUnavailable,
	&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})

func upload(t *testing.T, w *world, desktop string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", w.srv.URL+"/images", bytesReader(photo(t, 300, 200, 1)))
	require.NoError(t, err)
	req.Header.Set("Authorization", desktop)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func TestStorageOutageIsARetryable503(t *testing.T) {
	t.Parallel()
	mb, err := memory.NewBlobStore()
	require.NoError(t, err)
	blobs := &flakyBlobs{BlobStore: mb}
	w := newWorld(t, ci.WithBlobStore(blobs))
	desktop, _ := w.launch()
	blobs.fail(errRefused)
	resp := upload(t, w, desktop)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "5", resp.Header.Get("Retry-After"))

	_, sess := w.call("GET", "/session", desktop, nil)
	assert.Empty(t, sess["images"], "nothing half-stored")

	blobs.heal()
	st, body := w.call("POST", "/images", desktop, photo(t, 300, 200, 1))
	assert.Equal(t, http.StatusCreated, st, body, "the retry succeeds once storage is back")
}

// TestUnnamedStoreErrorIsInternal: a store error that is not an outage (a
// bug, a corrupt record) is a 500 the client should not retry blindly, not a
// 503 hiding the bug.
func TestUnnamedStoreErrorIsInternal(t *testing.T) {
	t.Parallel()
	mb, err := memory.NewBlobStore()
	require.NoError(t, err)
	blobs := &flakyBlobs{BlobStore: mb}
	w := newWorld(t, ci.WithBlobStore(blobs))
	desktop, _ := w.launch()
	blobs.fail(errors.New("fsblob: header too large"))
	resp := upload(t, w, desktop)
	assert.Equal(t, http.StatusInternalServerError, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Retry-After"))
	var body struct {
		Error ci.APIError `json:"error"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	assert.Equal(t, ci.CodeInternal, body.Error.Code)
	assert.NotContains(t, body.Error.Message, "fsblob", "no internals in the reply")

	_, sess := w.call("GET", "/session", desktop, nil)
	assert.Empty(t, sess["images"], "nothing half-stored")
}

// faultyStore fails Update (which Service.Session uses) with fault.
type faultyStore struct {
	*memory.Store
	fault atomic.Pointer[error]
}

func (f *faultyStore) Update(ctx context.Context, id string, fn func(*session.Session) error) (*session.Session, error) {
	if err := f.fault.Load(); err != nil {
		return nil, *err
	}
	return f.Store.Update(ctx, id, fn)
}

// TestStorageErrorRule: a store error is ErrStorageUnavailable exactly when
// it wraps session.ErrUnavailable; every other error comes back unchanged.
func TestStorageErrorRule(t *testing.T) {
	t.Parallel()
	mem, err := memory.NewStore()
	require.NoError(t, err)
	store := &faultyStore{Store: mem}
	w := newWorldWith(t, store)
	desktop, sid := w.launch()
	down := fmt.Errorf("redisstore: get: %w: %w", session.ErrUnavailable, io.EOF)
	tests := []struct {
		name   string
		fault  error
		outage bool
		status int
		code   string
	}{
		{"Unavailable", down, true, http.StatusServiceUnavailable, "storage_unavailable"},
		{"NotFound", fmt.Errorf("%w: session", session.ErrNotFound), false, http.StatusNotFound, "not_found"},
		{"Expired", fmt.Errorf("%w: session", session.ErrExpired), false, http.StatusGone, "session_expired"},
		{"Conflict", fmt.Errorf("%w: too much contention", session.ErrConflict), false, http.StatusConflict, "conflict"},
		{"Cancelled", fmt.Errorf("redisstore: get: %w", context.Canceled), false, http.StatusServiceUnavailable, "timeout"},
		{"Unnamed", errors.New("redisstore: corrupt session record"), false, http.StatusInternalServerError, "internal"},
		// Only the store knows whether an error is its backend failing.
		{"UnnamedNetworkLooking", fmt.Errorf("redisstore: get: %w", io.EOF), false, http.StatusInternalServerError, "internal"},
	}
	for _, tc := range tests { // not in parallel: the fault is shared
		t.Run(tc.name, func(t *testing.T) {
			store.fault.Store(&tc.fault)
			defer store.fault.Store(nil)
			_, err := w.svc.Session(t.Context(), sid)
			require.ErrorIs(t, err, tc.fault, "the store's error stays in the chain")
			assert.Equal(t, tc.outage, errors.Is(err, ci.ErrStorageUnavailable))

			st, body := w.call("GET", "/session", desktop, nil)
			assert.Equal(t, tc.status, st, body)
			assert.Equal(t, tc.code, errCode(body))
		})
	}
	_, err = w.svc.Session(t.Context(), sid)
	require.NoError(t, err, "healthy again")
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

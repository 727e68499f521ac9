package clinicalimages_test

import (
	"bytes"
	gosync "sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
)

// TestImageLimitHoldsUnderConcurrentUploads: more uploads than the limit,
// at once: exactly the limit is listed, the rest are refused with
// ErrTooManyImages, and no refused upload leaves bytes behind.
func TestImageLimitHoldsUnderConcurrentUploads(t *testing.T) {
	t.Parallel()
	const limit, uploads = 2, 8
	w := newWorld(t, ci.WithLimits(ci.Limits{MaxImagesPerSession: limit}))
	desktop, sid := w.launch()
	photos := make([][]byte, uploads)
	for i := range photos {
		photos[i] = photo(t, 200, 150, uint8(i))
	}
	errs := make([]error, uploads)
	var wg gosync.WaitGroup
	for i := range uploads {
		wg.Go(func() {
			_, errs[i] = w.svc.AcceptUpload(t.Context(), ci.Uploader{SessionID: sid}, bytes.NewReader(photos[i]))
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		assert.ErrorIs(t, err, ci.ErrTooManyImages)
	}
	assert.Equal(t, limit, ok)
	sess, err := w.svc.LookupSession(t.Context(), sid)
	require.NoError(t, err)
	assert.Len(t, sess.Images, limit, "exactly the limit is listed")
	assert.Equal(t, limit, w.blobCount(), "no orphaned bytes")

	st, body := w.call("POST", "/images", desktop, photos[0])
	assert.Equal(t, 409, st)
	assert.Equal(t, string(ci.CodeTooManyImages), errCode(body))
}

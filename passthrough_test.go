package clinicalimages_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scanOf returns a JPEG's bytes from its SOS marker to the end (its
// entropy-coded data and EOI).
func scanOf(t *testing.T, jpg []byte) []byte {
	t.Helper()
	i := bytes.Index(jpg, []byte{0xFF, 0xDA})
	require.Positive(t, i, "a scan")
	return jpg[i:]
}

// TestPhoneUploadCheckedBeforeListed: a compliant phone JPEG is stored while
// compress checks that it decodes, and listed with its scan kept; one whose
// scan fails the check after it was stored is stored again normalised (or
// refused as corrupt), never listed as it came, and leaves no other copy.
func TestPhoneUploadCheckedBeforeListed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, sessionID := w.launch()
	phone := w.pair(desktop)
	good := photo(t, 640, 480, 3)

	st, body := w.call("POST", "/phone/images", phone, good)
	require.Equal(t, http.StatusCreated, st, body)
	rc, _, err := w.svc.OpenImage(t.Context(), sessionID, body["image"].(string))
	require.NoError(t, err)
	stored, err := io.ReadAll(rc)
	require.NoError(t, rc.Close())
	require.NoError(t, err)
	assert.Equal(t, scanOf(t, good), scanOf(t, stored), "the scan is kept bit for bit")
	assert.Equal(t, 1, w.blobCount())

	// The same photo with its scan cut in half and closed with EOI: the
	// rebuild accepts its structure, the check refuses its data.
	scan := scanOf(t, good)
	cut := append(bytes.Clone(good[:len(good)-len(scan)+len(scan)/2]), 0xFF, 0xD9)
	st, body = w.call("POST", "/phone/images", phone, cut)
	t.Logf("the cut photo: HTTP %d", st)
	sess, err := w.svc.Session(t.Context(), sessionID)
	require.NoError(t, err)
	if st == http.StatusCreated {
		img := sess.Image(body["image"].(string))
		require.NotNil(t, img)
		rc, _, err := w.svc.OpenImage(t.Context(), sessionID, img.ID)
		require.NoError(t, err)
		again, err := io.ReadAll(rc)
		require.NoError(t, rc.Close())
		require.NoError(t, err)
		assert.NotEqual(t, scanOf(t, cut), scanOf(t, again), "normalised, not kept as it came")
		assert.Len(t, sess.Images, 2)
		assert.Equal(t, 2, w.blobCount(), "no copy of the refused bytes")
		return
	}
	assert.Equal(t, http.StatusUnprocessableEntity, st, body)
	assert.Equal(t, "corrupt_image", errCode(body), body)
	assert.Len(t, sess.Images, 1, "nothing listed")
	assert.Equal(t, 1, w.blobCount(), "the refused bytes were deleted")
}

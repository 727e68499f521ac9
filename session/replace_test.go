package session_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
)

// TestReplaceImage: an edit replaces an image's bytes and keeps the
// captured original once; an edit made from bytes that are no longer the
// image's, or of an image being committed, changes nothing and leaves no
// blob behind; RestoreOriginal gives the captured bytes back.
func TestReplaceImage(t *testing.T) {
	t.Parallel()
	m, count := managerCountingBlobs(t)
	ctx := t.Context()
	up := func(s string) session.Upload {
		return session.Upload{Body: strings.NewReader(s), Size: int64(len(s)), ContentType: "image/jpeg", Width: 2, Height: 1}
	}
	s, err := m.Start(ctx, session.Launch{Facility: "f", PatientID: "p", NHI: "ZZZ0016", Practitioner: "d"})
	require.NoError(t, err)
	img, err := m.AddImage(ctx, s.ID, up("captured"))
	require.NoError(t, err)
	captured := img

	first, err := m.ReplaceImage(ctx, s.ID, img.ID, img.BlobKey, up("edit one"), true)
	require.NoError(t, err)
	assert.True(t, first.Edited)
	assert.True(t, first.Lossless)
	require.NotNil(t, first.Original)
	assert.Equal(t, captured.BlobKey, first.Original.BlobKey)
	assert.Equal(t, captured.SHA256, first.Original.SHA256)
	assert.Equal(t, 2, count())

	// From the captured bytes again, not the image's current ones: refused.
	_, err = m.ReplaceImage(ctx, s.ID, img.ID, captured.BlobKey, up("stale edit"), true)
	require.ErrorIs(t, err, session.ErrConflict)
	assert.Equal(t, 2, count(), "the refused edit's bytes were deleted")

	second, err := m.ReplaceImage(ctx, s.ID, img.ID, first.BlobKey, up("edit two"), false)
	require.NoError(t, err)
	assert.False(t, second.Lossless, "one lossy edit makes the image lossy")
	assert.Equal(t, captured.BlobKey, second.Original.BlobKey, "the original is kept once")
	assert.Equal(t, 2, count(), "the first edit's bytes were deleted")

	claim, err := m.ClaimCommit(ctx, s.ID, img.ID)
	require.NoError(t, err)
	_, err = m.ReplaceImage(ctx, s.ID, img.ID, second.BlobKey, up("late edit"), true)
	require.ErrorIs(t, err, session.ErrAlreadyCommitting)
	_, _, err = m.RestoreOriginal(ctx, s.ID, img.ID)
	require.ErrorIs(t, err, session.ErrAlreadyCommitting)
	assert.Equal(t, 2, count())
	_, err = m.MarkFailed(ctx, claim, "alex_busy", "busy")
	require.NoError(t, err)

	back, changed, err := m.RestoreOriginal(ctx, s.ID, img.ID)
	require.NoError(t, err)
	assert.True(t, changed)
	assert.Equal(t, captured.BlobKey, back.BlobKey)
	assert.Equal(t, captured.SHA256, back.SHA256)
	assert.False(t, back.Edited)
	assert.Nil(t, back.Original)
	rc, err := m.OpenImage(ctx, back)
	require.NoError(t, err)
	var b bytes.Buffer
	_, _ = b.ReadFrom(rc)
	_ = rc.Close()
	assert.Equal(t, "captured", b.String())
	assert.Equal(t, 1, count())
	_, changed, err = m.RestoreOriginal(ctx, s.ID, img.ID)
	require.NoError(t, err)
	assert.False(t, changed)

	// Committed: both blobs go.
	_, err = m.ReplaceImage(ctx, s.ID, img.ID, back.BlobKey, up("final edit"), true)
	require.NoError(t, err)
	claim, err = m.ClaimCommit(ctx, s.ID, img.ID)
	require.NoError(t, err)
	done, err := m.MarkCommitted(ctx, claim, "media-1")
	require.NoError(t, err)
	assert.Nil(t, done.Original)
	assert.Zero(t, count(), "no original survives the commit")
}

// managerCountingBlobs is a Manager on memory stores and a count of the
// blobs stored.
func managerCountingBlobs(t *testing.T) (*session.Manager, func() int) {
	t.Helper()
	st, err := memory.NewStore()
	require.NoError(t, err)
	blobs, err := memory.NewBlobStore()
	require.NoError(t, err)
	m, err := session.New(st, blobs)
	require.NoError(t, err)
	return m, func() int {
		n := 0
		require.NoError(t, blobs.List(context.Background(), func(session.BlobInfo) error { n++; return nil }))
		return n
	}
}

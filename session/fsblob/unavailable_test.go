package fsblob_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/storetest"
)

// TestUnavailable: a store whose directory was removed, or removed and made
// again (the store still holds the old one), reports every call as
// session.ErrUnavailable rather than "not found" or an empty listing.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	t.Run("RemovedDir", func(t *testing.T) {
		t.Parallel()
		storetest.TestBlobStoreUnavailable(t, func(t *testing.T) session.BlobStore {
			dir := filepath.Join(t.TempDir(), "blobs")
			s := newStore(t, dir)
			require.NoError(t, os.RemoveAll(dir))
			return s
		})
	})
	t.Run("ReplacedDir", func(t *testing.T) {
		t.Parallel()
		storetest.TestBlobStoreUnavailable(t, func(t *testing.T) session.BlobStore {
			dir := filepath.Join(t.TempDir(), "blobs")
			s := newStore(t, dir)
			require.NoError(t, os.RemoveAll(dir))
			require.NoError(t, os.Mkdir(dir, 0o700))
			return s
		})
	})
}

// TestBlobsGoneWithTheirDir: blobs stored before the directory was removed
// are not "not found" (which would make the service forget an image the
// session still lists) but unavailable.
func TestBlobsGoneWithTheirDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "blobs")
	s := newStore(t, dir)
	key, err := session.NewBlobKey(session.NewID(), session.NewID())
	require.NoError(t, err)
	_, err = s.Put(t.Context(), key, bytes.NewReader([]byte("body")), 4, "image/jpeg")
	require.NoError(t, err)
	require.NoError(t, os.RemoveAll(dir))

	_, err = s.Open(t.Context(), key)
	require.ErrorIs(t, err, session.ErrUnavailable)
	assert.NotErrorIs(t, err, session.ErrNotFound)
	_, err = s.Stat(t.Context(), key)
	require.ErrorIs(t, err, session.ErrUnavailable)
	require.ErrorIs(t, s.Delete(t.Context(), key), session.ErrUnavailable)
}

// TestUnwritableDir: a directory the process may not write is an outage for
// Put (and Delete), while reading what is there still works.
func TestUnwritableDir(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("root ignores directory permissions; TestUnavailable covers a removed directory instead")
	}
	dir := filepath.Join(t.TempDir(), "blobs")
	s := newStore(t, dir)
	key, err := session.NewBlobKey(session.NewID(), session.NewID())
	require.NoError(t, err)
	_, err = s.Put(t.Context(), key, bytes.NewReader([]byte("body")), 4, "image/jpeg")
	require.NoError(t, err)
	sid, _, _ := key.Parts()
	for _, d := range []string{dir, filepath.Join(dir, sid)} {
		require.NoError(t, os.Chmod(d, 0o500))
		t.Cleanup(func() { _ = os.Chmod(d, 0o700) }) // so that TempDir can remove it
	}

	other, err := session.NewBlobKey(session.NewID(), session.NewID())
	require.NoError(t, err)
	_, err = s.Put(t.Context(), other, bytes.NewReader([]byte("body")), 4, "image/jpeg")
	require.ErrorIs(t, err, session.ErrUnavailable)
	assert.ErrorIs(t, err, os.ErrPermission, "the file system's error is kept")
	_, err = s.Put(t.Context(), key, bytes.NewReader([]byte("new body")), 8, "image/jpeg")
	require.ErrorIs(t, err, session.ErrUnavailable, "no temporary file beside the old blob")
	require.ErrorIs(t, s.Delete(t.Context(), key), session.ErrUnavailable)

	rc, err := s.Open(t.Context(), key)
	require.NoError(t, err, "reading still works")
	body, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.Equal(t, "body", string(body), "the failed Put left the old blob")
}

// TestCorruptBlobIsNotAnOutage: a file that is not a blob is a bug or
// tampering, not something to retry.
func TestCorruptBlobIsNotAnOutage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStore(t, dir)
	key, err := session.NewBlobKey(session.NewID(), session.NewID())
	require.NoError(t, err)
	sid, iid, _ := key.Parts()
	require.NoError(t, os.Mkdir(filepath.Join(dir, sid), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, sid, iid), []byte("not a blob"), 0o600))
	_, err = s.Stat(t.Context(), key)
	require.Error(t, err)
	assert.NotErrorIs(t, err, session.ErrUnavailable)
	assert.NotErrorIs(t, err, session.ErrNotFound)
}

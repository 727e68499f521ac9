package fsblob_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/fsblob"
	"github.com/clinicpro/clinicalimages/session/storetest"
)

func newStore(t *testing.T, dir string, opts ...fsblob.Option) *fsblob.Store {
	t.Helper()
	s, err := fsblob.New(dir, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.TestBlobStore(t, func(t *testing.T) session.BlobStore {
		return newStore(t, t.TempDir())
	})
}

// TestFiles checks what lands on disk: permissions, one file per blob, no
// temporary files left, nothing written outside the directory by escape
// attempts, and an empty session directory removed on delete.
func TestFiles(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "blobs")
	s := newStore(t, dir)
	key, err := session.NewBlobKey(session.NewID(), session.NewID())
	require.NoError(t, err)
	_, err = s.Put(t.Context(), key, bytes.NewReader([]byte("body")), 4, "image/jpeg")
	require.NoError(t, err)

	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o700), st.Mode().Perm())
	sid, iid, _ := key.Parts()
	st, err = os.Stat(filepath.Join(dir, sid))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o700), st.Mode().Perm())
	st, err = os.Stat(filepath.Join(dir, sid, iid))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o600), st.Mode().Perm())
	entries, err := os.ReadDir(filepath.Join(dir, sid))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left")

	for _, k := range storetest.EscapeKeys() {
		_, err := s.Put(t.Context(), k, bytes.NewReader([]byte("evil")), 4, "image/jpeg")
		require.ErrorIs(t, err, session.ErrInvalidKey)
	}
	outside, err := os.ReadDir(parent)
	require.NoError(t, err)
	assert.Len(t, outside, 1, "nothing written beside the store's directory")

	require.NoError(t, s.Delete(t.Context(), key))
	_, err = os.Stat(filepath.Join(dir, sid))
	assert.ErrorIs(t, err, fs.ErrNotExist, "empty session directory removed")
}

// TestSymlinkEscape: a symlink planted in the store cannot take a blob
// outside it.
func TestSymlinkEscape(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "blobs")
	outside := filepath.Join(parent, "outside")
	require.NoError(t, os.Mkdir(outside, 0o700))
	s := newStore(t, dir)
	sid := session.NewID()
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, sid)))
	key, err := session.NewBlobKey(sid, session.NewID())
	require.NoError(t, err)
	_, err = s.Put(t.Context(), key, bytes.NewReader([]byte("evil")), 4, "image/jpeg")
	require.Error(t, err)
	assert.NotErrorIs(t, err, session.ErrUnavailable, "an escape attempt is no outage")
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

// TestStaleTempRemoved: List removes what a crashed Put left behind, once it
// is old, and never lists it.
func TestStaleTempRemoved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := storetest.NewClock(time.Now())
	s := newStore(t, dir, fsblob.WithClock(clk.Now))
	sid := session.NewID()
	require.NoError(t, os.Mkdir(filepath.Join(dir, sid), 0o700))
	tmp := filepath.Join(dir, sid, ".tmp-"+session.NewID())
	require.NoError(t, os.WriteFile(tmp, []byte("partial"), 0o600))

	count := func() int {
		n := 0
		require.NoError(t, s.List(t.Context(), func(session.BlobInfo) error { n++; return nil }))
		return n
	}
	assert.Zero(t, count())
	_, err := os.Stat(tmp)
	require.NoError(t, err, "a fresh temporary file may belong to a running Put")
	clk.Advance(2 * time.Hour)
	assert.Zero(t, count())
	_, err = os.Stat(tmp)
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		dir  string
		opt  fsblob.Option
	}{
		{"EmptyDir", "", nil},
		{"NilClock", t.TempDir(), fsblob.WithClock(nil)},
		{"NilOption", t.TempDir(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := fsblob.New(tc.dir, tc.opt)
			require.Error(t, err)
		})
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	storetest.TestBlobSweep(t, func(t *testing.T) session.BlobStore { return newStore(t, t.TempDir()) })
}

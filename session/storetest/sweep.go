package storetest

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
)

// TestBlobSweep runs session.Manager.Sweep against a BlobStore on the real
// clock (modification times come from the backend): orphans go after the
// orphan grace, live images' bytes after the retention window, and three
// sweepers running at once, as three instances would, agree and never fail.
// It takes about nine seconds. The store must implement session.BlobLister.
//
// Ages come from the backend's clock, which may keep whole seconds only (S3's
// Last-Modified), and the puts may be slow on a loaded machine: each wait is
// measured from the moment that makes it safe (after the orphan's put, after
// the image's), and the retention window leaves the live image several
// seconds of margin when the orphan's grace has passed.
func TestBlobSweep(t *testing.T, newBlobs NewBlobStore) {
	t.Helper()
	blobs := newBlobs(t)
	if _, ok := blobs.(session.BlobLister); !ok {
		t.Fatal("TestBlobSweep needs a session.BlobLister")
	}
	st, err := memory.NewStore()
	require.NoError(t, err)
	const orphanGrace, retention = 2 * time.Second, 8 * time.Second
	managers := make([]*session.Manager, 3)
	for i := range managers {
		managers[i], err = session.New(st, blobs, session.WithOrphanGrace(orphanGrace), session.WithRetention(retention))
		require.NoError(t, err)
	}
	m := managers[0]
	ctx := t.Context()

	s, err := m.Start(ctx, launch)
	require.NoError(t, err)
	img, err := m.AddImage(ctx, s.ID, jpeg("live image"))
	require.NoError(t, err)
	imageStored := time.Now() // the image's upload time is no later
	orphan, err := session.NewBlobKey(s.ID, session.NewID())
	require.NoError(t, err)
	_, err = blobs.Put(ctx, orphan, bytes.NewReader([]byte("orphan")), 6, "image/jpeg")
	require.NoError(t, err)
	orphanStored := time.Now()                                        // the orphan's modification time is no later
	gone, err := session.NewBlobKey(session.NewID(), session.NewID()) // its session never existed
	require.NoError(t, err)
	_, err = blobs.Put(ctx, gone, bytes.NewReader([]byte("gone")), 4, "image/jpeg")
	require.NoError(t, err)

	sweepAll := func() int {
		var wg sync.WaitGroup
		deleted := make(chan int, len(managers))
		for _, m := range managers {
			wg.Go(func() {
				rep, err := m.Sweep(ctx)
				assert.NoError(t, err)
				deleted <- rep.BlobsDeleted
			})
		}
		wg.Wait()
		close(deleted)
		total := 0
		for n := range deleted {
			total += n
		}
		return total
	}
	exists := func(k session.BlobKey) bool {
		_, err := blobs.Stat(ctx, k)
		if err != nil {
			require.ErrorIs(t, err, session.ErrNotFound)
		}
		return err == nil
	}

	assert.GreaterOrEqual(t, sweepAll(), 1, "bytes of a missing session go at once")
	assert.False(t, exists(gone))
	assert.True(t, exists(orphan), "an orphan is kept within its grace (it may be an upload in flight)")
	assert.True(t, exists(img.BlobKey))

	// Waiting for wall-clock ages the backend measures (not synchronisation).
	time.Sleep(time.Until(orphanStored.Add(orphanGrace + time.Second)))
	assert.GreaterOrEqual(t, sweepAll(), 1)
	assert.False(t, exists(orphan), "the orphan's grace has passed")
	assert.True(t, exists(img.BlobKey), "a live image within retention stays")

	time.Sleep(time.Until(imageStored.Add(retention + time.Second)))
	assert.GreaterOrEqual(t, sweepAll(), 1)
	assert.False(t, exists(img.BlobKey), "the retention window has passed")
	n := 0
	require.NoError(t, blobs.(session.BlobLister).List(ctx, func(session.BlobInfo) error { n++; return nil }))
	assert.Zero(t, n, "no bytes remain")
}

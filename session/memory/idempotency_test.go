package memory_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
	"github.com/clinicpro/clinicalimages/session/storetest"
)

func TestIdempotencyConformance(t *testing.T) {
	t.Parallel()
	storetest.TestIdempotency(t, newStore)
}

// TestIdempotentUploads runs the Manager's idempotent uploads on one
// memory Store shared by two Managers (one process, two Services).
func TestIdempotentUploads(t *testing.T) {
	t.Parallel()
	storetest.TestIdempotentUploads(t, func(t *testing.T) (*session.Manager, *session.Manager, session.BlobStore) {
		st, err := memory.NewStore()
		require.NoError(t, err)
		blobs, err := memory.NewBlobStore()
		require.NoError(t, err)
		a, err := session.New(st, blobs)
		require.NoError(t, err)
		b, err := session.New(st, blobs)
		require.NoError(t, err)
		return a, b, blobs
	})
}

// TestPurgeDropsExpiredUploadRecords checks Purge forgets idempotency
// records at their expiry (Len counts them).
func TestPurgeDropsExpiredUploadRecords(t *testing.T) {
	t.Parallel()
	clk := storetest.NewClock(time.Now())
	st, err := memory.NewStore(memory.WithClock(clk.Now))
	require.NoError(t, err)
	now := clk.Now()
	_, ok, err := st.ClaimUpload(t.Context(), session.NewID(), "k",
		session.UploadRecord{SHA256: "00", Token: "t", Lease: now.Add(time.Minute), Expires: now.Add(time.Hour)})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 1, st.Len())
	clk.Advance(time.Hour - time.Second)
	_, err = st.Purge(t.Context())
	require.NoError(t, err)
	require.Equal(t, 1, st.Len(), "kept until its expiry")
	clk.Advance(time.Second)
	_, err = st.Purge(t.Context())
	require.NoError(t, err)
	require.Equal(t, 0, st.Len(), "purged at its expiry")
}

package redisstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
	"github.com/clinicpro/clinicalimages/session/redisstore"
	"github.com/clinicpro/clinicalimages/session/storetest"
)

func TestIdempotencyConformance(t *testing.T) {
	t.Parallel()
	c := client(t)
	storetest.TestIdempotency(t, func(t *testing.T, now func() time.Time) session.Store {
		st, err := redisstore.New(c, redisstore.WithPrefix(prefix(t, c)), redisstore.WithClock(now))
		require.NoError(t, err)
		return st
	})
}

// TestIdempotentUploads runs the Manager's idempotent uploads on two
// instances: two Stores on one Redis and prefix, each behind its own
// Manager, sharing one blob store.
func TestIdempotentUploads(t *testing.T) {
	t.Parallel()
	c := client(t)
	storetest.TestIdempotentUploads(t, func(t *testing.T) (*session.Manager, *session.Manager, session.BlobStore) {
		p := prefix(t, c)
		blobs, err := memory.NewBlobStore()
		require.NoError(t, err)
		var ms [2]*session.Manager
		for i := range ms {
			st, err := redisstore.New(c, redisstore.WithPrefix(p))
			require.NoError(t, err)
			ms[i], err = session.New(st, blobs)
			require.NoError(t, err)
		}
		return ms[0], ms[1], blobs
	})
}

// TestUploadRecordTTL checks Redis forgets an idempotency record by itself
// at its expiry, and that the client's key is not in the Redis key name.
func TestUploadRecordTTL(t *testing.T) {
	t.Parallel()
	c := client(t)
	p := prefix(t, c)
	st, err := redisstore.New(c, redisstore.WithPrefix(p))
	require.NoError(t, err)
	now := time.Now()
	key := "client-key-" + session.NewID()
	_, ok, err := st.ClaimUpload(t.Context(), session.NewID(), key,
		session.UploadRecord{SHA256: "00", Token: "t", Lease: now.Add(time.Minute), Expires: now.Add(time.Hour)})
	require.NoError(t, err)
	require.True(t, ok)
	ks := keys(t, c, p)
	require.Len(t, ks, 1)
	assert.NotContains(t, ks[0], key, "the client's key is hashed in the key name")
	ttl := c.PTTL(t.Context(), ks[0]).Val()
	assert.InDelta(t, time.Hour.Seconds(), ttl.Seconds(), 5, "TTL is the record's expiry")
}

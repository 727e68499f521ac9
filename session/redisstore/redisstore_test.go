package redisstore_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
	"github.com/clinicpro/clinicalimages/session/redisstore"
	"github.com/clinicpro/clinicalimages/session/storetest"
)

// client connects to the test Redis (or skips/fails through testenv).
func client(t testing.TB) redis.UniversalClient {
	t.Helper()
	opt, err := redis.ParseURL(testenv.RedisURL(t))
	require.NoError(t, err)
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// prefix returns a key prefix unique to the test and removes its keys
// afterwards (never FLUSHDB: other packages share the server).
func prefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	p := "clinicalimages-test:" + testenv.Prefix(t) + ":"
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var keys []string
		iter := c.Scan(ctx, 0, p+"*", 100).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return p
}

func keys(t *testing.T, c redis.UniversalClient, p string) []string {
	t.Helper()
	var out []string
	iter := c.Scan(t.Context(), 0, p+"*", 100).Iterator()
	for iter.Next(t.Context()) {
		out = append(out, iter.Val())
	}
	require.NoError(t, iter.Err())
	return out
}

func TestConformance(t *testing.T) {
	t.Parallel()
	c := client(t)
	storetest.TestStore(t, func(t *testing.T, now func() time.Time) session.Store {
		st, err := redisstore.New(c, redisstore.WithPrefix(prefix(t, c)), redisstore.WithClock(now))
		require.NoError(t, err)
		return st
	})
}

func TestLaunchRecordsConformance(t *testing.T) {
	t.Parallel()
	c := client(t)
	newStore := func(t *testing.T, now func() time.Time) session.Store {
		st, err := redisstore.New(c, redisstore.WithPrefix(prefix(t, c)), redisstore.WithClock(now))
		require.NoError(t, err)
		return st
	}
	t.Run("SingleUse", func(t *testing.T) { t.Parallel(); storetest.TestSingleUse(t, newStore) })
	t.Run("Roster", func(t *testing.T) { t.Parallel(); storetest.TestRoster(t, newStore) })
}

// TestTTLFollowsActivity checks the Redis TTL moves with the inactivity
// expiry, on the real server clock.
func TestTTLFollowsActivity(t *testing.T) {
	t.Parallel()
	c := client(t)
	p := prefix(t, c)
	clk := storetest.NewClock(time.Now())
	st, err := redisstore.New(c, redisstore.WithPrefix(p), redisstore.WithClock(clk.Now), redisstore.WithGrace(time.Minute))
	require.NoError(t, err)
	blobs, err := memory.NewBlobStore()
	require.NoError(t, err)
	m, err := session.New(st, blobs, session.WithClock(clk.Now), session.WithIdleTimeout(10*time.Minute))
	require.NoError(t, err)

	s, err := m.Start(t.Context(), session.Launch{Facility: "f", PatientID: "p", NHI: "ZZZ0016", Practitioner: "d"})
	require.NoError(t, err)
	key := p + "session:" + s.ID
	ttl := c.PTTL(t.Context(), key).Val()
	assert.InDelta(t, (11 * time.Minute).Seconds(), ttl.Seconds(), 2, "idle timeout plus grace")

	// Five minutes on, a write that is not activity keeps the expiry...
	clk.Advance(5 * time.Minute)
	_, err = st.Update(t.Context(), s.ID, func(s *session.Session) error { s.Phone.Device = "x"; return nil })
	require.NoError(t, err)
	ttl = c.PTTL(t.Context(), key).Val()
	assert.InDelta(t, (6 * time.Minute).Seconds(), ttl.Seconds(), 2, "TTL counts down to expiry plus grace")

	// ...and activity pushes it out again.
	_, err = m.Touch(t.Context(), s.ID)
	require.NoError(t, err)
	ttl = c.PTTL(t.Context(), key).Val()
	assert.InDelta(t, (11 * time.Minute).Seconds(), ttl.Seconds(), 2, "activity pushes the TTL out")
}

// TestRealExpiryLeavesNothing runs on the real clock with short timeouts:
// once a session's TTL passes and the sweeper has run, no key of the store
// (session, handoff code, rate-limit counters) and no blob remains.
func TestRealExpiryLeavesNothing(t *testing.T) {
	t.Parallel()
	// Real Redis TTLs, so this waits for real time; it polls for each state
	// with a generous deadline instead of sleeping a fixed time, so a slow or
	// loaded machine cannot make it fail.
	const poll, deadline = 50 * time.Millisecond, 30 * time.Second
	c := client(t)
	ctx := t.Context()
	newManager := func(grace time.Duration) (*session.Manager, *memory.BlobStore, string) {
		p := prefix(t, c)
		st, err := redisstore.New(c, redisstore.WithPrefix(p), redisstore.WithGrace(grace))
		require.NoError(t, err)
		blobs, err := memory.NewBlobStore()
		require.NoError(t, err)
		m, err := session.New(st, blobs, session.WithIdleTimeout(700*time.Millisecond),
			session.WithClaimLimits(5, 5, 800*time.Millisecond))
		require.NoError(t, err)
		return m, blobs, p
	}
	start := func(m *session.Manager) *session.Session {
		s, err := m.Start(ctx, session.Launch{Facility: "f", PatientID: "p", NHI: "ZZZ0016", Practitioner: "d"})
		require.NoError(t, err)
		return s
	}

	// Within the grace period an idle session reads as expired, not as
	// unknown (a long grace, so the poll cannot miss it).
	m, _, _ := newManager(time.Minute)
	s := start(m)
	require.Eventually(t, func() bool {
		_, err := m.Get(ctx, s.ID)
		return err != nil
	}, deadline, poll, "the session idles out")
	_, err := m.Get(ctx, s.ID)
	require.ErrorIs(t, err, session.ErrExpired, "within the grace period")

	// After the grace period Redis has dropped everything, and a sweep
	// removes the bytes nothing lists any more.
	m, blobs, p := newManager(time.Second)
	s = start(m)
	for i := range 3 {
		_, err := m.AddImage(ctx, s.ID, session.Upload{Body: bytes.NewReader([]byte{byte(i)}), ContentType: "image/jpeg"})
		require.NoError(t, err)
	}
	_, _, err = m.IssueHandoff(ctx, s.ID)
	require.NoError(t, err)
	_, _, err = m.ClaimHandoff(ctx, s.ID+"."+session.NewID(), "ua", "192.0.2.10")
	require.ErrorIs(t, err, session.ErrInvalidCode)
	assert.NotEmpty(t, keys(t, c, p), "the session and its rate-limit counters")
	require.Eventually(t, func() bool {
		_, err := m.Get(ctx, s.ID)
		return errors.Is(err, session.ErrNotFound)
	}, deadline, poll, "Redis drops the key after the grace period")
	require.Eventually(t, func() bool { return len(keys(t, c, p)) == 0 }, deadline, poll, "no key remains")

	rep, err := m.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, 3, rep.BlobsDeleted)
	n := 0
	require.NoError(t, blobs.List(ctx, func(session.BlobInfo) error { n++; return nil }))
	assert.Zero(t, n, "no blob remains")
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = c.Close() })
	tests := []struct {
		name string
		opt  redisstore.Option
	}{
		{"EmptyPrefix", redisstore.WithPrefix("")},
		{"NilClock", redisstore.WithClock(nil)},
		{"ZeroGrace", redisstore.WithGrace(0)},
		{"ZeroRetries", redisstore.WithMaxRetries(0)},
		{"NilLogger", redisstore.WithLogger(nil)},
		{"NilOption", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := redisstore.New(c, tc.opt)
			require.Error(t, err)
		})
	}
	_, err := redisstore.New(nil)
	require.Error(t, err)
}

// TestCorruptRecord: a value that is not a session is an error, not a
// panic or an empty session.
func TestCorruptRecord(t *testing.T) {
	t.Parallel()
	c := client(t)
	p := prefix(t, c)
	st, err := redisstore.New(c, redisstore.WithPrefix(p))
	require.NoError(t, err)
	id := session.NewID()
	require.NoError(t, c.HSet(t.Context(), p+"session:"+id, "v", 1, "d", "{not json").Err())
	_, err = st.Get(t.Context(), id)
	require.Error(t, err)
	assert.NotErrorIs(t, err, session.ErrNotFound)
	assert.NotErrorIs(t, err, session.ErrUnavailable, "a corrupt record is a bug, not an outage")
	called := false
	_, err = st.Update(t.Context(), id, func(*session.Session) error { called = true; return nil })
	require.Error(t, err)
	assert.False(t, called)
}

// TestConcurrentAcrossInstances: four Stores, each with its own client as
// four processes would have, add 25 images each to one session at once;
// the optimistic compare-and-set loses none.
func TestConcurrentAcrossInstances(t *testing.T) {
	t.Parallel()
	base := client(t)
	p := prefix(t, base)
	const instances, writers = 4, 25
	stores := make([]*redisstore.Store, instances)
	for i := range stores {
		st, err := redisstore.New(client(t), redisstore.WithPrefix(p))
		require.NoError(t, err)
		stores[i] = st
	}
	now := time.Now()
	s := &session.Session{ID: session.NewID(), CreatedAt: now, LastActivity: now, ExpiresAt: now.Add(time.Hour)}
	require.NoError(t, stores[0].Create(t.Context(), s))

	var wg sync.WaitGroup
	errs := make(chan error, instances*writers)
	for i := range instances * writers {
		wg.Go(func() {
			id := session.NewID()
			_, err := stores[i%instances].Update(t.Context(), s.ID, func(s *session.Session) error {
				s.Images = append(s.Images, session.Image{ID: id})
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := stores[3].Get(t.Context(), s.ID)
	require.NoError(t, err)
	assert.Len(t, got.Images, instances*writers)
	assert.Equal(t, int64(instances*writers+1), got.Version)
}

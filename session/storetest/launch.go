package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
)

// TestSingleUse runs the session.SingleUse conformance suite on the store
// newStore makes (which must implement it): a key is first used once, by
// exactly one of many racing callers, again only after its ttl, and a
// cancelled context is the caller's error. Subtests run in parallel.
func TestSingleUse(t *testing.T, newStore NewStore) {
	t.Helper()
	get := func(t *testing.T) session.SingleUse {
		st := newStore(t, time.Now)
		su, ok := st.(session.SingleUse)
		require.True(t, ok, "%T does not implement session.SingleUse", st)
		return su
	}
	t.Run("Once", func(t *testing.T) {
		t.Parallel()
		su := get(t)
		key := "k" + session.NewID()
		first, err := su.FirstUse(t.Context(), key, time.Minute)
		require.NoError(t, err)
		assert.True(t, first)
		first, err = su.FirstUse(t.Context(), key, time.Minute)
		require.NoError(t, err)
		assert.False(t, first, "a replay is not a first use")
		first, err = su.FirstUse(t.Context(), "k"+session.NewID(), time.Minute)
		require.NoError(t, err)
		assert.True(t, first, "keys are independent")
	})
	t.Run("Racing", func(t *testing.T) {
		t.Parallel()
		su := get(t)
		key := "k" + session.NewID()
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				first, err := su.FirstUse(t.Context(), key, time.Minute)
				assert.NoError(t, err)
				if first {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, int32(1), wins.Load(), "exactly one of 50 racing callers wins")
	})
	t.Run("Expires", func(t *testing.T) {
		t.Parallel()
		su := get(t)
		key := "k" + session.NewID()
		first, err := su.FirstUse(t.Context(), key, time.Millisecond)
		require.NoError(t, err)
		require.True(t, first)
		// The ttl may be real time (Redis PX); poll rather than sleep a
		// fixed amount, bounded generously.
		assert.Eventually(t, func() bool {
			first, err := su.FirstUse(t.Context(), key, time.Millisecond)
			return err == nil && first
		}, 10*time.Second, 5*time.Millisecond, "usable again after its ttl")
	})
	t.Run("BadTTL", func(t *testing.T) {
		t.Parallel()
		_, err := get(t).FirstUse(t.Context(), "k"+session.NewID(), 0)
		require.Error(t, err)
	})
	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		su := get(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		key := "k" + session.NewID()
		_, err := su.FirstUse(ctx, key, time.Minute)
		require.ErrorIs(t, err, context.Canceled)
		assert.NotErrorIs(t, err, session.ErrUnavailable)
		first, err := su.FirstUse(t.Context(), key, time.Minute)
		require.NoError(t, err)
		assert.True(t, first, "a cancelled call recorded nothing")
	})
}

// TestRoster runs the session.Roster conformance suite on the store
// newStore makes (which must implement it): the limit counts live members
// only, an existing member re-joins whatever the count, lapsed members are
// listed until they leave or re-join, racing joins never exceed the limit,
// and groups are independent. Subtests run in parallel.
func TestRoster(t *testing.T, newStore NewStore) {
	t.Helper()
	get := func(t *testing.T) (session.Roster, *Clock) {
		clk := NewClock(start())
		st := newStore(t, clk.Now)
		r, ok := st.(session.Roster)
		require.True(t, ok, "%T does not implement session.Roster", st)
		return r, clk
	}
	join := func(t *testing.T, r session.Roster, g, m string, until time.Time, limit int) bool {
		t.Helper()
		ok, err := r.Join(t.Context(), g, m, until, limit)
		require.NoError(t, err)
		return ok
	}
	t.Run("Limit", func(t *testing.T) {
		t.Parallel()
		r, clk := get(t)
		g, until := "g"+session.NewID(), clk.Now().Add(10*time.Minute)
		assert.True(t, join(t, r, g, "a", until, 2))
		assert.True(t, join(t, r, g, "b", until, 2))
		assert.False(t, join(t, r, g, "c", until, 2), "the third live member is refused")
		assert.True(t, join(t, r, g, "a", until.Add(time.Minute), 2), "a member re-joins whatever the count")
		assert.True(t, join(t, r, "g"+session.NewID(), "c", until, 2), "groups are independent")
		require.NoError(t, r.Leave(t.Context(), g, "b"))
		require.NoError(t, r.Leave(t.Context(), g, "b"), "leaving twice is no error")
		assert.True(t, join(t, r, g, "c", until, 2), "a place freed by Leave")
	})
	t.Run("Lapsed", func(t *testing.T) {
		t.Parallel()
		r, clk := get(t)
		g := "g" + session.NewID()
		now := clk.Now()
		assert.True(t, join(t, r, g, "short", now.Add(time.Minute), 2))
		assert.True(t, join(t, r, g, "long", now.Add(time.Hour), 2))
		lapsed, err := r.Lapsed(t.Context(), g)
		require.NoError(t, err)
		assert.Empty(t, lapsed)
		clk.Advance(2 * time.Minute)
		lapsed, err = r.Lapsed(t.Context(), g)
		require.NoError(t, err)
		assert.Equal(t, []string{"short"}, lapsed)
		assert.True(t, join(t, r, g, "new", clk.Now().Add(time.Minute), 2), "a lapsed member does not count")
		assert.True(t, join(t, r, g, "short", clk.Now().Add(time.Hour), 2), "a lapsed member re-joins whatever the count")
		lapsed, err = r.Lapsed(t.Context(), g)
		require.NoError(t, err)
		assert.Empty(t, lapsed)
		assert.False(t, join(t, r, g, "other", clk.Now().Add(time.Minute), 3), "three live now")
		none, err := r.Lapsed(t.Context(), "g"+session.NewID())
		require.NoError(t, err)
		assert.Empty(t, none, "an unknown group has no members")
	})
	t.Run("Racing", func(t *testing.T) {
		t.Parallel()
		r, clk := get(t)
		g, until := "g"+session.NewID(), clk.Now().Add(10*time.Minute)
		var joined atomic.Int32
		var wg sync.WaitGroup
		for range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := r.Join(t.Context(), g, session.NewID(), until, 7)
				assert.NoError(t, err)
				if ok {
					joined.Add(1)
				}
			}()
		}
		wg.Wait()
		assert.Equal(t, int32(7), joined.Load(), "exactly the limit of 40 racing joins")
	})
	t.Run("BadLimit", func(t *testing.T) {
		t.Parallel()
		r, clk := get(t)
		_, err := r.Join(t.Context(), "g"+session.NewID(), "a", clk.Now().Add(time.Minute), 0)
		require.Error(t, err)
	})
	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		r, clk := get(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := r.Join(ctx, "g", "a", clk.Now().Add(time.Minute), 1)
		require.ErrorIs(t, err, context.Canceled)
		_, err = r.Lapsed(ctx, "g")
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, r.Leave(ctx, "g", "a"), context.Canceled)
	})
}

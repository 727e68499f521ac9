package wakeset_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/sync"
	"github.com/clinicpro/clinicalimages/sync/internal/wakeset"
)

func ev(id uint64) sync.Event { return sync.Event{ID: id, Session: "s", Type: sync.ImageAdded} }

func ids(evs []sync.Event) []uint64 {
	out := []uint64{}
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

func TestCached(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		received []uint64
		after    uint64
		limit    int
		wantOK   bool
		wantIDs  []uint64
		latest   uint64
	}{
		{"next events", []uint64{4, 5, 6}, 3, 10, true, []uint64{4, 5, 6}, 6},
		{"limited", []uint64{4, 5, 6}, 3, 2, true, []uint64{4, 5}, 5},
		{"from the middle", []uint64{4, 5, 6}, 4, 10, true, []uint64{5, 6}, 6},
		{"up to date", []uint64{4, 5, 6}, 6, 10, true, []uint64{}, 6},
		{"older than the cache", []uint64{4, 5, 6}, 1, 10, false, nil, 0},
		{"beyond the cache", []uint64{4, 5, 6}, 9, 10, false, nil, 0},
		{"a gap restarts the cache", []uint64{4, 5, 9, 10}, 8, 10, true, []uint64{9, 10}, 10},
		{"events before a gap are dropped", []uint64{4, 5, 9, 10}, 3, 10, false, nil, 0},
		{"ids that start again", []uint64{40, 41, 1, 2}, 0, 10, true, []uint64{1, 2}, 2},
		{"empty", nil, 0, 10, false, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := wakeset.New()
			_, release := s.Wait("s")
			defer release()
			for _, id := range tc.received {
				s.Received("s", ev(id), true)
			}
			got, latest, ok := s.Cached("s", tc.after, tc.limit)
			require.Equal(t, tc.wantOK, ok)
			if ok {
				assert.Equal(t, tc.wantIDs, ids(got))
				assert.Equal(t, tc.latest, latest)
			}
		})
	}
}

func TestUpToDateIsClaimedOnce(t *testing.T) {
	t.Parallel()
	s := wakeset.New()
	_, release := s.Wait("s")
	defer release()
	s.Received("s", ev(1), true)
	_, latest, ok := s.Cached("s", 1, 10)
	require.True(t, ok)
	assert.Equal(t, uint64(1), latest)
	_, _, ok = s.Cached("s", 1, 10)
	assert.False(t, ok, "the second ask at the same id goes to the store, so a lost wake-up is found")
	s.Received("s", ev(2), true)
	_, _, ok = s.Cached("s", 2, 10)
	assert.True(t, ok, "a new event renews the claim")
}

func TestWakeAndRelease(t *testing.T) {
	t.Parallel()
	s := wakeset.New()
	assert.False(t, s.Watched("s"))
	ch, release := s.Wait("s")
	ch2, release2 := s.Wait("s")
	assert.True(t, s.Watched("s"))
	s.Received("s", sync.Event{}, false)
	for _, c := range []<-chan struct{}{ch, ch2} {
		select {
		case <-c:
		default:
			t.Fatal("a wake-up must close the channel of every waiter")
		}
	}
	_, _, ok := s.Cached("s", 0, 10)
	assert.False(t, ok, "an undecodable wake-up caches nothing")
	release()
	release() // idempotent
	assert.True(t, s.Watched("s"), "still held by the second waiter")
	release2()
	assert.False(t, s.Watched("s"), "state goes with the last waiter")
	s.Received("s", ev(1), true) // no waiter: ignored
	_, _, ok = s.Cached("s", 0, 10)
	assert.False(t, ok)
}

func TestForgetNewerThan(t *testing.T) {
	t.Parallel()
	s := wakeset.New()
	_, release := s.Wait("s")
	defer release()
	for id := uint64(5); id <= 7; id++ {
		s.Received("s", ev(id), true)
	}
	s.ForgetNewerThan("s", 7)
	_, _, ok := s.Cached("s", 4, 10)
	assert.True(t, ok, "consistent with the store: kept")
	s.ForgetNewerThan("s", 2)
	_, _, ok = s.Cached("s", 4, 10)
	assert.False(t, ok, "the store knows fewer events: the cache is from a previous life")
}

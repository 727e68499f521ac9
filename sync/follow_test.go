package sync_test

import (
	"context"
	"errors"
	gosync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/sync"
)

// scriptedLog is a sync.Log whose contents a test sets directly. Its Wait
// never fires, so only FollowConfig.Recheck wakes a follower: the lost
// wake-up case.
type scriptedLog struct {
	mu     gosync.Mutex
	events []sync.Event
	latest uint64
	err    error
}

func (l *scriptedLog) set(events []sync.Event, latest uint64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events, l.latest, l.err = events, latest, err
}

func (l *scriptedLog) Read(_ context.Context, _ string, after uint64, limit int) ([]sync.Event, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, 0, l.err
	}
	var out []sync.Event
	for _, ev := range l.events {
		if ev.ID > after && len(out) < limit {
			out = append(out, ev)
		}
	}
	return out, l.latest, nil
}

func (l *scriptedLog) Wait(string) (<-chan struct{}, func()) { return nil, func() {} }

func evs(ids ...uint64) []sync.Event {
	out := make([]sync.Event, len(ids))
	for i, id := range ids {
		out[i] = sync.Event{ID: id, Session: "s", Type: sync.ImageAdded}
	}
	return out
}

func next(t *testing.T, sub sync.Subscription) sync.Event {
	t.Helper()
	select {
	case ev, ok := <-sub.Events():
		require.True(t, ok, "ended: %v", sub.Err())
		return ev
	case <-time.After(10 * time.Second):
		require.FailNow(t, "timeout")
	}
	return sync.Event{}
}

func TestFollowRecheckCoversLostWakeUps(t *testing.T) {
	t.Parallel()
	log := &scriptedLog{}
	sub := sync.Follow(t.Context(), log, "s", 0, sync.FollowConfig{Recheck: 10 * time.Millisecond})
	t.Cleanup(func() { _ = sub.Close() })
	log.set(evs(1, 2), 2, nil)
	assert.Equal(t, uint64(1), next(t, sub).ID)
	assert.Equal(t, uint64(2), next(t, sub).ID)
}

func TestFollowResyncCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		after      uint64
		events     []sync.Event
		latest     uint64
		wantResync uint64
		thenIDs    []uint64
	}{
		{"trimmed past the cursor", 3, evs(10, 11, 12), 12, 12, nil},
		{"cursor beyond newest (history reset)", 50, evs(1, 2), 2, 2, nil},
		{"everything trimmed", 5, nil, 9, 9, nil},
		{"log breaks its contract: events newer than latest", 0, evs(500, 501), 0, 501, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log := &scriptedLog{}
			log.set(tc.events, tc.latest, nil)
			sub := sync.Follow(t.Context(), log, "s", tc.after, sync.FollowConfig{Recheck: 10 * time.Millisecond})
			t.Cleanup(func() { _ = sub.Close() })
			ev := next(t, sub)
			require.Equal(t, sync.Resync, ev.Type)
			require.Equal(t, tc.wantResync, ev.ID)
			if tc.latest < tc.wantResync {
				return // a broken log: only the forward move is promised
			}
			// No second resync: the cursor moved forward.
			log.set(append(tc.events, evs(tc.wantResync+1)...), tc.wantResync+1, nil)
			ev = next(t, sub)
			assert.Equal(t, sync.ImageAdded, ev.Type)
			assert.Equal(t, tc.wantResync+1, ev.ID)
		})
	}
}

func TestFollowEndsOnReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection refused")
	log := &scriptedLog{}
	log.set(nil, 0, boom)
	sub := sync.Follow(t.Context(), log, "s", 0, sync.FollowConfig{})
	select {
	case _, ok := <-sub.Events():
		require.False(t, ok)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "did not end")
	}
	require.ErrorIs(t, sub.Err(), boom)
}

func TestFollowErrIsNilWhileOpen(t *testing.T) {
	t.Parallel()
	sub := sync.Follow(t.Context(), &scriptedLog{}, "s", 0, sync.FollowConfig{})
	assert.NoError(t, sub.Err())
	require.NoError(t, sub.Close())
	assert.NoError(t, sub.Err(), "Close is not an error")
}

package sync_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/sync"
	"github.com/clinicpro/clinicalimages/sync/notifytest"
)

func TestHubConformance(t *testing.T) {
	t.Parallel()
	notifytest.Run(t, func(t *testing.T) notifytest.Pair {
		h, err := sync.NewHub(sync.WithHistory(sync.MinHistory), sync.WithSubscriptionBuffer(8))
		require.NoError(t, err)
		t.Cleanup(func() { _ = h.Close() })
		return notifytest.Pair{Publisher: h, Subscriber: h, History: sync.MinHistory, Close: h.Close}
	})
}

func TestNewHubValidatesOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opt  sync.HubOption
	}{
		{"history below minimum", sync.WithHistory(sync.MinHistory - 1)},
		{"retention too short", sync.WithRetention(time.Second)},
		{"nil clock", sync.WithClock(nil)},
		{"nil logger", sync.WithLogger(nil)},
		{"zero buffer", sync.WithSubscriptionBuffer(0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := sync.NewHub(tc.opt)
			require.Error(t, err)
		})
	}
}

// fakeClock is a settable clock for retention tests.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func TestHubRetentionExpiresQuietSessions(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	h, err := sync.NewHub(sync.WithClock(clock.Now), sync.WithRetention(time.Hour))
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	ctx := t.Context()

	for range 3 {
		_, err := h.Publish(ctx, sync.Event{Session: "quiet", Type: sync.ImageAdded})
		require.NoError(t, err)
	}
	_, err = h.Publish(ctx, sync.Event{Session: "ending", Type: sync.SessionExpired})
	require.NoError(t, err)

	clock.now = clock.now.Add(59 * time.Minute)
	got, err := h.Since(ctx, "quiet", 0, 10)
	require.NoError(t, err)
	assert.Len(t, got, 3, "history is kept within the retention")
	got, err = h.Since(ctx, "ending", 0, 10)
	require.NoError(t, err)
	assert.Empty(t, got, "history of an expired session goes after the grace period")

	clock.now = clock.now.Add(2 * time.Minute)
	got, err = h.Since(ctx, "quiet", 0, 10)
	require.NoError(t, err)
	assert.Empty(t, got, "history goes after the retention")

	ev, err := h.Publish(ctx, sync.Event{Session: "quiet", Type: sync.ImageAdded})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), ev.ID, "a forgotten session starts again at 1")
	got, err = h.Since(ctx, "quiet", 3, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, sync.Resync, got[0].Type, "a client resuming from the old ids must re-read")
}

func TestHubPresence(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)}
	h, err := sync.NewHub(sync.WithClock(clock.Now))
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	ctx := t.Context()

	p, err := h.Presence(ctx, "s1")
	require.NoError(t, err)
	assert.Equal(t, sync.Presence{}, p, "unknown session: no phone")

	steps := []struct {
		name  string
		typ   sync.EventType
		phone bool
	}{
		{"connect", sync.PhoneConnected, true},
		{"unrelated event keeps presence", sync.ImageAdded, true},
		{"disconnect", sync.PhoneDisconnected, false},
		{"reconnect", sync.PhoneConnected, true},
	}
	var since time.Time
	for _, st := range steps {
		clock.now = clock.now.Add(time.Second)
		_, err := h.Publish(ctx, sync.Event{Session: "s1", Type: st.typ})
		require.NoError(t, err, st.name)
		if st.typ != sync.ImageAdded {
			since = clock.now
		}
		p, err := h.Presence(ctx, "s1")
		require.NoError(t, err, st.name)
		assert.Equal(t, sync.Presence{Phone: st.phone, Since: since}, p, st.name)
	}
	other, err := h.Presence(ctx, "s2")
	require.NoError(t, err)
	assert.False(t, other.Phone, "presence is per session")
}

func TestHubDataIsCopied(t *testing.T) {
	t.Parallel()
	h, err := sync.NewHub()
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	data := []byte(`{"state":"ok"}`)
	_, err = h.Publish(t.Context(), sync.Event{Session: "s", Type: sync.ImageUpdated, Data: data})
	require.NoError(t, err)
	copy(data, `{"state":"XX"}`)
	got, err := h.Since(t.Context(), "s", 0, 1)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.JSONEq(t, `{"state":"ok"}`, string(got[0].Data))
}

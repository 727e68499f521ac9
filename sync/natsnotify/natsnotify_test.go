package natsnotify_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/sync"
	"github.com/clinicpro/clinicalimages/sync/natsnotify"
	"github.com/clinicpro/clinicalimages/sync/notifytest"
)

// EnvNATSURL names the NATS server (with JetStream) for these tests;
// scripts/setup.d/sync.sh starts one and exports it.
const EnvNATSURL = "TEST_NATS_URL"

// conn connects to the test NATS server, skipping (failing under CI) when
// there is none, in the manner of internal/testenv.
func conn(t testing.TB) *nats.Conn {
	t.Helper()
	raw := os.Getenv(EnvNATSURL)
	if raw == "" {
		raw = "nats://127.0.0.1:4222"
	}
	u, err := url.Parse(raw)
	require.NoError(t, err)
	c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		testenv.Missing(t, "NATS", err.Error())
		return nil
	}
	_ = c.Close()
	nc, err := nats.Connect(raw, nats.Name("natsnotify-test"))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// names returns a unique stream name and subject prefix for one test, and
// deletes the stream when the test ends.
func names(t testing.TB, nc *nats.Conn) (stream, prefix string) {
	t.Helper()
	p := testenv.Prefix(t)
	stream, prefix = "TEST_"+strings.ToUpper(p), "test."+p
	t.Cleanup(func() {
		js, err := jetstream.New(nc)
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = js.DeleteStream(ctx, stream)
		}
	})
	return stream, prefix
}

func newHub(t testing.TB, nc *nats.Conn, stream, prefix string, opts ...natsnotify.Option) *natsnotify.Hub {
	t.Helper()
	opts = append([]natsnotify.Option{natsnotify.WithStream(stream), natsnotify.WithPrefix(prefix), natsnotify.WithMemoryStorage()}, opts...)
	h, err := natsnotify.New(t.Context(), nc, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func TestConformanceOneInstance(t *testing.T) {
	t.Parallel()
	nc := conn(t)
	notifytest.Run(t, func(t *testing.T) notifytest.Pair {
		stream, prefix := names(t, nc)
		h := newHub(t, nc, stream, prefix, natsnotify.WithHistory(sync.MinHistory), natsnotify.WithSubscriptionBuffer(8))
		return notifytest.Pair{Publisher: h, Subscriber: h, History: sync.MinHistory, Close: h.Close}
	})
}

// TestConformanceTwoInstances publishes through one hub and subscribes
// through another, each on its own connection; the subscriber's recheck is
// beyond the suite's timeout, so deliveries must come from wake-ups.
func TestConformanceTwoInstances(t *testing.T) {
	t.Parallel()
	ncA, ncB := conn(t), conn(t)
	notifytest.Run(t, func(t *testing.T) notifytest.Pair {
		stream, prefix := names(t, ncA)
		a := newHub(t, ncA, stream, prefix, natsnotify.WithHistory(sync.MinHistory))
		b := newHub(t, ncB, stream, prefix, natsnotify.WithHistory(sync.MinHistory), natsnotify.WithSubscriptionBuffer(8),
			natsnotify.WithRecheck(time.Minute))
		return notifytest.Pair{Publisher: a, Subscriber: b, History: sync.MinHistory, Close: func() error {
			errA, errB := a.Close(), b.Close()
			if errA != nil {
				return errA
			}
			return errB
		}}
	})
}

func TestConcurrentPublishersOnTwoInstances(t *testing.T) {
	t.Parallel()
	ncA, ncB := conn(t), conn(t)
	stream, prefix := names(t, ncA)
	a := newHub(t, ncA, stream, prefix)
	b := newHub(t, ncB, stream, prefix)
	session := notifytest.Session(t)
	notifytest.PublishConcurrently(t, session, 3, 25, a, b)
}

func TestHistoryIsTrimmedAndAges(t *testing.T) {
	t.Parallel()
	nc := conn(t)
	stream, prefix := names(t, nc)
	h := newHub(t, nc, stream, prefix, natsnotify.WithHistory(sync.MinHistory), natsnotify.WithRetention(30*time.Minute))
	session := notifytest.Session(t)
	const n = sync.MinHistory + 20
	for range n {
		_, err := h.Publish(t.Context(), sync.Event{Session: session, Type: sync.ImageUpdated})
		require.NoError(t, err)
	}
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	s, err := js.Stream(t.Context(), stream)
	require.NoError(t, err)
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(prefix+".ev."+session+".*"))
	require.NoError(t, err)
	assert.Len(t, info.State.Subjects, sync.MinHistory, "the session is trimmed to its history")
	assert.Equal(t, 30*time.Minute, info.Config.MaxAge, "events age out after the retention")

	got, err := h.Since(t.Context(), session, n-3, 10)
	require.NoError(t, err)
	require.Len(t, got, 3)
	assert.Equal(t, uint64(n), got[2].ID)
	old, err := h.Since(t.Context(), session, 0, 10)
	require.NoError(t, err)
	require.Len(t, old, 1)
	assert.Equal(t, sync.Resync, old[0].Type, "trimmed events mean a resync")
}

func TestPresence(t *testing.T) {
	t.Parallel()
	nc := conn(t)
	stream, prefix := names(t, nc)
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	h := newHub(t, nc, stream, prefix, natsnotify.WithClock(func() time.Time { return now }))
	session := notifytest.Session(t)
	p, err := h.Presence(t.Context(), session)
	require.NoError(t, err)
	assert.Equal(t, sync.Presence{}, p)
	for _, st := range []struct {
		typ   sync.EventType
		phone bool
	}{{sync.PhoneConnected, true}, {sync.ImageAdded, true}, {sync.PhoneDisconnected, false}} {
		_, err := h.Publish(t.Context(), sync.Event{Session: session, Type: st.typ})
		require.NoError(t, err)
		p, err := h.Presence(t.Context(), session)
		require.NoError(t, err)
		assert.Equal(t, st.phone, p.Phone, st.typ)
		assert.True(t, p.Since.Equal(now))
	}
}

func TestRejectsUnsafeSessionIDs(t *testing.T) {
	t.Parallel()
	nc := conn(t)
	stream, prefix := names(t, nc)
	h := newHub(t, nc, stream, prefix)
	for _, s := range []string{"a.b", "a*", "a>", ""} {
		_, err := h.Publish(t.Context(), sync.Event{Session: s, Type: sync.ImageAdded})
		assert.ErrorIs(t, err, sync.ErrInvalidEvent, s)
		_, err = h.Subscribe(t.Context(), s, 0)
		assert.ErrorIs(t, err, sync.ErrInvalidEvent, s)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opt  natsnotify.Option
	}{
		{"stream with dot", natsnotify.WithStream("a.b")},
		{"empty stream", natsnotify.WithStream("")},
		{"prefix with wildcard", natsnotify.WithPrefix("a.*")},
		{"prefix with empty token", natsnotify.WithPrefix("a..b")},
		{"small history", natsnotify.WithHistory(10)},
		{"short retention", natsnotify.WithRetention(time.Second)},
		{"tiny recheck", natsnotify.WithRecheck(time.Microsecond)},
		{"zero buffer", natsnotify.WithSubscriptionBuffer(0)},
		{"nil clock", natsnotify.WithClock(nil)},
		{"nil logger", natsnotify.WithLogger(nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := natsnotify.New(t.Context(), &nats.Conn{}, tc.opt)
			require.Error(t, err)
		})
	}
	_, err := natsnotify.New(t.Context(), nil)
	require.Error(t, err)
}

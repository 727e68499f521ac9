// Package notifytest is the conformance suite for implementations of
// sync.Publisher and sync.Subscriber, in the spirit of testing/fstest: an
// implementation's own tests call [Run] with a factory, and the suite checks
// ordering, replay, the replay-to-live seam under concurrent publishing, the
// slow-subscriber rule, isolation between sessions, cancellation, session
// expiry, Close, and (when implemented) sync.History and
// sync.PresenceReader.
package notifytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	gosync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/sync"
)

// Pair is what a factory hands the suite: a Publisher and a Subscriber that
// share state (one hub, or two instances of a distributed hub).
type Pair struct {
	Publisher  sync.Publisher
	Subscriber sync.Subscriber
	// History is the number of events per session the implementation
	// keeps for replay; the slow-subscriber test publishes more than this.
	History int
	// Close closes the implementation: afterwards Publish and Subscribe
	// must fail with sync.ErrClosed and open subscriptions must end with
	// it. Nil skips the Close test.
	Close func() error
}

// Factory makes a fresh Pair for one subtest. It registers its own cleanup
// with t (the suite may also call Pair.Close).
type Factory func(t *testing.T) Pair

// Timeout bounds every wait in the suite. It is a deadlock guard, not a
// performance assertion.
const Timeout = 20 * time.Second

// Run runs the suite as subtests of t.
func Run(t *testing.T, newPair Factory) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, Pair)
	}{
		{"Ordering", testOrdering},
		{"ReplayFromID", testReplayFromID},
		{"SeamUnderConcurrentPublishing", testSeam},
		{"SlowSubscriberGetsResync", testSlowSubscriber},
		{"ResumeBeyondNewestGetsResync", testResumeBeyondNewest},
		{"SessionsIsolated", testIsolation},
		{"ContextCancellation", testCancellation},
		{"SubscriptionClose", testSubscriptionClose},
		{"SessionExpiredEndsSubscription", testSessionExpired},
		{"InvalidEventsRejected", testInvalid},
		{"History", testHistory},
		{"Presence", testPresence},
		{"CloseReleasesEverything", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newPair(t))
		})
	}
}

// Session returns a fresh random session id, so suite runs against a shared
// server never collide.
func Session(t testing.TB) string {
	t.Helper()
	var b [9]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	return "s" + hex.EncodeToString(b[:])
}

func publishN(t *testing.T, p sync.Publisher, session string, n int) []sync.Event {
	t.Helper()
	out := make([]sync.Event, 0, n)
	for i := range n {
		ev, err := p.Publish(t.Context(), sync.Event{
			Session: session, Type: sync.ImageAdded, Image: fmt.Sprintf("img-%d", i),
			Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
		})
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}

// receive takes n events from sub, failing on timeout or early end.
func receive(t *testing.T, sub sync.Subscription, n int) []sync.Event {
	t.Helper()
	out := make([]sync.Event, 0, n)
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	for len(out) < n {
		select {
		case ev, ok := <-sub.Events():
			require.Truef(t, ok, "subscription ended after %d of %d events: %v", len(out), n, sub.Err())
			out = append(out, ev)
		case <-timer.C:
			require.FailNowf(t, "timeout", "received %d of %d events", len(out), n)
		}
	}
	return out
}

// ended waits for sub's Events channel to close and returns Err.
func ended(t *testing.T, sub sync.Subscription) error {
	t.Helper()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-sub.Events():
			if !ok {
				return sub.Err()
			}
		case <-timer.C:
			require.FailNow(t, "subscription did not end")
		}
	}
}

// quiet asserts that sub delivers nothing for a short while.
func quiet(t *testing.T, sub sync.Subscription) {
	t.Helper()
	select {
	case ev, ok := <-sub.Events():
		assert.Failf(t, "unexpected delivery", "event %d %s (open=%v)", ev.ID, ev.Type, ok)
	case <-time.After(100 * time.Millisecond):
	}
}

func ids(evs []sync.Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func subscribe(t *testing.T, s sync.Subscriber, ctx context.Context, session string, after uint64) sync.Subscription {
	t.Helper()
	sub, err := s.Subscribe(ctx, session, after)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func testOrdering(t *testing.T, p Pair) {
	session := Session(t)
	sub := subscribe(t, p.Subscriber, t.Context(), session, 0)
	published := publishN(t, p.Publisher, session, 50)
	for i, ev := range published {
		require.Equal(t, session, ev.Session)
		require.NotZero(t, ev.ID)
		require.False(t, ev.Time.IsZero(), "Publish must stamp the time")
		if i > 0 {
			require.Greater(t, ev.ID, published[i-1].ID, "ids must strictly increase")
		}
	}
	got := receive(t, sub, 50)
	require.Equal(t, ids(published), ids(got))
	for i := range got {
		assert.Equal(t, published[i].Type, got[i].Type)
		assert.Equal(t, published[i].Image, got[i].Image)
		assert.JSONEq(t, string(published[i].Data), string(got[i].Data))
		assert.True(t, published[i].Time.Equal(got[i].Time), "time must survive the trip")
	}
	quiet(t, sub)
}

func testReplayFromID(t *testing.T, p Pair) {
	session := Session(t)
	published := publishN(t, p.Publisher, session, 20)
	sub := subscribe(t, p.Subscriber, t.Context(), session, published[9].ID)
	got := receive(t, sub, 10)
	require.Equal(t, ids(published[10:]), ids(got), "replay must start right after the given id")
	more := publishN(t, p.Publisher, session, 5)
	got = receive(t, sub, 5)
	require.Equal(t, ids(more), ids(got), "live events must follow the replay")

	all := subscribe(t, p.Subscriber, t.Context(), session, 0)
	require.Equal(t, append(ids(published), ids(more)...), ids(receive(t, all, 25)), "after=0 replays everything retained")
}

// testSeam subscribes while several publishers are mid-flight: whatever the
// interleaving, the subscriber must see exactly the published ids after its
// starting point, once each, in order.
func testSeam(t *testing.T, p Pair) {
	const publishers, each = 4, 100
	session := Session(t)
	start := publishN(t, p.Publisher, session, 10)
	var (
		mu        gosync.Mutex
		published = append([]sync.Event(nil), start...)
		wg        gosync.WaitGroup
		began     = make(chan struct{})
	)
	for range publishers {
		wg.Go(func() {
			<-began
			for i := range each {
				ev, err := p.Publisher.Publish(t.Context(), sync.Event{Session: session, Type: sync.ImageUpdated, Image: fmt.Sprint(i)})
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				published = append(published, ev)
				mu.Unlock()
			}
		})
	}
	close(began)
	time.Sleep(time.Millisecond) // let publishing get under way
	from := start[4].ID
	sub := subscribe(t, p.Subscriber, t.Context(), session, from)
	wg.Wait()

	total := len(start) + publishers*each
	got := receive(t, sub, total-5)
	want := make(map[uint64]bool, total)
	for _, ev := range published {
		assert.False(t, want[ev.ID], "Publish returned id %d twice", ev.ID)
		if ev.ID > from {
			want[ev.ID] = true
		}
	}
	require.Len(t, want, total-5)
	for i, ev := range got {
		require.NotEqual(t, sync.Resync, ev.Type, "no resync expected within the history")
		require.Truef(t, want[ev.ID], "event %d delivered but not expected (duplicate or foreign)", ev.ID)
		delete(want, ev.ID)
		if i > 0 {
			require.Greater(t, ev.ID, got[i-1].ID, "events out of order")
		}
	}
	require.Empty(t, want, "events missing at the seam")
	quiet(t, sub)
}

// testSlowSubscriber: a subscriber that stops reading must not block
// publishers; when it reads again it gets a Resync and then newer events.
func testSlowSubscriber(t *testing.T, p Pair) {
	require.Positive(t, p.History, "the Pair must state its history size")
	session := Session(t)
	sub := subscribe(t, p.Subscriber, t.Context(), session, 0)
	n := p.History*2 + 500
	ctx, cancel := context.WithTimeout(t.Context(), Timeout)
	defer cancel()
	var last sync.Event
	for i := range n {
		ev, err := p.Publisher.Publish(ctx, sync.Event{Session: session, Type: sync.ImageAdded, Image: fmt.Sprint(i)})
		require.NoError(t, err, "publishing must not block on a subscriber that is not reading")
		last = ev
	}
	var sawResync bool
	var prev uint64
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	count := 0
	for prev < last.ID {
		select {
		case ev, ok := <-sub.Events():
			require.True(t, ok, "subscription ended: %v", sub.Err())
			require.Greater(t, ev.ID, prev, "ids must keep increasing across a resync")
			if ev.Type == sync.Resync {
				sawResync = true
				assert.Equal(t, session, ev.Session)
			}
			prev = ev.ID
			count++
		case <-timer.C:
			require.FailNowf(t, "timeout", "stuck at id %d of %d", prev, last.ID)
		}
	}
	require.True(t, sawResync, "a subscriber that fell behind the history must get a resync")
	require.Less(t, count, n, "the resync must replace the events it skipped")
	after := publishN(t, p.Publisher, session, 3)
	require.Equal(t, ids(after), ids(receive(t, sub, 3)), "live events continue after a resync")
}

func testResumeBeyondNewest(t *testing.T, p Pair) {
	session := Session(t)
	published := publishN(t, p.Publisher, session, 3)
	sub := subscribe(t, p.Subscriber, t.Context(), session, published[2].ID+100)
	got := receive(t, sub, 1)
	require.Equal(t, sync.Resync, got[0].Type, "an id the history never held means the client must re-read")
	require.Equal(t, published[2].ID, got[0].ID, "the resync carries the newest id")
	more := publishN(t, p.Publisher, session, 2)
	require.Equal(t, ids(more), ids(receive(t, sub, 2)))
}

func testIsolation(t *testing.T, p Pair) {
	const sessions, each = 8, 20
	names := make([]string, sessions)
	subs := make([]sync.Subscription, sessions)
	for i := range names {
		names[i] = Session(t)
		subs[i] = subscribe(t, p.Subscriber, t.Context(), names[i], 0)
	}
	var wg gosync.WaitGroup
	for i := range names {
		wg.Go(func() {
			for j := range each {
				_, err := p.Publisher.Publish(t.Context(), sync.Event{Session: names[i], Type: sync.ImageAdded, Image: fmt.Sprintf("%d-%d", i, j)})
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	for i, sub := range subs {
		got := receive(t, sub, each)
		for j, ev := range got {
			require.Equal(t, names[i], ev.Session, "an event crossed sessions")
			require.Equal(t, fmt.Sprintf("%d-%d", i, j), ev.Image)
			if j > 0 {
				require.Greater(t, ev.ID, got[j-1].ID)
			}
		}
		quiet(t, sub)
	}
}

func testCancellation(t *testing.T, p Pair) {
	session := Session(t)
	ctx, cancel := context.WithCancel(t.Context())
	sub := subscribe(t, p.Subscriber, ctx, session, 0)
	publishN(t, p.Publisher, session, 1)
	receive(t, sub, 1)
	cancel()
	require.ErrorIs(t, ended(t, sub), context.Canceled)

	_, err := p.Subscriber.Subscribe(ctx, session, 0)
	require.ErrorIs(t, err, context.Canceled, "Subscribe with a finished context")
	_, err = p.Publisher.Publish(ctx, sync.Event{Session: session, Type: sync.ImageAdded})
	require.ErrorIs(t, err, context.Canceled, "Publish with a finished context")
}

func testSubscriptionClose(t *testing.T, p Pair) {
	session := Session(t)
	sub, err := p.Subscriber.Subscribe(t.Context(), session, 0)
	require.NoError(t, err)
	require.NoError(t, sub.Close())
	require.NoError(t, ended(t, sub), "a closed subscription reports no error")
	require.NoError(t, sub.Close(), "Close is idempotent")
	// Publishing to a session whose subscriber left still works.
	publishN(t, p.Publisher, session, 2)
}

func testSessionExpired(t *testing.T, p Pair) {
	session := Session(t)
	sub := subscribe(t, p.Subscriber, t.Context(), session, 0)
	publishN(t, p.Publisher, session, 1)
	exp, err := p.Publisher.Publish(t.Context(), sync.Event{Session: session, Type: sync.SessionExpired})
	require.NoError(t, err)
	got := receive(t, sub, 2)
	require.Equal(t, sync.SessionExpired, got[1].Type)
	require.Equal(t, exp.ID, got[1].ID)
	require.ErrorIs(t, ended(t, sub), sync.ErrSessionExpired)
}

func testInvalid(t *testing.T, p Pair) {
	session := Session(t)
	tests := []struct {
		name string
		ev   sync.Event
	}{
		{"no session", sync.Event{Type: sync.ImageAdded}},
		{"space in session", sync.Event{Session: "a b", Type: sync.ImageAdded}},
		{"unknown type", sync.Event{Session: session, Type: "image.exploded"}},
		{"resync is not publishable", sync.Event{Session: session, Type: sync.Resync}},
		{"data not JSON", sync.Event{Session: session, Type: sync.ImageAdded, Data: json.RawMessage("{nope")}},
		{"data too big", sync.Event{Session: session, Type: sync.ImageAdded, Data: json.RawMessage(`"` + string(make([]byte, sync.MaxDataSize)) + `"`)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Publisher.Publish(t.Context(), tc.ev)
			require.ErrorIs(t, err, sync.ErrInvalidEvent)
		})
	}
	// Nothing invalid was stored.
	ev, err := p.Publisher.Publish(t.Context(), sync.Event{Session: session, Type: sync.ImageAdded})
	require.NoError(t, err)
	sub := subscribe(t, p.Subscriber, t.Context(), session, 0)
	require.Equal(t, []uint64{ev.ID}, ids(receive(t, sub, 1)))
}

func testHistory(t *testing.T, p Pair) {
	h, ok := p.Subscriber.(sync.History)
	if !ok {
		t.Skip("the Subscriber does not implement sync.History")
	}
	require.Positive(t, p.History)
	session := Session(t)
	empty, err := h.Since(t.Context(), session, 0, 10)
	require.NoError(t, err)
	require.Empty(t, empty, "an unknown session has no events")

	published := publishN(t, p.Publisher, session, 30)
	tests := []struct {
		name  string
		after uint64
		limit int
		want  []uint64
	}{
		{"from the start", 0, 100, ids(published)},
		{"after an id", published[19].ID, 100, ids(published[20:])},
		{"limited", published[4].ID, 3, ids(published[5:8])},
		{"up to date", published[29].ID, 100, []uint64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := h.Since(t.Context(), session, tc.after, tc.limit)
			require.NoError(t, err)
			require.Equal(t, tc.want, ids(got))
		})
	}
	t.Run("beyond the newest", func(t *testing.T) {
		got, err := h.Since(t.Context(), session, published[29].ID+7, 10)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, sync.Resync, got[0].Type)
		require.Equal(t, published[29].ID, got[0].ID)
	})
	t.Run("trimmed", func(t *testing.T) {
		s2 := Session(t)
		evs := publishN(t, p.Publisher, s2, p.History+10)
		got, err := h.Since(t.Context(), s2, 0, 10)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, sync.Resync, got[0].Type)
		require.Equal(t, evs[len(evs)-1].ID, got[0].ID)
		got, err = h.Since(t.Context(), s2, evs[len(evs)-5].ID, 10)
		require.NoError(t, err)
		require.Equal(t, ids(evs[len(evs)-4:]), ids(got), "recent ids are still retained")
	})
}

func testPresence(t *testing.T, p Pair) {
	pr, ok := p.Subscriber.(sync.PresenceReader)
	if !ok {
		t.Skip("the Subscriber does not implement sync.PresenceReader")
	}
	session, other := Session(t), Session(t)
	got, err := pr.Presence(t.Context(), session)
	require.NoError(t, err)
	require.Equal(t, sync.Presence{}, got, "an unknown session has no phone")
	steps := []struct {
		name   string
		typ    sync.EventType
		data   string
		phone  bool
		reason string
	}{
		{"connect", sync.PhoneConnected, "", true, ""},
		{"an unrelated event keeps it", sync.ImageAdded, "", true, ""},
		{"disconnect", sync.PhoneDisconnected, "", false, ""},
		{"reconnect", sync.PhoneConnected, `{"reason":"resumed"}`, true, ""},
		{"finished", sync.PhoneDisconnected, `{"reason":"finished"}`, false, "finished"},
		{"reconnect again", sync.PhoneConnected, "", true, ""},
		{"free text is no reason", sync.PhoneDisconnected, `{"reason":"Left Mrs Smith's room"}`, false, ""},
	}
	var since time.Time
	for _, st := range steps {
		ev := sync.Event{Session: session, Type: st.typ}
		if st.data != "" {
			ev.Data = []byte(st.data)
		}
		ev, err := p.Publisher.Publish(t.Context(), ev)
		require.NoError(t, err, st.name)
		if st.typ != sync.ImageAdded {
			since = ev.Time
		}
		got, err := pr.Presence(t.Context(), session)
		require.NoError(t, err, st.name)
		require.Equal(t, st.phone, got.Phone, st.name)
		require.Equal(t, st.reason, got.Reason, st.name)
		require.WithinDuration(t, since, got.Since, time.Millisecond, "%s: Since is when presence last changed", st.name)
	}
	got, err = pr.Presence(t.Context(), other)
	require.NoError(t, err)
	require.False(t, got.Phone, "presence is per session")
}

func testClose(t *testing.T, p Pair) {
	if p.Close == nil {
		t.Skip("the Pair has no Close")
	}
	session := Session(t)
	sub := subscribe(t, p.Subscriber, t.Context(), session, 0)
	publishN(t, p.Publisher, session, 1)
	receive(t, sub, 1)
	require.NoError(t, p.Close())
	require.ErrorIs(t, ended(t, sub), sync.ErrClosed)
	_, err := p.Subscriber.Subscribe(t.Context(), session, 0)
	require.ErrorIs(t, err, sync.ErrClosed)
	_, err = p.Publisher.Publish(t.Context(), sync.Event{Session: session, Type: sync.ImageAdded})
	require.ErrorIs(t, err, sync.ErrClosed)
	if c, ok := p.Subscriber.(io.Closer); ok {
		require.NoError(t, c.Close(), "Close is idempotent")
	}
}

// PublishConcurrently publishes perGoroutine events from goroutines
// goroutines on each publisher at once (several publishers being hubs of
// different instances on the same backend) and checks that the session's
// ids came out unique and without gaps, 1 to the total: the id assignment
// must be atomic across instances.
func PublishConcurrently(t *testing.T, session string, goroutines, perGoroutine int, pubs ...sync.Publisher) {
	t.Helper()
	var (
		mu  gosync.Mutex
		ids = map[uint64]bool{}
		wg  gosync.WaitGroup
	)
	for _, p := range pubs {
		for range goroutines {
			wg.Go(func() {
				for range perGoroutine {
					ev, err := p.Publish(t.Context(), sync.Event{Session: session, Type: sync.ImageUpdated})
					if !assert.NoError(t, err) {
						return
					}
					mu.Lock()
					assert.False(t, ids[ev.ID], "id %d assigned twice", ev.ID)
					ids[ev.ID] = true
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	total := len(pubs) * goroutines * perGoroutine
	require.Len(t, ids, total)
	for id := uint64(1); id <= uint64(total); id++ {
		require.True(t, ids[id], "id %d missing: ids must have no gaps", id)
	}
}

package redisnotify_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/sync"
	"github.com/clinicpro/clinicalimages/sync/notifytest"
	"github.com/clinicpro/clinicalimages/sync/redisnotify"
)

// guard bounds every wait in these tests: a deadlock guard, not a timing
// assertion.
const guard = 10 * time.Second

// proxy forwards TCP connections to a Redis server until it is cut: cutting
// closes every open connection and makes new ones close at once (as a
// network partition or a load balancer failing over would), restoring
// forwards again.
type proxy struct {
	l      net.Listener
	target string
	wg     gosync.WaitGroup

	mu    gosync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = l.Close()
		p.setCut(true)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			_ = c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			_ = c.Close()
			_ = up.Close()
			continue
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		p.wg.Go(func() { pipe(up, c) })
		p.wg.Go(func() { pipe(c, up) })
	}
}

func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			_ = c.Close()
		}
	}
}

// logWatch is a slog.Handler that lets a test wait for a message.
type logWatch struct{ msgs chan string }

func newLogWatch() *logWatch { return &logWatch{msgs: make(chan string, 1024)} }

func (w *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *logWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *logWatch) WithGroup(string) slog.Handler            { return w }
func (w *logWatch) Handle(_ context.Context, r slog.Record) error {
	select {
	case w.msgs <- r.Message:
	default:
	}
	return nil
}

// await waits until a message containing substr is logged.
func (w *logWatch) await(t *testing.T, substr string) {
	t.Helper()
	timeout := time.After(guard)
	for {
		select {
		case m := <-w.msgs:
			if strings.Contains(m, substr) {
				return
			}
		case <-timeout:
			require.FailNow(t, "never logged", "%q", substr)
		}
	}
}

const lostRedis = "subscription lost Redis"

// newClient returns a go-redis client for addr, closed with the test. It
// gives up on an unreachable server sooner than go-redis's defaults (five
// dials per connection, three retries per command: about 1.7s for a refused
// port), only to keep the tests short.
func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, DialerRetries: 1, MaxRetries: 1,
		MinRetryBackoff: 5 * time.Millisecond, MaxRetryBackoff: 20 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// next returns the subscription's next event, failing if it ends or none
// comes.
func next(t *testing.T, sub sync.Subscription) sync.Event {
	t.Helper()
	select {
	case ev, open := <-sub.Events():
		require.True(t, open, "the subscription ended: %v", sub.Err())
		return ev
	case <-time.After(guard):
		require.FailNow(t, "no event")
		return sync.Event{}
	}
}

// expectIDs receives len(want) events and checks their ids (none a Resync).
func expectIDs(t *testing.T, sub sync.Subscription, want ...uint64) {
	t.Helper()
	for _, id := range want {
		ev := next(t, sub)
		require.NotEqual(t, sync.Resync, ev.Type, "unexpected resync at %d (waiting for %d)", ev.ID, id)
		require.Equal(t, id, ev.ID, "events must follow without gap or duplicate")
	}
}

func publish(t *testing.T, h *redisnotify.Hub, session, image string) sync.Event {
	t.Helper()
	ev, err := h.Publish(t.Context(), sync.Event{Session: session, Type: sync.ImageAdded, Image: image})
	require.NoError(t, err)
	return ev
}

// publishFails checks that Publish returns an error, not hangs, while Redis
// is unreachable.
func publishFails(t *testing.T, h *redisnotify.Hub, session string) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := h.Publish(context.Background(), sync.Event{Session: session, Type: sync.ImageAdded})
		done <- err
	}()
	select {
	case err := <-done:
		require.Error(t, err)
		assert.NotErrorIs(t, err, sync.ErrInvalidEvent)
		assert.NotErrorIs(t, err, sync.ErrClosed)
	case <-time.After(guard):
		require.FailNow(t, "Publish blocked while Redis was down")
	}
}

// publishWhenBack publishes once Redis accepts writes again (the client's
// pool may still be backing off from its failed dials), then returns it.
func publishWhenBack(t *testing.T, h *redisnotify.Hub, session, image string) sync.Event {
	t.Helper()
	deadline := time.Now().Add(guard)
	for {
		ev, err := h.Publish(t.Context(), sync.Event{Session: session, Type: sync.ImageAdded, Image: image})
		if err == nil {
			return ev
		}
		require.True(t, time.Now().Before(deadline), "Redis never came back: %v", err)
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSubscriptionSurvivesRedisRestart is the scenario of a Go consumer
// following a session when Redis is killed (SIGKILL, no persistence) and
// started again on the same port: Publish fails while it is down, and the
// subscription, instead of ending, reconnects and delivers a Resync (the
// history is gone) followed by every event of the new history, without a
// gap, whenever it happens to reconnect relative to the new publishes.
func TestSubscriptionSurvivesRedisRestart(t *testing.T) {
	t.Parallel()
	srv := testenv.StartRedis(t)
	logs := newLogWatch()
	h := newHub(t, newClient(t, srv.Addr), testenv.Prefix(t), redisnotify.WithRecheck(20*time.Millisecond),
		redisnotify.WithReconnectBackoff(100*time.Millisecond), redisnotify.WithLogger(slog.New(logs)))
	session := notifytest.Session(t)
	sub, err := h.Subscribe(t.Context(), session, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	for i := range 3 {
		publish(t, h, session, "old-"+strconv.Itoa(i+1))
	}
	expectIDs(t, sub, 1, 2, 3)

	srv.Kill()
	logs.await(t, lostRedis) // the subscription has seen Redis fail
	publishFails(t, h, session)
	srv.Start()

	const fresh = 5 // more than were delivered: ids 4 and 5 exist again
	publishWhenBack(t, h, session, "new-1")
	for i := 2; i <= fresh; i++ {
		publish(t, h, session, "new-"+strconv.Itoa(i))
	}
	resync := next(t, sub)
	require.Equal(t, sync.Resync, resync.Type, "the lost history must be announced, not skipped over (got id %d)", resync.ID)
	require.LessOrEqual(t, resync.ID, uint64(fresh))
	for id := resync.ID + 1; id <= fresh; id++ {
		ev := next(t, sub)
		require.Equal(t, id, ev.ID)
		require.Equal(t, "new-"+strconv.FormatUint(id, 10), ev.Image, "events of the new history")
	}
	last := publish(t, h, session, "new-6")
	expectIDs(t, sub, last.ID)
}

// TestResyncWhenHistoryLostWhileAway makes the timing deterministic: the
// subscriber's instance is cut off from Redis (a proxy) while Redis is
// killed and restarted and another instance publishes a new history of n
// events; then the subscriber's connection comes back. Whatever n is
// against the 3 events delivered (none, fewer, as many, more), the
// subscriber gets one Resync at the new history's newest id (one less when
// that equals the last id delivered) and then the following events: never
// the new history's ids 4 and 5 as if they followed the old 3.
func TestResyncWhenHistoryLostWhileAway(t *testing.T) {
	t.Parallel()
	for _, n := range []uint64{0, 2, 3, 5} {
		t.Run(strconv.FormatUint(n, 10), func(t *testing.T) {
			t.Parallel()
			srv := testenv.StartRedis(t)
			px := startProxy(t, srv.Addr)
			prefix := testenv.Prefix(t)
			logs := newLogWatch()
			pub := newHub(t, newClient(t, srv.Addr), prefix)
			subHub := newHub(t, newClient(t, px.addr()), prefix, redisnotify.WithRecheck(20*time.Millisecond),
				redisnotify.WithReconnectBackoff(50*time.Millisecond), redisnotify.WithLogger(slog.New(logs)))
			session := notifytest.Session(t)
			sub, err := subHub.Subscribe(t.Context(), session, 0)
			require.NoError(t, err)
			t.Cleanup(func() { _ = sub.Close() })
			for i := range 3 {
				publish(t, pub, session, "old-"+strconv.Itoa(i+1))
			}
			expectIDs(t, sub, 1, 2, 3)

			px.setCut(true)
			logs.await(t, lostRedis)
			srv.Kill()
			srv.Start()
			for i := uint64(1); i <= n; i++ {
				publishWhenBack(t, pub, session, "new")
			}
			px.setCut(false)

			resync := next(t, sub)
			require.Equal(t, sync.Resync, resync.Type, "got %d instead of a resync", resync.ID)
			want := n
			if n == 3 {
				want = 2
			}
			assert.Equal(t, want, resync.ID)
			for range 2 {
				publishWhenBack(t, pub, session, "after")
			}
			var ids []uint64
			for id := resync.ID + 1; id <= n+2; id++ {
				ids = append(ids, id)
			}
			expectIDs(t, sub, ids...)
		})
	}
}

// TestSubscriptionResumesAfterConnectionLoss: the subscriber's instance
// loses every connection to Redis (its pool and its wake-up subscription)
// while another instance keeps publishing; Redis keeps its data. Publish on
// the cut-off instance fails instead of blocking; once the connection is
// back the subscription resumes after the last event it delivered: every
// event exactly once, in order, no Resync.
func TestSubscriptionResumesAfterConnectionLoss(t *testing.T) {
	t.Parallel()
	shared := client(t)
	prefix := testenv.Prefix(t)
	cleanupKeys(t, shared, prefix)
	px := startProxy(t, shared.Options().Addr)
	logs := newLogWatch()
	pub := newHub(t, shared, prefix)
	subHub := newHub(t, newClient(t, px.addr()), prefix, redisnotify.WithRecheck(20*time.Millisecond),
		redisnotify.WithReconnectBackoff(50*time.Millisecond), redisnotify.WithLogger(slog.New(logs)))
	session := notifytest.Session(t)
	sub, err := subHub.Subscribe(t.Context(), session, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	for range 3 {
		publish(t, pub, session, "")
	}
	expectIDs(t, sub, 1, 2, 3)

	px.setCut(true)
	logs.await(t, lostRedis)
	publishFails(t, subHub, session)
	for range 5 {
		publish(t, pub, session, "") // 4..8, missed while away
	}
	px.setCut(false)
	for range 2 {
		publish(t, pub, session, "") // 9, 10
	}
	expectIDs(t, sub, 4, 5, 6, 7, 8, 9, 10)
	logs.await(t, "reached Redis again")
	// Nothing was delivered twice: the next event is the next id.
	last := publishWhenBack(t, subHub, session, "")
	require.Equal(t, uint64(11), last.ID)
	expectIDs(t, sub, 11)
}

// TestEndsWhileReconnecting: a subscription waiting for Redis to come back
// still ends promptly when its context is cancelled or the hub is closed,
// and leaves no goroutine behind. Not parallel: it counts goroutines.
func TestEndsWhileReconnecting(t *testing.T) {
	shared := client(t)
	prefix := testenv.Prefix(t)
	cleanupKeys(t, shared, prefix)
	waitNoGoroutines(t)
	px := startProxy(t, shared.Options().Addr)
	logs := newLogWatch()
	rdb := newClient(t, px.addr())
	h, err := redisnotify.New(t.Context(), rdb, redisnotify.WithPrefix(prefix), redisnotify.WithRecheck(20*time.Millisecond),
		redisnotify.WithReconnectBackoff(50*time.Millisecond), redisnotify.WithLogger(slog.New(logs)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	byCtx, err := h.Subscribe(ctx, notifytest.Session(t), 0)
	require.NoError(t, err)
	byClose, err := h.Subscribe(t.Context(), notifytest.Session(t), 0)
	require.NoError(t, err)

	px.setCut(true)
	logs.await(t, lostRedis)
	logs.await(t, lostRedis) // both are retrying
	ended := func(sub sync.Subscription) error {
		t.Helper()
		select {
		case _, open := <-sub.Events():
			require.False(t, open, "no event was published")
		case <-time.After(guard):
			require.FailNow(t, "the subscription did not end")
		}
		return sub.Err()
	}
	cancel()
	assert.ErrorIs(t, ended(byCtx), context.Canceled)
	require.NoError(t, h.Close())
	assert.ErrorIs(t, ended(byClose), sync.ErrClosed)
	require.NoError(t, byCtx.Close())
	require.NoError(t, byClose.Close())
	waitNoGoroutines(t)
}

// TestWakeUpsLostWhileDisconnectedAreRecovered: the wake-ups published while
// an instance's wake-up subscription was cut off are lost; when go-redis
// re-subscribes, the instance's subscribers read the stream at once instead
// of waiting for their recheck (here a minute, far beyond the test's guard).
func TestWakeUpsLostWhileDisconnectedAreRecovered(t *testing.T) {
	t.Parallel()
	shared := client(t)
	prefix := testenv.Prefix(t)
	cleanupKeys(t, shared, prefix)
	px := startProxy(t, shared.Options().Addr)
	logs := newLogWatch()
	pub := newHub(t, shared, prefix)
	subHub := newHub(t, newClient(t, px.addr()), prefix, redisnotify.WithRecheck(time.Minute),
		redisnotify.WithLogger(slog.New(logs)))
	session := notifytest.Session(t)
	sub, err := subHub.Subscribe(t.Context(), session, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	publish(t, pub, session, "")
	expectIDs(t, sub, 1)

	px.setCut(true)
	for range 4 {
		publish(t, pub, session, "") // 2..5: their wake-ups cannot reach subHub
	}
	px.setCut(false)
	logs.await(t, "re-subscribed")
	expectIDs(t, sub, 2, 3, 4, 5)
}

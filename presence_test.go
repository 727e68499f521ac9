package clinicalimages_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/session/memory"
	"github.com/clinicpro/clinicalimages/session/redisstore"
	"github.com/clinicpro/clinicalimages/session/storetest"
	"github.com/clinicpro/clinicalimages/sync/redisnotify"
)

// sseEvent is one event read from a desktop's stream.
type sseEvent struct {
	Type   string
	Reason string // data.reason, if any
}

// stream opens the desktop's event stream on srv and delivers its events
// until the test ends.
func stream(t *testing.T, srvURL, desktop string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", srvURL+"/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", desktop)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	out := make(chan sseEvent, 64)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.Type = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var d struct {
					Data struct {
						Reason string `json:"reason"`
					} `json:"data"`
				}
				_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &d)
				ev.Reason = d.Data.Reason
			case line == "" && ev.Type != "":
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
				ev = sseEvent{}
			}
		}
	}()
	return out
}

// await reads events until one of type typ arrives and returns it; it fails
// the test if the stream ends or the deadline passes first (a bound on a
// broken implementation, not a measurement).
func await(t *testing.T, events <-chan sseEvent, typ string) sseEvent {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case ev, ok := <-events:
			require.True(t, ok, "the stream ended before %s", typ)
			if ev.Type == typ {
				return ev
			}
		case <-deadline.C:
			t.Fatalf("no %s on the desktop's stream", typ)
		}
	}
}

// phoneDisconnects counts the phone.disconnected events of a reason in the
// session's history.
func (w *world) phoneDisconnects(desktop, reason string) int {
	w.t.Helper()
	st, body := w.call("GET", "/events/poll?after=0", desktop, nil)
	require.Equal(w.t, 200, st, body)
	n := 0
	for _, e := range body["events"].([]any) {
		ev := e.(map[string]any)
		if ev["type"] != "phone.disconnected" {
			continue
		}
		if d, ok := ev["data"].(map[string]any); ok && d["reason"] == reason {
			n++
		}
	}
	return n
}

func (w *world) phonePresent(desktop string) bool {
	w.t.Helper()
	st, p := w.call("GET", "/presence", desktop, nil)
	require.Equal(w.t, 200, st, p)
	return p["phone"].(bool)
}

// TestPhoneDoneTellsTheDesktop: the phone's "done" reaches the desktop's
// stream as phone.disconnected (finished) at once, presence says gone, the
// finish is audited, and a phone that speaks again is announced again.
func TestPhoneDoneTellsTheDesktop(t *testing.T) {
	t.Parallel()
	audit := &auditLog{}
	w := newWorld(t, ci.WithAudit(audit))
	desktop, _ := w.launch()
	events := stream(t, w.srv.URL, desktop)
	phone := w.pair(desktop)
	await(t, events, "phone.connected")
	require.True(t, w.phonePresent(desktop))

	st, body := w.call("POST", "/phone/done", phone, nil)
	require.Equal(t, http.StatusNoContent, st, body)
	ev := await(t, events, "phone.disconnected")
	assert.Equal(t, ci.PhoneGoneFinished, ev.Reason)
	assert.False(t, w.phonePresent(desktop))
	_, p := w.call("GET", "/presence", desktop, nil)
	assert.Equal(t, ci.PhoneGoneFinished, p["reason"], "GET /presence says why")
	assert.Len(t, auditFor(audit, "phone.finished"), 1)

	// Done twice announces once.
	st, _ = w.call("POST", "/phone/done", phone, nil)
	require.Equal(t, http.StatusNoContent, st)
	assert.Equal(t, 1, w.phoneDisconnects(desktop, ci.PhoneGoneFinished))

	// A late request from the phone (an upload resent) brings it back.
	st, _ = w.call("GET", "/phone", phone, nil)
	require.Equal(t, 200, st)
	ev = await(t, events, "phone.connected")
	assert.Equal(t, "resumed", ev.Reason)
	assert.True(t, w.phonePresent(desktop))

	// Without a phone token: 401; a desktop credential is no phone token.
	st, body = w.call("POST", "/phone/done", "", nil)
	assert.Equal(t, http.StatusUnauthorized, st, body)
	st, body = w.call("POST", "/phone/done", desktop, nil)
	assert.Equal(t, http.StatusUnauthorized, st, body)
}

// TestPhoneLapseOnTheClock: with a fake clock, a phone silent past the
// lapse window is announced gone once; heartbeats, uploads and "capturing"
// keep it there; a revoked phone is not announced twice.
func TestPhoneLapseOnTheClock(t *testing.T) {
	t.Parallel()
	clk := storetest.NewClock(time.Now())
	store, err := memory.NewStore(memory.WithClock(clk.Now))
	require.NoError(t, err)
	audit := &auditLog{}
	w := newWorldWith(t, store, ci.WithClock(clk.Now), ci.WithAudit(audit),
		ci.WithPhonePresence(ci.PhonePresence{Lapse: 10 * time.Second, Capturing: time.Minute}))
	desktop, _ := w.launch()
	phone := w.pair(desktop)
	check := func() int {
		t.Helper()
		n, err := w.svc.CheckPhones(t.Context())
		require.NoError(t, err)
		return n
	}

	clk.Advance(9 * time.Second)
	assert.Zero(t, check(), "within the window")
	st, _ := w.call("POST", "/phone/heartbeat", phone, nil)
	require.Equal(t, http.StatusNoContent, st)
	clk.Advance(9 * time.Second)
	assert.Zero(t, check(), "the heartbeat moved the window")
	st, _ = w.call("POST", "/phone/images", phone, photo(t, 200, 150, 1))
	require.Equal(t, http.StatusCreated, st)
	clk.Advance(9 * time.Second)
	assert.Zero(t, check(), "an upload is a heartbeat")
	// An upload whose body takes most of the window to arrive: its
	// arrival is a heartbeat too.
	slow := &clockedReader{r: bytesReader(photo(t, 200, 150, 2)), clk: clk, d: 9 * time.Second}
	_, err = w.svc.AcceptUpload(t.Context(), ci.Uploader{PhoneToken: strings.TrimPrefix(phone, "Bearer ")}, slow)
	require.NoError(t, err)
	clk.Advance(9 * time.Second)
	assert.Zero(t, check(), "a slow upload's arrival is a heartbeat")

	st, _ = w.call("POST", "/phone/heartbeat", phone, map[string]bool{"capturing": true})
	require.Equal(t, http.StatusNoContent, st)
	clk.Advance(50 * time.Second)
	assert.Zero(t, check(), "a phone behind its camera has longer")
	assert.True(t, w.phonePresent(desktop))

	clk.Advance(11 * time.Second)
	assert.Equal(t, 1, check(), "silent past the window")
	assert.Zero(t, check(), "announced once")
	assert.False(t, w.phonePresent(desktop))
	assert.Equal(t, 1, w.phoneDisconnects(desktop, ci.PhoneGoneLapsed))
	assert.Len(t, auditFor(audit, "phone.lapsed"), 1)

	// Back, then revoked by the desktop: no lapse follows the revocation.
	st, _ = w.call("GET", "/phone", phone, nil)
	require.Equal(t, 200, st)
	assert.True(t, w.phonePresent(desktop))
	st, _ = w.call("DELETE", "/handoff", desktop, nil)
	require.Equal(t, http.StatusNoContent, st)
	assert.Equal(t, 1, w.phoneDisconnects(desktop, ci.PhoneGoneRevoked))
	clk.Advance(time.Minute)
	assert.Zero(t, check())
	assert.Equal(t, 1, w.phoneDisconnects(desktop, ci.PhoneGoneLapsed))
}

// clockedReader moves clk on by d at its first read: a body that is slow
// to arrive.
type clockedReader struct {
	r     io.Reader
	clk   *storetest.Clock
	d     time.Duration
	moved bool
}

func (c *clockedReader) Read(p []byte) (int, error) {
	if !c.moved {
		c.moved = true
		c.clk.Advance(c.d)
	}
	return c.r.Read(p)
}

// redisInstance is a Service on a shared Redis (sessions, roster, events)
// with its own memory blob store, serving HTTP; it and its store tell time
// by now.
func redisInstance(t *testing.T, rdb redis.UniversalClient, prefix string, sim *alextest.Server, now func() time.Time, opts ...ci.Option) (*ci.Service, *world) {
	t.Helper()
	store, err := redisstore.New(rdb, redisstore.WithPrefix(prefix+"s:"), redisstore.WithClock(now))
	require.NoError(t, err)
	blobs, err := memory.NewBlobStore()
	require.NoError(t, err)
	hub, err := redisnotify.New(t.Context(), rdb, redisnotify.WithPrefix(prefix+"e:"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = hub.Close() })
	all := append([]ci.Option{ci.WithStore(store), ci.WithBlobStore(blobs), ci.WithEvents(hub), ci.WithClock(now),
		ci.WithSecret([]byte("0123456789abcdef0123456789abcdef-shared"))}, opts...)
	svc, err := ci.New(alexClient(t, sim, discardLogger()), all...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Close() })
	h, err := svc.Handler(ci.HTTPOptions{InsecureCookies: true})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return svc, &world{t: t, alex: sim, svc: svc, srv: srv, blobs: blobs}
}

// TestPhonePresenceAcrossInstances: the desktop watches instance A, the
// phone talks to instance B, both on one Redis. The phone's "done" on B
// reaches A's stream; a phone whose requests stop is announced gone by the
// instances' Run loops once its lapse window has passed, once for both.
// Both instances share a fake clock, so however slowly the machine runs the
// phone cannot lapse before the test moves the clock past its window.
func TestPhonePresenceAcrossInstances(t *testing.T) {
	t.Parallel()
	rdb, prefix := sharedRedis(t)
	sim := alextest.NewTestServer(t)
	clk := storetest.NewClock(time.Now())
	const lapse = 10 * time.Second
	presence := ci.WithPhonePresence(ci.PhonePresence{Lapse: lapse, Check: 50 * time.Millisecond})
	svcA, a := redisInstance(t, rdb, prefix, sim, clk.Now, presence)
	svcB, b := redisInstance(t, rdb, prefix, sim, clk.Now, presence)

	desktop, _ := a.launch()
	events := stream(t, a.srv.URL, desktop)
	phone := b.pairVia(a, desktop)
	await(t, events, "phone.connected")

	// Finished on B, told on A.
	st, body := b.call("POST", "/phone/done", phone, nil)
	require.Equal(t, http.StatusNoContent, st, body)
	ev := await(t, events, "phone.disconnected")
	assert.Equal(t, ci.PhoneGoneFinished, ev.Reason)
	assert.False(t, a.phonePresent(desktop))
	_, p := a.call("GET", "/presence", desktop, nil)
	assert.Equal(t, ci.PhoneGoneFinished, p["reason"], "GET /presence says why, across instances")

	// Back on B, then silent: both instances look for lapsed phones.
	ctx, cancel := context.WithCancel(context.Background())
	runs := make(chan error, 2)
	go func() { runs <- svcA.Run(ctx, time.Hour) }()
	go func() { runs <- svcB.Run(ctx, time.Hour) }()
	st, _ = b.call("GET", "/phone", phone, nil)
	require.Equal(t, 200, st)
	ev = await(t, events, "phone.connected")
	assert.Equal(t, "resumed", ev.Reason)
	clk.Advance(lapse + time.Second)
	ev = await(t, events, "phone.disconnected")
	assert.Equal(t, ci.PhoneGoneLapsed, ev.Reason)
	cancel()
	for range 2 {
		<-runs
	}
	assert.False(t, a.phonePresent(desktop))
	assert.Equal(t, 1, a.phoneDisconnects(desktop, ci.PhoneGoneLapsed), "one announcement for both instances")
}

package sync_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/sync"
)

// sessionFromHeader stands in for the Service's authentication.
func sessionFromHeader(r *http.Request) (string, error) {
	if s := r.Header.Get("X-Test-Session"); s != "" {
		return s, nil
	}
	return "", errors.New("no session")
}

// sseEvent is one parsed text/event-stream block.
type sseEvent struct {
	id, event, data string
	retry           string
	comment         string
}

// sseClient reads a text/event-stream response block by block.
type sseClient struct {
	body   io.ReadCloser
	cancel context.CancelFunc
	blocks chan sseEvent
	done   chan struct{}
}

func connect(t *testing.T, url, session, lastID string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("X-Test-Session", session)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	c := &sseClient{body: resp.Body, cancel: cancel, blocks: make(chan sseEvent, 1024), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer close(c.blocks)
		sc := bufio.NewScanner(resp.Body)
		var cur sseEvent
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				c.blocks <- cur
				cur = sseEvent{}
				continue
			}
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "":
				cur.comment = value
			case "id":
				cur.id = value
			case "event":
				cur.event = value
			case "data":
				cur.data = value
			case "retry":
				cur.retry = value
			}
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) close() {
	c.cancel()
	_ = c.body.Close()
	<-c.done
}

// next returns the next block that carries an event, skipping comments and
// the retry hint.
func (c *sseClient) next(t *testing.T) sseEvent {
	t.Helper()
	for {
		select {
		case b, ok := <-c.blocks:
			require.True(t, ok, "stream ended")
			if b.event != "" {
				return b
			}
		case <-time.After(10 * time.Second):
			require.FailNow(t, "timeout waiting for an event")
		}
	}
}

// waitEnd waits for the server to end the stream.
func (c *sseClient) waitEnd(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		require.FailNow(t, "stream did not end")
	}
}

func newHubServer(t *testing.T, opts ...sync.HandlerOption) (*sync.Hub, *sync.SSEHandler, *httptest.Server) {
	t.Helper()
	hub, err := sync.NewHub()
	require.NoError(t, err)
	h, err := sync.NewSSEHandler(hub, sessionFromHeader, opts...)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		_ = h.Close()
		srv.Close()
		_ = hub.Close()
	})
	return hub, h, srv
}

func publish(t *testing.T, p sync.Publisher, session string, n int) []sync.Event {
	t.Helper()
	out := make([]sync.Event, n)
	for i := range out {
		ev, err := p.Publish(t.Context(), sync.Event{Session: session, Type: sync.ImageAdded, Image: "img" + strconv.Itoa(i), Data: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)})
		require.NoError(t, err)
		out[i] = ev
	}
	return out
}

func TestSSEReconnectWithLastEventID(t *testing.T) {
	t.Parallel()
	hub, _, srv := newHubServer(t, sync.WithRetry(1500*time.Millisecond))
	first := publish(t, hub, "s1", 5)

	c := connect(t, srv.URL, "s1", "")
	hint := <-c.blocks
	assert.Equal(t, "1500", hint.retry, "the stream opens with the retry hint")
	for _, want := range first {
		got := c.next(t)
		assert.Equal(t, strconv.FormatUint(want.ID, 10), got.id)
		assert.Equal(t, string(sync.ImageAdded), got.event)
		var ev sync.Event
		require.NoError(t, json.Unmarshal([]byte(got.data), &ev))
		assert.Equal(t, want.ID, ev.ID)
		assert.Equal(t, want.Image, ev.Image)
		assert.JSONEq(t, string(want.Data), string(ev.Data))
	}
	c.close()

	missed := publish(t, hub, "s1", 5)
	c2 := connect(t, srv.URL, "s1", strconv.FormatUint(first[4].ID, 10))
	for _, want := range missed {
		assert.Equal(t, strconv.FormatUint(want.ID, 10), c2.next(t).id, "replay after reconnect")
	}
	live := publish(t, hub, "s1", 1)
	assert.Equal(t, strconv.FormatUint(live[0].ID, 10), c2.next(t).id, "live after replay")
}

func TestSSELastEventIDQueryParameter(t *testing.T) {
	t.Parallel()
	hub, _, srv := newHubServer(t)
	evs := publish(t, hub, "s1", 3)
	c := connect(t, srv.URL+"?lastEventId="+strconv.FormatUint(evs[1].ID, 10), "s1", "")
	assert.Equal(t, strconv.FormatUint(evs[2].ID, 10), c.next(t).id)
}

func TestSSEHeartbeat(t *testing.T) {
	t.Parallel()
	_, _, srv := newHubServer(t, sync.WithHeartbeat(20*time.Millisecond))
	c := connect(t, srv.URL, "idle", "")
	comments := 0
	for comments < 2 {
		select {
		case b, ok := <-c.blocks:
			require.True(t, ok)
			require.Empty(t, b.event, "an idle session sends no events")
			if b.comment != "" {
				comments++
			}
		case <-time.After(10 * time.Second):
			require.FailNow(t, "no heartbeat")
		}
	}
}

func TestSSEEndsOnSessionExpired(t *testing.T) {
	t.Parallel()
	hub, _, srv := newHubServer(t)
	c := connect(t, srv.URL, "s1", "")
	_, err := hub.Publish(t.Context(), sync.Event{Session: "s1", Type: sync.SessionExpired})
	require.NoError(t, err)
	assert.Equal(t, string(sync.SessionExpired), c.next(t).event)
	c.waitEnd(t)
}

func TestSSEEndsWithRequestContext(t *testing.T) {
	t.Parallel()
	hub, err := sync.NewHub()
	require.NoError(t, err)
	t.Cleanup(func() { _ = hub.Close() })
	h, err := sync.NewSSEHandler(hub, sessionFromHeader)
	require.NoError(t, err)
	// The Service bounds a stream by the session's expiry like this.
	bounded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 50*time.Millisecond)
		defer cancel()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
	srv := httptest.NewServer(bounded)
	t.Cleanup(srv.Close)
	c := connect(t, srv.URL, "s1", "")
	c.waitEnd(t)
}

func TestSSECloseEndsStreams(t *testing.T) {
	t.Parallel()
	_, h, srv := newHubServer(t)
	c := connect(t, srv.URL, "s1", "")
	<-c.blocks // the stream is open
	require.NoError(t, h.Close())
	c.waitEnd(t)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	req.Header.Set("X-Test-Session", "s1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

func TestSSERejects(t *testing.T) {
	t.Parallel()
	_, _, srv := newHubServer(t)
	tests := []struct {
		name    string
		method  string
		session string
		lastID  string
		want    int
	}{
		{"post", http.MethodPost, "s1", "", http.StatusMethodNotAllowed},
		{"no session", http.MethodGet, "", "", http.StatusNotFound},
		{"unusable session id", http.MethodGet, "a b", "", http.StatusNotFound},
		{"bad Last-Event-ID", http.MethodGet, "s1", "abc", http.StatusBadRequest},
		{"negative Last-Event-ID", http.MethodGet, "s1", "-1", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL, nil)
			require.NoError(t, err)
			if tc.session != "" {
				req.Header.Set("X-Test-Session", tc.session)
			}
			if tc.lastID != "" {
				req.Header.Set("Last-Event-ID", tc.lastID)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Equal(t, tc.want, resp.StatusCode)
		})
	}
}

func TestHandlerOptionsValidate(t *testing.T) {
	t.Parallel()
	hub, err := sync.NewHub()
	require.NoError(t, err)
	t.Cleanup(func() { _ = hub.Close() })
	tests := []struct {
		name string
		opt  sync.HandlerOption
	}{
		{"heartbeat too short", sync.WithHeartbeat(time.Microsecond)},
		{"heartbeat too long", sync.WithHeartbeat(time.Hour)},
		{"retry zero", sync.WithRetry(0)},
		{"write timeout tiny", sync.WithWriteTimeout(time.Microsecond)},
		{"poll limit zero", sync.WithMaxPollLimit(0)},
		{"max wait too long", sync.WithMaxWait(time.Hour)},
		{"nil logger", sync.WithHandlerLogger(nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := sync.NewSSEHandler(hub, sessionFromHeader, tc.opt)
			assert.Error(t, err)
			_, err = sync.NewPollHandler(hub, sessionFromHeader, tc.opt)
			assert.Error(t, err)
		})
	}
	_, err = sync.NewSSEHandler(nil, sessionFromHeader)
	assert.Error(t, err)
	_, err = sync.NewPollHandler(hub, nil)
	assert.Error(t, err)
}

func TestPollHandler(t *testing.T) {
	t.Parallel()
	hub, err := sync.NewHub()
	require.NoError(t, err)
	t.Cleanup(func() { _ = hub.Close() })
	h, err := sync.NewPollHandler(hub, sessionFromHeader, sync.WithMaxPollLimit(4))
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	evs := publish(t, hub, "s1", 6)
	_, err = hub.Publish(t.Context(), sync.Event{Session: "s1", Type: sync.PhoneConnected})
	require.NoError(t, err)

	tests := []struct {
		name    string
		session string
		query   string
		status  int
		ids     []uint64
		lastID  uint64
		resync  bool
	}{
		{"from start, capped", "s1", "", 200, []uint64{1, 2, 3, 4}, 4, false},
		{"after and limit", "s1", "?after=2&limit=2", 200, []uint64{3, 4}, 4, false},
		{"tail", "s1", "?after=5", 200, []uint64{6, 7}, 7, false},
		{"up to date", "s1", "?after=7", 200, []uint64{}, 7, false},
		{"beyond newest", "s1", "?after=99", 200, []uint64{7}, 7, true},
		{"unknown session", "s2", "", 200, []uint64{}, 0, false},
		{"bad after", "s1", "?after=x", 400, nil, 0, false},
		{"bad limit", "s1", "?limit=0", 400, nil, 0, false},
		{"bad wait", "s1", "?wait=-1", 400, nil, 0, false},
		{"wait with events returns at once", "s1", "?after=5&wait=60", 200, []uint64{6, 7}, 7, false},
		{"no session", "", "", 404, nil, 0, false},
	}
	require.Equal(t, uint64(6), evs[5].ID)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+tc.query, nil)
			require.NoError(t, err)
			if tc.session != "" {
				req.Header.Set("X-Test-Session", tc.session)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode)
			if tc.status != 200 {
				return
			}
			var body sync.PollResponse
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			got := make([]uint64, 0, len(body.Events))
			for _, ev := range body.Events {
				got = append(got, ev.ID)
				assert.Equal(t, tc.resync, ev.Type == sync.Resync)
			}
			assert.Equal(t, tc.ids, got)
			assert.Equal(t, tc.lastID, body.LastID)
			require.NotNil(t, body.Presence)
			assert.Equal(t, tc.session == "s1", body.Presence.Phone)
		})
	}
}

// syncGoroutines lists the stacks of goroutines running code of package
// sync (the hub's followers, the SSE handler), other than the caller.
func syncGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 {
			continue // this goroutine
		}
		if strings.Contains(g, "clinicalimages/sync.") {
			out = append(out, g)
		}
	}
	return out
}

func requireNoSyncGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := syncGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			require.Failf(t, "goroutines leaked", "%d left, first:\n%s", len(left), left[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSSENoGoroutineLeak is not parallel: it counts every goroutine running
// package sync code, which only works while no other test of the package
// runs (parallel tests start after the sequential ones).
func TestSSENoGoroutineLeak(t *testing.T) {
	requireNoSyncGoroutines(t)
	hub, err := sync.NewHub()
	require.NoError(t, err)
	h, err := sync.NewSSEHandler(hub, sessionFromHeader, sync.WithHeartbeat(10*time.Millisecond))
	require.NoError(t, err)
	srv := httptest.NewServer(h)

	var clients []*sseClient
	for i := range 12 {
		c := connect(t, srv.URL, "s"+strconv.Itoa(i%3), "")
		clients = append(clients, c)
	}
	publish(t, hub, "s0", 3)
	for i, c := range clients {
		if i%3 == 0 {
			c.next(t)
		}
	}
	require.NotEmpty(t, syncGoroutines(), "the check must see live streams")
	// A third disconnect, a third end by session expiry, the rest by Close.
	for i, c := range clients {
		if i%3 == 1 {
			c.close()
		}
	}
	_, err = hub.Publish(t.Context(), sync.Event{Session: "s2", Type: sync.SessionExpired})
	require.NoError(t, err)
	for i, c := range clients {
		if i%3 == 2 {
			c.waitEnd(t)
		}
	}
	require.NoError(t, h.Close())
	for _, c := range clients {
		c.waitEnd(t)
	}
	srv.Close()
	require.NoError(t, hub.Close())
	requireNoSyncGoroutines(t)
}

func TestFollowEndsOnHubClose(t *testing.T) {
	requireNoSyncGoroutines(t)
	hub, err := sync.NewHub()
	require.NoError(t, err)
	subs := make([]sync.Subscription, 10)
	for i := range subs {
		subs[i], err = hub.Subscribe(context.Background(), "s"+strconv.Itoa(i), 0)
		require.NoError(t, err)
	}
	require.Len(t, syncGoroutines(), len(subs))
	require.NoError(t, hub.Close())
	for _, s := range subs {
		_, open := <-s.Events()
		assert.False(t, open)
		assert.ErrorIs(t, s.Err(), sync.ErrClosed)
	}
	requireNoSyncGoroutines(t)
}

// signalHub reports each Subscribe, so a test knows a long poll is held.
type signalHub struct {
	*sync.Hub
	subscribed chan struct{}
}

func (h signalHub) Subscribe(ctx context.Context, session string, after uint64) (sync.Subscription, error) {
	sub, err := h.Hub.Subscribe(ctx, session, after)
	h.subscribed <- struct{}{}
	return sub, err
}

func TestPollHandlerLongPoll(t *testing.T) {
	t.Parallel()
	hub, err := sync.NewHub()
	require.NoError(t, err)
	t.Cleanup(func() { _ = hub.Close() })
	sh := signalHub{Hub: hub, subscribed: make(chan struct{}, 10)}
	h, err := sync.NewPollHandler(sh, sessionFromHeader, sync.WithMaxWait(time.Second))
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	poll := func(query string) sync.PollResponse {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+query, nil)
		require.NoError(t, err)
		req.Header.Set("X-Test-Session", "s1")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var body sync.PollResponse
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return body
	}

	body := poll("?after=0&wait=30") // capped at the 1s maximum
	<-sh.subscribed
	assert.Empty(t, body.Events, "a long poll with nothing new times out empty")
	assert.Equal(t, uint64(0), body.LastID)

	got := make(chan sync.PollResponse, 1)
	go func() { got <- poll("?after=0&wait=1") }()
	select {
	case <-sh.subscribed: // the request is held
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the poll did not wait")
	}
	ev, err := hub.Publish(t.Context(), sync.Event{Session: "s1", Type: sync.ImageAdded})
	require.NoError(t, err)
	body = <-got
	require.Len(t, body.Events, 1, "the held poll returns the new event")
	assert.Equal(t, ev.ID, body.Events[0].ID)
	assert.Equal(t, ev.ID, body.LastID)
}

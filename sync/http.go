package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	gosync "sync"
	"time"
)

// SessionFunc tells a handler which session a request may watch. The caller
// (the root Service) authenticates the request and returns the session id;
// an error means the request may not watch any session and is answered 404
// without detail. The handlers never parse credentials themselves.
type SessionFunc func(r *http.Request) (session string, err error)

// HandlerOption configures an [SSEHandler] or a [PollHandler].
type HandlerOption func(*handlerConfig) error

type handlerConfig struct {
	heartbeat    time.Duration
	retry        time.Duration
	writeTimeout time.Duration
	maxLimit     int
	maxWait      time.Duration
	logger       *slog.Logger
}

// WithHeartbeat sets how often an idle SSE stream sends a comment line to
// keep proxies and load balancers from closing it (default 15s; most close
// idle connections after 30-60s).
func WithHeartbeat(d time.Duration) HandlerOption {
	return func(c *handlerConfig) error {
		if d < 10*time.Millisecond || d > 5*time.Minute {
			return fmt.Errorf("sync: heartbeat %v outside [10ms, 5m]", d)
		}
		c.heartbeat = d
		return nil
	}
}

// WithRetry sets the reconnection delay the SSE stream advises the browser
// to use (the "retry:" field, default 2s).
func WithRetry(d time.Duration) HandlerOption {
	return func(c *handlerConfig) error {
		if d < time.Millisecond || d > time.Hour {
			return fmt.Errorf("sync: retry %v outside [1ms, 1h]", d)
		}
		c.retry = d
		return nil
	}
}

// WithWriteTimeout bounds each write to an SSE client (default 30s): a client
// that stops reading is disconnected rather than held forever. It overrides
// the http.Server's WriteTimeout for the stream, which would otherwise cut
// every stream at that age.
func WithWriteTimeout(d time.Duration) HandlerOption {
	return func(c *handlerConfig) error {
		if d < 10*time.Millisecond {
			return fmt.Errorf("sync: write timeout %v below 10ms", d)
		}
		c.writeTimeout = d
		return nil
	}
}

// WithMaxPollLimit caps how many events one poll returns (default 200).
func WithMaxPollLimit(n int) HandlerOption {
	return func(c *handlerConfig) error {
		if n < 1 || n > 1000 {
			return fmt.Errorf("sync: poll limit %d outside [1, 1000]", n)
		}
		c.maxLimit = n
		return nil
	}
}

// WithMaxWait caps how long a long poll (?wait=N seconds) may wait for an
// event (default 25s, below common proxy idle timeouts).
func WithMaxWait(d time.Duration) HandlerOption {
	return func(c *handlerConfig) error {
		if d < time.Second || d > 2*time.Minute {
			return fmt.Errorf("sync: max wait %v outside [1s, 2m]", d)
		}
		c.maxWait = d
		return nil
	}
}

// WithHandlerLogger sets a logger for stream starts, ends and failures
// (default: silent). It logs session ids, never event data.
func WithHandlerLogger(l *slog.Logger) HandlerOption {
	return func(c *handlerConfig) error {
		if l == nil {
			return errors.New("sync: nil logger")
		}
		c.logger = l
		return nil
	}
}

func newHandlerConfig(opts []HandlerOption) (handlerConfig, error) {
	c := handlerConfig{
		heartbeat:    15 * time.Second,
		retry:        2 * time.Second,
		writeTimeout: 30 * time.Second,
		maxLimit:     200,
		maxWait:      25 * time.Second,
		logger:       slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return handlerConfig{}, err
		}
	}
	return c, nil
}

// SSEHandler serves one session's events as Server-Sent Events
// (text/event-stream) for the browser's EventSource.
//
// It resumes from the Last-Event-ID request header (or a lastEventId query
// parameter, for the first connection of a page that already knows where it
// is), writes each event as id/event/data lines and flushes it, advises a
// retry delay, and sends a comment line every heartbeat while idle. A stream
// ends when the client disconnects, when the request's context ends (a
// caller bounds a stream by the session's expiry by giving the request a
// context with that deadline), after a session.expired event, and on
// [SSEHandler.Close]. Each stream uses only the request's goroutine plus its
// subscription, both gone when ServeHTTP returns.
//
// An SSEHandler is safe for concurrent use.
type SSEHandler struct {
	sub     Subscriber
	session SessionFunc
	cfg     handlerConfig

	closed  chan struct{}
	once    gosync.Once
	streams gosync.WaitGroup
	mu      gosync.Mutex // orders streams.Add against Close's Wait
}

// NewSSEHandler returns a handler streaming from sub the session that
// session names for each request.
func NewSSEHandler(sub Subscriber, session SessionFunc, opts ...HandlerOption) (*SSEHandler, error) {
	if sub == nil || session == nil {
		return nil, errors.New("sync: NewSSEHandler needs a Subscriber and a SessionFunc")
	}
	cfg, err := newHandlerConfig(opts)
	if err != nil {
		return nil, err
	}
	return &SSEHandler{sub: sub, session: session, cfg: cfg, closed: make(chan struct{})}, nil
}

// Close ends every open stream and waits for them to return; later requests
// get 503. Call it when the server shuts down (for example from
// http.Server.RegisterOnShutdown): http.Server.Shutdown alone waits forever
// for streams, which are never idle. Close is idempotent.
func (h *SSEHandler) Close() error {
	h.mu.Lock()
	h.once.Do(func() { close(h.closed) })
	h.mu.Unlock()
	h.streams.Wait()
	return nil
}

// ServeHTTP implements http.Handler.
func (h *SSEHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	session, err := h.session(r)
	if err != nil || !ValidSessionID(session) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	after, err := lastEventID(r)
	if err != nil {
		http.Error(w, "bad Last-Event-ID", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	select {
	case <-h.closed:
		h.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	default:
	}
	h.streams.Add(1)
	h.mu.Unlock()
	defer h.streams.Done()

	ctx := r.Context()
	sub, err := h.sub.Subscribe(ctx, session, after)
	if err != nil {
		h.cfg.logger.WarnContext(ctx, "sync: subscribe failed", "session", session, "err", err)
		http.Error(w, "events unavailable", http.StatusServiceUnavailable)
		return
	}
	defer sub.Close()

	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache, no-store")
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	write := func(s string) error {
		_ = rc.SetWriteDeadline(time.Now().Add(h.cfg.writeTimeout)) // unsupported writers are fine
		if _, err := w.Write([]byte(s)); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := write("retry: " + strconv.FormatInt(h.cfg.retry.Milliseconds(), 10) + "\n\n"); err != nil {
		if errors.Is(err, http.ErrNotSupported) {
			// A middleware's ResponseWriter that neither flushes nor
			// unwraps: events would sit in a buffer. Say so loudly.
			h.cfg.logger.ErrorContext(ctx, "sync: the ResponseWriter cannot flush; SSE streams need http.Flusher (or Unwrap)", "session", session)
			return
		}
		h.cfg.logger.DebugContext(ctx, "sync: stream write failed", "session", session, "err", err)
		return
	}
	h.cfg.logger.DebugContext(ctx, "sync: stream opened", "session", session, "after", after)

	heartbeat := time.NewTicker(h.cfg.heartbeat)
	defer heartbeat.Stop()
	var buf strings.Builder
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				if err := sub.Err(); !errIsEnd(err) {
					h.cfg.logger.WarnContext(ctx, "sync: subscription failed", "session", session, "err", err)
				}
				return
			}
			buf.Reset()
			if err := writeSSE(&buf, ev); err != nil {
				h.cfg.logger.ErrorContext(ctx, "sync: encoding event", "session", session, "err", err)
				return
			}
			if err := write(buf.String()); err != nil {
				h.cfg.logger.DebugContext(ctx, "sync: stream write failed", "session", session, "err", err)
				return
			}
			heartbeat.Reset(h.cfg.heartbeat)
			if ev.Type == SessionExpired {
				return
			}
		case <-heartbeat.C:
			if err := write(": keep-alive\n\n"); err != nil {
				h.cfg.logger.DebugContext(ctx, "sync: stream write failed", "session", session, "err", err)
				return
			}
		case <-ctx.Done():
			return
		case <-h.closed:
			return
		}
	}
}

// writeSSE appends ev in text/event-stream framing. The JSON encoding has no
// raw newlines, so one data line carries it.
func writeSSE(b *strings.Builder, ev Event) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	b.WriteString("id: ")
	b.WriteString(strconv.FormatUint(ev.ID, 10))
	b.WriteString("\nevent: ")
	b.WriteString(string(ev.Type))
	b.WriteString("\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
	return nil
}

func lastEventID(r *http.Request) (uint64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("lastEventId")
	}
	if v == "" {
		return 0, nil
	}
	return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
}

// PollHandler answers GET ?after=N[&limit=M][&wait=S] with the session's
// events after id N as JSON, for clients that cannot hold a stream:
//
//	{"events": [...], "last_id": 42, "presence": {"phone": true, "since": "..."}}
//
// Clients poll again with after=last_id. A "resync" event means the client
// must re-read the session (see the package's delivery rules). presence is
// present when the History also implements [PresenceReader].
//
// With wait=S (seconds, capped by [WithMaxWait]) and nothing new, the
// request is held until an event arrives or S seconds pass (a long poll),
// when the History also implements [Subscriber], as every hub here does. A
// held poll ends when its wait (at most [WithMaxWait]) passes or its
// request's context ends, so a server shutting down waits no longer. A PollHandler is safe for concurrent use.
type PollHandler struct {
	hist    History
	sub     Subscriber // nil: no long polling
	session SessionFunc
	cfg     handlerConfig
}

// NewPollHandler returns a polling endpoint over hist for the session that
// session names for each request.
func NewPollHandler(hist History, session SessionFunc, opts ...HandlerOption) (*PollHandler, error) {
	if hist == nil || session == nil {
		return nil, errors.New("sync: NewPollHandler needs a History and a SessionFunc")
	}
	cfg, err := newHandlerConfig(opts)
	if err != nil {
		return nil, err
	}
	sub, _ := hist.(Subscriber)
	return &PollHandler{hist: hist, sub: sub, session: session, cfg: cfg}, nil
}

// await holds a long poll until the session has an event after "after" or
// wait passes, then returns what is immediately available (up to limit).
func (h *PollHandler) await(ctx context.Context, session string, after uint64, limit int, wait time.Duration) ([]Event, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	sub, err := h.sub.Subscribe(ctx, session, after)
	if err != nil {
		return nil, err
	}
	defer sub.Close()
	events := []Event{}
	select {
	case ev, ok := <-sub.Events():
		if !ok {
			if err := sub.Err(); !errIsEnd(err) {
				return nil, err
			}
			return events, nil
		}
		events = append(events, ev)
	case <-ctx.Done():
		return events, nil
	}
	for len(events) < limit && events[len(events)-1].Type != Resync {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				return events, nil
			}
			events = append(events, ev)
		default:
			return events, nil
		}
	}
	return events, nil
}

// PollResponse is the JSON body a [PollHandler] returns.
type PollResponse struct {
	// Events are the events after the requested id, oldest first.
	Events []Event `json:"events"`
	// LastID is the id to poll after next time.
	LastID uint64 `json:"last_id"`
	// Presence is the phone's presence, when the hub tracks it.
	Presence *Presence `json:"presence,omitempty"`
}

// ServeHTTP implements http.Handler.
func (h *PollHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	session, err := h.session(r)
	if err != nil || !ValidSessionID(session) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	var after uint64
	if v := q.Get("after"); v != "" {
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			http.Error(w, "bad after", http.StatusBadRequest)
			return
		}
	}
	limit := h.cfg.maxLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			http.Error(w, "bad limit", http.StatusBadRequest)
			return
		}
		limit = min(n, h.cfg.maxLimit)
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			http.Error(w, "bad wait", http.StatusBadRequest)
			return
		}
		wait = min(time.Duration(n)*time.Second, h.cfg.maxWait)
	}
	ctx := r.Context()
	events, err := h.hist.Since(ctx, session, after, limit)
	if err == nil && len(events) == 0 && wait > 0 && h.sub != nil {
		events, err = h.await(ctx, session, after, limit, wait)
	}
	if err != nil {
		h.cfg.logger.WarnContext(ctx, "sync: poll failed", "session", session, "err", err)
		http.Error(w, "events unavailable", http.StatusServiceUnavailable)
		return
	}
	resp := PollResponse{Events: events, LastID: after}
	if n := len(events); n > 0 {
		resp.LastID = events[n-1].ID
	}
	if pr, ok := h.hist.(PresenceReader); ok {
		p, err := pr.Presence(ctx, session)
		if err != nil {
			h.cfg.logger.WarnContext(ctx, "sync: presence failed", "session", session, "err", err)
			http.Error(w, "events unavailable", http.StatusServiceUnavailable)
			return
		}
		resp.Presence = &p
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		h.cfg.logger.DebugContext(ctx, "sync: poll write failed", "session", session, "err", err)
	}
}

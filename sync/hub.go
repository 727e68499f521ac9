package sync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	gosync "sync"
	"time"
)

// Defaults of the memory [Hub] (and of sync/redisnotify, which shares them).
const (
	// DefaultHistory is how many events of each session a hub keeps for
	// replay: far more than a clinical capture session produces, so Resync
	// only happens to a subscriber that is really stuck.
	DefaultHistory = 1000
	// MinHistory is the smallest history a hub accepts: the floor
	// of "the last 500 events".
	MinHistory = 500
	// DefaultRetention is how long a session's history outlives its last
	// event. Sessions expire after 10 minutes of inactivity, so an hour
	// covers a session's whole life with margin.
	DefaultRetention = time.Hour
	// DefaultExpiredGrace is how long history is kept after a
	// SessionExpired event, so that clients that are reconnecting still
	// learn of the expiry.
	DefaultExpiredGrace = time.Minute
)

// HubOption configures a [Hub].
type HubOption func(*hubConfig) error

type hubConfig struct {
	history   int
	retention time.Duration
	grace     time.Duration
	now       func() time.Time
	logger    *slog.Logger
	follow    FollowConfig
}

// WithHistory sets how many events per session the hub keeps for replay
// (default [DefaultHistory], at least [MinHistory]).
func WithHistory(n int) HubOption {
	return func(c *hubConfig) error {
		if n < MinHistory {
			return fmt.Errorf("sync: history of %d events is below the minimum of %d", n, MinHistory)
		}
		c.history = n
		return nil
	}
}

// WithRetention sets how long a session's history is kept after its last
// event (default [DefaultRetention]); expired history is dropped lazily.
func WithRetention(d time.Duration) HubOption {
	return func(c *hubConfig) error {
		if d < time.Minute {
			return fmt.Errorf("sync: retention %v is shorter than a minute", d)
		}
		c.retention = d
		return nil
	}
}

// WithClock sets the hub's clock (default time.Now), which stamps events and
// decides retention.
func WithClock(now func() time.Time) HubOption {
	return func(c *hubConfig) error {
		if now == nil {
			return errors.New("sync: nil clock")
		}
		c.now = now
		return nil
	}
}

// WithLogger sets a logger for the hub's diagnostics (default: silent). Logs
// carry session ids and event types, never event data.
func WithLogger(l *slog.Logger) HubOption {
	return func(c *hubConfig) error {
		if l == nil {
			return errors.New("sync: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithSubscriptionBuffer sets the capacity of each subscription's Events
// channel (default 64). A larger buffer only delays, never prevents, a
// Resync for a subscriber that stops reading.
func WithSubscriptionBuffer(n int) HubOption {
	return func(c *hubConfig) error {
		if n < 1 || n > 1<<16 {
			return fmt.Errorf("sync: subscription buffer %d outside [1, 65536]", n)
		}
		c.follow.Buffer = n
		return nil
	}
}

// Hub is the in-memory Publisher, Subscriber, History and PresenceReader: the
// embedded default for a single process. It is safe for concurrent use.
// Close ends every subscription; the hub keeps no goroutine of its own.
type Hub struct {
	cfg    hubConfig
	closed chan struct{}
	once   gosync.Once
	subs   gosync.WaitGroup
	life   gosync.Mutex // orders subs.Add (Subscribe) against Close's Wait

	mu        gosync.Mutex
	sessions  map[string]*memSession
	lastSweep time.Time
}

type memSession struct {
	events   []Event // the retained tail, ids contiguous
	latest   uint64
	wake     chan struct{}
	waiters  int
	expires  time.Time
	presence Presence
}

var (
	_ Publisher      = (*Hub)(nil)
	_ Subscriber     = (*Hub)(nil)
	_ History        = (*Hub)(nil)
	_ PresenceReader = (*Hub)(nil)
	_ Log            = hubLog{}
)

// NewHub returns an empty in-memory hub.
func NewHub(opts ...HubOption) (*Hub, error) {
	cfg := hubConfig{
		history:   DefaultHistory,
		retention: DefaultRetention,
		grace:     DefaultExpiredGrace,
		now:       time.Now,
		logger:    slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	h := &Hub{cfg: cfg, closed: make(chan struct{}), sessions: make(map[string]*memSession)}
	h.cfg.follow.Done = h.closed
	h.cfg.follow.Group = &h.subs
	h.cfg.follow.Now = cfg.now
	return h, nil
}

// Publish implements [Publisher]. It never blocks on subscribers.
func (h *Hub) Publish(ctx context.Context, ev Event) (Event, error) {
	if err := ev.Validate(); err != nil {
		return Event{}, err
	}
	if err := ctx.Err(); err != nil {
		return Event{}, err
	}
	ev, err := h.append(ev)
	if err != nil {
		return Event{}, err
	}
	h.cfg.logger.DebugContext(ctx, "sync: published", "session", ev.Session, "type", ev.Type, "id", ev.ID)
	return ev, nil
}

// append stores ev under the hub's lock and wakes the session's subscribers.
func (h *Hub) append(ev Event) (Event, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.isClosed() {
		return Event{}, ErrClosed
	}
	now := h.cfg.now()
	h.sweepLocked(now)
	s := h.sessionLocked(ev.Session, now, true)
	ev = ev.Stamp(s.latest+1, now)
	s.latest = ev.ID
	if len(s.events) >= h.cfg.history {
		s.events[0] = Event{} // let the trimmed event's data be collected
		s.events = s.events[1:]
	}
	s.events = append(s.events, ev)
	switch ev.Type {
	case PhoneConnected:
		s.presence = Presence{Phone: true, Since: now}
	case PhoneDisconnected:
		s.presence = Presence{Phone: false, Since: now, Reason: PresenceReason(ev)}
	}
	if ev.Type == SessionExpired {
		s.expires = now.Add(h.cfg.grace)
	} else {
		s.expires = now.Add(h.cfg.retention)
	}
	close(s.wake)
	s.wake = make(chan struct{})
	return ev, nil
}

// Subscribe implements [Subscriber]. Subscribing to a session that has no
// history yet is allowed: the subscription waits for its first event.
func (h *Hub) Subscribe(ctx context.Context, session string, after uint64) (Subscription, error) {
	if !ValidSessionID(session) {
		return nil, fmt.Errorf("%w: bad session id", ErrInvalidEvent)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.life.Lock()
	defer h.life.Unlock()
	if h.isClosed() {
		return nil, ErrClosed
	}
	return Follow(ctx, hubLog{h}, session, after, h.cfg.follow), nil
}

// Since implements [History].
func (h *Hub) Since(ctx context.Context, session string, after uint64, limit int) ([]Event, error) {
	if h.isClosed() {
		return nil, ErrClosed
	}
	return ReadSince(ctx, hubLog{h}, session, after, limit, h.cfg.now())
}

// Presence implements [PresenceReader].
func (h *Hub) Presence(ctx context.Context, session string) (Presence, error) {
	if h.isClosed() {
		return Presence{}, ErrClosed
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.sessionLocked(session, h.cfg.now(), false); s != nil {
		return s.presence, nil
	}
	return Presence{}, nil
}

// Close ends every subscription (their Err reports ErrClosed), waits for
// their goroutines to exit and makes later calls fail with ErrClosed. It is
// idempotent.
func (h *Hub) Close() error {
	h.life.Lock()
	h.once.Do(func() { close(h.closed) })
	h.life.Unlock()
	h.subs.Wait()
	return nil
}

func (h *Hub) isClosed() bool {
	select {
	case <-h.closed:
		return true
	default:
		return false
	}
}

// sessionLocked returns the session's record, dropping its history first if
// it has expired; with create it makes a missing record.
func (h *Hub) sessionLocked(id string, now time.Time, create bool) *memSession {
	s := h.sessions[id]
	if s != nil && !s.expires.IsZero() && !now.Before(s.expires) {
		h.expireLocked(id, s)
		s = h.sessions[id]
	}
	if s == nil && create {
		s = &memSession{wake: make(chan struct{})}
		h.sessions[id] = s
	}
	return s
}

// expireLocked drops a session's history and presence. A record that
// subscribers are waiting on is kept (with its latest id, so ids never go
// backwards under their feet); otherwise it is deleted.
func (h *Hub) expireLocked(id string, s *memSession) {
	if s.waiters > 0 {
		clear(s.events)
		s.events = nil
		s.presence = Presence{}
		s.expires = time.Time{}
		return
	}
	delete(h.sessions, id)
}

// sweepLocked drops expired sessions, at most once a minute, so memory
// follows the sessions in use without a background goroutine.
func (h *Hub) sweepLocked(now time.Time) {
	if now.Sub(h.lastSweep) < time.Minute {
		return
	}
	h.lastSweep = now
	for id, s := range h.sessions {
		if !s.expires.IsZero() && !now.Before(s.expires) {
			h.expireLocked(id, s)
		}
	}
}

// hubLog is the Hub seen as a [Log].
type hubLog struct{ h *Hub }

// Read implements [Log] under the hub's lock, so events and latest agree.
func (l hubLog) Read(_ context.Context, session string, after uint64, limit int) ([]Event, uint64, error) {
	h := l.h
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sessionLocked(session, h.cfg.now(), false)
	if s == nil {
		return nil, 0, nil
	}
	if len(s.events) == 0 || after >= s.latest {
		return nil, s.latest, nil
	}
	first := s.events[0].ID
	start := 0
	if after >= first {
		start = int(after - first + 1)
	}
	end := min(start+limit, len(s.events))
	return append([]Event(nil), s.events[start:end]...), s.latest, nil
}

// Wait implements [Log]: the session's wake channel is closed by the next
// Publish; the waiter count keeps the record alive meanwhile.
func (l hubLog) Wait(session string) (<-chan struct{}, func()) {
	h := l.h
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.sessionLocked(session, h.cfg.now(), true)
	s.waiters++
	var once gosync.Once
	return s.wake, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			s.waiters--
			if s.waiters == 0 && len(s.events) == 0 && h.sessions[session] == s {
				delete(h.sessions, session)
			}
		})
	}
}

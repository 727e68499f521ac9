// Package natsnotify implements sync.Publisher, sync.Subscriber,
// sync.History and sync.PresenceReader on NATS JetStream, for deployments
// that run NATS rather than Redis: instances sharing one JetStream stream
// behave as one hub.
//
// # Storage
//
// Every event is one message on its own subject, {prefix}.ev.{session}.{id},
// in one stream that keeps one message per subject and ages messages out
// after the retention period. Ids are allocated without a counter: a
// publisher takes the newest id it knows (its own previous publish to the
// session, or a lookup of the session's newest subject) and publishes id+1
// with "expected last subject sequence 0", which JetStream refuses if
// another instance took that id first; the publisher then looks up the
// newest id and tries again. So ids per session are unique across instances
// and gap-free while the history lives (once it has aged out, ids may carry
// on from where they were rather than start again at 1). Once a session
// has more events than the configured history, each publish trims it (a
// filtered purge that keeps the newest); sessions below it, which is all of
// them in normal use, pay nothing.
//
// Differences from sync/redisnotify, by JetStream's nature: history ages out
// per event (a retention after each event, not after the session's last),
// a session.expired event does not shorten it, and a replay costs one
// request per event (fine for the few hundred events of a session).
//
// # Wake-ups
//
// After a publish is stored, the publisher sends a core NATS message on
// {prefix}.wake.{session} carrying the stored event; each instance holds one
// subscription to those, wakes its subscribers of the session and keeps the
// last few events, so an up-to-date subscriber takes the new event without
// reading the stream (anything else is read from the stream). Core NATS may
// drop a message; every subscriber also re-reads at least every recheck
// interval, so a lost wake-up delays an event, never loses it.
package natsnotify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/clinicpro/clinicalimages/sync"
	"github.com/clinicpro/clinicalimages/sync/internal/wakeset"
)

// Defaults for the stream and subject names.
const (
	DefaultStream = "CLINICALIMAGES_SYNC"
	DefaultPrefix = "clinicalimages.sync"
)

// maxAttempts bounds the retries of an id taken by a concurrent publisher.
const maxAttempts = 32

// Option configures a [Hub].
type Option func(*config) error

type config struct {
	stream    string
	prefix    string
	history   int
	retention time.Duration
	storage   jetstream.StorageType
	now       func() time.Time
	logger    *slog.Logger
	follow    sync.FollowConfig
}

// WithStream sets the JetStream stream's name (default [DefaultStream]).
// New creates or updates it; instances that form one hub share it.
func WithStream(name string) Option {
	return func(c *config) error {
		if name == "" || strings.ContainsAny(name, ".*> \t\r\n/\\") {
			return errors.New("natsnotify: stream name must be non-empty, without dots, wildcards, slashes or spaces")
		}
		c.stream = name
		return nil
	}
}

// WithPrefix sets the subject prefix (default [DefaultPrefix]): dot-separated
// tokens of letters, digits, '-' and '_'.
func WithPrefix(p string) Option {
	return func(c *config) error {
		for _, tok := range strings.Split(p, ".") {
			if !validToken(tok) {
				return errors.New("natsnotify: prefix must be dot-separated tokens of letters, digits, '-' and '_'")
			}
		}
		c.prefix = p
		return nil
	}
}

// WithHistory sets how many events per session are kept (default
// sync.DefaultHistory, at least sync.MinHistory).
func WithHistory(n int) Option {
	return func(c *config) error {
		if n < sync.MinHistory {
			return fmt.Errorf("natsnotify: history of %d events is below the minimum of %d", n, sync.MinHistory)
		}
		c.history = n
		return nil
	}
}

// WithRetention sets the stream's MaxAge: how long each event is kept
// (default sync.DefaultRetention, at least a minute).
func WithRetention(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Minute {
			return fmt.Errorf("natsnotify: retention %v is shorter than a minute", d)
		}
		c.retention = d
		return nil
	}
}

// WithMemoryStorage keeps the stream in the NATS server's memory instead of
// on disk (history is lost when the server restarts; clients then resync).
func WithMemoryStorage() Option {
	return func(c *config) error {
		c.storage = jetstream.MemoryStorage
		return nil
	}
}

// WithRecheck sets how often an idle subscriber re-reads the stream without
// a wake-up (default 2s), bounding the delay a lost wake-up causes.
func WithRecheck(d time.Duration) Option {
	return func(c *config) error {
		if d < 10*time.Millisecond || d > time.Minute {
			return fmt.Errorf("natsnotify: recheck %v outside [10ms, 1m]", d)
		}
		c.follow.Recheck = d
		return nil
	}
}

// WithSubscriptionBuffer sets the capacity of each subscription's Events
// channel (default 64).
func WithSubscriptionBuffer(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 1<<16 {
			return fmt.Errorf("natsnotify: subscription buffer %d outside [1, 65536]", n)
		}
		c.follow.Buffer = n
		return nil
	}
}

// WithClock sets the clock that stamps events (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("natsnotify: nil clock")
		}
		c.now = now
		return nil
	}
}

// WithLogger sets a logger for diagnostics (default: silent). Logs carry
// session ids, event types and NATS errors, never event data.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("natsnotify: nil logger")
		}
		c.logger = l
		return nil
	}
}

// Hub is a sync hub on NATS JetStream. It is safe for concurrent use. It
// holds one core NATS subscription (the wake-ups) from [New] until
// [Hub.Close]; it does not own the NATS connection, which the caller closes
// after the Hub.
type Hub struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    config
	wake   *nats.Subscription

	closed chan struct{}
	once   gosync.Once
	subs   gosync.WaitGroup
	life   gosync.Mutex // orders subs.Add (Subscribe) against Close's Wait

	waits *wakeset.Set

	hintMu gosync.Mutex
	hints  map[string]uint64 // newest id this instance saw per session; bounded by maxHints

	// stripes serialise this instance's publishes to one session (by hash),
	// so they never race each other for an id; only other instances can.
	stripes [64]gosync.Mutex
}

// maxHints bounds the publisher's id hints; past it they are forgotten at
// once (a forgotten hint costs one lookup).
const maxHints = 4096

var (
	_ sync.Publisher      = (*Hub)(nil)
	_ sync.Subscriber     = (*Hub)(nil)
	_ sync.History        = (*Hub)(nil)
	_ sync.PresenceReader = (*Hub)(nil)
	_ sync.Log            = natsLog{}
)

// New returns a hub on nc: it creates or updates the stream (the last
// instance to start sets its limits) and subscribes to wake-ups.
func New(ctx context.Context, nc *nats.Conn, opts ...Option) (*Hub, error) {
	if nc == nil {
		return nil, errors.New("natsnotify: nil NATS connection")
	}
	cfg := config{
		stream:    DefaultStream,
		prefix:    DefaultPrefix,
		history:   sync.DefaultHistory,
		retention: sync.DefaultRetention,
		storage:   jetstream.FileStorage,
		now:       time.Now,
		logger:    slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsnotify: %w", err)
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              cfg.stream,
		Description:       "clinicalimages session events (sync/natsnotify)",
		Subjects:          []string{cfg.prefix + ".ev.>", cfg.prefix + ".presence.>"},
		MaxMsgsPerSubject: 1, // every event has its own subject; presence keeps its newest
		MaxAge:            cfg.retention,
		Storage:           cfg.storage,
		Discard:           jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("natsnotify: creating stream: %w", err)
	}
	h := &Hub{
		nc: nc, js: js, stream: stream, cfg: cfg,
		closed: make(chan struct{}),
		waits:  wakeset.New(),
		hints:  make(map[string]uint64),
	}
	h.cfg.follow.Done = h.closed
	h.cfg.follow.Group = &h.subs
	h.cfg.follow.Now = cfg.now
	// Callbacks of one subscription run one at a time, in arrival order.
	h.wake, err = nc.Subscribe(cfg.prefix+".wake.*", func(m *nats.Msg) {
		session := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		if !h.waits.Watched(session) {
			return
		}
		ev, decoded := decodeWake(m.Data)
		h.waits.Received(session, ev, decoded)
	})
	if err != nil {
		return nil, fmt.Errorf("natsnotify: subscribing to wake-ups: %w", err)
	}
	flushCtx, cancel := context.WithTimeout(ctx, 10*time.Second) // nats needs a deadline here
	defer cancel()
	if err := nc.FlushWithContext(flushCtx); err != nil {
		_ = h.wake.Unsubscribe()
		return nil, fmt.Errorf("natsnotify: subscribing to wake-ups: %w", err)
	}
	return h, nil
}

func validToken(tok string) bool {
	if tok == "" {
		return false
	}
	for _, r := range tok {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// validSession accepts session ids that are one subject token.
func validSession(session string) error {
	if !sync.ValidSessionID(session) || strings.ContainsAny(session, ".*>") {
		return fmt.Errorf("%w: bad session id", sync.ErrInvalidEvent)
	}
	return nil
}

func (h *Hub) eventSubject(session string, id uint64) string {
	return h.cfg.prefix + ".ev." + session + "." + strconv.FormatUint(id, 10)
}

func (h *Hub) isClosed() bool {
	select {
	case <-h.closed:
		return true
	default:
		return false
	}
}

// Publish implements sync.Publisher: one conditional publish to JetStream
// when this instance published the session's previous event, otherwise a
// lookup of the newest id first; more when another instance publishes to
// the same session at the same moment. Publishes to one session from this
// instance take turns. A
// hint that outlived its events (they aged out) makes ids continue where
// they were instead of starting again at 1, which resuming clients treat
// like trimmed history.
func (h *Hub) Publish(ctx context.Context, ev sync.Event) (sync.Event, error) {
	if err := ev.Validate(); err != nil {
		return sync.Event{}, err
	}
	if err := validSession(ev.Session); err != nil {
		return sync.Event{}, err
	}
	if err := ctx.Err(); err != nil {
		return sync.Event{}, err
	}
	if h.isClosed() {
		return sync.Event{}, sync.ErrClosed
	}
	now := h.cfg.now()
	ev = ev.Stamp(0, now)
	entry, err := json.Marshal(ev)
	if err != nil {
		return sync.Event{}, fmt.Errorf("natsnotify: encoding event: %w", err)
	}
	stripe := &h.stripes[fnv32(ev.Session)%uint32(len(h.stripes))]
	stripe.Lock()
	defer stripe.Unlock()
	for attempt := range maxAttempts {
		last, known := h.hint(ev.Session)
		if !known || attempt > 0 {
			var err error
			if last, err = h.latest(ctx, ev.Session); err != nil {
				return sync.Event{}, h.wrap("publish", ctx, err)
			}
		}
		id := last + 1
		msg := nats.NewMsg(h.eventSubject(ev.Session, id))
		msg.Data = entry
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0") // this id must be new
		if _, err := h.js.PublishMsg(ctx, msg); err != nil {
			if taken(err) {
				continue // another publisher took id; read the newest again
			}
			return sync.Event{}, h.wrap("publish", ctx, err)
		}
		ev.ID = id
		h.setHint(ev.Session, id)
		h.after(ctx, ev)
		return ev, nil
	}
	return sync.Event{}, fmt.Errorf("natsnotify: publish: %d attempts lost to concurrent publishers", maxAttempts)
}

// after does what follows a stored event: presence, trimming, wake-ups.
// Failures here cost a delay (wake-up) or a little space (trim), never the
// event, so they are logged rather than returned.
func (h *Hub) after(ctx context.Context, ev sync.Event) {
	if ev.Type == sync.PhoneConnected || ev.Type == sync.PhoneDisconnected {
		v := "0"
		if ev.Type == sync.PhoneConnected {
			v = "1"
		}
		if _, err := h.js.Publish(ctx, h.cfg.prefix+".presence."+ev.Session, []byte(v+" "+strconv.FormatInt(ev.Time.UnixMilli(), 10))); err != nil {
			h.cfg.logger.WarnContext(ctx, "natsnotify: recording presence failed", "session", ev.Session, "err", err)
		}
	}
	if ev.ID > uint64(h.cfg.history) {
		err := h.stream.Purge(ctx, jetstream.WithPurgeSubject(h.cfg.prefix+".ev."+ev.Session+".*"), jetstream.WithPurgeKeep(uint64(h.cfg.history)))
		if err != nil {
			h.cfg.logger.WarnContext(ctx, "natsnotify: trimming history failed", "session", ev.Session, "err", err)
		}
	}
	// The wake-up carries the event: it is stored, so caching it is safe.
	wake := append(strconv.AppendUint(nil, ev.ID, 10), '\n')
	if entry, err := json.Marshal(ev); err == nil {
		wake = append(wake, entry...)
	}
	if err := h.nc.Publish(h.cfg.prefix+".wake."+ev.Session, wake); err != nil {
		h.cfg.logger.WarnContext(ctx, "natsnotify: wake-up failed", "session", ev.Session, "err", err)
	}
	h.waits.Wake(ev.Session)
	h.cfg.logger.DebugContext(ctx, "natsnotify: published", "session", ev.Session, "type", ev.Type, "id", ev.ID)
}

func fnv32(s string) uint32 {
	f := fnv.New32a()
	_, _ = f.Write([]byte(s))
	return f.Sum32()
}

func (h *Hub) hint(session string) (uint64, bool) {
	h.hintMu.Lock()
	defer h.hintMu.Unlock()
	id, ok := h.hints[session]
	return id, ok
}

func (h *Hub) setHint(session string, id uint64) {
	h.hintMu.Lock()
	defer h.hintMu.Unlock()
	if len(h.hints) >= maxHints {
		clear(h.hints)
	}
	if id > h.hints[session] {
		h.hints[session] = id
	}
}

// decodeWake parses a wake-up's "id\nentry JSON".
func decodeWake(b []byte) (sync.Event, bool) {
	rawID, entry, ok := strings.Cut(string(b), "\n")
	id, err := strconv.ParseUint(rawID, 10, 64)
	var ev sync.Event
	if !ok || err != nil || id == 0 || json.Unmarshal([]byte(entry), &ev) != nil {
		return sync.Event{}, false
	}
	ev.ID = id
	return ev, true
}

func taken(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

func (h *Hub) wrap(op string, ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return fmt.Errorf("natsnotify: %s: %w", op, err)
}

// latest returns the session's newest event id, 0 if it has none.
func (h *Hub) latest(ctx context.Context, session string) (uint64, error) {
	m, err := h.stream.GetLastMsgForSubject(ctx, h.cfg.prefix+".ev."+session+".*")
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return subjectID(m.Subject)
}

func subjectID(subject string) (uint64, error) {
	id, err := strconv.ParseUint(subject[strings.LastIndexByte(subject, '.')+1:], 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("unexpected event subject %q", subject)
	}
	return id, nil
}

// Subscribe implements sync.Subscriber.
func (h *Hub) Subscribe(ctx context.Context, session string, after uint64) (sync.Subscription, error) {
	if err := validSession(session); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.life.Lock()
	defer h.life.Unlock()
	if h.isClosed() {
		return nil, sync.ErrClosed
	}
	return sync.Follow(ctx, natsLog{h}, session, after, h.cfg.follow), nil
}

// Since implements sync.History.
func (h *Hub) Since(ctx context.Context, session string, after uint64, limit int) ([]sync.Event, error) {
	if err := validSession(session); err != nil {
		return nil, err
	}
	if h.isClosed() {
		return nil, sync.ErrClosed
	}
	return sync.ReadSince(ctx, natsLog{h}, session, after, limit, h.cfg.now())
}

// Presence implements sync.PresenceReader.
func (h *Hub) Presence(ctx context.Context, session string) (sync.Presence, error) {
	if err := validSession(session); err != nil {
		return sync.Presence{}, err
	}
	if h.isClosed() {
		return sync.Presence{}, sync.ErrClosed
	}
	m, err := h.stream.GetLastMsgForSubject(ctx, h.cfg.prefix+".presence."+session)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return sync.Presence{}, nil
	}
	if err != nil {
		return sync.Presence{}, h.wrap("reading presence", ctx, err)
	}
	state, ms, _ := strings.Cut(string(m.Data), " ")
	p := sync.Presence{Phone: state == "1"}
	if v, err := strconv.ParseInt(ms, 10, 64); err == nil {
		p.Since = time.UnixMilli(v)
	}
	return p, nil
}

// Close ends every subscription (their Err reports sync.ErrClosed), drops
// the wake-up subscription and waits for the subscriptions' goroutines. It
// does not close the NATS connection. It is idempotent.
func (h *Hub) Close() error {
	var err error
	h.life.Lock()
	h.once.Do(func() {
		close(h.closed)
		if uerr := h.wake.Unsubscribe(); uerr != nil && !errors.Is(uerr, nats.ErrConnectionClosed) {
			err = fmt.Errorf("natsnotify: dropping wake-ups: %w", uerr)
		}
	})
	h.life.Unlock()
	h.subs.Wait()
	return err
}

// natsLog is the Hub seen as a sync.Log.
type natsLog struct{ h *Hub }

// Read implements sync.Log: from the wake-up cache when it can answer;
// otherwise the newest id first, then the events after "after" up to it, one
// direct lookup each. Events age out oldest first, so those found are
// contiguous; a missing first one means it was trimmed.
func (l natsLog) Read(ctx context.Context, session string, after uint64, limit int) ([]sync.Event, uint64, error) {
	h := l.h
	if events, latest, ok := h.waits.Cached(session, after, limit); ok {
		return events, latest, nil
	}
	latest, err := h.latest(ctx, session)
	if err != nil {
		return nil, 0, err
	}
	h.waits.ForgetNewerThan(session, latest)
	if latest <= after {
		return nil, latest, nil
	}
	var events []sync.Event
	for id := after + 1; id <= latest && len(events) < limit; id++ {
		m, err := h.stream.GetLastMsgForSubject(ctx, h.eventSubject(session, id))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break // trimmed (or aged out): the caller resyncs or takes what came before
		}
		if err != nil {
			return nil, 0, err
		}
		var ev sync.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			return nil, 0, fmt.Errorf("event %s: %w", m.Subject, err)
		}
		ev.ID = id
		events = append(events, ev)
	}
	return events, latest, nil
}

// Wait implements sync.Log: the channel is closed by the next wake-up for
// the session, from this instance's Publish or any instance's message.
func (l natsLog) Wait(session string) (<-chan struct{}, func()) { return l.h.waits.Wait(session) }

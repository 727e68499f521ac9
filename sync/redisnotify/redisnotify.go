// Package redisnotify implements sync.Publisher, sync.Subscriber,
// sync.History and sync.PresenceReader on Redis, so that any number of
// server instances sharing one Redis behave as one hub: an event published
// on one instance reaches subscribers on every other, and a client that
// reconnects to a different instance resumes exactly where it left off.
//
// # Storage
//
// Each session's history is a Redis Stream whose entry ids are "0-<event id>",
// capped at the configured history length (XADD MAXLEN) and expiring a
// retention period after the session's last event (or a short grace period
// after its session.expired event). The stream is its own id counter: one
// Lua script reads the newest entry, appends the next id, refreshes the
// expiry, records presence and publishes a wake-up, atomically. Trimming
// keeps the newest entry, so ids never repeat while the stream lives; when
// it expires (or is evicted) the session starts again at 1 and resuming
// clients get a Resync. The keys of one session share a hash tag, so the hub
// works on Redis Cluster through a redis.UniversalClient. Redis 5 or later.
//
// # Wake-ups
//
// Every instance holds one pub/sub subscription to a single wake-up channel;
// each message carries the session id and the stored event. A wake-up makes
// that instance's subscribers of the session read from their cursor. While a
// session has subscribers on an instance, the instance keeps the events of
// the last few wake-ups (only while they arrive contiguously), so a
// subscriber that is up to date takes the new event without another round
// trip; anything else is read from the stream. Pub/sub may drop messages (a
// reconnect, a full buffer); the stream never does, and each subscriber
// re-reads the stream at least every recheck interval, so a lost wake-up
// delays an event by at most that interval and never loses it.
//
// # Redis restarts and lost connections
//
// A subscription survives Redis going away: when a read of the stream fails
// with a connection error (refused, reset, timed out, Redis still loading its
// data after a restart), the subscription keeps retrying with a backoff that
// doubles from 50ms up to a bound (default 2s, see [WithReconnectBackoff])
// until Redis answers, its context ends, it is closed, or the hub is closed.
// Nothing is delivered meanwhile and Events stays open. Once Redis answers,
// the subscription reads the stream after the last event it delivered, so
// the events published meanwhile through other connections or instances
// arrive in order, with no gap and no duplicate. The wake-up subscription
// reconnects by itself (go-redis re-subscribes); when it does, every
// subscriber on the instance re-reads the stream at once, since wake-ups sent
// while it was away are lost.
//
// If the history itself was lost (Redis restarted without persistence, or
// the stream expired or was deleted) the session's ids start again at 1 and
// the ids a subscriber holds mean nothing any more. Every stream entry
// carries a token naming its life, chosen when the stream was created and
// copied by every later publish; a subscription remembers the token of the
// events it delivered, and when the stream is gone or carries another token
// it delivers a [sync.Resync] event, exactly as for a subscriber that fell
// behind the history, and then carries on with the new history's events.
// That Resync's id is the new history's newest id, or one less when that
// equals the last id delivered (a Resync at the cursor itself would read as
// "up to date"); either way every later event has a larger id and the next
// event follows it without a gap. A subscription opened with after > 0 learns the
// token at its first read, so a history lost before that (a client resuming
// with a Last-Event-ID from before the restart) is detected from the ids
// alone: only when the new history has not yet reached the id resumed from.
// Streams written by a version without tokens keep none until they are
// created again; during a rolling upgrade, an entry appended by an older
// instance to a stream that has a token makes that stream's subscribers
// receive one needless Resync.
//
// Errors that retrying cannot cure still end the subscription with the
// error: a closed Redis client (redis.ErrClosed), an error reply other than
// LOADING, BUSY, MASTERDOWN, TRYAGAIN, CLUSTERDOWN or max-clients, or an
// entry that cannot be decoded.
//
// Publish never retries beyond what the go-redis client itself does and
// never waits for Redis to come back: while Redis is unreachable it returns
// an error wrapping the client's, as soon as the client gives up (its dial,
// read and retry limits: under two seconds for a refused connection with
// go-redis's defaults; ctx's deadline as well when the client has
// ContextTimeoutEnabled), and the caller decides what to do. [Hub.Since]
// and [Hub.Presence] likewise report the error. New still fails if Redis
// cannot be reached when it is called.
package redisnotify

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clinicpro/clinicalimages/sync"
	"github.com/clinicpro/clinicalimages/sync/internal/wakeset"
)

// DefaultPrefix starts every key and the wake-up channel name.
const DefaultPrefix = "clinicalimages:sync"

// Option configures a [Hub].
type Option func(*config) error

type config struct {
	prefix    string
	history   int
	retention time.Duration
	grace     time.Duration
	now       func() time.Time
	logger    *slog.Logger
	follow    sync.FollowConfig
	backoff   time.Duration // the longest pause between reconnection attempts
}

// WithPrefix sets the prefix of every key and of the wake-up channel
// (default [DefaultPrefix]). Instances that must behave as one hub use the
// same prefix; tests use a unique one.
func WithPrefix(p string) Option {
	return func(c *config) error {
		if p == "" || strings.ContainsAny(p, "{} \t\r\n") {
			return errors.New("redisnotify: prefix must be non-empty, without braces or spaces")
		}
		c.prefix = p
		return nil
	}
}

// WithHistory sets how many events per session the stream keeps (default
// sync.DefaultHistory, at least sync.MinHistory).
func WithHistory(n int) Option {
	return func(c *config) error {
		if n < sync.MinHistory {
			return fmt.Errorf("redisnotify: history of %d events is below the minimum of %d", n, sync.MinHistory)
		}
		c.history = n
		return nil
	}
}

// WithRetention sets how long a session's keys live after its last event
// (default sync.DefaultRetention, at least a minute).
func WithRetention(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Minute {
			return fmt.Errorf("redisnotify: retention %v is shorter than a minute", d)
		}
		c.retention = d
		return nil
	}
}

// WithRecheck sets how often an idle subscriber re-reads its stream without
// a wake-up (default 2s), bounding the delay a lost pub/sub message causes.
func WithRecheck(d time.Duration) Option {
	return func(c *config) error {
		if d < 10*time.Millisecond || d > time.Minute {
			return fmt.Errorf("redisnotify: recheck %v outside [10ms, 1m]", d)
		}
		c.follow.Recheck = d
		return nil
	}
}

// WithReconnectBackoff bounds the pause between a subscription's attempts to
// read the stream again after losing Redis (default 2s, within [10ms, 1m]).
// The pause starts at 50ms (or the bound, if smaller) and doubles, with
// jitter, up to the bound.
func WithReconnectBackoff(limit time.Duration) Option {
	return func(c *config) error {
		if limit < 10*time.Millisecond || limit > time.Minute {
			return fmt.Errorf("redisnotify: reconnect backoff %v outside [10ms, 1m]", limit)
		}
		c.backoff = limit
		return nil
	}
}

// WithSubscriptionBuffer sets the capacity of each subscription's Events
// channel (default 64).
func WithSubscriptionBuffer(n int) Option {
	return func(c *config) error {
		if n < 1 || n > 1<<16 {
			return fmt.Errorf("redisnotify: subscription buffer %d outside [1, 65536]", n)
		}
		c.follow.Buffer = n
		return nil
	}
}

// WithClock sets the clock that stamps events (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("redisnotify: nil clock")
		}
		c.now = now
		return nil
	}
}

// WithLogger sets a logger for diagnostics (default: silent). Logs carry
// session ids, event types and Redis errors, never event data.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("redisnotify: nil logger")
		}
		c.logger = l
		return nil
	}
}

// Hub is a sync hub on Redis. It is safe for concurrent use. It owns one
// pub/sub connection and one goroutine (the wake-up listener) from [New]
// until [Hub.Close]; it does not own the Redis client, which the caller
// closes after the Hub.
type Hub struct {
	rdb     redis.UniversalClient
	cfg     config
	wakeCh  string
	publish *redis.Script
	pubsub  *redis.PubSub

	closed   chan struct{}
	once     gosync.Once
	subs     gosync.WaitGroup
	life     gosync.Mutex  // orders subs.Add (Subscribe) against Close's Wait
	listener chan struct{} // closed when the listener has exited

	waits *wakeset.Set

	// genBase and genSeq make the token a publish offers for a stream it
	// creates (see publishScript): unique across instances and lives.
	genBase string
	genSeq  atomic.Uint64

	watchMu gosync.Mutex
	watch   map[string]*watched // sessions with subscribers on this instance
}

// watched is what the listener knows of a session that has subscribers here.
type watched struct {
	refs int
	// gen is the history token of the newest wake-up received for the
	// session, valid when genOK. Subscribers trust the wake-up cache only
	// while it names the history they follow.
	gen   string
	genOK bool
}

var (
	_ sync.Publisher      = (*Hub)(nil)
	_ sync.Subscriber     = (*Hub)(nil)
	_ sync.History        = (*Hub)(nil)
	_ sync.PresenceReader = (*Hub)(nil)
	_ sync.Log            = redisLog{}
	_ sync.Log            = (*subLog)(nil)
)

// publishScript assigns the id (one more than the newest entry's), appends,
// caps, refreshes expiry, records presence and wakes every instance,
// atomically.
//
// Every entry carries the token of the stream's life in field "g": the
// publish that creates the stream sets the token it was offered, later ones
// copy the newest entry's (a stream written before tokens existed keeps
// none until it is created again).
//
// KEYS: stream, presence. ARGV: entry JSON, maxlen, ttl ms, wake channel,
// presence ("", "1" or "0"), presence time (unix ms), session, token for a
// new stream, why the phone is gone (sync.PresenceReason, "" otherwise). The wake-up message is "session\nid\ntoken\nentry JSON".
const publishScript = `
local id = 1
local gen = ARGV[8]
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then
  id = tonumber(string.match(last[1][1], '^0%-(%d+)$')) + 1
  gen = ''
  local f = last[1][2]
  for i = 1, #f - 1, 2 do
    if f[i] == 'g' then gen = f[i + 1] end
  end
end
if gen ~= '' then
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], '0-' .. id, 'e', ARGV[1], 'g', gen)
else
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], '0-' .. id, 'e', ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[2], 'phone', ARGV[5], 'since', ARGV[6], 'reason', ARGV[9] or '')
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[7] .. '\n' .. id .. '\n' .. gen .. '\n' .. ARGV[1])
return id
`

// New returns a hub on rdb and subscribes to the wake-up channel, failing if
// Redis cannot be reached within ctx.
func New(ctx context.Context, rdb redis.UniversalClient, opts ...Option) (*Hub, error) {
	if rdb == nil {
		return nil, errors.New("redisnotify: nil Redis client")
	}
	cfg := config{
		prefix:    DefaultPrefix,
		history:   sync.DefaultHistory,
		retention: sync.DefaultRetention,
		grace:     sync.DefaultExpiredGrace,
		now:       time.Now,
		logger:    slog.New(slog.DiscardHandler),
		backoff:   2 * time.Second,
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	h := &Hub{
		rdb:      rdb,
		cfg:      cfg,
		wakeCh:   cfg.prefix + ":wake",
		publish:  redis.NewScript(publishScript),
		closed:   make(chan struct{}),
		listener: make(chan struct{}),
		waits:    wakeset.New(),
		genBase:  rand.Text()[:16] + ".",
		watch:    make(map[string]*watched),
	}
	h.cfg.follow.Done = h.closed
	h.cfg.follow.Group = &h.subs
	h.cfg.follow.Now = cfg.now

	h.pubsub = rdb.Subscribe(ctx, h.wakeCh)
	if _, err := h.pubsub.Receive(ctx); err != nil {
		_ = h.pubsub.Close()
		return nil, fmt.Errorf("redisnotify: subscribing to wake-ups: %w", err)
	}
	// The channel also carries the subscription confirmations go-redis
	// reads when it re-subscribes after losing the connection: the
	// listener's cue that wake-ups were lost. (New's Receive took the first.)
	go h.listen(h.pubsub.ChannelWithSubscriptions(redis.WithChannelSize(1024)))
	return h, nil
}

func (h *Hub) listen(msgs <-chan any) {
	defer close(h.listener)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return
			}
			switch m := m.(type) {
			case *redis.Message:
				h.received(m.Payload)
			case *redis.Subscription:
				if m.Kind == "subscribe" {
					h.resubscribed()
				}
			}
		case <-h.closed:
			return
		}
	}
}

// received handles a wake-up message "session\nid\ntoken\nentry JSON" (or
// "session\nid\nentry JSON" from an instance that predates tokens). It is
// called from the listener goroutine only, so wake-ups keep their order.
func (h *Hub) received(payload string) {
	session, rest, _ := strings.Cut(payload, "\n")
	h.watchMu.Lock()
	w := h.watch[session]
	if w == nil {
		h.watchMu.Unlock()
		return // no subscriber here: nothing to wake, nothing to decode
	}
	ev, gen, decoded := decodeWake(rest)
	// The token is recorded before the event enters the cache, so a
	// subscriber that checks it after reading the cache never takes an
	// event of another history for one of its own.
	w.gen, w.genOK = gen, decoded && gen != noGen
	h.watchMu.Unlock()
	h.waits.Received(session, ev, decoded)
}

// noGen stands for "the wake-up named no history token" (an older
// instance's message); real tokens never contain a newline.
const noGen = "\n"

func decodeWake(s string) (ev sync.Event, gen string, ok bool) {
	rawID, rest, ok := strings.Cut(s, "\n")
	id, err := strconv.ParseUint(rawID, 10, 64)
	if !ok || err != nil || id == 0 {
		return sync.Event{}, noGen, false
	}
	gen, entry := noGen, rest
	if !strings.HasPrefix(rest, "{") {
		gen, entry, ok = strings.Cut(rest, "\n")
		if !ok {
			return sync.Event{}, noGen, false
		}
	}
	if json.Unmarshal([]byte(entry), &ev) != nil {
		return sync.Event{}, noGen, false
	}
	ev.ID = id
	return ev, gen, true
}

// resubscribed runs on the listener goroutine when the wake-up subscription
// was re-established: the messages sent while it was down are lost, and
// Redis may have restarted with another history. Every session watched here
// forgets its cached wake-ups and their token, and its subscribers are woken
// to read the stream.
func (h *Hub) resubscribed() {
	h.watchMu.Lock()
	sessions := make([]string, 0, len(h.watch))
	for s, w := range h.watch {
		w.gen, w.genOK = "", false
		sessions = append(sessions, s)
	}
	h.watchMu.Unlock()
	h.cfg.logger.Info("redisnotify: wake-up channel re-subscribed; waking subscribers", "sessions", len(sessions))
	for _, s := range sessions {
		h.waits.Received(s, sync.Event{}, false) // wakes and empties the cache
	}
}

// watchSession registers a holder of session's wake-ups (see subLog.Wait).
func (h *Hub) watchSession(session string) {
	h.watchMu.Lock()
	defer h.watchMu.Unlock()
	w := h.watch[session]
	if w == nil {
		w = &watched{}
		h.watch[session] = w
	}
	w.refs++
}

func (h *Hub) unwatchSession(session string) {
	h.watchMu.Lock()
	defer h.watchMu.Unlock()
	if w := h.watch[session]; w != nil {
		if w.refs--; w.refs <= 0 {
			delete(h.watch, session)
		}
	}
}

// wakeGen reports the history token of the session's newest wake-up.
func (h *Hub) wakeGen(session string) (string, bool) {
	h.watchMu.Lock()
	defer h.watchMu.Unlock()
	if w := h.watch[session]; w != nil && w.genOK {
		return w.gen, true
	}
	return "", false
}

// keys returns the stream and presence keys of a session; the braces make
// them one hash slot on Redis Cluster.
func (h *Hub) keys(session string) (stream, presence string) {
	base := h.cfg.prefix + ":{" + session + "}:"
	return base + "events", base + "presence"
}

func validSession(session string) error {
	if !sync.ValidSessionID(session) || strings.ContainsAny(session, "{}") {
		return fmt.Errorf("%w: bad session id", sync.ErrInvalidEvent)
	}
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

// Publish implements sync.Publisher: one round trip to Redis.
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
		return sync.Event{}, fmt.Errorf("redisnotify: encoding event: %w", err)
	}
	ttl := h.cfg.retention
	if ev.Type == sync.SessionExpired {
		ttl = h.cfg.grace
	}
	presence := ""
	switch ev.Type {
	case sync.PhoneConnected:
		presence = "1"
	case sync.PhoneDisconnected:
		presence = "0"
	}
	stream, pres := h.keys(ev.Session)
	gen := h.genBase + strconv.FormatUint(h.genSeq.Add(1), 36)
	id, err := h.publish.Run(ctx, h.rdb, []string{stream, pres},
		entry, h.cfg.history, ttl.Milliseconds(), h.wakeCh, presence, now.UnixMilli(), ev.Session, gen, sync.PresenceReason(ev)).Uint64()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return sync.Event{}, ctxErr
		}
		return sync.Event{}, fmt.Errorf("redisnotify: publish: %w", err)
	}
	ev.ID = id
	h.waits.Wake(ev.Session) // local subscribers need not wait for the pub/sub round trip
	h.cfg.logger.DebugContext(ctx, "redisnotify: published", "session", ev.Session, "type", ev.Type, "id", id)
	return ev, nil
}

// Subscribe implements sync.Subscriber. The subscription outlives lost
// connections and Redis restarts (see the package documentation): it waits
// for Redis, resumes after the last event it delivered, and delivers a
// sync.Resync if the history was lost meanwhile.
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
	return sync.Follow(ctx, &subLog{h: h}, session, after, h.cfg.follow), nil
}

// Since implements sync.History.
func (h *Hub) Since(ctx context.Context, session string, after uint64, limit int) ([]sync.Event, error) {
	if err := validSession(session); err != nil {
		return nil, err
	}
	if h.isClosed() {
		return nil, sync.ErrClosed
	}
	return sync.ReadSince(ctx, redisLog{h}, session, after, limit, h.cfg.now())
}

// Presence implements sync.PresenceReader.
func (h *Hub) Presence(ctx context.Context, session string) (sync.Presence, error) {
	if err := validSession(session); err != nil {
		return sync.Presence{}, err
	}
	if h.isClosed() {
		return sync.Presence{}, sync.ErrClosed
	}
	_, key := h.keys(session)
	m, err := h.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return sync.Presence{}, fmt.Errorf("redisnotify: reading presence: %w", err)
	}
	var p sync.Presence
	p.Phone = m["phone"] == "1"
	if !p.Phone {
		p.Reason = m["reason"]
	}
	if ms, err := strconv.ParseInt(m["since"], 10, 64); err == nil {
		p.Since = time.UnixMilli(ms)
	}
	return p, nil
}

// Close ends every subscription (their Err reports sync.ErrClosed), closes
// the pub/sub connection and waits for the hub's goroutines to exit. It does
// not close the Redis client. It is idempotent.
func (h *Hub) Close() error {
	var err error
	h.life.Lock()
	h.once.Do(func() {
		close(h.closed)
		err = h.pubsub.Close()
	})
	h.life.Unlock()
	<-h.listener
	h.subs.Wait()
	if err != nil {
		return fmt.Errorf("redisnotify: closing pub/sub: %w", err)
	}
	return nil
}

// redisLog is the Hub seen as a sync.Log.
type redisLog struct{ h *Hub }

// Read implements sync.Log: from the wake-up cache when it can answer,
// otherwise the range after "after" and the newest entry in one MULTI, so the
// events and the newest id are one snapshot.
func (l redisLog) Read(ctx context.Context, session string, after uint64, limit int) ([]sync.Event, uint64, error) {
	// The cache's answers are contiguous from after+1 (or "up to date"),
	// so they are valid snapshots for the caller's purpose; a wake-up that
	// was lost is found by the next Read, which goes to Redis.
	if events, latest, ok := l.h.waits.Cached(session, after, limit); ok {
		return events, latest, nil
	}
	events, latest, _, err := l.h.readStream(ctx, session, after, limit)
	return events, latest, err
}

// readStream reads the range after "after" and the newest entry in one
// MULTI, so the events and the newest id are one snapshot, and returns the
// history token of the newest entry ("" when it has none or the stream does
// not exist, latest 0).
func (h *Hub) readStream(ctx context.Context, session string, after uint64, limit int) ([]sync.Event, uint64, string, error) {
	stream, _ := h.keys(session)
	var xr, newest *redis.XMessageSliceCmd
	_, err := h.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		xr = p.XRangeN(ctx, stream, "0-"+strconv.FormatUint(after+1, 10), "+", int64(limit))
		newest = p.XRevRangeN(ctx, stream, "+", "-", 1)
		return nil
	})
	if err != nil {
		return nil, 0, "", err
	}
	var latest uint64
	var gen string
	if top := newest.Val(); len(top) > 0 {
		if latest, err = entryID(top[0].ID); err != nil {
			return nil, 0, "", err
		}
		gen, _ = top[0].Values["g"].(string)
	}
	// Cached wake-ups newer than this snapshot belong to a previous history
	// (the stream was lost and started again), unless they carry this
	// history's token: then they only raced the read, and dropping them
	// would send the next reads to Redis too.
	if wg, ok := h.wakeGen(session); !ok || wg != gen || latest == 0 {
		h.waits.ForgetNewerThan(session, latest)
	}
	msgs := xr.Val()
	events := make([]sync.Event, 0, len(msgs))
	for _, m := range msgs {
		ev, err := decode(m)
		if err != nil {
			return nil, 0, "", err
		}
		events = append(events, ev)
	}
	return events, latest, gen, nil
}

// entryID parses a stream entry id "0-<event id>".
func entryID(s string) (uint64, error) {
	ms, seq, ok := strings.Cut(s, "-")
	id, err := strconv.ParseUint(seq, 10, 64)
	if !ok || ms != "0" || err != nil || id == 0 {
		return 0, &corruptError{fmt.Errorf("unexpected stream entry id %q", s)}
	}
	return id, nil
}

func decode(m redis.XMessage) (sync.Event, error) {
	id, err := entryID(m.ID)
	if err != nil {
		return sync.Event{}, err
	}
	raw, ok := m.Values["e"].(string)
	if !ok {
		return sync.Event{}, &corruptError{fmt.Errorf("stream entry %s has no event", m.ID)}
	}
	var ev sync.Event
	if err := json.Unmarshal([]byte(raw), &ev); err != nil {
		return sync.Event{}, &corruptError{fmt.Errorf("stream entry %s: %w", m.ID, err)}
	}
	ev.ID = id
	return ev, nil
}

// Wait implements sync.Log: the channel is closed by the next wake-up for the
// session, from this instance's Publish or any instance's pub/sub message.
func (l redisLog) Wait(session string) (<-chan struct{}, func()) { return l.h.waits.Wait(session) }

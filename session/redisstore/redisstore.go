// Package redisstore is a [session.Store], [session.Limiter],
// [session.SingleUse], [session.Roster] and [session.Idempotency] on Redis,
// for running many instances behind a load balancer. It takes a
// redis.UniversalClient, so one code path serves a single node, Sentinel
// and Cluster: every operation touches exactly one key.
//
// Each session is one hash under "<prefix>session:<id>" holding the record
// as JSON (field d) and its version (field v). Update is optimistic: it
// reads the record, runs the caller's function, and writes with a Lua
// compare-and-set on the version, retrying when another writer got in
// first, so concurrent writers never lose each other's changes. That is two
// round trips, like a plain GET and SET (WATCH/MULTI/EXEC/UNWATCH takes
// four). Writers to one session within one process take turns on a striped
// local lock first, so retries happen only between processes. Every write sets the key's time-to-live to the session's
// ExpiresAt plus the grace period, so the TTL moves in step with the
// inactivity expiry and Redis discards abandoned sessions by itself.
//
// Errors: when Redis cannot be reached or cannot serve the command for now
// (connection refused or reset, a dial, read or pool timeout of the client,
// or a LOADING, READONLY, MASTERDOWN, CLUSTERDOWN, TRYAGAIN, BUSY,
// NOREPLICAS, OOM or max-clients reply), methods return an error wrapping
// session.ErrUnavailable and go-redis's error. Other replies (WRONGTYPE,
// NOAUTH, NOPERM...), a closed client and a corrupt record are not outages.
// Give the client timeouts and retries that suit a request: they bound how
// long a call waits for a Redis that is down.
//
// Session records hold patient identifiers (patient id and NHI): use a
// Redis reached over TLS with authentication, and no persistence to
// unencrypted disk. Codes and phone tokens are stored only as hashes, and
// rate-limit keys hold hashes of client addresses.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/clinicpro/clinicalimages/internal/redisx"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/internal/backend"
)

// Defaults.
const (
	DefaultPrefix     = "clinicalimages:"
	DefaultGrace      = time.Hour // an expired session reads as ErrExpired this long, then is gone
	DefaultMaxRetries = 1000      // optimistic-transaction attempts before Update gives up with ErrConflict
)

// Store is a session.Store and session.Limiter on Redis. It is safe for
// concurrent use by any number of goroutines and processes. It does not own
// the client: closing it is the caller's job.
type Store struct {
	c          redis.UniversalClient
	prefix     string
	now        func() time.Time
	grace      time.Duration
	maxRetries int
	log        *slog.Logger
	// stripes serialise same-process updates of one session (by id hash),
	// so an optimistic write only races writers in other processes.
	stripes [64]chan struct{}
}

var (
	_ session.Store     = (*Store)(nil)
	_ session.Limiter   = (*Store)(nil)
	_ session.SingleUse = (*Store)(nil)
	_ session.Roster    = (*Store)(nil)
)

// Option configures a Store.
type Option func(*Store) error

// WithPrefix sets the prefix of every key the Store writes (default
// DefaultPrefix). Use it to share one Redis between applications or tests.
func WithPrefix(p string) Option {
	return func(s *Store) error {
		if p == "" {
			return errors.New("redisstore: WithPrefix: empty prefix")
		}
		s.prefix = p
		return nil
	}
}

// WithClock sets the clock used for expiry decisions and TTLs (default
// time.Now). Give the Manager the same clock.
func WithClock(now func() time.Time) Option {
	return func(s *Store) error {
		if now == nil {
			return errors.New("redisstore: WithClock: nil clock")
		}
		s.now = now
		return nil
	}
}

// WithGrace sets how long an expired session is kept, reading as
// session.ErrExpired, before Redis discards it (default DefaultGrace).
func WithGrace(d time.Duration) Option {
	return func(s *Store) error {
		if d <= 0 {
			return fmt.Errorf("redisstore: WithGrace: %v is not positive", d)
		}
		s.grace = d
		return nil
	}
}

// WithMaxRetries sets how many times Update retries a transaction that lost
// a race (default DefaultMaxRetries).
func WithMaxRetries(n int) Option {
	return func(s *Store) error {
		if n <= 0 {
			return fmt.Errorf("redisstore: WithMaxRetries: %d is not positive", n)
		}
		s.maxRetries = n
		return nil
	}
}

// WithLogger sets the logger (default: discard). Only session ids and
// error kinds are logged.
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) error {
		if l == nil {
			return errors.New("redisstore: WithLogger: nil logger")
		}
		s.log = l
		return nil
	}
}

// New returns a Store on c.
func New(c redis.UniversalClient, opts ...Option) (*Store, error) {
	if c == nil {
		return nil, errors.New("redisstore: nil client")
	}
	s := &Store{
		c: c, prefix: DefaultPrefix, now: time.Now, grace: DefaultGrace,
		maxRetries: DefaultMaxRetries, log: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("redisstore: nil option")
		}
		if err := o(s); err != nil {
			return nil, err
		}
	}
	for i := range s.stripes {
		s.stripes[i] = make(chan struct{}, 1)
	}
	return s, nil
}

func (s *Store) key(id string) string { return s.prefix + "session:" + id }

// ttl is how long Redis should keep a record written now.
func (s *Store) ttl(rec *session.Session) time.Duration {
	return max(rec.ExpiresAt.Add(s.grace).Sub(s.now()), time.Millisecond)
}

// decode reads a stored record and applies the expiry contract.
func (s *Store) decode(data []byte) (*session.Session, error) {
	var rec session.Session
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("redisstore: corrupt session record: %w", err)
	}
	now := s.now()
	switch {
	case !now.Before(rec.ExpiresAt.Add(s.grace)):
		return nil, fmt.Errorf("%w: session", session.ErrNotFound)
	case rec.Expired(now):
		return nil, fmt.Errorf("%w: session", session.ErrExpired)
	}
	return &rec, nil
}

// wrap names the operation in err. A failure of Redis itself (see
// unavailable) also wraps session.ErrUnavailable, unless the caller's
// context is done: then the context's error is what the caller asked for
// and is in the chain instead.
func wrap(ctx context.Context, op string, err error) error {
	return backend.Wrap(ctx, "redisstore", op, err, redisx.Transient)
}

// Create implements session.Store with SET NX.
func (s *Store) Create(ctx context.Context, rec *session.Session) error {
	if err := ctx.Err(); err != nil {
		return wrap(ctx, "create", err)
	}
	if rec == nil || !session.ValidID(rec.ID) {
		return fmt.Errorf("%w: malformed session id", session.ErrInvalidID)
	}
	c := rec.Clone()
	c.Version = 1
	data, err := json.Marshal(c)
	if err != nil {
		return wrap(ctx, "create", err)
	}
	ok, err := createScript.Run(ctx, s.c, []string{s.key(rec.ID)}, data, s.ttl(c).Milliseconds()).Int()
	if err != nil {
		return wrap(ctx, "create", err)
	}
	if ok != 1 {
		return fmt.Errorf("%w: session id exists", session.ErrConflict)
	}
	rec.Version = 1
	return nil
}

// Get implements session.Store.
func (s *Store) Get(ctx context.Context, id string) (*session.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrap(ctx, "get", err)
	}
	if !session.ValidID(id) {
		return nil, fmt.Errorf("%w: session", session.ErrNotFound)
	}
	data, err := s.c.HGet(ctx, s.key(id), "d").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w: session", session.ErrNotFound)
	}
	if err != nil {
		return nil, wrap(ctx, "get", err)
	}
	return s.decode(data)
}

// Update implements session.Store optimistically: fn runs once per
// attempt, and the write lands only if the version read is still the stored
// one. After WithMaxRetries lost races it returns an error wrapping
// session.ErrConflict.
func (s *Store) Update(ctx context.Context, id string, fn func(*session.Session) error) (*session.Session, error) {
	if !session.ValidID(id) {
		return nil, fmt.Errorf("%w: session", session.ErrNotFound)
	}
	key := s.key(id)
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	stripe := s.stripes[h.Sum32()%uint32(len(s.stripes))]
	select {
	case stripe <- struct{}{}:
		defer func() { <-stripe }()
	case <-ctx.Done():
		return nil, wrap(ctx, "update", ctx.Err())
	}
	for attempt := range s.maxRetries {
		rec, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		version := rec.Version
		if err := fn(rec); err != nil {
			return nil, err
		}
		if rec.ID != id {
			return nil, fmt.Errorf("%w: update changed the session id", session.ErrConflict)
		}
		rec.Version = version + 1
		enc, err := json.Marshal(rec)
		if err != nil {
			return nil, wrap(ctx, "update", err)
		}
		if err := ctx.Err(); err != nil {
			return nil, wrap(ctx, "update", err)
		}
		res, err := casScript.Run(ctx, s.c, []string{key}, version, rec.Version, enc, s.ttl(rec).Milliseconds()).Int()
		if err != nil {
			return nil, wrap(ctx, "update", err)
		}
		switch res {
		case 1:
			return rec, nil
		case -1:
			return nil, fmt.Errorf("%w: session", session.ErrNotFound)
		}
		// Another writer won this round. Back off with full jitter,
		// doubling the ceiling up to ~13 ms, so a crowd of writers spreads
		// out instead of colliding again.
		d := time.Duration(rand.Int64N(int64(200*time.Microsecond) << min(attempt, 6)))
		select {
		case <-ctx.Done():
			return nil, wrap(ctx, "update", ctx.Err())
		case <-time.After(d):
		}
	}
	s.log.WarnContext(ctx, "update gave up after repeated conflicts", "session", id, "attempts", s.maxRetries)
	return nil, fmt.Errorf("%w: too much contention on the session", session.ErrConflict)
}

// createScript stores a new record unless the key exists.
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', 1, 'd', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// casScript writes a record only if its stored version is the one read:
// 1 written, 0 lost a race, -1 the record is gone.
var casScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
if v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// Delete implements session.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return wrap(ctx, "delete", err)
	}
	if !session.ValidID(id) {
		return nil
	}
	if err := s.c.Del(ctx, s.key(id)).Err(); err != nil {
		return wrap(ctx, "delete", err)
	}
	return nil
}

// The limiter keeps a hash {n, until} per key; until is in the Store's
// clock (so windows follow an injected clock), and a real PEXPIRE of the
// window length makes Redis drop the key by itself.
var failScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local untilms = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if untilms <= now then
  redis.call('HSET', KEYS[1], 'n', 0, 'until', now + tonumber(ARGV[2]))
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('HINCRBY', KEYS[1], 'n', 1)
`)

func (s *Store) limitKey(key string) string { return s.prefix + "limit:" + key }

// Failures implements session.Limiter.
func (s *Store) Failures(ctx context.Context, key string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, wrap(ctx, "failures", err)
	}
	vals, err := s.c.HMGet(ctx, s.limitKey(key), "n", "until").Result()
	if err != nil {
		return 0, wrap(ctx, "failures", err)
	}
	n, _ := vals[0].(string)
	until, _ := vals[1].(string)
	u, err := strconv.ParseInt(until, 10, 64)
	if err != nil || u <= s.now().UnixMilli() {
		return 0, nil
	}
	count, err := strconv.ParseInt(n, 10, 64)
	if err != nil {
		return 0, nil
	}
	return count, nil
}

// Fail implements session.Limiter atomically with a Lua script.
func (s *Store) Fail(ctx context.Context, key string, window time.Duration) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, wrap(ctx, "fail", err)
	}
	if window < time.Millisecond {
		return 0, fmt.Errorf("redisstore: fail: window %v is shorter than a millisecond", window)
	}
	n, err := failScript.Run(ctx, s.c, []string{s.limitKey(key)}, s.now().UnixMilli(), window.Milliseconds()).Int64()
	if err != nil {
		return 0, wrap(ctx, "fail", err)
	}
	return n, nil
}

func (s *Store) onceKey(key string) string     { return s.prefix + "once:" + key }
func (s *Store) rosterKey(group string) string { return s.prefix + "roster:" + group }

// FirstUse implements session.SingleUse with SET NX PX: exactly one caller
// across every process sharing the Redis sees true within ttl. The ttl is
// real time in Redis (not the Store's clock).
func (s *Store) FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, wrap(ctx, "first use", err)
	}
	if ttl < time.Millisecond {
		return false, fmt.Errorf("redisstore: first use: ttl %v is shorter than a millisecond", ttl)
	}
	err := s.c.SetArgs(ctx, s.onceKey(key), "1", redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, wrap(ctx, "first use", err)
	}
	return true, nil
}

// joinScript lists a member in a group (a sorted set scored by until, in
// milliseconds of the Store's clock) unless it is new and limit members are
// live. Members lapsed for longer than the grace are dropped on the way;
// the key lives until its latest until plus the grace.
// KEYS[1] group; ARGV: now, member, until, limit, grace (ms).
var joinScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local untilms = tonumber(ARGV[3])
local grace = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - grace)
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  local live = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
  if live >= tonumber(ARGV[4]) then return 0 end
end
redis.call('ZADD', KEYS[1], untilms, ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local ttl = tonumber(last[2]) - now + grace
if ttl < 1 then ttl = 1 end
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
`)

// Join implements session.Roster atomically with a Lua script.
func (s *Store) Join(ctx context.Context, group, member string, until time.Time, limit int) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, wrap(ctx, "join", err)
	}
	if limit <= 0 {
		return false, fmt.Errorf("redisstore: join: limit %d is not positive", limit)
	}
	n, err := joinScript.Run(ctx, s.c, []string{s.rosterKey(group)},
		s.now().UnixMilli(), member, until.UnixMilli(), limit, s.grace.Milliseconds()).Int()
	if err != nil {
		return false, wrap(ctx, "join", err)
	}
	return n == 1, nil
}

// Lapsed implements session.Roster.
func (s *Store) Lapsed(ctx context.Context, group string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, wrap(ctx, "lapsed", err)
	}
	out, err := s.c.ZRangeByScore(ctx, s.rosterKey(group), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(s.now().UnixMilli(), 10)}).Result()
	if err != nil {
		return nil, wrap(ctx, "lapsed", err)
	}
	return out, nil
}

// Leave implements session.Roster.
func (s *Store) Leave(ctx context.Context, group, member string) error {
	if err := ctx.Err(); err != nil {
		return wrap(ctx, "leave", err)
	}
	if err := s.c.ZRem(ctx, s.rosterKey(group), member).Err(); err != nil {
		return wrap(ctx, "leave", err)
	}
	return nil
}

// Package memory provides the in-process [session.Store], [session.Limiter],
// [session.SingleUse], [session.Roster], [session.Idempotency] and [session.BlobStore]: the embedded default for a single instance, and
// the fast fakes for tests. State lives only as long as the values do;
// running several instances behind a load balancer needs the Redis and S3
// implementations instead.
package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/clinicpro/clinicalimages/session"
)

// DefaultGrace is how long the Store keeps an expired session (answering
// ErrExpired) before it may discard it (then ErrNotFound).
const DefaultGrace = time.Hour

// Option configures a Store or BlobStore.
type Option func(*config) error

type config struct {
	now   func() time.Time
	grace time.Duration
}

func newConfig(opts []Option) (config, error) {
	c := config{now: time.Now, grace: DefaultGrace}
	for _, o := range opts {
		if o == nil {
			return c, errors.New("memory: nil option")
		}
		if err := o(&c); err != nil {
			return c, err
		}
	}
	return c, nil
}

// WithClock sets the clock used for expiry and modification times.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("memory: WithClock: nil clock")
		}
		c.now = now
		return nil
	}
}

// WithGrace sets how long an expired session is kept (reading as
// session.ErrExpired) before Purge or a later read discards it. It must be
// positive; the default is DefaultGrace.
func WithGrace(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("memory: WithGrace: %v is not positive", d)
		}
		c.grace = d
		return nil
	}
}

// Store is an in-memory session.Store, session.Limiter, session.SingleUse,
// session.Roster and session.Idempotency. It is safe for
// concurrent use. The zero value is not usable; call NewStore.
type Store struct {
	cfg config

	mu       sync.Mutex
	sessions map[string]*session.Session
	counters map[string]counter
	once     map[string]time.Time            // single-use key -> until
	rosters  map[string]map[string]time.Time // group -> member -> until

	uploads map[uploadKey]session.UploadRecord // see idempotency.go
}

type counter struct {
	n     int64
	until time.Time
}

var (
	_ session.Store     = (*Store)(nil)
	_ session.Purger    = (*Store)(nil)
	_ session.Limiter   = (*Store)(nil)
	_ session.SingleUse = (*Store)(nil)
	_ session.Roster    = (*Store)(nil)
)

// NewStore returns an empty Store. Options: WithClock, WithGrace.
func NewStore(opts ...Option) (*Store, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return &Store{cfg: c, sessions: map[string]*session.Session{}, counters: map[string]counter{},
		once: map[string]time.Time{}, rosters: map[string]map[string]time.Time{}}, nil
}

// lookup returns the live record for id, discarding it if its grace period
// has passed. Callers hold s.mu.
func (s *Store) lookup(id string) (*session.Session, error) {
	rec, ok := s.sessions[id]
	if !ok {
		return nil, fmt.Errorf("%w: session", session.ErrNotFound)
	}
	now := s.cfg.now()
	if rec.Expired(now) {
		if !now.Before(rec.ExpiresAt.Add(s.cfg.grace)) {
			delete(s.sessions, id)
			return nil, fmt.Errorf("%w: session", session.ErrNotFound)
		}
		return nil, fmt.Errorf("%w: session", session.ErrExpired)
	}
	return rec, nil
}

// Create implements session.Store.
func (s *Store) Create(ctx context.Context, sess *session.Session) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: create: %w", err)
	}
	if err := checkSession(sess); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.lookup(sess.ID); !errors.Is(err, session.ErrNotFound) {
		return fmt.Errorf("%w: session id exists", session.ErrConflict)
	}
	sess.Version = 1
	s.sessions[sess.ID] = sess.Clone()
	return nil
}

// Get implements session.Store.
func (s *Store) Get(ctx context.Context, id string) (*session.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: get: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	return rec.Clone(), nil
}

// Update implements session.Store. fn runs under the store's lock, once.
func (s *Store) Update(ctx context.Context, id string, fn func(*session.Session) error) (*session.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: update: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	next := rec.Clone()
	if err := fn(next); err != nil {
		return nil, err
	}
	if next.ID != id {
		return nil, fmt.Errorf("%w: update changed the session id", session.ErrConflict)
	}
	next.Version = rec.Version + 1
	s.sessions[id] = next
	return next.Clone(), nil
}

// Delete implements session.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: delete: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, id)
	return nil
}

// Purge implements session.Purger: it discards sessions whose grace period
// has passed and limiter windows that have closed.
func (s *Store) Purge(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: purge: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.now()
	n := 0
	for id, rec := range s.sessions {
		if !now.Before(rec.ExpiresAt.Add(s.cfg.grace)) {
			delete(s.sessions, id)
			n++
		}
	}
	for k, c := range s.counters {
		if !now.Before(c.until) {
			delete(s.counters, k)
		}
	}
	for k, until := range s.once {
		if !now.Before(until) {
			delete(s.once, k)
		}
	}
	for g, members := range s.rosters {
		for m, until := range members {
			if !now.Before(until.Add(s.cfg.grace)) {
				delete(members, m)
			}
		}
		if len(members) == 0 {
			delete(s.rosters, g)
		}
	}
	s.purgeUploads(now)
	return n, nil
}

// Len returns the number of records held, expired or not: a test hook for
// proving that nothing remains.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions) + len(s.counters) + len(s.once) + len(s.rosters) + len(s.uploads)
}

// FirstUse implements session.SingleUse.
func (s *Store) FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("memory: first use: %w", err)
	}
	if ttl < time.Millisecond {
		return false, fmt.Errorf("memory: first use: ttl %v is shorter than a millisecond", ttl)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.now()
	if until, ok := s.once[key]; ok && now.Before(until) {
		return false, nil
	}
	s.once[key] = now.Add(ttl)
	return true, nil
}

// Join implements session.Roster. Members lapsed for longer than the
// store's grace are forgotten on the way.
func (s *Store) Join(ctx context.Context, group, member string, until time.Time, limit int) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("memory: join: %w", err)
	}
	if limit <= 0 {
		return false, fmt.Errorf("memory: join: limit %d is not positive", limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.now()
	members := s.rosters[group]
	if members == nil {
		members = map[string]time.Time{}
		s.rosters[group] = members
	}
	if _, ok := members[member]; !ok {
		live := 0
		for m, u := range members {
			switch {
			case u.After(now):
				live++
			case !now.Before(u.Add(s.cfg.grace)):
				delete(members, m)
			}
		}
		if live >= limit {
			return false, nil
		}
	}
	members[member] = until
	return true, nil
}

// Lapsed implements session.Roster.
func (s *Store) Lapsed(ctx context.Context, group string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: lapsed: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.now()
	var out []string
	for m, u := range s.rosters[group] {
		if !u.After(now) {
			out = append(out, m)
		}
	}
	return out, nil
}

// Leave implements session.Roster.
func (s *Store) Leave(ctx context.Context, group, member string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: leave: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if members := s.rosters[group]; members != nil {
		delete(members, member)
		if len(members) == 0 {
			delete(s.rosters, group)
		}
	}
	return nil
}

// Failures implements session.Limiter.
func (s *Store) Failures(ctx context.Context, key string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: failures: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.counters[key]
	if !ok || !s.cfg.now().Before(c.until) {
		return 0, nil
	}
	return c.n, nil
}

// Fail implements session.Limiter.
func (s *Store) Fail(ctx context.Context, key string, window time.Duration) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory: fail: %w", err)
	}
	if window <= 0 {
		return 0, fmt.Errorf("memory: fail: window %v is not positive", window)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.now()
	c, ok := s.counters[key]
	if !ok || !now.Before(c.until) {
		c = counter{until: now.Add(window)}
	}
	c.n++
	s.counters[key] = c
	return c.n, nil
}

func checkSession(s *session.Session) error {
	if s == nil {
		return fmt.Errorf("%w: nil session", session.ErrInvalidID)
	}
	if !session.ValidID(s.ID) {
		return fmt.Errorf("%w: malformed session id", session.ErrInvalidID)
	}
	return nil
}

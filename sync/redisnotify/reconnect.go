package redisnotify

import (
	"context"
	"errors"
	"math/rand/v2"
	gosync "sync"
	"time"

	"github.com/clinicpro/clinicalimages/internal/redisx"
	"github.com/clinicpro/clinicalimages/sync"
)

// subLog is the sync.Log of one subscription: the Hub's stream and wake-ups
// plus what a subscription needs to outlive Redis restarts and lost
// connections. It retries failed reads (see [retryable]) and remembers the
// history token of the events it delivered so that a history lost while it
// was away ends in a Resync, not in silently continuing with a new
// history's ids. sync.Follow calls Read and Wait from the subscription's
// goroutine only, so its fields need no lock.
type subLog struct {
	h *Hub
	// gen is the history token of the events up to the cursor, when
	// genKnown: learnt from the first read that found the stream.
	gen      string
	genKnown bool
}

// initialBackoff is the first pause after a failed read.
const initialBackoff = 50 * time.Millisecond

// Read implements sync.Log.
func (s *subLog) Read(ctx context.Context, session string, after uint64, limit int) ([]sync.Event, uint64, error) {
	// The token is checked after the cache is read: received records it
	// before caching, so an event of another history in the cache means
	// the token no longer matches. A subscription that does not know its
	// history yet adopts the wake-ups' (ids alone decide, as below).
	if events, latest, ok := s.h.waits.Cached(session, after, limit); ok {
		if gen, ok := s.h.wakeGen(session); ok && (after == 0 || !s.genKnown || gen == s.gen) {
			s.gen, s.genKnown = gen, true
			return events, latest, nil
		}
	}
	events, latest, gen, err := s.read(ctx, session, after, limit)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case after == 0 || !s.genKnown:
		// Nothing delivered yet from a known history: adopt this one
		// (ids alone decide, as for every sync.Log).
		s.gen, s.genKnown = gen, latest > 0
	case latest == 0 || gen != s.gen:
		// The history the cursor belongs to is gone. An empty answer
		// whose newest id differs from the cursor makes sync.Follow
		// deliver a Resync at that id and continue from it; when the new
		// history's newest id happens to equal the cursor, one less is
		// reported, so the Resync still happens and the newest event
		// follows it.
		s.h.cfg.logger.WarnContext(ctx, "redisnotify: session history was lost (Redis restarted or the stream expired); sending resync",
			"session", session, "after", after, "latest", latest)
		s.gen, s.genKnown = gen, latest > 0
		if latest == after {
			latest--
		}
		return nil, latest, nil
	}
	return events, latest, nil
}

// read reads the stream, retrying with backoff while the error is one that
// reconnecting may cure, until ctx ends or the hub is closed.
func (s *subLog) read(ctx context.Context, session string, after uint64, limit int) ([]sync.Event, uint64, string, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for failures := 0; ; failures++ {
		events, latest, gen, err := s.h.readStream(ctx, session, after, limit)
		if err == nil {
			if failures > 0 {
				s.h.cfg.logger.InfoContext(ctx, "redisnotify: subscription reached Redis again",
					"session", session, "after", after, "attempts", failures+1)
			}
			return events, latest, gen, nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, 0, "", ctxErr
		}
		if s.h.isClosed() {
			return nil, 0, "", sync.ErrClosed
		}
		if !retryable(err) {
			return nil, 0, "", err
		}
		if failures == 0 {
			s.h.cfg.logger.WarnContext(ctx, "redisnotify: subscription lost Redis; retrying",
				"session", session, "after", after, "err", err)
		}
		d := backoff(failures, s.h.cfg.backoff)
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil, 0, "", ctx.Err()
		case <-s.h.closed:
			return nil, 0, "", sync.ErrClosed
		}
	}
}

// backoff is the pause after the failures-th consecutive failure (0-based):
// doubling from initialBackoff up to limit, the upper half jittered so that
// the subscriptions of many instances do not reconnect in step.
func backoff(failures int, limit time.Duration) time.Duration {
	d := min(initialBackoff, limit)
	for range min(failures, 20) {
		if d >= limit/2 {
			d = limit
			break
		}
		d *= 2
	}
	d = min(d, limit)
	return d/2 + rand.N(d/2+1)
}

// Wait implements sync.Log: the hub's wake-ups for session, registered with
// the listener so that it tracks the session's history token.
func (s *subLog) Wait(session string) (<-chan struct{}, func()) {
	s.h.watchSession(session)
	ch, release := s.h.waits.Wait(session)
	var once gosync.Once
	return ch, func() {
		once.Do(func() {
			release()
			s.h.unwatchSession(session)
		})
	}
}

// corruptError marks a stream entry that cannot be decoded: reading it again
// will not help.
type corruptError struct{ err error }

func (e *corruptError) Error() string { return e.err.Error() }
func (e *corruptError) Unwrap() error { return e.err }

// retryable reports whether a failed read may succeed once Redis is back
// (see redisx.Transient: connection errors, an exhausted pool, and the
// replies of a server that is starting, failing over or overloaded). A
// closed client, an undecodable entry and any other error reply are final.
func retryable(err error) bool {
	var corrupt *corruptError
	return !errors.As(err, &corrupt) && redisx.Transient(err)
}

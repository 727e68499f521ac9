package sync

import (
	"context"
	"errors"
	"fmt"
	gosync "sync"
	"time"
)

// Log is the storage side of a hub, for implementers of [Subscriber] and
// [History]: the bounded, ordered history of each session plus a way to wait
// for it to grow. [Follow] and [ReadSince] build the package's delivery
// rules (replay, seamless live hand-over, Resync) on any Log, so every
// implementation behaves alike.
type Log interface {
	// Read returns up to limit retained events of session with an id
	// greater than after, oldest first and with contiguous ids, and the
	// session's newest id (0 for a session with no history). The two must
	// be one consistent snapshot: no event newer than latest; an empty
	// result with latest > after means the events after "after" were
	// trimmed; latest < after means the history started again. An
	// implementation may answer from a cache that lags its store (empty,
	// latest == after, while newer events exist) provided that repeating
	// the Read soon reaches the store: [Follow] repeats it every
	// FollowConfig.Recheck.
	Read(ctx context.Context, session string, after uint64, limit int) (events []Event, latest uint64, err error)
	// Wait returns a channel that is closed when session may have new
	// events, armed from the moment Wait is called, and a release func that
	// must be called once the caller stops waiting. [Follow] takes the next
	// Wait before releasing the previous one, so a session with a live
	// subscription always has at least one holder (an implementation may
	// keep per-session state, such as a cache of recent events, for exactly
	// that long). A spurious wake-up is allowed; a missed one is tolerated
	// only because [Follow] re-reads every FollowConfig.Recheck.
	Wait(session string) (changed <-chan struct{}, release func())
}

// FollowConfig tunes [Follow]. Zero values mean the defaults.
type FollowConfig struct {
	// Done, when closed, ends the subscription with ErrClosed: the hub's
	// own shutdown signal.
	Done <-chan struct{}
	// Group, if set, counts the subscription's goroutine (Add before it
	// starts, Done when it has exited) so a hub's Close can wait for all.
	Group *gosync.WaitGroup
	// Buffer is the capacity of the Events channel (default 64).
	Buffer int
	// Batch is how many events one Read asks for (default 256).
	Batch int
	// Recheck is how long a quiet subscription waits before reading again
	// without a wake-up, bounding the delay a lost wake-up can cause
	// (default 2s).
	Recheck time.Duration
	// Now is the clock that stamps Resync events (default time.Now).
	Now func() time.Time
}

// Follow is the shared engine behind Subscribe: it starts one goroutine that
// reads log from after onwards and delivers events on the returned
// subscription, applying the package's delivery rules. The goroutine ends
// with the subscription (ctx, Close, cfg.Done, SessionExpired or a Read
// error); Subscription.Close waits for it.
func Follow(ctx context.Context, log Log, session string, after uint64, cfg FollowConfig) Subscription {
	if cfg.Buffer <= 0 {
		cfg.Buffer = 64
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	if cfg.Recheck <= 0 {
		cfg.Recheck = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(ctx)
	f := &follower{
		log:     log,
		session: session,
		cfg:     cfg,
		ch:      make(chan Event, cfg.Buffer),
		cancel:  cancel,
		exited:  make(chan struct{}),
	}
	if cfg.Group != nil {
		cfg.Group.Add(1)
	}
	go f.run(ctx, after)
	return f
}

type follower struct {
	log     Log
	session string
	cfg     FollowConfig
	ch      chan Event
	cancel  context.CancelFunc
	exited  chan struct{}

	mu     gosync.Mutex
	err    error
	closed bool // Close was called
}

var _ Subscription = (*follower)(nil)

// Events implements [Subscription].
func (f *follower) Events() <-chan Event { return f.ch }

// Err implements [Subscription].
func (f *follower) Err() error {
	// finish sets err before Events is closed, so a reader that saw the
	// close always sees the reason.
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Close implements [Subscription]: it cancels the goroutine and waits for it.
func (f *follower) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	<-f.exited
	return nil
}

func (f *follower) finish(ctx context.Context, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.closed:
		f.err = nil
	case err != nil:
		f.err = err
	case ctx.Err() != nil:
		f.err = ctx.Err()
	}
}

func (f *follower) run(ctx context.Context, cursor uint64) {
	var err error
	defer func() {
		if errors.Is(err, errStop) {
			err = nil
		}
		f.finish(ctx, err)
		f.cancel()
		close(f.ch)
		close(f.exited)
		if f.cfg.Group != nil {
			f.cfg.Group.Done()
		}
	}()
	timer := time.NewTimer(f.cfg.Recheck)
	defer timer.Stop()
	release := func() {}
	defer func() { release() }()
	for {
		select {
		case <-f.cfg.Done:
			err = ErrClosed
			return
		default:
		}
		changed, next := f.log.Wait(f.session)
		release()
		release = next
		events, latest, rerr := f.log.Read(ctx, f.session, cursor, f.cfg.Batch)
		if rerr != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("sync: reading session history: %w", rerr)
			}
			return
		}
		switch {
		case len(events) > 0 && events[0].ID == cursor+1:
			for _, ev := range events {
				if err = f.send(ctx, ev); err != nil {
					return
				}
				cursor = ev.ID
				if ev.Type == SessionExpired {
					err = ErrSessionExpired
					return
				}
			}
		case len(events) == 0 && latest == cursor:
			timer.Reset(f.cfg.Recheck)
			select {
			case <-changed:
			case <-timer.C:
			case <-ctx.Done():
			case <-f.cfg.Done:
			}
			if f.cfg.Done != nil {
				select {
				case <-f.cfg.Done:
					err = ErrClosed
					return
				default:
				}
			}
			if ctx.Err() != nil {
				return
			}
		default:
			to := resyncPoint(events, latest)
			if err = f.send(ctx, Event{ID: to, Session: f.session, Type: Resync, Time: f.cfg.Now()}); err != nil {
				return
			}
			cursor = to
		}
	}
}

// errStop ends run when the subscription's context ends; finish then reports
// the context's error (or nil after Close).
var errStop = errors.New("sync: subscription stopped")

// send delivers ev, returning ErrClosed if the hub closes first, or errStop
// if the subscription's context ends.
func (f *follower) send(ctx context.Context, ev Event) error {
	select {
	case f.ch <- ev:
		return nil
	case <-ctx.Done():
		return errStop
	case <-f.cfg.Done:
		return ErrClosed
	}
}

// ReadSince is the shared engine behind History.Since: it reads log after
// "after" and applies the package's delivery rules, returning a single
// Resync event where events were lost. limit is clamped to [1, 1000].
func ReadSince(ctx context.Context, log Log, session string, after uint64, limit int, now time.Time) ([]Event, error) {
	limit = min(max(limit, 1), 1000)
	events, latest, err := log.Read(ctx, session, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sync: reading session history: %w", err)
	}
	switch {
	case len(events) > 0 && events[0].ID == after+1:
		return events, nil
	case len(events) == 0 && latest == after:
		return []Event{}, nil
	default:
		return []Event{{ID: resyncPoint(events, latest), Session: session, Type: Resync, Time: now}}, nil
	}
}

// resyncPoint is where a subscriber resumes after a Resync: the newest id.
// A Log that breaks its contract (events newer than latest, say after a
// counter key was lost) still moves the cursor forward, never into a loop.
func resyncPoint(events []Event, latest uint64) uint64 {
	if n := len(events); n > 0 && events[n-1].ID > latest {
		return events[n-1].ID
	}
	return latest
}

// errIsEnd reports whether err is one of the normal ways a subscription ends.
func errIsEnd(err error) bool {
	return err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, ErrClosed) || errors.Is(err, ErrSessionExpired)
}

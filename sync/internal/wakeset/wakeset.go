// Package wakeset is the per-instance half of a distributed sync hub: it
// tracks which sessions have subscribers waiting on this instance, wakes
// them when a wake-up message arrives, and keeps the events those messages
// carried so that an up-to-date subscriber takes a new event without
// another round trip to the store. sync/redisnotify uses it; any other
// distributed hub can.
package wakeset

import (
	gosync "sync"

	"github.com/clinicpro/clinicalimages/sync"
)

// recentMax bounds the per-session cache of events taken from wake-ups.
const recentMax = 32

// Set is safe for concurrent use. Its zero value is not usable; call New.
type Set struct {
	mu      gosync.Mutex
	waiters map[string]*waiter
}

type waiter struct {
	ch     chan struct{}
	refs   int
	recent []sync.Event // contiguous ids, from wake-up messages; at most recentMax
	// claimed is the newest cached id that Cached has already reported as
	// "nothing newer"; the next Read at that id goes to the store, so a lost
	// wake-up is still found at the next recheck.
	claimed uint64
}

// New returns an empty Set.
func New() *Set { return &Set{waiters: make(map[string]*waiter)} }

// Wait implements sync.Log's Wait: the channel is closed by the next wake-up
// for the session; the session's state lives while someone holds it.
func (s *Set) Wait(session string) (<-chan struct{}, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.waiters[session]
	if w == nil {
		w = &waiter{ch: make(chan struct{})}
		s.waiters[session] = w
	}
	w.refs++
	var once gosync.Once
	return w.ch, func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			w.refs--
			if w.refs == 0 && s.waiters[session] == w {
				delete(s.waiters, session)
			}
		})
	}
}

// Watched reports whether session has waiters here, so a caller can skip
// decoding a wake-up nobody needs.
func (s *Set) Watched(session string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.waiters[session]
	return ok
}

// Wake wakes the session's waiters without telling them what changed.
func (s *Set) Wake(session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.waiters[session]; w != nil {
		close(w.ch)
		w.ch = make(chan struct{})
	}
}

// Received wakes the session's waiters and, when decoded is true, caches ev,
// which must be a stored event (never one a store may still refuse).
// Wake-ups must be passed in the order they arrived.
func (s *Set) Received(session string, ev sync.Event, decoded bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.waiters[session]
	if w == nil {
		return
	}
	close(w.ch)
	w.ch = make(chan struct{})
	if n := len(w.recent); !decoded || (n > 0 && ev.ID != w.recent[n-1].ID+1) {
		// Undecodable, a gap (lost messages) or ids that started again
		// (the history expired): only contiguous events may be served.
		clear(w.recent)
		w.recent = w.recent[:0]
		if !decoded {
			return
		}
	}
	if len(w.recent) == recentMax {
		w.recent[0] = sync.Event{}
		w.recent = append(w.recent[:0], w.recent[1:]...)
	}
	w.recent = append(w.recent, ev)
}

// Cached answers a sync.Log Read from the cache when it can: the events
// after "after" when it holds the very next one, or "up to date" (no events,
// latest == after) once per newest cached id. ok is false when the store
// must answer.
func (s *Set) Cached(session string, after uint64, limit int) (events []sync.Event, latest uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.waiters[session]
	if w == nil || len(w.recent) == 0 {
		return nil, 0, false
	}
	first, last := w.recent[0].ID, w.recent[len(w.recent)-1].ID
	switch {
	case after == last && w.claimed != last:
		w.claimed = last
		return nil, after, true
	case after+1 < first || after+1 > last:
		return nil, 0, false
	}
	i := int(after + 1 - first)
	events = append([]sync.Event(nil), w.recent[i:min(i+limit, len(w.recent))]...)
	return events, events[len(events)-1].ID, true
}

// ForgetNewerThan empties the cache if it holds ids above latest, which the
// store just said do not exist: the history expired and started again, so
// the cache belongs to a previous life of the session. (It may also be a
// wake-up that raced the read; dropping the cache then only costs a round
// trip.)
func (s *Set) ForgetNewerThan(session string, latest uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.waiters[session]; w != nil && len(w.recent) > 0 && w.recent[len(w.recent)-1].ID > latest {
		clear(w.recent)
		w.recent = w.recent[:0]
	}
}

// Package storetest is the conformance suite for session.Store and
// session.BlobStore implementations, in the manner of testing/fstest: any
// implementation, ours or a user's, calls [TestStore] or [TestBlobStore]
// from its own tests.
//
//	func TestConformance(t *testing.T) {
//		storetest.TestStore(t, func(t *testing.T, now func() time.Time) session.Store {
//			return mystore.New(..., mystore.WithClock(now))
//		})
//	}
//
// The suites check not-found and expired reads, overwrites, atomic updates
// under contention (100 writers, 20 racing commit claims), expiry with an
// injected clock, cancelled contexts, idempotent deletes, streaming a large
// body with bounded memory, key-escape attempts and the handoff rules
// (single use, expiry, wrong codes, rate limits) as the session.Manager
// runs them on the store. Optional capabilities have suites of their own:
// [TestSingleUse], [TestRoster], [TestIdempotency] (idempotency records:
// one claim among racing callers, claim-then-fill, lease takeover, expiry)
// and [TestIdempotentUploads] (the Manager's idempotent uploads over two
// Managers sharing the stores, as two instances do).
package storetest

import (
	"sync"
	"time"
)

// Clock is a manual clock for expiry tests. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time. Pass the method value (c.Now) as a clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

package session

import (
	"context"
	"io"
	"time"
)

// Store keeps sessions. Implementations must be safe for concurrent use by
// many goroutines and, for shared backends, by many processes at once.
//
// Expiry contract: a record whose ExpiresAt is not after the store's clock
// is expired. Get and Update return an error wrapping [ErrExpired] for it
// (Update without calling fn) for as long as the store keeps the record, and
// [ErrNotFound] once the store has discarded it. A store keeps an expired
// record for a grace period of its own choosing and then discards it by
// itself (a TTL) or when [Purger.Purge] is called.
//
// Every method returns the context's error (wrapped) if ctx is done before
// the operation takes effect.
//
// Errors: when the backing service cannot be reached or fails (connection
// refused or reset, a timeout of the store's own client, a server that is
// loading, read-only or out of memory), a method returns an error wrapping
// [ErrUnavailable] and the backend's error, so errors.Is(err,
// ErrUnavailable) tells "retry later" apart from the named conditions
// (ErrNotFound, ErrExpired, ErrConflict...) and from the caller's own
// context error, which never wrap it. Any other error is unexpected (a
// corrupt record, a misconfigured client) and not to be retried blindly.
// Messages never hold patient data or credentials. session/storetest
// checks all of this.
type Store interface {
	// Create stores a new session. It sets s.Version to 1 on success. It
	// returns an error wrapping ErrConflict if a session with s.ID exists.
	Create(ctx context.Context, s *Session) error

	// Get returns a snapshot of the session. The caller owns the result.
	Get(ctx context.Context, id string) (*Session, error)

	// Update atomically reads the session, calls fn with a copy, and stores
	// the copy if fn returns nil, bumping Version. fn may be called more
	// than once when writers race, so it must have no side effects beyond
	// the session it is handed; an error from fn aborts the update and is
	// returned as is. fn must not change the session's ID. Update returns a
	// snapshot of the stored session.
	Update(ctx context.Context, id string, fn func(*Session) error) (*Session, error)

	// Delete removes the session. Deleting a missing session is not an
	// error.
	Delete(ctx context.Context, id string) error
}

// Purger is implemented by stores that discard expired records only when
// asked (the memory store); [Manager.Sweep] calls it. Stores with their own
// TTLs (Redis) need not implement it.
type Purger interface {
	// Purge discards records whose grace period after expiry has passed
	// and returns how many it discarded.
	Purge(ctx context.Context) (int, error)
}

// Limiter counts failures under a key in fixed windows, for rate limiting
// handoff claims. Implementations must be safe for concurrent use; shared
// ones (Redis) count across processes. Keys are made by the Manager and hold
// no secrets or addresses in clear.
// Like [Store], a shared limiter whose backend fails returns an error
// wrapping [ErrUnavailable].
type Limiter interface {
	// Failures returns the count of failures recorded under key in its
	// current window (0 if none).
	Failures(ctx context.Context, key string) (int64, error)

	// Fail records one failure under key and returns the new count. The
	// first failure opens a window of length window; the count resets when
	// it closes.
	Fail(ctx context.Context, key string, window time.Duration) (int64, error)
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Key         BlobKey
	Size        int64
	ContentType string
	// SHA256 and SHA1 are lower-case hex digests of the bytes. Put always
	// sets them. Stat and List set them when the backend stores them
	// (memory and fsblob do; s3blob does not) and leave them empty otherwise.
	SHA256  string
	SHA1    string
	ModTime time.Time
}

// BlobStore keeps image bytes for a short while. Implementations must be
// safe for concurrent use, must call [BlobKey.Validate] before any I/O, and
// must never hold a whole body in memory unless they are memory stores.
//
// Errors: when the backing service cannot be reached or fails (S3 refusing
// connections, answering 5xx or SlowDown, timing out; a disk that reports
// I/O errors, is full, read-only or no longer there), a method, and the
// reader Open returns, give an error wrapping [ErrUnavailable] and the
// backend's error. ErrNotFound, ErrInvalidKey, ErrSizeMismatch, an error of
// the reader given to Put and the caller's context error never wrap it, nor
// does an error the store does not recognise as a backend failure. Messages
// never hold patient data or credentials.
type BlobStore interface {
	// Put stores the bytes read from r under key, replacing any blob there.
	// size is the exact length when known, or 0 when unknown; a body that
	// does not match a non-zero size fails with ErrSizeMismatch and stores
	// nothing. A reader is never half-stored: a failed Put leaves the
	// previous blob, or none. Put does not close r.
	Put(ctx context.Context, key BlobKey, r io.Reader, size int64, contentType string) (BlobInfo, error)

	// Open returns a reader of the blob's bytes. The caller must close it.
	// A missing blob gives an error wrapping ErrNotFound.
	Open(ctx context.Context, key BlobKey) (io.ReadCloser, error)

	// Stat describes the blob, or returns an error wrapping ErrNotFound.
	Stat(ctx context.Context, key BlobKey) (BlobInfo, error)

	// Delete removes the blob. Deleting a missing blob is not an error.
	Delete(ctx context.Context, key BlobKey) error
}

// BlobLister is implemented by blob stores that can enumerate their blobs;
// [Manager.Sweep] uses it to find bytes whose session is gone or whose
// retention window has passed. All implementations in this module have it.
type BlobLister interface {
	// List calls fn for every blob in the store's namespace, in no
	// particular order, and stops at the first error fn returns (which List
	// returns). Blobs added or removed during a listing may or may not be
	// seen.
	List(ctx context.Context, fn func(BlobInfo) error) error
}

// SingleUse records keys that may be used only once: a launch pair or a
// launch token's jti. Implementations must be safe for concurrent use;
// shared ones (Redis) decide across processes, so exactly one caller in the
// whole deployment sees first == true for a key within its ttl. The memory
// and Redis stores implement it; the Service finds it on its Store by type
// assertion. Keys are made by the caller and hold no secrets in clear (the
// Service uses hashes). Like [Store], a shared implementation whose backend
// fails returns an error wrapping [ErrUnavailable], and then first is false.
type SingleUse interface {
	// FirstUse records key for ttl (at least a millisecond) and reports
	// whether it was not recorded already. Once ttl has passed the key may
	// be used again; callers choose a ttl at least as long as whatever the
	// key stands for stays valid.
	FirstUse(ctx context.Context, key string, ttl time.Duration) (first bool, err error)
}

// Roster counts the live members of named groups, for capping how many
// sessions one practitioner or one facility holds open at once. Each member
// has an expiry ("until", in the store's clock); a member counts as live
// while until is after the store's clock. A member whose until has passed is
// lapsed: it no longer counts, and it stays listed (see Lapsed) until it
// leaves, re-joins or the group itself expires, so that the caller can check
// whether the thing it stands for (a session whose inactivity expiry has
// moved on) is still alive and re-join it. Implementations must be safe for
// concurrent use; shared ones (Redis) decide Join atomically across
// processes. The memory and Redis stores implement it. Errors as for
// [Store]: a backend outage wraps [ErrUnavailable].
type Roster interface {
	// Join lists member in group until the given time, unless it is new
	// and limit or more members are live already: then it lists nothing
	// and returns false. A member already listed (live or lapsed) is
	// updated whatever the count. limit must be positive. The group is
	// kept at least until its latest until plus a grace of the store's
	// choosing.
	Join(ctx context.Context, group, member string, until time.Time, limit int) (joined bool, err error)

	// Lapsed returns the group's members whose until has passed, in no
	// particular order (none for an unknown group).
	Lapsed(ctx context.Context, group string) ([]string, error)

	// Leave removes member from group. Removing a missing member is not
	// an error.
	Leave(ctx context.Context, group, member string) error
}

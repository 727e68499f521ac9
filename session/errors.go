package session

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package and its
// implementations that callers are expected to branch on wraps one of these;
// test with errors.Is. None of them ever carries a token, a code or patient
// data in its text.
var (
	// ErrNotFound means the session, image or blob does not exist, or an
	// expired session has already been discarded.
	ErrNotFound = errors.New("session: not found")

	// ErrExpired means the session exists but has expired (idle timeout or
	// absolute lifetime); it is read-only and will be discarded.
	ErrExpired = errors.New("session: expired")

	// ErrConflict means a state change is not allowed from the record's
	// current state, or a record with the same id already exists.
	ErrConflict = errors.New("session: conflict")

	// ErrAlreadyCommitting means another caller holds the commit claim on the
	// image. It wraps ErrConflict.
	ErrAlreadyCommitting = fmt.Errorf("%w: image is already being committed", ErrConflict)

	// ErrAlreadyCommitted means the image has already landed in the patient's
	// record. It wraps ErrConflict.
	ErrAlreadyCommitted = fmt.Errorf("%w: image is already committed", ErrConflict)

	// ErrStaleClaim means a commit claim was overtaken (its lease passed and
	// another caller claimed the image again). It wraps ErrConflict.
	ErrStaleClaim = fmt.Errorf("%w: commit claim is no longer current", ErrConflict)

	// ErrInvalidCode means a handoff code is wrong, already used, replaced or
	// expired. The cases are deliberately not told apart.
	ErrInvalidCode = errors.New("session: invalid handoff code")

	// ErrInvalidToken means a phone token is malformed or does not match the
	// phone paired with its session.
	ErrInvalidToken = errors.New("session: invalid phone token")

	// ErrRevoked means the phone token was valid but the desktop revoked it.
	ErrRevoked = errors.New("session: phone access revoked")

	// ErrRateLimited means too many failed handoff claims for the session or
	// the client address; retry after the limiter's window.
	ErrRateLimited = errors.New("session: too many failed attempts")

	// ErrInvalidKey means a blob key was not made by [NewBlobKey]: it is
	// rejected before any I/O, so it cannot escape the store's namespace.
	ErrInvalidKey = errors.New("session: invalid blob key")

	// ErrInvalidID means a session or image id is not one this package made.
	ErrInvalidID = errors.New("session: invalid id")

	// ErrTooLarge means an image body exceeds the Manager's maximum size;
	// nothing was stored.
	ErrTooLarge = errors.New("session: image too large")

	// ErrTooManyImages means the session already lists the Manager's maximum
	// number of images (see [WithMaxImages]); nothing was stored.
	ErrTooManyImages = errors.New("session: too many images in the session")

	// ErrSizeMismatch means a blob's body was shorter or longer than the size
	// declared to Put; nothing was stored.
	ErrSizeMismatch = errors.New("session: blob size mismatch")

	// ErrUnavailable means the backing service could not be reached or
	// failed: retry later. Stores wrap it around the backend's own error
	// (connection refused or reset, a timeout of the store's client, Redis
	// LOADING or READONLY, an S3 5xx or SlowDown, a disk I/O error or a full
	// disk...), which stays in the chain for errors.As and logs. It is never
	// used for the conditions named above (not found, conflict, invalid key,
	// size mismatch...), for the caller's cancelled or expired context, or
	// for an error the store does not recognise as a backend failure (a
	// corrupt record, a misconfiguration), which callers should treat as a
	// bug rather than an outage.
	ErrUnavailable = errors.New("session: backing service unavailable")
)

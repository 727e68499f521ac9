package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Idempotent uploads. A client (the phone page, the desktop page) makes one
// idempotency key per photo and sends it with every attempt to upload that
// photo (the Idempotency-Key request header of the IETF draft
// draft-ietf-httpapi-idempotency-key-header). The first attempt that gets
// through makes the image; any later attempt with the same key in the same
// session (after a lost reply, a retry, a second tap, on any instance
// sharing the Store) gets that same image back and makes nothing. The same
// key with different bytes is refused with [ErrKeyReused].
//
// The record is claim-then-fill: an upload claims (session, key) together
// with the SHA-256 of the bytes it received before it stores anything, and
// fills the claim with the image id once the image is listed. A second
// request that finds a claim still pending waits (polling, up to
// [UploadWait]) for its outcome, takes the key over if the first gave up or
// its lease passed, or returns [ErrUploadInProgress], which the client
// retries. Two requests with one key therefore never both make an image.

// Errors of idempotent uploads. Each wraps ErrConflict.
var (
	// ErrUploadInProgress means another request with the same idempotency
	// key is still being processed: retry shortly (the HTTP layer answers
	// 409 with Retry-After, as the draft suggests for concurrent requests).
	ErrUploadInProgress = fmt.Errorf("%w: an upload with this idempotency key is in progress", ErrConflict)

	// ErrKeyReused means the idempotency key was used before in this
	// session with different bytes. Sending it again cannot succeed: the
	// client made a new photo under an old key (the HTTP layer answers 422,
	// as the draft says for a key reused with another payload).
	ErrKeyReused = fmt.Errorf("%w: idempotency key already used for different bytes", ErrConflict)

	// ErrUploadClaimLost means an upload's claim on its key is no longer
	// current: its lease passed and another request took the key over, or
	// the record is gone.
	ErrUploadClaimLost = fmt.Errorf("%w: upload claim is no longer current", ErrConflict)
)

// Idempotent-upload timings.
const (
	// UploadLease is how long a claim on a key stays pending before another
	// request may take the key over (the holder died). A claim is taken
	// after the body is received and normalised, so it covers only storing
	// the bytes and listing the image.
	UploadLease = 2 * time.Minute

	// UploadWait bounds how long a request waits for another request with
	// the same key to finish before it returns ErrUploadInProgress.
	UploadWait = 15 * time.Second

	// uploadPoll is how often a waiting request looks again. Stores shared
	// between processes have no notification for this; a photo's upload
	// takes about a second.
	uploadPoll = 100 * time.Millisecond
)

// MaxIdempotencyKeyLen is the longest idempotency key accepted.
const MaxIdempotencyKeyLen = 255

// ParseIdempotencyKey reads an Idempotency-Key header value: a structured
// field string ("...") as the draft defines it, or the same characters
// bare, as many clients send them. Keys are 1 to MaxIdempotencyKeyLen
// visible ASCII characters other than '"' and '\' (a UUID is typical).
// The error never repeats the value.
func ParseIdempotencyKey(v string) (string, error) {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if v == "" || len(v) > MaxIdempotencyKeyLen {
		return "", fmt.Errorf("%w: idempotency key must be 1 to %d characters", ErrInvalidID, MaxIdempotencyKeyLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return "", fmt.Errorf("%w: idempotency key holds a character other than visible ASCII", ErrInvalidID)
		}
	}
	return v, nil
}

// UploadRecord is what a store keeps under (session id, idempotency key).
type UploadRecord struct {
	// SHA256 is the lower-case hex digest of the bytes received with the
	// key (before normalising), so a replay can be told from a reuse.
	SHA256 string `json:"sha256"`
	// ImageID is the image the upload made; empty while it is in progress.
	ImageID string `json:"imageId,omitempty"`
	// Token identifies the claim that made the record (opaque, random).
	Token string `json:"token"`
	// Lease is when a pending claim may be taken over. Unused once done.
	Lease time.Time `json:"lease,omitzero"`
	// Expires is when the store may forget the record: the end of the
	// session's absolute lifetime.
	Expires time.Time `json:"expires"`
}

// Done reports whether the upload finished and made an image.
func (r UploadRecord) Done() bool { return r.ImageID != "" }

// Idempotency records idempotent uploads: the optional Store capability
// behind [Manager.AddImageOnce] and [Manager.AddPhoneImageOnce], found on a
// Store by type assertion like [SingleUse] and [Roster]. The memory and
// Redis stores implement it. Implementations must be safe for concurrent
// use; shared ones (Redis) decide ClaimUpload atomically across processes,
// so of any number of racing claims on one key exactly one sees claimed ==
// true. Times are in the store's clock. Keys are made by clients and hold
// no secrets or patient data; implementations may hash them. Errors as for
// [Store]: a backend outage wraps [ErrUnavailable], a done context is the
// caller's error. session/storetest.TestIdempotency checks all of this.
type Idempotency interface {
	// ClaimUpload records rec (ImageID empty; Token, Lease and Expires set)
	// under (sessionID, key) unless a record is there that is done or whose
	// lease has not passed: then it stores nothing and returns that record
	// with claimed false. A pending record whose lease has passed is
	// replaced (its holder is presumed dead). The record is kept until
	// rec.Expires.
	ClaimUpload(ctx context.Context, sessionID, key string, rec UploadRecord) (current UploadRecord, claimed bool, err error)

	// CompleteUpload fills the pending claim made with token with imageID.
	// It returns an error wrapping ErrUploadClaimLost if the record is
	// gone, done, or was claimed with another token.
	CompleteUpload(ctx context.Context, sessionID, key, token, imageID string) error

	// ReleaseUpload removes the pending claim made with token (its upload
	// failed), so the key may be used again. A done record, or one claimed
	// with another token, is left alone; a missing one is not an error.
	ReleaseUpload(ctx context.Context, sessionID, key, token string) error

	// LookupUpload returns the record under (sessionID, key), or an error
	// wrapping ErrNotFound if there is none (or it expired).
	LookupUpload(ctx context.Context, sessionID, key string) (UploadRecord, error)
}

// Idempotency returns the Store's [Idempotency] capability, if it has one.
func (m *Manager) Idempotency() (Idempotency, bool) {
	idem, ok := m.store.(Idempotency)
	return idem, ok
}

// UploadDone reports whether an upload under (sessionID, key) has finished
// and made an image, and with which bytes (the SHA-256 it recorded): a
// caller may then hash the body instead of normalising it and call
// AddImageOnce, which replays. found is false when no record is there,
// when it is pending, or when the Store has no [Idempotency].
func (m *Manager) UploadDone(ctx context.Context, sessionID, key string) (rec UploadRecord, found bool, err error) {
	idem, ok := m.Idempotency()
	if !ok {
		return UploadRecord{}, false, nil
	}
	rec, err = idem.LookupUpload(ctx, sessionID, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return UploadRecord{}, false, nil
	case err != nil:
		return UploadRecord{}, false, fmt.Errorf("session: upload lookup: %w", err)
	}
	return rec, rec.Done(), nil
}

// AddImageOnce is AddImage under an idempotency key: sum is the lower-case
// hex SHA-256 of the bytes the client sent (before normalising). The first
// call for (sessionID, key) adds the image; any later call, from any
// process sharing the Store, returns that image with replay true and adds
// nothing (u is not read). The same key with another sum fails with
// [ErrKeyReused]; a call that finds the first still in progress waits for
// it (up to [UploadWait], or until shortly before ctx's deadline) and then
// fails with [ErrUploadInProgress]; a cancelled ctx ends the wait with its
// own error.
// If the first failed, the key is free and the next call adds the image.
//
// A replayed image that the GP has since removed comes back with only its
// ID set. Without a Store [Idempotency] this is AddImage (no key is kept).
func (m *Manager) AddImageOnce(ctx context.Context, sessionID, key, sum string, u Upload) (img Image, replay bool, err error) {
	return m.addImageOnce(ctx, sessionID, key, sum, u, SourceDesktop, "", nil)
}

// AddPhoneImageOnce is [Manager.AddPhoneImage] under an idempotency key,
// with the promises of [Manager.AddImageOnce]. The token is checked before
// anything, on replays too.
func (m *Manager) AddPhoneImageOnce(ctx context.Context, token, key, sum string, u Upload) (img Image, replay bool, err error) {
	s, err := m.PhoneSession(ctx, token)
	if err != nil {
		return Image{}, false, err
	}
	sessionID, secret, _ := splitCredential(token)
	return m.addImageOnce(ctx, sessionID, key, sum, u, SourcePhone, hashSecret(secret), s)
}

// addImageOnce is AddImageOnce; read is the session as the caller has just
// read it, or nil.
func (m *Manager) addImageOnce(ctx context.Context, sessionID, key, sum string, u Upload, src Source, tokenHash string, read *Session) (Image, bool, error) {
	if _, err := ParseIdempotencyKey(key); err != nil {
		return Image{}, false, fmt.Errorf("session: add image: %w", err)
	}
	if sum == "" {
		return Image{}, false, errors.New("session: add image: the SHA-256 of the received bytes is required")
	}
	idem, ok := m.Idempotency()
	if !ok {
		m.log.DebugContext(ctx, "store keeps no idempotency records; key ignored", "session", sessionID)
		img, err := m.addImage(ctx, sessionID, u, src, tokenHash, read)
		return img, false, err
	}
	s := read
	if s == nil {
		var err error
		if s, err = m.store.Get(ctx, sessionID); err != nil {
			return Image{}, false, fmt.Errorf("session: add image: %w", err)
		}
	}
	token := NewID()
	var waited <-chan time.Time
	for {
		now := m.now()
		expires := s.CreatedAt.Add(m.maxLife)
		if min := now.Add(UploadLease); expires.Before(min) {
			expires = min
		}
		cur, claimed, err := idem.ClaimUpload(ctx, sessionID, key,
			UploadRecord{SHA256: sum, Token: token, Lease: now.Add(UploadLease), Expires: expires})
		if err != nil {
			if waited != nil && ctx.Err() != nil {
				err = waitEnded(ctx)
			}
			return Image{}, false, fmt.Errorf("session: add image: %w", err)
		}
		if claimed {
			break
		}
		if cur.SHA256 != sum {
			return Image{}, false, fmt.Errorf("session: add image: %w", ErrKeyReused)
		}
		if cur.Done() {
			img, err := m.replayed(ctx, sessionID, cur.ImageID, src, tokenHash)
			return img, true, err
		}
		// Pending: wait for its outcome, a release or a lapsed lease.
		if waited == nil {
			waited = time.After(waitBound(ctx))
		}
		select {
		case <-ctx.Done():
			return Image{}, false, fmt.Errorf("session: add image: %w", waitEnded(ctx))
		case <-waited:
			return Image{}, false, fmt.Errorf("session: add image: %w", ErrUploadInProgress)
		case <-time.After(uploadPoll):
		}
	}

	img, err := m.addImage(ctx, sessionID, u, src, tokenHash, s)
	// Cleanup runs with a context of its own: the caller's may be done.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err != nil {
		if rerr := idem.ReleaseUpload(cctx, sessionID, key, token); rerr != nil {
			m.log.WarnContext(ctx, "releasing an upload claim failed; its lease will free it", "session", sessionID, "error", rerr)
		}
		return Image{}, false, err
	}
	if err := idem.CompleteUpload(ctx, sessionID, key, token, img.ID); err != nil {
		// Unrecorded, the image could be made again by a retry: take it
		// back so the retry is the one that lands.
		if rerr := m.RemoveImage(cctx, sessionID, img.ID); rerr != nil {
			m.log.WarnContext(ctx, "removing an image whose upload record failed", "session", sessionID, "image", img.ID, "error", rerr)
		}
		_ = idem.ReleaseUpload(cctx, sessionID, key, token)
		return Image{}, false, fmt.Errorf("session: add image: %w", err)
	}
	return img, false, nil
}

// waitBound is how long to wait for another request's outcome: UploadWait,
// or less when ctx has a deadline sooner, so that a request with a deadline
// ends with ErrUploadInProgress (retry) rather than the deadline's error.
func waitBound(ctx context.Context) time.Duration {
	d := UploadWait
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, max(time.Until(dl)-uploadPoll, 0))
	}
	return d
}

// waitEnded is the error of a wait for another request's upload that ctx
// ended. A deadline that passed while waiting (waitBound leaves a margin, but
// a busy machine can overrun it) still means the other upload is in
// progress: the retryable error, as waitBound intends. A cancellation is
// the caller's own error.
func waitEnded(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrUploadInProgress
	}
	return ctx.Err()
}

// replayed returns the image a finished upload made, checking a phone's
// token again (a revoked phone learns nothing more).
func (m *Manager) replayed(ctx context.Context, sessionID, imageID string, src Source, tokenHash string) (Image, error) {
	s, err := m.store.Get(ctx, sessionID)
	if err != nil {
		return Image{}, fmt.Errorf("session: add image: %w", err)
	}
	if src == SourcePhone {
		if err := checkToken(s, tokenHash); err != nil {
			return Image{}, err
		}
	}
	if img := s.Image(imageID); img != nil {
		return *img, nil
	}
	return Image{ID: imageID}, nil
}

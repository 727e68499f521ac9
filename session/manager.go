package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Defaults for the Manager's options.
const (
	DefaultIdleTimeout  = 10 * time.Minute // session expiry after the last activity
	DefaultMaxLifetime  = 8 * time.Hour    // absolute cap on a session's life
	DefaultHandoffTTL   = 5 * time.Minute  // an unclaimed handoff code stops working
	DefaultRetention    = time.Hour        // image bytes are deleted this long after upload at the latest
	DefaultCommitLease  = 5 * time.Minute  // a commit claim older than this may be taken over
	DefaultClaimWindow  = 5 * time.Minute  // window for counting failed handoff claims
	DefaultSessionLimit = 5                // failed claims per session per window
	DefaultAddressLimit = 20               // failed claims per client address per window
	DefaultOrphanGrace  = 5 * time.Minute  // a blob not (yet) listed in its session is kept this long
	DefaultMaxImageSize = 64 << 20         // bytes; normalised photos are a few MB
	// DefaultMaxImages bounds the images one session lists. It is generous:
	// it bounds the size of a session record; a caller with a product limit
	// (the root package's Limits.MaxImagesPerSession) sets its own.
	DefaultMaxImages = 200
)

// Manager runs the capture-session flow on a Store, a BlobStore and a
// Limiter. It holds no session state of its own, so any number of Managers
// in any number of processes may share the same stores. It is safe for
// concurrent use. Create it with New.
type Manager struct {
	store   Store
	blobs   BlobStore
	limiter Limiter
	log     *slog.Logger
	now     func() time.Time

	idle, maxLife, handoffTTL, retention, lease, orphanGrace time.Duration
	claimWindow                                              time.Duration
	sessionLimit, addressLimit                               int64
	maxImageSize                                             int64
	maxImages                                                int
}

// Option configures a Manager. Options validate their arguments; New
// returns the first error.
type Option func(*Manager) error

func positive(name string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("session: %s: %v is not positive", name, d)
	}
	return nil
}

// WithClock sets the clock (default time.Now). Use the same clock for the
// stores, or expiry decisions will disagree.
func WithClock(now func() time.Time) Option {
	return func(m *Manager) error {
		if now == nil {
			return errors.New("session: WithClock: nil clock")
		}
		m.now = now
		return nil
	}
}

// WithIdleTimeout sets how long a session lives after its last activity
// (default DefaultIdleTimeout).
func WithIdleTimeout(d time.Duration) Option {
	return func(m *Manager) error { m.idle = d; return positive("WithIdleTimeout", d) }
}

// WithMaxLifetime sets the absolute cap on a session's life, counted from
// its start (default DefaultMaxLifetime).
func WithMaxLifetime(d time.Duration) Option {
	return func(m *Manager) error { m.maxLife = d; return positive("WithMaxLifetime", d) }
}

// WithHandoffTTL sets how long an unclaimed handoff code works (default
// DefaultHandoffTTL).
func WithHandoffTTL(d time.Duration) Option {
	return func(m *Manager) error { m.handoffTTL = d; return positive("WithHandoffTTL", d) }
}

// WithRetention sets the longest time image bytes are kept after upload,
// whatever the image's state (default DefaultRetention). Sweep enforces it.
func WithRetention(d time.Duration) Option {
	return func(m *Manager) error { m.retention = d; return positive("WithRetention", d) }
}

// WithCommitLease sets how long a commit claim is exclusive. After it, a
// claim still in the committing state is presumed abandoned (its process
// died) and ClaimCommit may hand the image to another caller (default
// DefaultCommitLease). Keep it longer than the slowest ALEX upload.
func WithCommitLease(d time.Duration) Option {
	return func(m *Manager) error { m.lease = d; return positive("WithCommitLease", d) }
}

// WithOrphanGrace sets how long Sweep keeps a blob that its session does not
// list: an upload between BlobStore.Put and the session update looks like
// that (default DefaultOrphanGrace).
func WithOrphanGrace(d time.Duration) Option {
	return func(m *Manager) error { m.orphanGrace = d; return positive("WithOrphanGrace", d) }
}

// WithMaxImageSize sets the largest image body AddImage and AddPhoneImage
// accept, in bytes (default DefaultMaxImageSize). A larger body fails with
// ErrTooLarge as soon as it proves too large, and nothing is stored.
func WithMaxImageSize(n int64) Option {
	return func(m *Manager) error {
		if n <= 0 {
			return fmt.Errorf("session: WithMaxImageSize: %d is not positive", n)
		}
		m.maxImageSize = n
		return nil
	}
}

// WithMaxImages sets how many images one session may list (default
// DefaultMaxImages). AddImage and AddPhoneImage check it inside the same
// atomic update that lists the image, so concurrent uploads can never list
// more than n: the ones over the limit fail with ErrTooManyImages and their
// bytes are deleted.
func WithMaxImages(n int) Option {
	return func(m *Manager) error {
		if n <= 0 {
			return fmt.Errorf("session: WithMaxImages: %d is not positive", n)
		}
		m.maxImages = n
		return nil
	}
}

// WithLimiter sets the Limiter for failed handoff claims. By default the
// Store is used if it implements Limiter (the memory and Redis stores do);
// New fails if neither is available.
func WithLimiter(l Limiter) Option {
	return func(m *Manager) error {
		if l == nil {
			return errors.New("session: WithLimiter: nil limiter")
		}
		m.limiter = l
		return nil
	}
}

// WithClaimLimits sets how many failed handoff claims are allowed per
// session and per client address within window before ClaimHandoff returns
// ErrRateLimited (defaults DefaultSessionLimit, DefaultAddressLimit,
// DefaultClaimWindow).
func WithClaimLimits(perSession, perAddress int, window time.Duration) Option {
	return func(m *Manager) error {
		if perSession <= 0 || perAddress <= 0 {
			return fmt.Errorf("session: WithClaimLimits: limits %d and %d must be positive", perSession, perAddress)
		}
		m.sessionLimit, m.addressLimit, m.claimWindow = int64(perSession), int64(perAddress), window
		return positive("WithClaimLimits", window)
	}
}

// WithLogger sets the logger (default: discard). Logs carry session and
// image ids, never patient data, codes or tokens.
func WithLogger(l *slog.Logger) Option {
	return func(m *Manager) error {
		if l == nil {
			return errors.New("session: WithLogger: nil logger")
		}
		m.log = l
		return nil
	}
}

// New returns a Manager over store and blobs.
func New(store Store, blobs BlobStore, opts ...Option) (*Manager, error) {
	if store == nil || blobs == nil {
		return nil, errors.New("session: New: store and blob store are required")
	}
	m := &Manager{
		store: store, blobs: blobs,
		log:          slog.New(slog.DiscardHandler),
		now:          time.Now,
		idle:         DefaultIdleTimeout,
		maxLife:      DefaultMaxLifetime,
		handoffTTL:   DefaultHandoffTTL,
		retention:    DefaultRetention,
		lease:        DefaultCommitLease,
		orphanGrace:  DefaultOrphanGrace,
		claimWindow:  DefaultClaimWindow,
		sessionLimit: DefaultSessionLimit,
		addressLimit: DefaultAddressLimit,
		maxImageSize: DefaultMaxImageSize,
		maxImages:    DefaultMaxImages,
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("session: New: nil option")
		}
		if err := o(m); err != nil {
			return nil, err
		}
	}
	if m.limiter == nil {
		l, ok := store.(Limiter)
		if !ok {
			return nil, errors.New("session: New: the store is not a Limiter; pass WithLimiter")
		}
		m.limiter = l
	}
	return m, nil
}

// touch records activity at now and moves the expiry.
func (m *Manager) touch(s *Session, now time.Time) {
	s.LastActivity = now
	s.ExpiresAt = now.Add(m.idle)
	if limit := s.CreatedAt.Add(m.maxLife); limit.Before(s.ExpiresAt) {
		s.ExpiresAt = limit
	}
}

// Start creates a session for a verified launch. Facility, PatientID, NHI
// and Practitioner are required.
func (m *Manager) Start(ctx context.Context, l Launch) (*Session, error) {
	if l.Facility == "" || l.PatientID == "" || l.NHI == "" || l.Practitioner == "" {
		return nil, errors.New("session: Start: facility, patient id, NHI and practitioner are required")
	}
	now := m.now()
	s := &Session{ID: NewID(), Launch: l, CreatedAt: now}
	m.touch(s, now)
	if err := m.store.Create(ctx, s); err != nil {
		return nil, fmt.Errorf("session: start: %w", err)
	}
	m.log.DebugContext(ctx, "session started", "session", s.ID)
	return s.Clone(), nil
}

// Get returns a snapshot of the session without counting as activity.
func (m *Manager) Get(ctx context.Context, id string) (*Session, error) {
	s, err := m.store.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("session: get: %w", err)
	}
	return s, nil
}

// Touch records activity (a desktop heartbeat) and returns the session with
// its new expiry.
func (m *Manager) Touch(ctx context.Context, id string) (*Session, error) {
	s, err := m.store.Update(ctx, id, func(s *Session) error {
		m.touch(s, m.now())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("session: touch: %w", err)
	}
	return s, nil
}

// Upload is one normalised image to add to a session.
type Upload struct {
	Body        io.Reader // read to EOF, not closed
	Size        int64     // exact length, or 0 if unknown
	ContentType string    // for example "image/jpeg"
	Width       int
	Height      int
	// Check, when set, is waited for once the bytes are stored and
	// before the image is listed. An error deletes the stored bytes, lists
	// nothing and is returned (wrapped). It lets a check of the bytes run
	// while they are stored, such as compress's decode of a passed-through
	// JPEG ([compress.Output.Check]).
	Check func(context.Context) error
}

// AddImage streams u.Body into the blob store under a new key and lists the
// image in the session, in state uploaded, as from the desktop. Concurrent
// AddImage calls on one session all land, up to the session's image limit
// (see [WithMaxImages]): past it AddImage returns ErrTooManyImages. If the
// session is full, expires or ends meanwhile, the bytes are deleted and the
// session's error is returned.
func (m *Manager) AddImage(ctx context.Context, sessionID string, u Upload) (Image, error) {
	return m.addImage(ctx, sessionID, u, SourceDesktop, "", nil)
}

// addImage stores and lists one image. read is the session as the caller
// has just read it, or nil (it is read here): only its early refusal uses
// it, the update that lists the image checks again.
func (m *Manager) addImage(ctx context.Context, sessionID string, u Upload, src Source, tokenHash string, read *Session) (Image, error) {
	if u.Body == nil || u.ContentType == "" {
		return Image{}, errors.New("session: add image: body and content type are required")
	}
	if u.Size < 0 {
		return Image{}, errors.New("session: add image: negative size")
	}
	if u.Size > m.maxImageSize {
		return Image{}, fmt.Errorf("session: add image: %w", ErrTooLarge)
	}
	// Refuse early, before streaming bytes for a session that is gone or
	// full. The update below decides; this only saves the upload.
	if read == nil {
		var err error
		if read, err = m.store.Get(ctx, sessionID); err != nil {
			return Image{}, fmt.Errorf("session: add image: %w", err)
		}
	}
	if len(read.Images) >= m.maxImages {
		return Image{}, fmt.Errorf("session: add image: %w", ErrTooManyImages)
	}
	imageID := NewID()
	key, err := NewBlobKey(sessionID, imageID)
	if err != nil {
		return Image{}, fmt.Errorf("session: add image: %w", err)
	}
	info, err := m.blobs.Put(ctx, key, &capReader{r: u.Body, left: m.maxImageSize}, u.Size, u.ContentType)
	if err == nil && u.Check != nil {
		if err = u.Check(ctx); err != nil {
			m.deleteBestEffort(ctx, sessionID, imageID, key)
		}
	}
	if err != nil {
		return Image{}, fmt.Errorf("session: add image: %w", err)
	}
	now := m.now()
	img := Image{
		ID: imageID, BlobKey: key, ContentType: u.ContentType,
		Size: info.Size, SHA1: info.SHA1, SHA256: info.SHA256,
		Width: u.Width, Height: u.Height, Source: src,
		State: StateUploaded, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
	_, err = m.store.Update(ctx, sessionID, func(s *Session) error {
		if src == SourcePhone {
			if err := checkToken(s, tokenHash); err != nil {
				return err
			}
		}
		// Checked here, atomically with the append, so racing uploads
		// cannot overfill the session.
		if len(s.Images) >= m.maxImages {
			return ErrTooManyImages
		}
		if src == SourcePhone {
			s.Phone.Uploads++
		}
		s.Images = append(s.Images, img)
		m.touch(s, m.now())
		return nil
	})
	if err != nil {
		m.deleteBestEffort(ctx, sessionID, imageID, key)
		return Image{}, fmt.Errorf("session: add image: %w", err)
	}
	m.log.DebugContext(ctx, "image added", "session", sessionID, "image", imageID, "source", string(src), "size", info.Size)
	return img, nil
}

// updateImage runs fn on one image of a session, atomically, bumps the
// image's version and returns the image as stored.
func (m *Manager) updateImage(ctx context.Context, sessionID, imageID string, fn func(s *Session, img *Image, now time.Time) error) (*Session, Image, error) {
	var out Image
	s, err := m.store.Update(ctx, sessionID, func(s *Session) error {
		img := s.Image(imageID)
		if img == nil {
			return fmt.Errorf("%w: image", ErrNotFound)
		}
		now := m.now()
		if err := fn(s, img, now); err != nil {
			return err
		}
		img.Version++
		img.UpdatedAt = now
		out = *img
		m.touch(s, now)
		return nil
	})
	return s, out, err
}

// SetMetadata replaces an image's clinical description and consent. It is
// allowed while the image is uploaded or failed; during and after commit it
// returns ErrAlreadyCommitting or ErrAlreadyCommitted.
func (m *Manager) SetMetadata(ctx context.Context, sessionID, imageID string, c Clinical, consent Consent) (Image, error) {
	_, img, err := m.updateImage(ctx, sessionID, imageID, func(_ *Session, img *Image, _ time.Time) error {
		if err := editable(img); err != nil {
			return err
		}
		img.Clinical, img.Consent = c, consent
		return nil
	})
	if err != nil {
		return Image{}, fmt.Errorf("session: set metadata: %w", err)
	}
	return img, nil
}

func editable(img *Image) error {
	switch img.State {
	case StateCommitting:
		return ErrAlreadyCommitting
	case StateCommitted:
		return ErrAlreadyCommitted
	}
	return nil
}

// Claim is an exclusive right to commit one image, taken by ClaimCommit and
// handed back to MarkCommitted or MarkFailed. Session is a snapshot taken
// at the claim (patient, practitioner and encounter for the FHIR Media);
// Image.Attempts identifies the claim.
type Claim struct {
	Session *Session
	Image   Image
}

// ClaimCommit moves an image from uploaded or failed to committing, for
// exactly one of any number of racing callers; the others get
// ErrAlreadyCommitting (or ErrAlreadyCommitted once it has landed). A claim
// older than the commit lease is presumed abandoned and may be taken over.
// An image whose bytes the sweeper deleted (Purged) returns ErrExpired, as
// does an expired session.
func (m *Manager) ClaimCommit(ctx context.Context, sessionID, imageID string) (Claim, error) {
	s, img, err := m.updateImage(ctx, sessionID, imageID, func(_ *Session, img *Image, now time.Time) error {
		switch {
		case img.State == StateCommitted:
			return ErrAlreadyCommitted
		case img.Purged:
			return fmt.Errorf("%w: image bytes passed the retention window", ErrExpired)
		case img.State == StateCommitting:
			if now.Before(img.CommitStarted.Add(m.lease)) {
				return ErrAlreadyCommitting
			}
		}
		img.State = StateCommitting
		img.Attempts++
		img.CommitStarted = now
		img.FailCode, img.FailReason = "", ""
		return nil
	})
	if err != nil {
		return Claim{}, fmt.Errorf("session: claim commit: %w", err)
	}
	m.log.DebugContext(ctx, "commit claimed", "session", sessionID, "image", imageID, "attempt", img.Attempts)
	return Claim{Session: s, Image: img}, nil
}

func (m *Manager) settle(ctx context.Context, c Claim, fn func(img *Image)) (Image, error) {
	if c.Session == nil {
		return Image{}, fmt.Errorf("%w: empty claim", ErrStaleClaim)
	}
	_, img, err := m.updateImage(ctx, c.Session.ID, c.Image.ID, func(_ *Session, img *Image, _ time.Time) error {
		if img.State != StateCommitting || img.Attempts != c.Image.Attempts {
			return ErrStaleClaim
		}
		fn(img)
		return nil
	})
	return img, err
}

// MarkCommitted records that the claimed image landed as the FHIR Media
// mediaID, and deletes its bytes, the captured original of an edited image
// too (a failed delete is left to Sweep). It
// returns ErrStaleClaim if the claim was overtaken.
func (m *Manager) MarkCommitted(ctx context.Context, c Claim, mediaID string) (Image, error) {
	if mediaID == "" {
		return Image{}, errors.New("session: mark committed: empty media id")
	}
	var keys []BlobKey
	img, err := m.settle(ctx, c, func(img *Image) {
		keys = img.BlobKeys()
		img.State, img.MediaID, img.CommitStarted = StateCommitted, mediaID, time.Time{}
		img.Original = nil // its bytes go now, with the sent ones
	})
	if err != nil {
		return Image{}, fmt.Errorf("session: mark committed: %w", err)
	}
	for _, k := range keys {
		if err := m.blobs.Delete(ctx, k); err != nil {
			m.log.WarnContext(ctx, "deleting committed bytes failed; the sweeper will retry",
				"session", c.Session.ID, "image", img.ID, "error", err)
		}
	}
	m.log.DebugContext(ctx, "image committed", "session", c.Session.ID, "image", img.ID)
	return img, nil
}

// MarkFailed records that the claimed commit failed, with a stable machine
// code (Image.FailCode, for programs to branch on; the root package's
// FailureCode values) and a reason (Image.FailReason, plain language for the
// GP); neither may hold patient data. The image can be claimed again. It
// returns ErrStaleClaim if the claim was overtaken.
func (m *Manager) MarkFailed(ctx context.Context, c Claim, code, reason string) (Image, error) {
	img, err := m.settle(ctx, c, func(img *Image) {
		img.State, img.FailCode, img.FailReason, img.CommitStarted = StateFailed, code, reason, time.Time{}
	})
	if err != nil {
		return Image{}, fmt.Errorf("session: mark failed: %w", err)
	}
	return img, nil
}

// RemoveImage takes an image out of the session and deletes its bytes (an
// edited image's captured original too). An
// image being committed cannot be removed (ErrAlreadyCommitting). Removing
// a missing image returns ErrNotFound.
func (m *Manager) RemoveImage(ctx context.Context, sessionID, imageID string) error {
	var keys []BlobKey
	_, err := m.store.Update(ctx, sessionID, func(s *Session) error {
		for i := range s.Images {
			if s.Images[i].ID != imageID {
				continue
			}
			if s.Images[i].State == StateCommitting {
				return ErrAlreadyCommitting
			}
			keys = s.Images[i].BlobKeys()
			s.Images = append(s.Images[:i], s.Images[i+1:]...)
			m.touch(s, m.now())
			return nil
		}
		return fmt.Errorf("%w: image", ErrNotFound)
	})
	if err != nil {
		return fmt.Errorf("session: remove image: %w", err)
	}
	for _, k := range keys {
		if err := m.blobs.Delete(ctx, k); err != nil {
			return fmt.Errorf("session: remove image: %w", err)
		}
	}
	return nil
}

// OpenImage returns a reader of an image's bytes, for commit or preview.
// The caller closes it.
func (m *Manager) OpenImage(ctx context.Context, img Image) (io.ReadCloser, error) {
	rc, err := m.blobs.Open(ctx, img.BlobKey)
	if err != nil {
		return nil, fmt.Errorf("session: open image: %w", err)
	}
	return rc, nil
}

// End deletes the session and the bytes of all its images, the captured
// originals of edited ones included: the GP closed
// the widget, or the session must expire now. Ending a missing or expired
// session is not an error (Sweep removes what an expired one left).
func (m *Manager) End(ctx context.Context, sessionID string) error {
	s, err := m.store.Get(ctx, sessionID)
	switch {
	case err == nil:
		for _, img := range s.Images {
			for _, k := range img.BlobKeys() {
				if err := m.blobs.Delete(ctx, k); err != nil {
					return fmt.Errorf("session: end: %w", err)
				}
			}
		}
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrExpired):
	default:
		return fmt.Errorf("session: end: %w", err)
	}
	if err := m.store.Delete(ctx, sessionID); err != nil {
		return fmt.Errorf("session: end: %w", err)
	}
	m.log.DebugContext(ctx, "session ended", "session", sessionID)
	return nil
}

// ReplaceImage gives an image new bytes made from its current ones (an
// edit): u is stored under a new key of the session, and the image is
// pointed at it, with its size, digests, dimensions and Version updated,
// Edited set and Lossless kept only while every edit has been lossless.
// from is the BlobKey the edit was made from: if the image has moved on
// since (another edit or a reset won), nothing changes and ReplaceImage
// returns ErrConflict. The captured original is kept, once: the first
// edit records it in Image.Original; a later edit deletes the intermediate
// bytes it replaces. It is allowed while the image is uploaded or failed
// (ErrAlreadyCommitting, ErrAlreadyCommitted otherwise; ErrExpired for an
// image whose bytes the sweeper deleted). On any failure the new bytes are
// deleted (or swept within the orphan grace).
func (m *Manager) ReplaceImage(ctx context.Context, sessionID, imageID string, from BlobKey, u Upload, lossless bool) (Image, error) {
	if u.Body == nil || u.ContentType == "" || u.Size < 0 {
		return Image{}, errors.New("session: replace image: body and content type are required")
	}
	if u.Size > m.maxImageSize {
		return Image{}, fmt.Errorf("session: replace image: %w", ErrTooLarge)
	}
	key, err := NewBlobKey(sessionID, NewID())
	if err != nil {
		return Image{}, fmt.Errorf("session: replace image: %w", err)
	}
	info, err := m.blobs.Put(ctx, key, &capReader{r: u.Body, left: m.maxImageSize}, u.Size, u.ContentType)
	if err != nil {
		return Image{}, fmt.Errorf("session: replace image: %w", err)
	}
	var drop BlobKey // the intermediate edit replaced, if any
	_, img, err := m.updateImage(ctx, sessionID, imageID, func(_ *Session, img *Image, _ time.Time) error {
		drop = ""
		if err := editable(img); err != nil {
			return err
		}
		if img.Purged {
			return fmt.Errorf("%w: image bytes passed the retention window", ErrExpired)
		}
		if img.BlobKey != from {
			return fmt.Errorf("%w: the image changed while it was being edited", ErrConflict)
		}
		if img.Original == nil {
			img.Original = &Original{BlobKey: img.BlobKey, ContentType: img.ContentType, Size: img.Size, SHA1: img.SHA1, SHA256: img.SHA256, Width: img.Width, Height: img.Height}
			img.Lossless = lossless
		} else {
			drop = img.BlobKey
			img.Lossless = img.Lossless && lossless
		}
		img.Edited = true
		img.BlobKey, img.ContentType, img.Size, img.SHA1, img.SHA256 = key, u.ContentType, info.Size, info.SHA1, info.SHA256
		img.Width, img.Height = u.Width, u.Height
		return nil
	})
	if err != nil {
		m.deleteBestEffort(ctx, sessionID, imageID, key)
		return Image{}, fmt.Errorf("session: replace image: %w", err)
	}
	if drop != "" {
		m.deleteBestEffort(ctx, sessionID, imageID, drop)
	}
	m.log.DebugContext(ctx, "image replaced", "session", sessionID, "image", imageID, "size", info.Size)
	return img, nil
}

// RestoreOriginal points an edited image back at its captured original
// and deletes the edited bytes. An image that is not edited is returned as
// it is, with changed false. The same states as [Manager.ReplaceImage] are
// refused.
func (m *Manager) RestoreOriginal(ctx context.Context, sessionID, imageID string) (img Image, changed bool, err error) {
	var drop BlobKey
	_, img, err = m.updateImage(ctx, sessionID, imageID, func(_ *Session, img *Image, _ time.Time) error {
		drop = ""
		if err := editable(img); err != nil {
			return err
		}
		if img.Purged {
			return fmt.Errorf("%w: image bytes passed the retention window", ErrExpired)
		}
		if img.Original == nil {
			return errSkip
		}
		o := img.Original
		drop = img.BlobKey
		img.BlobKey, img.Size, img.SHA1, img.SHA256, img.Width, img.Height = o.BlobKey, o.Size, o.SHA1, o.SHA256, o.Width, o.Height
		img.ContentType = o.ContentType
		img.Original, img.Edited, img.Lossless = nil, false, false
		return nil
	})
	if errors.Is(err, errSkip) {
		s, gerr := m.store.Get(ctx, sessionID)
		if gerr != nil {
			return Image{}, false, fmt.Errorf("session: restore original: %w", gerr)
		}
		if cur := s.Image(imageID); cur != nil {
			return *cur, false, nil
		}
		return Image{}, false, fmt.Errorf("session: restore original: %w: image", ErrNotFound)
	}
	if err != nil {
		return Image{}, false, fmt.Errorf("session: restore original: %w", err)
	}
	m.deleteBestEffort(ctx, sessionID, imageID, drop)
	return img, true, nil
}

// deleteBestEffort deletes bytes no image points at any more (replaced,
// or never listed), with a context of its own (the caller's may be done);
// a failure is left to the sweeper's orphan rule.
func (m *Manager) deleteBestEffort(ctx context.Context, sessionID, imageID string, key BlobKey) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := m.blobs.Delete(dctx, key); err != nil {
		m.log.WarnContext(ctx, "deleting image bytes no image points at failed; the sweeper will retry",
			"session", sessionID, "image", imageID, "error", err)
	}
}

// capReader fails a body once it passes the size cap, without reading
// more than one byte beyond it.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return 0, ErrTooLarge
	}
	return n, err
}

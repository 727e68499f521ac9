package clinicalimages

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	gosync "sync"
	"time"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/media"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
	"github.com/clinicpro/clinicalimages/sync"
)

// Errors the Service returns besides those of the packages it wires
// (session.ErrNotFound, session.ErrAlreadyCommitting, compress.ErrTooLarge,
// alex.ErrFacilityUnavailable...), which it wraps unchanged.
var (
	// ErrUnauthenticated: a desktop credential, phone token or launch is
	// missing, malformed, forged or expired.
	ErrUnauthenticated = errors.New("clinicalimages: not authenticated")
	// ErrForbidden: the caller is authenticated but may not do this (a phone
	// asking for the session, a credential for another session).
	ErrForbidden = errors.New("clinicalimages: forbidden")
	// ErrTooManyImages: the session already holds the maximum number of
	// images (Limits.MaxImagesPerSession). It is session.ErrTooManyImages,
	// which the session.Manager returns when it refuses to list one more.
	ErrTooManyImages = session.ErrTooManyImages
	// ErrInvalidRequest: the request itself is malformed.
	ErrInvalidRequest = errors.New("clinicalimages: invalid request")
	// ErrStorageUnavailable: the session store or blob store failed (Redis or
	// S3 unreachable). Nothing was half-stored; the request may be retried.
	ErrStorageUnavailable = errors.New("clinicalimages: storage unavailable")
	// ErrClosed: the Service was closed (the server is shutting down).
	ErrClosed = errors.New("clinicalimages: service closed")
)

// storage marks an error from the stores that says the backing service
// could not be reached or failed (session.ErrUnavailable: Redis or S3 down,
// a disk error) as ErrStorageUnavailable, which the caller may retry. Any
// other error passes through unchanged: a named condition keeps its own
// meaning, and an error nobody named is a bug, not an outage. Every Service
// method returns its stores' errors through it; [CodeOf] classifies an
// outage as CodeStorageUnavailable even where one slipped through.
func storage(err error) error {
	if err == nil || !errors.Is(err, session.ErrUnavailable) || errors.Is(err, ErrStorageUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrStorageUnavailable, err)
}

// Limits bound what one session and one upload may use. Zero fields take
// their defaults.
type Limits struct {
	MaxUploadBytes      int64 // bytes of one upload before normalising (default 30 MB)
	MaxImagesPerSession int   // images listed in one session (default 30)
	CommitParallelism   int   // images of one Commit sent to ALEX at once (default 4)
	// StuckCommit is how long an image may stay in committing before
	// recovery reconciles it (default 5 minutes; keep it at least the
	// session.Manager's commit lease).
	StuckCommit time.Duration
	// MaxSessionsPerPractitioner caps the live sessions of one practitioner
	// at one facility (default 20: a GP with a session per open patient
	// tab, and room to spare). A launch beyond it fails with
	// ErrTooManySessions (too_many_sessions, HTTP 429).
	MaxSessionsPerPractitioner int
	// MaxSessionsPerFacility caps the live sessions of one facility
	// (default 500). Both caps count sessions alive now (not ended, not
	// expired) across every instance sharing the store.
	MaxSessionsPerFacility int
}

// DefaultLimits are used for zero fields of Limits.
var DefaultLimits = Limits{MaxUploadBytes: 30 << 20, MaxImagesPerSession: 30, CommitParallelism: 4, StuckCommit: 5 * time.Minute,
	MaxSessionsPerPractitioner: 20, MaxSessionsPerFacility: 500}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxUploadBytes <= 0 {
		l.MaxUploadBytes = d.MaxUploadBytes
	}
	if l.MaxImagesPerSession <= 0 {
		l.MaxImagesPerSession = d.MaxImagesPerSession
	}
	if l.CommitParallelism <= 0 {
		l.CommitParallelism = d.CommitParallelism
	}
	if l.StuckCommit <= 0 {
		l.StuckCommit = d.StuckCommit
	}
	if l.MaxSessionsPerPractitioner <= 0 {
		l.MaxSessionsPerPractitioner = d.MaxSessionsPerPractitioner
	}
	if l.MaxSessionsPerFacility <= 0 {
		l.MaxSessionsPerFacility = d.MaxSessionsPerFacility
	}
	return l
}

// Events is what the Service needs of the real-time layer: sync.Hub (the
// default) and redisnotify.Hub implement it.
type Events interface {
	sync.Publisher
	sync.Subscriber
	sync.History
}

// Service runs the capture-to-record flow: verified launch, session, phone
// handoff, uploads (normalised, stored, announced), metadata, and commit to
// ALEX with reconciliation so that every photo lands exactly once on the
// right patient. It holds no state of its own beyond its parts, so any number
// of Services in any number of processes may share the same stores. It is safe
// for concurrent use; its configuration is fixed by New (handlers made from it
// change nothing in it). Serve it over HTTP with [Service.Handler].
type Service struct {
	alex       *alex.Client
	sessions   *session.Manager
	store      session.Store
	blobs      session.BlobStore
	events     Events
	presence   sync.PresenceReader
	norm       *compress.Normalizer
	thumbs     *compress.Normalizer // history thumbnails: one at a time, its own small budget
	builder    *media.Builder
	docBuilder *media.Builder
	inboxScan  bool
	inboxFmt   media.DocumentFormat
	idSystem   string
	limits     Limits
	now        func() time.Time
	log        *slog.Logger
	audit      AuditSink
	metrics    Metrics
	launch     *launchVerifier
	once       session.SingleUse
	roster     session.Roster
	limiter    session.Limiter
	launchAge  time.Duration
	launchZone *time.Location
	phones     PhonePresence
	creds      *credentials
	closeHub   func() error
	closeOnce  gosync.Once
	done       chan struct{} // closed by Close
}

type options struct {
	store         session.Store
	blobs         session.BlobStore
	events        Events
	norm          *compress.Normalizer
	normOpts      []compress.Option
	builder       *media.Builder
	idSystem      string
	limits        Limits
	now           func() time.Time
	log           *slog.Logger
	audit         AuditSink
	metrics       Metrics
	sessionOpts   []session.Option
	launchKeys    []LaunchKey
	audience      string
	launchMaxAge  time.Duration
	launchZone    *time.Location
	secret        []byte
	inboxScan     bool
	inboxFormat   media.DocumentFormat
	phonePresence PhonePresence
}

// Option configures a Service.
type Option func(*options) error

// WithStore sets the session store (default: in memory, one process only).
func WithStore(s session.Store) Option {
	return func(o *options) error {
		if s == nil {
			return errors.New("clinicalimages: nil store")
		}
		o.store = s
		return nil
	}
}

// WithBlobStore sets where image bytes are kept (default: in memory).
func WithBlobStore(b session.BlobStore) Option {
	return func(o *options) error {
		if b == nil {
			return errors.New("clinicalimages: nil blob store")
		}
		o.blobs = b
		return nil
	}
}

// WithEvents sets the real-time layer (default: an in-memory sync.Hub).
func WithEvents(e Events) Option {
	return func(o *options) error {
		if e == nil {
			return errors.New("clinicalimages: nil events")
		}
		o.events = e
		return nil
	}
}

// WithNormalizer sets the image normaliser, replacing the default one and
// any [WithCompressOptions]. The default is compress.New with the upload
// limit of [Limits.MaxUploadBytes]; it refuses HEIC (see
// [WithCompressOptions]).
func WithNormalizer(n *compress.Normalizer) Option {
	return func(o *options) error {
		if n == nil {
			return errors.New("clinicalimages: nil normalizer")
		}
		o.norm = n
		return nil
	}
}

// WithCompressOptions adds options to the default image normaliser, after
// the upload limit of [Limits.MaxUploadBytes]. The usual one turns on HEIC
// decoding, which the SDK leaves out unless asked so that importers do not
// link a WebAssembly runtime:
//
//	clinicalimages.WithCompressOptions(heic.Option()) // package compress/heic
//
// Options are checked by [New]. Ignored when [WithNormalizer] is given.
func WithCompressOptions(opts ...compress.Option) Option {
	return func(o *options) error {
		for _, opt := range opts {
			if opt == nil {
				return errors.New("clinicalimages: nil compress option")
			}
		}
		o.normOpts = append(o.normOpts, opts...)
		return nil
	}
}

// WithMediaBuilder sets the FHIR builder (default: media.New()). Its
// identifier system is the one reconciliation searches for.
func WithMediaBuilder(b *media.Builder, identifierSystem string) Option {
	return func(o *options) error {
		if b == nil || identifierSystem == "" {
			return errors.New("clinicalimages: media builder and its identifier system are required")
		}
		o.builder, o.idSystem = b, identifierSystem
		return nil
	}
}

// WithLimits sets upload, session and commit limits.
func WithLimits(l Limits) Option {
	return func(o *options) error {
		if l.MaxUploadBytes < 0 || l.MaxImagesPerSession < 0 || l.CommitParallelism < 0 || l.StuckCommit < 0 ||
			l.MaxSessionsPerPractitioner < 0 || l.MaxSessionsPerFacility < 0 {
			return errors.New("clinicalimages: limits must not be negative")
		}
		o.limits = l
		return nil
	}
}

// WithClock sets the clock for the Service and its session manager.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("clinicalimages: nil clock")
		}
		o.now = now
		return nil
	}
}

// WithLogger sets the operational logger (default: discard). It never
// receives tokens, codes, patient identifiers or image bytes.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("clinicalimages: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithAudit sets the audit sink (default: records logged through the logger
// at INFO under "audit").
func WithAudit(a AuditSink) Option {
	return func(o *options) error {
		if a == nil {
			return errors.New("clinicalimages: nil audit sink")
		}
		o.audit = a
		return nil
	}
}

// WithSessionOptions passes options to the session.Manager (idle timeout,
// lifetime, handoff TTL, retention...).
func WithSessionOptions(opts ...session.Option) Option {
	return func(o *options) error {
		o.sessionOpts = append(o.sessionOpts, opts...)
		return nil
	}
}

// WithSecret sets the key that signs desktop credentials. Every instance
// serving the same sessions must share it (at least 32 bytes). Without it a
// random key is made, which suits one process only.
func WithSecret(key []byte) Option {
	return func(o *options) error {
		if len(key) < 32 {
			return errors.New("clinicalimages: secret must be at least 32 bytes")
		}
		o.secret = bytes.Clone(key)
		return nil
	}
}

// WithInboxScan commits each photo as an Inbox Scan DocumentReference
// instead of a Media: the photo's JPEG bytes unchanged inside a TIFF, with
// author = the launching GP's Practitioner (which files it in that GP's
// Inbox), as ClinicPro's production path sends them; a JPEG a TIFF cannot
// carry unchanged (progressive, CMYK) goes on a captioned PDF page instead.
// [WithInboxScanFormat] chooses PDF for every photo. Evolution shows an
// Inbox Scan inline and offers it in referral attachment pickers, which it does
// not do for a JPEG Media; the app needs the
// Patient.documentreference.scaninbox.write role. ALEX allows no search of
// DocumentReference, so an unknown outcome cannot be reconciled: such a photo
// is marked failed with code outcome_unknown and is resent only with
// [ConfirmResend], after the GP has checked the Inbox.
func WithInboxScan() Option { return WithInboxScanFormat(media.DocumentTIFF) }

// WithInboxScanFormat is [WithInboxScan] with the wrapping chosen:
// [media.DocumentTIFF] (the JPEG unchanged, no second lossy generation) or
// [media.DocumentPDF] (an A4 page per photo with its caption: title, site,
// side and view printed under it).
func WithInboxScanFormat(f media.DocumentFormat) Option {
	return func(o *options) error {
		if f != media.DocumentTIFF && f != media.DocumentPDF {
			return fmt.Errorf("clinicalimages: unknown Inbox Scan format %d", f)
		}
		o.inboxScan, o.inboxFormat = true, f
		return nil
	}
}

// New returns a Service that commits to ALEX through ac. Every other part has
// an embedded default suitable for one process.
func New(ac *alex.Client, opts ...Option) (*Service, error) {
	if ac == nil {
		return nil, errors.New("clinicalimages: an alex.Client is required")
	}
	o := options{now: time.Now, idSystem: media.DefaultIdentifierSystem}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	s := &Service{alex: ac, limits: o.limits.withDefaults(), now: o.now, log: o.log, idSystem: o.idSystem, inboxScan: o.inboxScan, inboxFmt: o.inboxFormat, done: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.audit = o.audit
	s.metrics = o.metrics
	if s.audit == nil {
		s.audit = SlogAudit{Logger: s.log}
	}
	var err error
	if s.store = o.store; s.store == nil {
		if s.store, err = memory.NewStore(memory.WithClock(o.now)); err != nil {
			return nil, err
		}
	}
	// Launch replay protection and session caps live in the store, so that
	// they hold across instances.
	var ok bool
	if s.once, ok = s.store.(session.SingleUse); !ok {
		return nil, errors.New("clinicalimages: the store does not implement session.SingleUse (launch replay protection)")
	}
	if s.roster, ok = s.store.(session.Roster); !ok {
		return nil, errors.New("clinicalimages: the store does not implement session.Roster (caps on live sessions)")
	}
	if s.limiter, ok = s.store.(session.Limiter); !ok {
		// Launch rate limits then hold per instance.
		if s.limiter, err = memory.NewStore(memory.WithClock(o.now)); err != nil {
			return nil, err
		}
	}
	if s.launchAge = o.launchMaxAge; s.launchAge == 0 {
		s.launchAge = DefaultLaunchMaxAge
	}
	if s.launchZone = o.launchZone; s.launchZone == nil {
		s.launchZone = defaultLaunchZone()
	}
	if s.blobs = o.blobs; s.blobs == nil {
		if s.blobs, err = memory.NewBlobStore(memory.WithClock(o.now)); err != nil {
			return nil, err
		}
	}
	if s.events = o.events; s.events == nil {
		hub, err := sync.NewHub(sync.WithClock(o.now))
		if err != nil {
			return nil, err
		}
		s.events, s.closeHub = hub, hub.Close
	}
	if pr, ok := s.events.(sync.PresenceReader); ok {
		s.presence = pr
	}
	if s.norm = o.norm; s.norm == nil {
		copts := append([]compress.Option{compress.WithMaxInputBytes(s.limits.MaxUploadBytes)}, o.normOpts...)
		if s.norm, err = compress.New(copts...); err != nil {
			return nil, err
		}
	}
	if s.thumbs, err = newThumbnailer(); err != nil {
		return nil, err
	}
	if s.builder = o.builder; s.builder == nil {
		if s.builder, err = media.New(media.WithClock(o.now)); err != nil {
			return nil, err
		}
	}
	// Medtech's Inbox Scan examples use absolute references.
	if s.docBuilder, err = media.New(media.WithClock(o.now), media.WithReferenceBase(ac.BaseURL())); err != nil {
		return nil, err
	}
	// The image limit goes last: Limits.MaxImagesPerSession is the knob.
	mopts := append([]session.Option{session.WithClock(o.now), session.WithLogger(s.log)}, o.sessionOpts...)
	mopts = append(mopts, session.WithMaxImages(s.limits.MaxImagesPerSession))
	if s.sessions, err = session.New(s.store, s.blobs, mopts...); err != nil {
		return nil, err
	}
	s.launch = &launchVerifier{keys: o.launchKeys, audience: o.audience, now: o.now}
	secret := o.secret
	if secret == nil {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	s.creds = &credentials{key: secret, now: o.now}
	s.phones = o.phonePresence.withDefaults()
	return s, nil
}

// Close ends every open event stream of the Service's handlers (see
// [Service.Done]) and releases what New made itself (the default in-memory
// hub). Stores and clients passed in are the caller's to close. Call it when
// shutting down: event streams are never idle, so http.Server.Shutdown would
// otherwise wait for them (for example srv.RegisterOnShutdown(func() {
// svc.Close() })). Close is idempotent.
func (s *Service) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.done)
		if s.closeHub != nil {
			err = s.closeHub()
		}
	})
	return err
}

// Done returns a channel that is closed when Close is called. Long-lived
// work for the Service (an event stream) ends when it closes.
func (s *Service) Done() <-chan struct{} { return s.done }

// Sessions returns the session manager, for callers that need lower-level
// access (an admin view, a custom sweeper schedule).
func (s *Service) Sessions() *session.Manager { return s.sessions }

// Events returns the real-time layer the Service publishes to, for serving
// event streams (the HTTP handler's /events and /events/poll).
func (s *Service) Events() Events { return s.events }

// Limits returns the limits in force (defaults filled in).
func (s *Service) Limits() Limits { return s.limits }

// Logger returns the operational logger given with WithLogger (a discarding
// one by default). It never receives tokens, codes, patient identifiers or
// image bytes, and neither may its other users.
func (s *Service) Logger() *slog.Logger { return s.log }

// Started is a new session and the credential its desktop uses.
type Started struct {
	Session *session.Session
	// Credential authenticates the desktop for this session only, until the
	// session's maximum lifetime. Send it as "Authorization: Bearer ..." or
	// let the HTTP API set it as a cookie. Treat it as a secret.
	Credential string
	// CSRF must accompany cookie-authenticated requests that change state,
	// in the X-CSRF-Token header.
	CSRF string
	// Expires is when Credential stops working at the latest (it fails
	// earlier if the session ends).
	Expires time.Time
}

// StartSession starts a capture session for a verified launch. It fails
// with ErrTooManySessions when the practitioner or the facility already
// holds its maximum of live sessions (see [Limits]).
func (s *Service) StartSession(ctx context.Context, l VerifiedLaunch) (*Started, error) {
	if l.Facility == "" || l.PatientID == "" || l.NHI == "" || l.Practitioner == "" {
		return nil, invalidRequest("a launch needs facility, patient, NHI and practitioner")
	}
	sess, err := s.sessions.Start(ctx, session.Launch{
		Facility: l.Facility, PatientID: l.PatientID, NHI: l.NHI, Practitioner: l.Practitioner, Encounter: l.Encounter,
	})
	if err != nil {
		return nil, storage(err)
	}
	if err := s.admit(ctx, sess); err != nil {
		if derr := s.sessions.End(context.WithoutCancel(ctx), sess.ID); derr != nil {
			s.log.WarnContext(ctx, "ending a refused session failed", "session", sess.ID, "error", derr)
		}
		return nil, err
	}
	exp := sess.CreatedAt.Add(credentialLifetime)
	cred, csrf := s.creds.issue(sess.ID, exp)
	s.record(ctx, sess, AuditRecord{Event: "session.started", Source: l.Source})
	return &Started{Session: sess, Credential: cred, CSRF: csrf, Expires: exp}, nil
}

// Authenticate checks a desktop credential (from [Started]) and returns the
// session it is for. A missing, forged or expired credential fails with
// ErrUnauthenticated. It does not read the session: the session may have
// ended since, which the next call on it reports.
func (s *Service) Authenticate(credential string) (sessionID string, err error) {
	return s.creds.check(credential)
}

// CheckCSRF checks the CSRF token (from [Started]) that must accompany a
// cookie-authenticated request changing state; a missing or wrong one fails
// with ErrForbidden.
func (s *Service) CheckCSRF(sessionID, token string) error {
	if !s.creds.checkCSRF(sessionID, token) {
		return fmt.Errorf("%w: missing or wrong CSRF token", ErrForbidden)
	}
	return nil
}

// credentialLifetime caps a desktop credential. It is only ever as good as
// its session, whose inactivity and absolute expiry the store enforces on
// every call; this cap bounds a credential that leaked.
const credentialLifetime = 24 * time.Hour

// Session returns the session for its desktop, counting as activity.
func (s *Service) Session(ctx context.Context, sessionID string) (*session.Session, error) {
	sess, err := s.sessions.Touch(ctx, sessionID)
	return sess, storage(err)
}

// LookupSession returns the session without counting as activity: for
// checks that must not keep an idle session alive (an event stream
// reconnecting, a poll).
func (s *Service) LookupSession(ctx context.Context, sessionID string) (*session.Session, error) {
	sess, err := s.sessions.Get(ctx, sessionID)
	return sess, storage(err)
}

// Patient is what the desktop shows of the session's patient, read from
// ALEX. It is patient data: never log it.
type Patient struct {
	ID        string `json:"id"`  // ALEX Patient id
	NHI       string `json:"nhi"` // as verified at launch
	Name      string `json:"name,omitempty"`
	BirthDate string `json:"birthDate,omitempty"`
	Gender    string `json:"gender,omitempty"`
}

// Patient reads the session's patient from ALEX, for the desktop to show
// whose record the photos go to.
func (s *Service) Patient(ctx context.Context, sessionID string) (Patient, error) {
	sess, err := s.sessions.Get(ctx, sessionID)
	if err != nil {
		return Patient{}, storage(err)
	}
	p, err := s.alex.ReadPatient(alex.WithFacilityID(ctx, sess.Facility), sess.PatientID)
	if err != nil {
		return Patient{}, err
	}
	out := Patient{ID: sess.PatientID, NHI: sess.NHI}
	if len(p.Name) > 0 {
		n := p.Name[0]
		family := ""
		if n.Family != nil {
			family = *n.Family
		}
		out.Name = strings.TrimSpace(strings.Join(n.Given, " ") + " " + family)
	}
	if p.BirthDate != nil {
		out.BirthDate = *p.BirthDate
	}
	if p.Gender != nil {
		out.Gender = p.Gender.Code()
	}
	return out, nil
}

// Presence reports whether a phone is connected, when the event layer
// tracks it. The session must exist.
func (s *Service) Presence(ctx context.Context, sessionID string) (sync.Presence, error) {
	if _, err := s.sessions.Get(ctx, sessionID); err != nil {
		return sync.Presence{}, storage(err)
	}
	if s.presence == nil {
		return sync.Presence{}, nil
	}
	return s.presence.Presence(ctx, sessionID)
}

// IssueHandoff makes a single-use code for the phone's QR code. The phone URL
// carries only this code.
func (s *Service) IssueHandoff(ctx context.Context, sessionID string) (code string, expires time.Time, err error) {
	code, expires, err = s.sessions.IssueHandoff(ctx, sessionID)
	return code, expires, storage(err)
}

// AuthenticatePhone checks a phone token and returns what the phone may see
// of its session. A wrong token fails with session.ErrInvalidToken, a
// revoked one with session.ErrRevoked.
//
// It counts as the phone's heartbeat (see [Service.PhoneHeartbeat]).
func (s *Service) AuthenticatePhone(ctx context.Context, token string) (session.PhoneView, error) {
	v, err := s.sessions.AuthenticatePhone(ctx, token)
	if err != nil {
		return v, storage(err)
	}
	s.phoneSeen(ctx, v.SessionID, s.phones.Lapse)
	return v, nil
}

// ClaimHandoff exchanges a handoff code for a phone token, once.
func (s *Service) ClaimHandoff(ctx context.Context, code, device, clientAddr string) (string, session.PhoneView, error) {
	tok, view, err := s.sessions.ClaimHandoff(ctx, code, device, clientAddr)
	if err != nil {
		return "", view, storage(err)
	}
	s.publish(ctx, view.SessionID, sync.PhoneConnected, "", map[string]any{"device": truncate(device, 80)})
	s.phoneSeen(ctx, view.SessionID, s.phones.Lapse)
	// The claim hands back no launch; the record needs its practitioner.
	sess, err := s.sessions.Get(ctx, view.SessionID)
	if err != nil {
		sess = nil // audited without the practitioner rather than not at all
	}
	s.record(ctx, sess, AuditRecord{Event: "phone.connected", Session: view.SessionID})
	return tok, view, nil
}

// RevokePhone cuts the paired phone off.
func (s *Service) RevokePhone(ctx context.Context, sessionID string) error {
	// Read first for the audit's practitioner (the manager's update hands
	// back no session).
	sess, err := s.sessions.Get(ctx, sessionID)
	if err != nil {
		return storage(err)
	}
	if err := s.sessions.RevokePhone(ctx, sessionID); err != nil {
		return storage(err)
	}
	if err := s.roster.Leave(context.WithoutCancel(ctx), rosterPhones, sessionID); err != nil {
		s.log.WarnContext(ctx, "phone presence: leave failed", "session", session.LogRef(sessionID), "error", err)
	}
	s.publish(ctx, sessionID, sync.PhoneDisconnected, "", map[string]any{"reason": PhoneGoneRevoked})
	s.record(ctx, sess, AuditRecord{Event: "phone.revoked"})
	return nil
}

// Uploader says who is uploading: the desktop of a session, or a phone by
// its token. Exactly one field is set.
type Uploader struct {
	SessionID  string // desktop, already authenticated for this session
	PhoneToken string // phone
	// Hint is optional metadata given with the upload. From a phone only
	// BodySite and Laterality are kept: the GP reviews and completes the
	// description on the desktop. Codes outside the value sets are refused
	// before any pixel is decoded.
	Hint session.Clinical
	// IdempotencyKey, optional, names this photo across attempts to upload
	// it (the Idempotency-Key header's value, see
	// session.ParseIdempotencyKey). The first attempt that gets through
	// makes the image; any later attempt with the same key in the session,
	// on any instance sharing the Store, returns that image and makes
	// nothing (see [Service.AcceptUploadOnce]).
	IdempotencyKey string
}

// AcceptUpload normalises an image read from r (its bytes are sniffed; no
// declared type is trusted), stores it and lists it in the session, then
// announces image.added. On any failure nothing is listed, and stored bytes
// are deleted (or swept within the orphan grace if the delete fails).
// With who.IdempotencyKey set it is [Service.AcceptUploadOnce] without the
// replay flag.
func (s *Service) AcceptUpload(ctx context.Context, who Uploader, r io.Reader) (session.Image, error) {
	img, _, err := s.AcceptUploadOnce(ctx, who, r)
	return img, err
}

// AcceptUploadOnce is AcceptUpload that also reports a replay. With
// who.IdempotencyKey set, the SHA-256 of every byte read from r is recorded
// with the key (session.Manager.AddImageOnce): a later upload with the same
// key and the same bytes returns the image the first made, with replayed
// true, without normalising, storing, announcing or counting anything (a
// replay of a finished upload only hashes the body). The same key with
// other bytes fails with CodeIdempotencyKeyReused (HTTP 422); an upload
// with the key still in progress elsewhere is waited for, then fails with
// CodeUploadInProgress (HTTP 409 with Retry-After) if it has not finished.
// A malformed key is CodeInvalidRequest. Without a key every upload makes
// an image.
func (s *Service) AcceptUploadOnce(ctx context.Context, who Uploader, r io.Reader) (img session.Image, replayed bool, err error) {
	var normalize time.Duration
	img, replayed, err = s.acceptUpload(ctx, who, r, &normalize)
	if s.metrics.Upload != nil {
		src := session.SourceDesktop
		if who.PhoneToken != "" {
			src = session.SourcePhone
		}
		s.metrics.Upload(src, CodeOf(err), normalize)
	}
	return img, replayed, err
}

// acceptUpload is AcceptUploadOnce; it records the time spent normalising
// in *normalize.
func (s *Service) acceptUpload(ctx context.Context, who Uploader, r io.Reader, normalize *time.Duration) (session.Image, bool, error) {
	if (who.SessionID == "") == (who.PhoneToken == "") {
		return session.Image{}, false, invalidRequest("exactly one of session and phone token")
	}
	key := ""
	if who.IdempotencyKey != "" {
		k, err := session.ParseIdempotencyKey(who.IdempotencyKey)
		if err != nil {
			return session.Image{}, false, invalidRequest("the Idempotency-Key must be 1 to 255 visible ASCII characters")
		}
		key = k
	}
	hint := who.Hint
	if who.PhoneToken != "" {
		hint = session.Clinical{BodySite: hint.BodySite, Laterality: hint.Laterality}
	}
	if err := s.checkClinical(hint); err != nil {
		return session.Image{}, false, err
	}
	// Check the caller and the image count before spending CPU on pixels.
	// This count is only a fast path: the session.Manager checks the limit
	// again inside the update that lists the image.
	var (
		sessionID string
		sess      *session.Session
		// seen is closed once the phone's heartbeat is recorded: it runs
		// beside the upload, and the photo is listed (and announced) only
		// after it, so a phone.connected it announces comes first.
		seen = make(chan struct{})
	)
	if who.PhoneToken != "" {
		var err error
		if sess, err = s.sessions.PhoneSession(ctx, who.PhoneToken); err != nil {
			return session.Image{}, false, storage(err)
		}
		sessionID = sess.ID
		// A photo on its way is the phone's heartbeat, and so is its
		// arrival when the upload took long enough for the first to run
		// low (a slow network): the second costs store round trips that a
		// quick upload, still well within its window, does not need.
		at := s.now()
		go func() {
			defer close(seen)
			s.phoneSeen(ctx, sessionID, s.phones.Lapse)
		}()
		defer func() {
			<-seen
			if s.now().Sub(at) >= s.phones.Lapse/2 {
				s.phoneSeen(ctx, sessionID, s.phones.Lapse)
			}
		}()
	} else {
		close(seen)
		sessionID = who.SessionID
		var err error
		if sess, err = s.sessions.Get(ctx, sessionID); err != nil {
			return session.Image{}, false, storage(err)
		}
	}
	if key != "" {
		// A replay of a finished upload: hash the body, never decode it,
		// and answer whatever the session's image count.
		if _, done, err := s.sessions.UploadDone(ctx, sessionID, key); err != nil {
			return session.Image{}, false, storage(err)
		} else if done {
			sum, err := s.hashBody(r)
			if err != nil {
				return session.Image{}, false, err
			}
			return s.addOnce(ctx, who, sess, sessionID, key, sum, session.Upload{}, nil, hint)
		}
	}
	if len(sess.Images) >= s.limits.MaxImagesPerSession {
		return session.Image{}, false, ErrTooManyImages
	}

	size := 0 // the body's length, when it tells (a hint for compress)
	if l, ok := r.(interface{ Len() int }); ok {
		size = l.Len()
	}
	br := bufio.NewReader(r)
	if _, err := br.Peek(1); err != nil {
		return session.Image{}, false, fmt.Errorf("%w: empty body", compress.ErrUnsupportedFormat)
	}
	// With a key, every byte received is hashed on its way to the
	// normaliser, so a retry of this upload can be told from another photo
	// under its key.
	body := io.LimitReader(br, s.limits.MaxUploadBytes+1)
	h := sha256.New()
	if key != "" {
		body = io.TeeReader(body, h)
	}
	in := sizedReader{body, size}
	// The normalised JPEG is small (the byte budget, 1 MB by default), so it
	// is kept in memory between compress and the blob store. A JPEG that
	// takes compress's lossless passthrough is stored while compress
	// checks that it decodes, and listed only once it does.
	started := time.Now()
	out, err := s.norm.Start(ctx, in)
	*normalize = time.Since(started)
	if err != nil {
		s.record(ctx, sess, AuditRecord{Event: "image.rejected", Outcome: session.AuditRefused, Reason: string(CodeOf(err))})
		return session.Image{}, false, err
	}
	defer out.Release() // its bytes are stored (or refused) when this returns
	var checkErr error  // the check's own error, not the store's
	up := session.Upload{Body: bytes.NewReader(out.Bytes()), Size: int64(len(out.Bytes())), ContentType: "image/jpeg",
		Check: func(ctx context.Context) error {
			waited := time.Now()
			<-seen
			replaced, err := out.Check(ctx)
			*normalize += time.Since(waited)
			switch {
			case err != nil:
				checkErr = err
			case replaced:
				checkErr = errReplaced
			}
			return checkErr
		}}
	add := func(up session.Upload) (session.Image, bool, error) {
		res := out.Result()
		up.Width, up.Height = res.OutWidth, res.OutHeight
		if key != "" {
			return s.addOnce(ctx, who, sess, sessionID, key, hex.EncodeToString(h.Sum(nil)), up, &res, hint)
		}
		var img session.Image
		var err error
		if who.PhoneToken != "" {
			img, err = s.sessions.AddPhoneImage(ctx, who.PhoneToken, up)
		} else {
			img, err = s.sessions.AddImage(ctx, sessionID, up)
		}
		if err != nil {
			return session.Image{}, false, storage(err)
		}
		img, err = s.listed(ctx, sess, sessionID, img, &res, hint)
		return img, false, err
	}
	if key != "" {
		// Whatever the normaliser left unread (bytes after the image's
		// end) belongs to the body too.
		if _, err := io.Copy(io.Discard, in); err != nil {
			return session.Image{}, false, err
		}
	}
	img, replayed, err := add(up)
	switch {
	case errors.Is(checkErr, errReplaced):
		// The passthrough's check failed and compress normalised the
		// input afresh: store that instead (the first copy was deleted).
		checkErr = nil
		return add(session.Upload{Body: bytes.NewReader(out.Bytes()), Size: int64(len(out.Bytes())), ContentType: "image/jpeg"})
	case checkErr != nil:
		s.record(ctx, sess, AuditRecord{Event: "image.rejected", Outcome: session.AuditRefused, Reason: string(CodeOf(checkErr))})
		return session.Image{}, false, checkErr
	}
	return img, replayed, err
}

// errReplaced is what an Upload's check returns when compress replaced the
// stored bytes: the image is stored again.
var errReplaced = errors.New("clinicalimages: normalised output replaced")

// listed finishes a new upload: the hint set, image.added announced and the
// upload audited.
func (s *Service) listed(ctx context.Context, sess *session.Session, sessionID string, img session.Image, res *compress.Result, hint session.Clinical) (session.Image, error) {
	if hint != (session.Clinical{}) {
		var err error
		if img, err = s.sessions.SetMetadata(ctx, sessionID, img.ID, hint, session.Consent{}); err != nil {
			_ = s.sessions.RemoveImage(ctx, sessionID, img.ID)
			return session.Image{}, storage(err)
		}
	}
	s.publish(ctx, sessionID, sync.ImageAdded, img.ID, map[string]any{"source": img.Source, "width": img.Width, "height": img.Height, "bytes": img.Size})
	s.record(ctx, sess, AuditRecord{Event: "image.uploaded", Image: img.ID, SHA256: img.SHA256,
		Detail: fmt.Sprintf("source=%s in=%s %dx%d out=%dx%d %dB q%d", img.Source, res.Format, res.InWidth, res.InHeight, res.OutWidth, res.OutHeight, res.OutBytes, res.Quality)})
	return img, nil
}

// addOnce lists an upload under its idempotency key, or replays the image
// the key already made (res is nil when only the body was hashed). A
// replay is audited (image.upload_replayed) and announces nothing.
func (s *Service) addOnce(ctx context.Context, who Uploader, sess *session.Session, sessionID, key, sum string, up session.Upload, res *compress.Result, hint session.Clinical) (session.Image, bool, error) {
	var (
		img    session.Image
		replay bool
		err    error
	)
	if who.PhoneToken != "" {
		img, replay, err = s.sessions.AddPhoneImageOnce(ctx, who.PhoneToken, key, sum, up)
	} else {
		img, replay, err = s.sessions.AddImageOnce(ctx, sessionID, key, sum, up)
	}
	switch {
	case err != nil:
		if errors.Is(err, session.ErrKeyReused) {
			s.record(ctx, sess, AuditRecord{Event: "image.rejected", Outcome: session.AuditRefused, Reason: string(CodeIdempotencyKeyReused)})
		}
		return session.Image{}, false, storage(err)
	case replay:
		s.record(ctx, sess, AuditRecord{Event: "image.upload_replayed", Image: img.ID, SHA256: img.SHA256})
		return img, true, nil
	case res == nil:
		// The record vanished between the check and the claim (its
		// session's lifetime ended): nothing was read to store.
		return session.Image{}, false, storage(session.ErrExpired)
	}
	img, err = s.listed(ctx, sess, sessionID, img, res, hint)
	return img, false, err
}

// hashBody reads the whole upload body (within the upload limit) and
// returns its lower-case hex SHA-256.
func (s *Service) hashBody(r io.Reader) (string, error) {
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, s.limits.MaxUploadBytes+1))
	if err != nil {
		return "", err
	}
	if n > s.limits.MaxUploadBytes {
		return "", fmt.Errorf("%w: over %d bytes", compress.ErrTooLarge, s.limits.MaxUploadBytes)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// UpdateImage sets an image's clinical description and consent (desktop
// only) and returns the image as stored.
//
// Everything [Service.Commit] would refuse in the description is refused
// here, by the same rules and limits (media.CheckMetadata): codes outside
// the value sets, a side without a body site, a title over
// media.MaxTitleLength or a note over media.MaxNoteLength characters. The
// title and note are stored plain (media.Metadata.Plain: control and
// invisible formatting characters such as bidirectional overrides and
// zero-width spaces removed), as they will be sent. The refusal is a
// *media.ValidationError (CodeInvalidMetadata) whose problems name the
// fields as the HTTP API spells them: bodySite, laterality, view, title,
// note, consent.method, consent.recordedBy, consent.recordedAt.
//
// Consent: Given and Method ("verbal" or "written", or empty when not
// stated) come from the caller. Who recorded it and when do not: they are
// the session's launching practitioner and the Service's clock, kept from
// the earlier record while consent stays given by the same method. A
// caller that sends RecordedBy or RecordedAt is refused (not ignored), so a
// client that tries to set them learns that it cannot. Consent not given
// stores no method.
func (s *Service) UpdateImage(ctx context.Context, sessionID, imageID string, c session.Clinical, consent session.Consent) (session.Image, error) {
	sess, err := s.sessions.Get(ctx, sessionID)
	if err != nil {
		return session.Image{}, storage(err)
	}
	c, consent, err = checkUpdate(c, consent)
	if err != nil {
		var ve *media.ValidationError
		detail := ""
		if errors.As(err, &ve) {
			detail = "fields=" + strings.Join(ve.Fields(), ",")
		}
		s.record(ctx, sess, AuditRecord{Event: "image.metadata", Image: imageID, Outcome: session.AuditRefused,
			Reason: string(CodeInvalidMetadata), Detail: detail})
		return session.Image{}, err
	}
	if consent.Given {
		now := s.now()
		consent.RecordedBy, consent.RecordedAt = sess.Practitioner, now
		if prev := sess.Image(imageID); prev != nil && prev.Consent.Given && prev.Consent.Method == consent.Method &&
			prev.Consent.RecordedBy == sess.Practitioner && trustedConsentTime(sess, prev.Consent.RecordedAt, now) {
			consent.RecordedAt = prev.Consent.RecordedAt
		}
	}
	img, err := s.sessions.SetMetadata(ctx, sessionID, imageID, c, consent)
	if err != nil {
		return session.Image{}, storage(err)
	}
	s.publish(ctx, sessionID, sync.ImageUpdated, imageID, nil)
	s.record(ctx, sess, AuditRecord{Event: "image.metadata", Image: imageID, Detail: "consent=" + consentDetail(consent)})
	return img, nil
}

// trustedConsentTime reports whether t can be when consent was recorded in
// sess: not before the session began, not after now. Records written before
// the Service set this itself may hold a time a client sent.
func trustedConsentTime(sess *session.Session, t, now time.Time) bool {
	return !t.IsZero() && !t.Before(sess.CreatedAt) && !t.After(now)
}

// consentDetail says how consent stands, for the audit: "none", "given"
// (no method stated), "verbal" or "written".
func consentDetail(c session.Consent) string {
	switch {
	case !c.Given:
		return "none"
	case c.Method == "":
		return "given"
	}
	return c.Method
}

// checkUpdate checks and normalises a description and consent from the
// desktop: the description plain and checked as Commit will check it, the
// consent method lower-cased and one of media's, and no RecordedBy or
// RecordedAt from the caller.
func checkUpdate(c session.Clinical, consent session.Consent) (session.Clinical, session.Consent, error) {
	c = plainClinical(c)
	var ve media.ValidationError
	collect(&ve, c)
	method := strings.ToLower(strings.TrimSpace(media.PlainText(consent.Method)))
	if method != "" && !media.ConsentMethod(method).Valid() {
		ve.Problems = append(ve.Problems, media.Problem{Field: "consent.method", Message: "consent method must be verbal or written"})
	}
	if consent.RecordedBy != "" {
		ve.Problems = append(ve.Problems, media.Problem{Field: "consent.recordedBy", Message: "who recorded consent is set by the server from the launch; do not send it"})
	}
	if !consent.RecordedAt.IsZero() {
		ve.Problems = append(ve.Problems, media.Problem{Field: "consent.recordedAt", Message: "when consent was recorded is set by the server's clock; do not send it"})
	}
	if len(ve.Problems) > 0 {
		ve.Resource = "Media"
		return c, consent, &ve
	}
	if !consent.Given {
		return c, session.Consent{}, nil
	}
	return c, session.Consent{Given: true, Method: method}, nil
}

// checkClinical refuses now what Commit would refuse later (see
// [Service.UpdateImage]).
func (s *Service) checkClinical(c session.Clinical) error {
	var ve media.ValidationError
	collect(&ve, c)
	if len(ve.Problems) > 0 {
		ve.Resource = "Media"
		return &ve
	}
	return nil
}

// collect adds the problems media.CheckMetadata finds in c to ve, each
// under the field's name in the HTTP API.
func collect(ve *media.ValidationError, c session.Clinical) {
	var mve *media.ValidationError
	if !errors.As(media.CheckMetadata(metadataOf(c)), &mve) {
		return
	}
	for _, p := range mve.Problems {
		if name, ok := apiFieldOf[p.Field]; ok {
			p.Field = name
		}
		ve.Problems = append(ve.Problems, p)
	}
}

// apiFieldOf names media.CheckMetadata's fields as session.Clinical's JSON
// does.
var apiFieldOf = map[string]string{
	"Metadata.BodySite": "bodySite", "Metadata.Laterality": "laterality", "Metadata.View": "view",
	"Metadata.Title": "title", "Metadata.Note": "note",
}

// metadataOf is the media description of a session description.
func metadataOf(c session.Clinical) media.Metadata {
	return media.Metadata{BodySite: c.BodySite, Laterality: c.Laterality, View: c.View, Title: c.Title, Note: c.Note}
}

// plainClinical is c with its title and note plain, as media writes them.
func plainClinical(c session.Clinical) session.Clinical {
	md := metadataOf(c).Plain()
	c.Title, c.Note = md.Title, md.Note
	return c
}

// Title returns the content.title the image's record will carry if it is
// committed with its current description: the GP's title followed by the
// body site, side and view, or one made from them and the time the photo
// was taken (see media.Builder.Title). It is computed by the builder Commit
// uses, from the same description and the image's CreatedAt, so it equals
// byte for byte what ALEX receives. The HTTP API returns it as the
// image's "title".
func (s *Service) Title(img session.Image) string {
	return s.titleBuilder().Title(metadataOf(img.Clinical), img.CreatedAt)
}

// titleBuilder is the builder whose title Commit sends.
func (s *Service) titleBuilder() *media.Builder {
	if s.inboxScan {
		return s.docBuilder
	}
	return s.builder
}

// RemoveImage takes an image out of the session and deletes its bytes.
func (s *Service) RemoveImage(ctx context.Context, sessionID, imageID string) error {
	// Read first for the audit's practitioner (the manager's update hands
	// back no session).
	sess, err := s.sessions.Get(ctx, sessionID)
	if err != nil {
		return storage(err)
	}
	if err := s.sessions.RemoveImage(ctx, sessionID, imageID); err != nil {
		return storage(err)
	}
	s.publish(ctx, sessionID, sync.ImageRemoved, imageID, nil)
	s.record(ctx, sess, AuditRecord{Event: "image.removed", Image: imageID})
	return nil
}

// OpenImage returns the bytes of one of the session's images, for the
// desktop's preview. The caller closes the reader.
func (s *Service) OpenImage(ctx context.Context, sessionID, imageID string) (io.ReadCloser, session.Image, error) {
	sess, err := s.sessions.Get(ctx, sessionID)
	if err != nil {
		return nil, session.Image{}, storage(err)
	}
	img := sess.Image(imageID)
	if img == nil {
		return nil, session.Image{}, fmt.Errorf("%w: image", session.ErrNotFound)
	}
	rc, err := s.sessions.OpenImage(ctx, *img)
	if err != nil {
		return nil, session.Image{}, storage(err)
	}
	return rc, *img, nil
}

// EndSession ends a session now: its bytes are deleted and its desktop is told.
func (s *Service) EndSession(ctx context.Context, sessionID string) error {
	sess, gerr := s.sessions.Get(ctx, sessionID)
	if err := s.sessions.End(ctx, sessionID); err != nil {
		return storage(err)
	}
	if gerr != nil {
		sess = nil
	} else {
		s.dismiss(ctx, sess)
	}
	s.publish(ctx, sessionID, sync.SessionExpired, "", map[string]any{"reason": "ended"})
	s.record(ctx, sess, AuditRecord{Event: "session.ended", Session: sessionID})
	if err := s.roster.Leave(context.WithoutCancel(ctx), rosterPhones, sessionID); err != nil {
		s.log.WarnContext(ctx, "phone presence: leave failed", "session", session.LogRef(sessionID), "error", err)
	}
	if err := s.dropHistory(ctx, sessionID); err != nil {
		s.log.WarnContext(ctx, "deleting history thumbnails failed; the sweeper will", "session", session.LogRef(sessionID), "error", err)
	}
	return nil
}

// publish announces an event; a failure is logged, never returned: the event
// layer is a notification, the stores are the truth (clients resync).
func (s *Service) publish(ctx context.Context, sessionID string, typ sync.EventType, imageID string, data map[string]any) {
	ev := sync.Event{Session: sessionID, Type: typ, Image: imageID}
	if data != nil {
		b, err := json.Marshal(data)
		if err == nil {
			ev.Data = b
		}
	}
	if _, err := s.events.Publish(context.WithoutCancel(ctx), ev); err != nil {
		s.log.WarnContext(ctx, "publish failed", "session", sessionID, "type", string(typ), "error", err)
	}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

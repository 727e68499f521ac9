package alextest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// Facts about ALEX that the simulator reproduces. They are spelt out here
// rather than imported from package alex so the simulator stays an
// independent witness of what the client must do.
const (
	// DefaultTenant is the Azure AD tenant of every ALEX environment.
	DefaultTenant = "8a024e99-aba3-4b25-b875-28b0c0ca6096"
	// DefaultClientID, DefaultClientSecret and DefaultScope are the
	// credentials the simulator accepts unless WithCredentials says otherwise.
	DefaultClientID     = "5e2c1d7a-0b6f-4c3e-9d41-a1e7a1e7a1e7"
	DefaultClientSecret = "alextest-client-secret"
	DefaultScope        = "api://bf0c0db0-08e7-4ed8-bb85-8d5676869424/.default"
	// DefaultFacility is the facility (HPI facility id) used when none is
	// configured: ALEX UAT's hosted practice. The simulator knows
	// DefaultFacility and LocalFacility unless WithFacilities says otherwise.
	DefaultFacility = "F2N060-E"
	LocalFacility   = "F99669-C"
	// DefaultTokenLifetime is Azure AD's expires_in for ALEX tokens.
	DefaultTokenLifetime = 3599 * time.Second
	// DefaultPageSize is the number of entries a searchset page holds when
	// the request has no _count.
	DefaultPageSize = 50
	// MaxBodyBytes caps any request body the simulator reads; a larger body
	// gets 413. ALEX's own limit is unknown; this one only protects tests.
	MaxBodyBytes = 64 << 20
)

// Header names ALEX reads.
const (
	HeaderFacility      = "mt-facilityid"
	HeaderCorrelationID = "mt-correlationid"
	HeaderAppID         = "mt-appid"
)

// FHIR systems, codes and limits ALEX uses.
const (
	NHISystem          = "https://standards.digital.health.nz/ns/nhi-id"
	HPIFacilitySystem  = "https://standards.digital.health.nz/ns/hpi-facility-id"
	HPIOrgSystem       = "https://standards.digital.health.nz/ns/hpi-organisation-id"
	HPIPersonSystem    = "https://standards.digital.health.nz/ns/hpi-person-id"
	PMSVersionURL      = "http://alexapi.medtechglobal.com/fhir/StructureDefinition/location-medtechpms-version"
	LOINCSystem        = "http://loinc.org"
	PhotographicImage  = "72170-4" // LOINC code of an Inbox Scan DocumentReference
	MaxScanAttachBytes = 8 << 20   // Inbox Scan attachments must be under 8 MB
)

// Roles ALEX grants in the token's roles claim, and the ones the simulator
// checks per endpoint.
const (
	RoleMediaWrite      = "patient.media.write"
	RoleMediaRead       = "patient.media.read"
	RoleNHISearch       = "patient.nhisearch.read"
	RolePractitioner    = "practitioner.read"
	RoleLocation        = "practice.location.read"
	RoleLaunch          = "patient.launchformincontext.read"
	RoleScanInboxWrite  = "Patient.documentreference.scaninbox.write"
	diagForbidden       = "Authorization failed."
	diagFacilityMissing = "Practice Facility not found"
	diagFacilityDown    = "Cannot establish connection to the facility. Please try again later."
	diagIdentifier      = "The mandatory Identifier.value with the reference number is missing"
)

// DefaultRoles returns the roles a token carries unless WithRoles or SetRoles
// says otherwise: every role the SDK uses.
func DefaultRoles() []string {
	return []string{RoleMediaWrite, RoleMediaRead, RoleNHISearch, RolePractitioner,
		RoleLocation, RoleLaunch, RoleScanInboxWrite}
}

// Patient is a patient the simulator knows. ID is ALEX's 32-hex patient id
// (derived from the NHI when empty); BirthDate is YYYY-MM-DD; Gender is a FHIR
// administrative gender (male, female, other, unknown).
type Patient struct {
	ID, NHI, Family, Given string
	BirthDate              string
	Gender                 string
}

// DefaultPatients returns the fictional test patients the simulator knows
// unless WithPatients says otherwise. Their NHIs are in the ZZZ test range and
// pass the NHI check: two in the old AAANNNN form, two in the new AAANNAX form.
func DefaultPatients() []Patient {
	return []Patient{
		{ID: "14e52e16edb7a435bfa05e307afd008b", NHI: "ZZZ0016", Family: "Testing", Given: "Aroha", BirthDate: "1965-08-07", Gender: "female"},
		{ID: "0b7d7c1f3a2e4d5c8b9a0f1e2d3c4b5a", NHI: "ZZZ0024", Family: "Tester", Given: "Wiremu", BirthDate: "1980-02-29", Gender: "male"},
		{ID: "9f8e7d6c5b4a39281706f5e4d3c2b1a0", NHI: "ZZZ00AC", Family: "Sample", Given: "Mere", BirthDate: "2001-12-31", Gender: "female"},
		{ID: "a1b2c3d4e5f60718293a4b5c6d7e8f90", NHI: "ZZZ01BW", Family: "Example", Given: "Sam", BirthDate: "1999-06-15", Gender: "other"},
	}
}

// Practitioner is a practitioner the simulator lists at GET /Practitioner.
// CPN is the HPI person id (common person number).
type Practitioner struct {
	ID, Family, Given, CPN string
}

// DefaultPractitioners returns the fictional practitioners the simulator lists.
func DefaultPractitioners() []Practitioner {
	return []Practitioner{
		{ID: "9bf0832786e2293848942167532e0a91", Family: "Api", Given: "Alex", CPN: "99ZZZA"},
		{ID: "7def01802be7cbe97d4301a421f111f5", Family: "Staff", Given: "Jordan", CPN: "99ZZZB"},
		{ID: "dc36a3e8c7b0adb8a56a0e01b64d46f4", Family: "Lawrence", Given: "Kim"},
	}
}

// Option configures a Server. NewServer panics when an option is invalid,
// as httptest.NewServer panics when it cannot listen: both are mistakes in a
// test, not conditions to handle.
type Option func(*config) error

type config struct {
	tenant                  string
	clientID, secret, scope string
	facilities              []string
	roles                   []string
	lifetime                time.Duration
	patients                []Patient
	practitioners           []Practitioner
	clock                   func() time.Time
	pageSize                int
	listener                net.Listener
	earlierMedia            bool
}

// WithListener serves on l instead of a new loopback port, for running the
// simulator standalone on a known address (the CLI's simulate command). The
// server closes l when it is closed.
func WithListener(l net.Listener) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("WithListener: nil listener")
		}
		c.listener = l
		return nil
	}
}

var scopeRE = regexp.MustCompile(`^api://[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/\.default$`)

// WithCredentials sets the client id, secret and scope the token endpoint
// accepts. The scope must have ALEX's form api://<GUID>/.default.
func WithCredentials(clientID, clientSecret, scope string) Option {
	return func(c *config) error {
		if clientID == "" || clientSecret == "" {
			return fmt.Errorf("WithCredentials: client id and secret must not be empty")
		}
		if !scopeRE.MatchString(scope) {
			return fmt.Errorf("WithCredentials: scope %q is not api://<GUID>/.default", scope)
		}
		c.clientID, c.secret, c.scope = clientID, clientSecret, scope
		return nil
	}
}

// WithTenant sets the Azure AD tenant in the token URL (default DefaultTenant).
func WithTenant(tenant string) Option {
	return func(c *config) error {
		if tenant == "" || strings.ContainsAny(tenant, "/?#") {
			return fmt.Errorf("WithTenant: invalid tenant %q", tenant)
		}
		c.tenant = tenant
		return nil
	}
}

// WithFacilities sets the facilities (HPI facility ids) linked to the app.
// The first is the default facility. Requests naming any other facility get
// 403 "Practice Facility not found".
func WithFacilities(ids ...string) Option {
	return func(c *config) error {
		if len(ids) == 0 {
			return fmt.Errorf("WithFacilities: at least one facility is required")
		}
		for _, id := range ids {
			if strings.TrimSpace(id) == "" {
				return fmt.Errorf("WithFacilities: empty facility id")
			}
		}
		c.facilities = slices.Clone(ids)
		return nil
	}
}

// WithRoles sets the roles carried by tokens (default DefaultRoles). An empty
// list is allowed: such a token is valid but every role check fails.
func WithRoles(roles ...string) Option {
	return func(c *config) error {
		c.roles = slices.Clone(roles)
		return nil
	}
}

// WithTokenLifetime sets expires_in of issued tokens (default 3599 s).
func WithTokenLifetime(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Second {
			return fmt.Errorf("WithTokenLifetime: %v is under one second", d)
		}
		c.lifetime = d
		return nil
	}
}

// WithPatients replaces the default patients. Each needs an NHI; an empty ID
// is derived from the NHI. IDs must be unique, NHIs need not be: two records
// sharing an NHI (a duplicate registration not yet merged) are both returned
// by a Patient search on it, so a test can check that its client refuses to
// choose; give such patients explicit IDs. The NHI check digit is not
// enforced, so a test can store an NHI its client should refuse.
func WithPatients(patients ...Patient) Option {
	return func(c *config) error {
		seenID := map[string]bool{}
		out := make([]Patient, 0, len(patients))
		for _, p := range patients {
			p.NHI = strings.ToUpper(strings.TrimSpace(p.NHI))
			if p.NHI == "" {
				return fmt.Errorf("WithPatients: a patient has no NHI")
			}
			if p.ID == "" {
				sum := sha256.Sum256([]byte("alextest-patient:" + p.NHI))
				p.ID = hex.EncodeToString(sum[:16])
			}
			if !isHexID(p.ID) {
				return fmt.Errorf("WithPatients: patient id %q is not 32 lowercase hex characters", p.ID)
			}
			if seenID[p.ID] {
				return fmt.Errorf("WithPatients: duplicate patient %q", p.ID)
			}
			seenID[p.ID] = true
			out = append(out, p)
		}
		c.patients = out
		return nil
	}
}

// WithPractitioners replaces the default practitioners.
func WithPractitioners(practitioners ...Practitioner) Option {
	return func(c *config) error {
		for _, p := range practitioners {
			if !isHexID(p.ID) {
				return fmt.Errorf("WithPractitioners: practitioner id %q is not 32 lowercase hex characters", p.ID)
			}
		}
		c.practitioners = slices.Clone(practitioners)
		return nil
	}
}

// WithClock sets the clock used for token issue and expiry, meta.lastUpdated,
// launch times and request times (default time.Now). Latency injected by
// SetLatency always uses real time.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return fmt.Errorf("WithClock: nil clock")
		}
		c.clock = now
		return nil
	}
}

// WithPageSize sets how many entries a searchset page holds when the request
// has no _count (default DefaultPageSize).
func WithPageSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("WithPageSize: %d is not positive", n)
		}
		c.pageSize = n
		return nil
	}
}

func isHexID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Fault is a canned failure returned instead of the real reply. See
// Server.FailNext.
type Fault struct {
	// Status is the HTTP status (required, 400-599).
	Status int
	// RetryAfter, when set, is sent verbatim as the Retry-After header
	// (seconds or an HTTP-date).
	RetryAfter string
	// Body replaces the default body, an OperationOutcome with code
	// "exception" (or "throttled" for 429) and the status text. A body that
	// starts with '{' and mentions "resourceType" is sent as
	// application/fhir+json, any other as application/json.
	Body string
	// Path limits the fault to requests whose URL path starts with it,
	// compared case-insensitively ("/FHIR/Media" matches "/fhir/Media/abc");
	// empty means any FHIR or launch request.
	Path string
}

// Request is one recorded FHIR or launch request. The body is not kept; its
// size is. Header is a copy of the request headers, Authorization included.
type Request struct {
	Method, Path, RawQuery string
	Header                 http.Header
	BodyBytes              int64
	Facility               string // mt-facilityid as sent ("" when absent)
	CorrelationID          string // mt-correlationid as sent ("" when absent)
	Time                   time.Time
}

type queuedFault struct {
	n int
	f Fault
}

// queuedDrop is a DropNext or DropNextCreate call not used up yet.
type queuedDrop struct {
	n      int
	create string // the resource type whose POST it drops; "" drops any request
}

type storedMedia struct {
	m        fhir.Media // content.data is nil
	data     []byte
	facility string
	patient  string
}

type storedDocRef struct {
	d        fhir.DocumentReference // attachment data are nil
	data     [][]byte               // per content entry
	facility string
}

type launch struct {
	patientID, facility, providerID string
	created                         time.Time
}

// Server is an in-process ALEX: an Azure-AD-shaped token endpoint plus
// ALEX's FHIR API and the Evolution vendor-forms launch endpoint, with ALEX's
// rules, fault injection and request recording. It listens on a loopback
// port from NewServer until Close. All methods are safe for concurrent use,
// also while requests are in flight.
type Server struct {
	srv    *httptest.Server
	cfg    config
	key    []byte // signs tokens and launch contexts
	closed chan struct{}
	once   sync.Once

	tokenRequests atomic.Int64

	mu           sync.Mutex
	roles        []string
	nextSeq      int64
	minSeq       int64 // tokens with a lower sequence number are expired
	faults       []queuedFault
	tokenFaults  []string
	drops        []queuedDrop
	latency      time.Duration
	replyLatency time.Duration
	blocked      bool
	down         map[string]bool
	requests     []*Request
	media        []*storedMedia
	mediaByID    map[string]*storedMedia
	docRefs      []*storedDocRef
	launches     map[string]launch
}

// NewServer starts a simulator on a loopback port. The caller must Close it.
// It panics if an option is invalid.
func NewServer(opts ...Option) *Server {
	cfg := config{
		tenant:        DefaultTenant,
		clientID:      DefaultClientID,
		secret:        DefaultClientSecret,
		scope:         DefaultScope,
		facilities:    []string{DefaultFacility, LocalFacility},
		roles:         DefaultRoles(),
		lifetime:      DefaultTokenLifetime,
		patients:      DefaultPatients(),
		practitioners: DefaultPractitioners(),
		clock:         time.Now,
		pageSize:      DefaultPageSize,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			panic("alextest: " + err.Error())
		}
	}
	s := &Server{
		cfg:       cfg,
		key:       make([]byte, 32),
		closed:    make(chan struct{}),
		roles:     cfg.roles,
		down:      map[string]bool{},
		mediaByID: map[string]*storedMedia{},
		launches:  map[string]launch{},
	}
	_, _ = rand.Read(s.key)
	if cfg.listener != nil {
		s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
		_ = s.srv.Listener.Close()
		s.srv.Listener = cfg.listener
		s.srv.Start()
	} else {
		s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	}
	if cfg.earlierMedia {
		// After the listener starts: subjects carry the server's URL.
		s.SeedEarlierMedia()
	}
	return s
}

// NewTestServer is NewServer with tb.Cleanup(Close).
func NewTestServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := NewServer(opts...)
	tb.Cleanup(s.Close)
	return s
}

// Close stops the server, ending any injected latency at once, and blocks
// until in-flight requests finish. It is safe to call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
}

// URL returns the server's root URL, for example http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.srv.URL }

// BaseURL returns the FHIR base URL, URL()+"/FHIR", as ALEX spells it in
// requests. Replies spell it lowercase (/fhir) in Location headers and
// references, as ALEX does.
func (s *Server) BaseURL() string { return s.srv.URL + "/FHIR" }

// fhirRoot is the base URL as ALEX writes it in replies.
func (s *Server) fhirRoot() string { return s.srv.URL + "/fhir" }

// TokenURL returns the Azure-AD-shaped token endpoint,
// URL()+"/<tenant>/oauth2/v2.0/token".
func (s *Server) TokenURL() string {
	return s.srv.URL + "/" + s.cfg.tenant + "/oauth2/v2.0/token"
}

// Client returns an *http.Client that talks to the server (the one of the
// underlying httptest.Server).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Credentials returns the client id, secret and scope the token endpoint
// accepts.
func (s *Server) Credentials() (clientID, clientSecret, scope string) {
	return s.cfg.clientID, s.cfg.secret, s.cfg.scope
}

// Facility returns the default facility id (the first configured).
func (s *Server) Facility() string { return s.cfg.facilities[0] }

// Facilities returns every facility linked to the app.
func (s *Server) Facilities() []string { return slices.Clone(s.cfg.facilities) }

// Patients returns the patients the simulator knows.
func (s *Server) Patients() []Patient { return slices.Clone(s.cfg.patients) }

// Practitioners returns the practitioners the simulator lists.
func (s *Server) Practitioners() []Practitioner { return slices.Clone(s.cfg.practitioners) }

// SetRoles changes the roles carried by tokens issued from now on; tokens
// already issued keep theirs (roles are claims inside the token).
func (s *Server) SetRoles(roles ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles = slices.Clone(roles)
}

// FailNext makes the next n FHIR or launch requests matching f.Path get the
// fault f instead of their reply (the request body is read and discarded and
// nothing is stored). Calls queue: each request takes the first queued fault
// it matches. The token endpoint is never affected; see FailTokenNext.
func (s *Server) FailNext(n int, f Fault) {
	if n <= 0 {
		return
	}
	if f.Status < 400 || f.Status > 599 {
		panic(fmt.Sprintf("alextest: FailNext: status %d is not an error status", f.Status))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, queuedFault{n: n, f: f})
}

// SetLatency delays every FHIR and launch request by d before it is handled
// (0 removes the delay). The delay ends early when the client gives up or the
// server closes.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetReplyLatency delays the reply of every FHIR and launch request by d
// after the request has been acted on (0 removes the delay): a POST Media is
// stored at once, and a client that times out meanwhile cannot know it
// was. The delay ends early when the client gives up or the server closes.
func (s *Server) SetReplyLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replyLatency = d
}

// SetEgressBlocked simulates a caller whose egress IP is not on ALEX's
// allow-list (blocked=true): the token endpoint still works, but every FHIR
// and launch request hangs without a reply until the client gives up or the
// server closes, as the TCP connection to ALEX times out. Such requests never
// reach ALEX, so they are not recorded. blocked=false lifts it.
func (s *Server) SetEgressBlocked(blocked bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocked = blocked
}

// DropNext makes the next n FHIR or launch requests, whatever their method
// or path, be read in full and acted on (a POST stores its resource, a GET is
// answered into nothing) and then closes each one's connection without a
// reply: the client cannot know the outcome. A request that takes a FailNext
// fault takes no drop. The token endpoint is never affected.
//
// "Next request" means any request: if the code under test reads before it
// writes (a patient lookup, then a POST Media), DropNext(1) drops the read,
// which a client simply retries, and the write goes through. To lose the
// reply of a create, use DropNextCreate. Calls of both queue: each request
// takes the first queued drop it matches.
func (s *Server) DropNext(n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops = append(s.drops, queuedDrop{n: n})
}

// DropNextCreate is DropNext for the next n creates of resourceType only
// (POST {base}/{resourceType}, for example "Media" or "DocumentReference";
// case-insensitive): ALEX stores the resource, then the connection closes
// without a reply. Other requests pass untouched and leave the drop queued.
// It panics if resourceType is empty.
func (s *Server) DropNextCreate(n int, resourceType string) {
	if resourceType == "" {
		panic("alextest: DropNextCreate: empty resource type")
	}
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops = append(s.drops, queuedDrop{n: n, create: resourceType})
}

// ExpireTokens makes every token issued so far get 401 from now on, as if it
// had expired early. Tokens issued afterwards work.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.minSeq = s.nextSeq
}

// SetFacilityUnavailable makes requests for facility get ALEX's 503
// "Cannot establish connection to the facility. Please try again later."
// (down=true), as when the practice's relay to the on-premise PMS is off, or
// restores it (down=false). The facility must still be linked: an unknown
// facility keeps getting 403.
func (s *Server) SetFacilityUnavailable(facility string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if down {
		s.down[facility] = true
	} else {
		delete(s.down, facility)
	}
}

// FailTokenNext makes the next n token requests fail with the Azure AD error
// errorCode, whatever they send: "invalid_client" (401), "unauthorized_client",
// "invalid_scope", "invalid_request", "unsupported_grant_type" (400),
// "temporarily_unavailable" (503), "server_error" (500); any other code is
// sent with status 400.
func (s *Server) FailTokenNext(n int, errorCode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.tokenFaults = append(s.tokenFaults, errorCode)
	}
}

// Requests returns the FHIR and launch requests received, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = *r
		out[i].Header = r.Header.Clone()
	}
	return out
}

// TokenRequests returns how many requests reached the token endpoint,
// failed ones included.
func (s *Server) TokenRequests() int { return int(s.tokenRequests.Load()) }

// Media returns the stored Media resources, oldest first, with content.data
// removed (see MediaData).
func (s *Server) Media() []fhir.Media {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]fhir.Media, len(s.media))
	for i, m := range s.media {
		out[i] = m.m
	}
	return out
}

// MediaData returns a copy of the decoded content of the stored Media id.
func (s *Server) MediaData(id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.mediaByID[id]
	if !ok {
		return nil, false
	}
	return slices.Clone(m.data), true
}

// MediaFacility returns the facility a stored Media was created at: ALEX
// files it in that practice's Inbox only.
func (s *Server) MediaFacility(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.mediaByID[id]
	if !ok {
		return "", false
	}
	return m.facility, true
}

// DocumentReferences returns the stored Inbox Scan DocumentReferences, oldest
// first, with attachment data removed (see DocumentReferenceData).
func (s *Server) DocumentReferences() []fhir.DocumentReference {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]fhir.DocumentReference, len(s.docRefs))
	for i, d := range s.docRefs {
		out[i] = d.d
	}
	return out
}

// DocumentReferenceData returns a copy of the decoded first attachment of the
// stored DocumentReference id.
func (s *Server) DocumentReferenceData(id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.docRefs {
		if d.d.Id != nil && *d.d.Id == id && len(d.data) > 0 {
			return slices.Clone(d.data[0]), true
		}
	}
	return nil, false
}

// Reset clears faults (queued failures, drops, latencies, blocked egress, unavailable
// facilities, token failures), recordings (requests, token count) and stored
// resources (Media, DocumentReferences, launches). Configuration, roles set
// by SetRoles and tokens expired by ExpireTokens stay as they are.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults, s.tokenFaults, s.drops, s.latency, s.replyLatency = nil, nil, nil, 0, 0
	s.blocked = false
	s.down = map[string]bool{}
	s.requests = nil
	s.tokenRequests.Store(0)
	s.media, s.mediaByID, s.docRefs = nil, map[string]*storedMedia{}, nil
	s.launches = map[string]launch{}
}

func (s *Server) now() time.Time { return s.cfg.clock() }

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// serveHTTP routes every request: the token endpoint, the launch endpoint,
// the FHIR API; anything else gets the gateway's non-FHIR 404.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	segs, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		writeNotFound(w)
		return
	}
	if len(segs) == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "token" {
		s.serveToken(w, r, segs[0])
		return
	}
	isLaunch := len(segs) == 5 && strings.EqualFold(segs[0], "vendorforms") && segs[1] == "api" &&
		strings.EqualFold(segs[2], "getlaunchcontextstring")
	isFHIR := len(segs) >= 1 && strings.EqualFold(segs[0], "fhir")
	if !isLaunch && !isFHIR {
		writeNotFound(w)
		return
	}
	s.serveAPI(w, r, segs, isLaunch)
}

// splitPath splits an escaped URL path into unescaped segments, so that an
// escaped '/' inside a launch context stays inside its segment.
func splitPath(escaped string) ([]string, bool) {
	escaped = strings.TrimPrefix(escaped, "/")
	escaped = strings.TrimSuffix(escaped, "/")
	if escaped == "" {
		return nil, true
	}
	parts := strings.Split(escaped, "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil {
			return nil, false
		}
		parts[i] = u
	}
	return parts, true
}

// serveAPI applies recording, latency and faults, then the ALEX checks, then
// the route's handler.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, segs []string, isLaunch bool) {
	s.mu.Lock()
	blocked := s.blocked
	s.mu.Unlock()
	if blocked {
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		panic(http.ErrAbortHandler)
	}
	body := &countingBody{ReadCloser: http.MaxBytesReader(w, r.Body, MaxBodyBytes)}
	r.Body = body
	rec := &Request{
		Method:        r.Method,
		Path:          r.URL.Path,
		RawQuery:      r.URL.RawQuery,
		Header:        r.Header.Clone(),
		Facility:      r.Header.Get(HeaderFacility),
		CorrelationID: r.Header.Get(HeaderCorrelationID),
		Time:          s.now(),
	}
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	latency, replyLatency := s.latency, s.replyLatency
	s.mu.Unlock()
	recordSize := func() {
		s.mu.Lock()
		rec.BodyBytes = body.n.Load()
		s.mu.Unlock()
	}
	defer recordSize()

	if !s.sleep(r, latency) {
		return
	}

	created := "" // the resource type this request creates, if it is a create
	if !isLaunch && r.Method == http.MethodPost && len(segs) == 2 {
		created = segs[1]
	}
	fault, failed, drop := s.takeFault(r.URL.Path, created)
	if failed {
		_, _ = io.Copy(io.Discard, r.Body)
		recordSize()
		writeFault(w, fault)
		return
	}
	if drop {
		s.route(discardWriter{h: http.Header{}}, r, segs, isLaunch)
		_, _ = io.Copy(io.Discard, r.Body)
		panic(http.ErrAbortHandler) // closes the connection without a reply
	}
	// Read the whole request before replying, as ALEX's gateway does, so a
	// client still sending a large body sees the reply, not a broken pipe.
	w = &drainingWriter{ResponseWriter: w, body: r.Body, drained: recordSize}
	if replyLatency > 0 {
		w = &delayedWriter{ResponseWriter: w, delay: func() bool { return s.sleep(r, replyLatency) }}
	}
	s.route(w, r, segs, isLaunch)
}

// sleep waits d, or less if the client gives up or the server closes; it
// reports whether the full delay passed.
func (s *Server) sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closed:
	}
	return false
}

// drainingWriter reads what is left of the request body before the first
// byte of the reply.
// The body size is recorded then, so it is in Requests before the client
// has the reply.
type drainingWriter struct {
	http.ResponseWriter
	body    io.Reader
	drained func()
	done    bool
}

func (d *drainingWriter) drain() {
	if !d.done {
		d.done = true
		_, _ = io.Copy(io.Discard, d.body)
		d.drained()
	}
}

func (d *drainingWriter) WriteHeader(status int) {
	d.drain()
	d.ResponseWriter.WriteHeader(status)
}

func (d *drainingWriter) Write(p []byte) (int, error) {
	d.drain()
	return d.ResponseWriter.Write(p)
}

// delayedWriter waits before the first byte of the reply. If the wait is cut
// short, the reply is discarded.
type delayedWriter struct {
	http.ResponseWriter
	delay   func() bool
	waited  bool
	discard bool
}

func (d *delayedWriter) wait() {
	if !d.waited {
		d.waited = true
		d.discard = !d.delay()
	}
}

func (d *delayedWriter) WriteHeader(status int) {
	d.wait()
	if !d.discard {
		d.ResponseWriter.WriteHeader(status)
	}
}

func (d *delayedWriter) Write(p []byte) (int, error) {
	d.wait()
	if d.discard {
		return len(p), nil
	}
	return d.ResponseWriter.Write(p)
}

// takeFault consumes the fault or drop that applies to a request, if any;
// created is the resource type the request creates, "" if it is no create.
func (s *Server) takeFault(path, created string) (f Fault, failed, drop bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lp := strings.ToLower(path)
	for i := range s.faults {
		q := &s.faults[i]
		if q.f.Path != "" && !strings.HasPrefix(lp, strings.ToLower(q.f.Path)) {
			continue
		}
		f = q.f
		q.n--
		if q.n == 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return f, true, false
	}
	for i := range s.drops {
		q := &s.drops[i]
		if q.create != "" && (created == "" || !strings.EqualFold(q.create, created)) {
			continue
		}
		q.n--
		if q.n == 0 {
			s.drops = slices.Delete(s.drops, i, i+1)
		}
		return Fault{}, false, true
	}
	return Fault{}, false, false
}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d discardWriter) WriteHeader(int)             {}

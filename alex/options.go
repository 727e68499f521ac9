package alex

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// ALEX endpoints and Azure AD facts, from Medtech's developer guide.
const (
	// UATBaseURL is ALEX's user-acceptance-test FHIR base.
	UATBaseURL = "https://alexapiuat.medtechglobal.com/FHIR"
	// ProductionBaseURL is ALEX's production FHIR base.
	ProductionBaseURL = "https://alexapi.medtechglobal.com/FHIR"
	// TenantID is Medtech's Azure AD tenant, the same for every environment.
	TenantID = "8a024e99-aba3-4b25-b875-28b0c0ca6096"
	// AzureADAuthority is the Azure AD v2 authority that token URLs are made from.
	AzureADAuthority = "https://login.microsoftonline.com"
)

// TokenURLForTenant returns the Azure AD v2 token endpoint of a tenant.
func TokenURLForTenant(tenant string) string {
	return AzureADAuthority + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
}

// Credentials are an app's OAuth2 client credentials for ALEX. The secret is
// never printed: String, GoString, LogValue and %v all redact it.
type Credentials struct {
	// TokenURL is the token endpoint; if empty it is made from TenantID.
	TokenURL string
	// TenantID is the Azure AD tenant; if both are empty, Medtech's [TenantID].
	TenantID string
	// ClientID is the app's (client) id issued by Medtech.
	ClientID string
	// ClientSecret is the secret released by Medtech through a one-time link.
	ClientSecret string
	// Scope is api://<guid>/.default; the GUID differs between UAT and
	// production.
	Scope string
}

var scopePattern = regexp.MustCompile(`^api://[0-9A-Za-z-]+/\.default$`)

func (c Credentials) validate() error {
	var errs []error
	if c.ClientID == "" {
		errs = append(errs, errors.New("client id is empty"))
	}
	if c.ClientSecret == "" {
		errs = append(errs, errors.New("client secret is empty"))
	}
	if !scopePattern.MatchString(c.Scope) {
		errs = append(errs, errors.New(`scope must look like "api://<guid>/.default"`))
	}
	if c.TokenURL != "" {
		if u, err := url.Parse(c.TokenURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, errors.New("token URL is not an http(s) URL"))
		}
	}
	return errors.Join(errs...)
}

func (c Credentials) tokenURL() string {
	if c.TokenURL != "" {
		return c.TokenURL
	}
	if c.TenantID != "" {
		return TokenURLForTenant(c.TenantID)
	}
	return TokenURLForTenant(TenantID)
}

// String describes the credentials with the secret redacted.
func (c Credentials) String() string {
	return fmt.Sprintf("alex.Credentials{ClientID:%q, ClientSecret:%s, Scope:%q, TokenURL:%q}",
		c.ClientID, redacted(c.ClientSecret), c.Scope, c.tokenURL())
}

// GoString is String, so %#v redacts too.
func (c Credentials) GoString() string { return c.String() }

// LogValue redacts the secret in structured logs.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("client_id", c.ClientID),
		slog.String("client_secret", redacted(c.ClientSecret)),
		slog.String("scope", c.Scope),
		slog.String("token_url", c.tokenURL()),
	)
}

func redacted(s string) string {
	if s == "" {
		return "(empty)"
	}
	return "REDACTED"
}

// RetryPolicy bounds how the client retries. A zero field takes its value
// from [DefaultRetryPolicy]; [NoRetries] disables retries. Which calls are
// retried at all is fixed by the client (see [Client]), not by the policy.
type RetryPolicy struct {
	// MaxRetries is the number of retries after the first attempt.
	MaxRetries int
	// MinWait and MaxWait bound one exponential backoff step (with full
	// jitter). A Retry-After header overrides them, up to MaxTotalWait.
	MinWait, MaxWait time.Duration
	// MaxTotalWait caps the sum of all waits of one call; a retry that would
	// exceed it is not made and the last reply or error is returned.
	MaxTotalWait time.Duration
	// Disabled turns retries off entirely.
	Disabled bool
}

// DefaultRetryPolicy is what a client uses unless told otherwise.
var DefaultRetryPolicy = RetryPolicy{MaxRetries: 4, MinWait: 500 * time.Millisecond, MaxWait: 8 * time.Second, MaxTotalWait: 30 * time.Second}

// NoRetries disables retries.
var NoRetries = RetryPolicy{Disabled: true}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Disabled {
		return p
	}
	d := DefaultRetryPolicy
	if p.MaxRetries == 0 {
		p.MaxRetries = d.MaxRetries
	}
	if p.MinWait == 0 {
		p.MinWait = d.MinWait
	}
	if p.MaxWait == 0 {
		p.MaxWait = d.MaxWait
	}
	if p.MaxTotalWait == 0 {
		p.MaxTotalWait = d.MaxTotalWait
	}
	return p
}

type config struct {
	facility     string
	appID        string
	userAgent    string
	creds        *Credentials
	tokenSource  oauth2.TokenSource
	httpClient   *http.Client
	transport    http.RoundTripper
	proxy        *url.URL
	logger       *slog.Logger
	retry        RetryPolicy
	refreshAhead time.Duration
	now          func() time.Time

	nhiSystem      string
	nhiCheck       func(string) (string, error)
	facilityHeader string
	facilitySource FacilitySource
}

// Option configures a [Client]. Options validate their arguments; New
// returns the first error.
type Option func(*config) error

// WithFacility sets the default HPI facility id sent as mt-facilityid. A call
// can override it with [WithFacilityID] on its context.
func WithFacility(id string) Option {
	return func(c *config) error {
		if err := validFacility(id); err != nil {
			return err
		}
		c.facility = id
		return nil
	}
}

var facilityPattern = regexp.MustCompile(`^[A-Z0-9]{6}-[A-Z0-9]$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func validFacility(id string) error {
	if !facilityPattern.MatchString(id) {
		return fmt.Errorf("%w: facility id %q is not an HPI facility id such as F2N060-E", ErrValidation, id)
	}
	return nil
}

// WithClientCredentials authenticates with OAuth2 client credentials from
// Azure AD. Exactly one of WithClientCredentials and WithTokenSource is
// required.
func WithClientCredentials(creds Credentials) Option {
	return func(c *config) error {
		if err := creds.validate(); err != nil {
			return fmt.Errorf("alex: credentials: %w", err)
		}
		c.creds = &creds
		return nil
	}
}

// WithTokenSource authenticates with any oauth2.TokenSource (a workload
// identity, a token broker, a test). The client caches its tokens and asks it
// again after a 401.
func WithTokenSource(ts oauth2.TokenSource) Option {
	return func(c *config) error {
		if ts == nil {
			return errors.New("alex: nil token source")
		}
		c.tokenSource = ts
		return nil
	}
}

// WithAppID sets the mt-appid header sent with every call.
func WithAppID(id string) Option {
	return func(c *config) error {
		if strings.ContainsAny(id, "\r\n") {
			return errors.New("alex: app id contains a line break")
		}
		c.appID = id
		return nil
	}
}

// WithHTTPClient sets the HTTP client for ALEX and token calls. Its Timeout,
// if set, bounds each attempt. By default the client uses a transport with
// connect, TLS and response-header timeouts and no overall timeout (use ctx).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return errors.New("alex: nil http client")
		}
		c.httpClient = hc
		return nil
	}
}

// WithTransport sets the RoundTripper of the default HTTP client.
func WithTransport(rt http.RoundTripper) Option {
	return func(c *config) error {
		if rt == nil {
			return errors.New("alex: nil transport")
		}
		c.transport = rt
		return nil
	}
}

// WithProxy sends every call (ALEX and token) through an HTTP proxy, for
// example to leave from the static IP address Medtech allow-listed.
// Credentials in the proxy URL are never logged.
func WithProxy(proxyURL string) Option {
	return func(c *config) error {
		u, err := url.Parse(proxyURL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") {
			return errors.New("alex: proxy must be an http://, https:// or socks5:// URL")
		}
		c.proxy = u
		return nil
	}
}

// WithLogger sets the logger; the client is silent by default. It logs one
// debug line per attempt (method, redacted path, status, attempt, correlation
// id) and never a token, secret or patient identifier.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("alex: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithRetryPolicy sets the retry policy; see [RetryPolicy].
func WithRetryPolicy(p RetryPolicy) Option {
	return func(c *config) error {
		if p.MaxRetries < 0 || p.MinWait < 0 || p.MaxWait < 0 || p.MaxTotalWait < 0 {
			return errors.New("alex: retry policy values must not be negative")
		}
		if p.MaxWait != 0 && p.MinWait > p.MaxWait {
			return errors.New("alex: retry MinWait exceeds MaxWait")
		}
		c.retry = p
		return nil
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *config) error {
		if ua == "" || strings.ContainsAny(ua, "\r\n") {
			return errors.New("alex: invalid user agent")
		}
		c.userAgent = ua
		return nil
	}
}

// WithTokenRefreshAhead sets how long before expiry a cached token is
// replaced (default 5 minutes; ALEX tokens last 3599 s).
func WithTokenRefreshAhead(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 || d > 30*time.Minute {
			return errors.New("alex: token refresh-ahead must be between 0 and 30m")
		}
		c.refreshAhead = d
		return nil
	}
}

// WithNHISystem sets the identifier system patients are searched by in
// [Client.FindPatientByNHI], [Client.SearchMediaByNHI] and
// [Client.FindMediaByIdentifier] (default [NHISystem], New Zealand's NHI).
// Medtech's Australian ALEX has the same API but no NHIs: point it at the
// identifier system patients carry there, and give [WithNHICheck] a check
// for that identifier's format. It must be an absolute URI.
func WithNHISystem(uri string) Option {
	return func(c *config) error {
		u, err := url.Parse(uri)
		if err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") || strings.ContainsAny(uri, " \t\r\n|") {
			return errors.New("alex: NHI system must be an absolute URI without spaces or '|'")
		}
		c.nhiSystem = uri
		return nil
	}
}

// WithNHICheck replaces the check and normalisation applied to a patient
// identifier before any search (default [NormalizeNHI]: trim, upper-case, NHI
// format and check character). check returns the value to search for, or an
// error; an error that does not already match [ErrValidation] is wrapped so
// that it does. Its message must not repeat the identifier: the client puts
// it in its errors.
func WithNHICheck(check func(identifier string) (string, error)) Option {
	return func(c *config) error {
		if check == nil {
			return errors.New("alex: nil NHI check")
		}
		c.nhiCheck = check
		return nil
	}
}

// FacilitySource tells the client which facility a call is for. It returns
// the value of the facility header, or "" to send no facility header, or an
// error (returned to the caller of the call, which is not sent). It must be
// safe for concurrent use.
type FacilitySource func(ctx context.Context) (string, error)

// WithFacilitySource makes src decide each call's facility instead of the
// fixed [WithFacility] value, for example from a tenant in ctx. A facility
// set on the context with [WithFacilityID] still wins. A value src returns is
// checked as [WithFacility] checks its argument. Returning "" sends no
// facility header, for an ALEX that has no facilities (Medtech's Australian
// ALEX). It cannot be combined with WithFacility.
func WithFacilitySource(src FacilitySource) Option {
	return func(c *config) error {
		if src == nil {
			return errors.New("alex: nil facility source")
		}
		c.facilitySource = src
		return nil
	}
}

// DefaultFacilityHeader is the header the facility is sent in unless
// [WithFacilityHeader] says otherwise: ALEX's mt-facilityid.
const DefaultFacilityHeader = HeaderFacility

var headerNamePattern = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// WithFacilityHeader sets the name of the header the facility is sent in
// (default [DefaultFacilityHeader], "mt-facilityid"). Some of Medtech's
// examples say Facility-Id; ALEX reads mt-facilityid, so change it only for a
// gateway that is known to want another name.
func WithFacilityHeader(name string) Option {
	return func(c *config) error {
		if !headerNamePattern.MatchString(name) {
			return errors.New("alex: facility header must be a valid HTTP header name")
		}
		c.facilityHeader = name
		return nil
	}
}

// withClock is for tests.
func withClock(now func() time.Time) Option {
	return func(c *config) error { c.now = now; return nil }
}

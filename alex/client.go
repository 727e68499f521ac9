package alex

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/oauth2"
)

// Header names ALEX uses.
const (
	HeaderFacility      = "mt-facilityid"
	HeaderCorrelationID = "mt-correlationid"
	HeaderAppID         = "mt-appid"
	// ContentTypeFHIR is the media type of FHIR JSON bodies, sent and accepted.
	ContentTypeFHIR = "application/fhir+json"
)

// DefaultUserAgent is sent unless [WithUserAgent] says otherwise.
const DefaultUserAgent = "clinicalimages-go/0.1 (+https://github.com/clinicpro/clinicalimages)"

// Client calls Medtech's ALEX FHIR R4 API. It is safe for concurrent use by
// many goroutines and should be made once and shared: it holds the token
// cache and the connection pool.
//
// Every call carries Authorization, the facility header (mt-facilityid unless
// [WithFacilityHeader] says otherwise; see [WithFacilitySource]), Accept
// application/fhir+json, an mt-correlationid that is always a GUID in RFC
// 4122 string form (one per logical call, the same across its retries; see
// [WithCorrelationID]) and mt-appid when configured; writes carry
// Content-Type application/fhir+json.
//
// Retries: reads (GET) are retried on 429, 502, 503, 504 and transport
// errors. A write (POST) is retried only where it provably created nothing:
// the connection was never made (refused, DNS, dial timeout), a 429, or ALEX's
// 503 "Cannot establish connection to the facility". A write whose outcome is
// unknown (the request was sent but no reply read) is never resent: the error
// matches [ErrOutcomeUnknown]. Waits back off exponentially with jitter,
// honour Retry-After (seconds or HTTP-date) and stop at the policy's total
// cap or when ctx ends. A 401 causes one forced token refresh and one more
// attempt, never a loop.
type Client struct {
	base      *url.URL // FHIR base, e.g. https://host/FHIR
	root      *url.URL // scheme://host, for the vendor-forms launch endpoint
	facility  string
	appID     string
	userAgent string
	tokens    *tokenCache
	hc        *http.Client
	retry     RetryPolicy
	log       *slog.Logger
	now       func() time.Time

	nhiSystem      string
	nhiCheck       func(string) (string, error)
	facilityHeader string
	facilitySource FacilitySource
}

// New returns a client for the FHIR base URL (for example [UATBaseURL] or
// [ProductionBaseURL]). It needs [WithClientCredentials] or
// [WithTokenSource]; the other options have defaults.
func New(baseURL string, opts ...Option) (*Client, error) {
	base, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, errors.New("alex: base URL must be an absolute http(s) URL such as " + UATBaseURL)
	}
	if base.RawQuery != "" || base.Fragment != "" || base.User != nil {
		return nil, errors.New("alex: base URL must not carry a query, fragment or user info")
	}
	cfg := config{now: time.Now, refreshAhead: 5 * time.Minute}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if (cfg.creds == nil) == (cfg.tokenSource == nil) {
		return nil, errors.New("alex: exactly one of WithClientCredentials and WithTokenSource is required")
	}
	if cfg.facility != "" && cfg.facilitySource != nil {
		return nil, errors.New("alex: WithFacility cannot be combined with WithFacilitySource")
	}
	if cfg.httpClient != nil && (cfg.transport != nil || cfg.proxy != nil) {
		return nil, errors.New("alex: WithHTTPClient cannot be combined with WithTransport or WithProxy")
	}
	hc := cfg.httpClient
	if hc == nil {
		rt := cfg.transport
		if rt == nil {
			rt = defaultTransport(cfg.proxy)
		}
		hc = &http.Client{Transport: rt}
	}
	if hc.CheckRedirect == nil {
		// Never follow a redirect to another host with our bearer token.
		c := *hc
		c.CheckRedirect = sameHostRedirects
		hc = &c
	}
	c := &Client{
		base:      base,
		root:      &url.URL{Scheme: base.Scheme, Host: base.Host},
		facility:  cfg.facility,
		appID:     cfg.appID,
		userAgent: cfg.userAgent,
		hc:        hc,
		retry:     cfg.retry.withDefaults(),
		log:       cfg.logger,
		now:       cfg.now,

		nhiSystem:      cfg.nhiSystem,
		nhiCheck:       cfg.nhiCheck,
		facilityHeader: cfg.facilityHeader,
		facilitySource: cfg.facilitySource,
	}
	if c.nhiSystem == "" {
		c.nhiSystem = NHISystem
	}
	if c.nhiCheck == nil {
		c.nhiCheck = NormalizeNHI
	}
	if c.facilityHeader == "" {
		c.facilityHeader = DefaultFacilityHeader
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.tokens = &tokenCache{now: cfg.now, refreshAhead: cfg.refreshAhead}
	if cfg.creds != nil {
		c.tokens.fetch = clientCredentialsFetch(*cfg.creds, hc)
	} else {
		c.tokens.fetch = tokenSourceFetch(cfg.tokenSource)
	}
	return c, nil
}

func defaultTransport(proxy *url.URL) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	if proxy != nil {
		t.Proxy = http.ProxyURL(proxy)
	}
	// A short dial timeout: from an IP address ALEX has not allow-listed, TCP
	// to ALEX times out with no reply, and the caller should hear that soon.
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	// ALEX answers in 1-3.5 s; a minute without headers is a lost reply.
	t.ResponseHeaderTimeout = 60 * time.Second
	t.MaxIdleConnsPerHost = 32
	return t
}

func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("stopped after 5 redirects")
	}
	if req.URL.Host != via[0].URL.Host || req.URL.Scheme != via[0].URL.Scheme {
		return errors.New("refusing a redirect to another host")
	}
	return nil
}

// BaseURL returns the FHIR base URL the client calls.
func (c *Client) BaseURL() string { return c.base.String() }

// Facility returns the default facility id ("" if none, or if a
// [FacilitySource] decides).
func (c *Client) Facility() string { return c.facility }

// NHISystem returns the identifier system patients are searched by
// ([NHISystem] unless [WithNHISystem] says otherwise), for callers that pick
// the identifier out of a Patient.
func (c *Client) NHISystem() string { return c.nhiSystem }

// FacilityHeader returns the name of the header the facility is sent in.
func (c *Client) FacilityHeader() string { return c.facilityHeader }

// checkNHI applies the configured identifier check; the error matches
// ErrValidation.
func (c *Client) checkNHI(nhi string) (string, error) {
	n, err := c.nhiCheck(nhi)
	if err != nil {
		if errors.Is(err, ErrValidation) {
			return "", err
		}
		return "", fmt.Errorf("%w: %w", ErrValidation, err)
	}
	if n == "" {
		return "", fmt.Errorf("%w: empty patient identifier", ErrValidation)
	}
	return n, nil
}

// TokenRequests reports how many token requests this client has made.
func (c *Client) TokenRequests() int64 { return c.tokens.Fetches() }

type ctxKey int

const (
	correlationKey ctxKey = iota
	facilityKey
)

// WithCorrelationID returns a context whose calls are traced under id.
// ALEX documents mt-correlationid as a GUID, so the header always carries
// one: an id that already is a GUID (8-4-4-4-12 hex digits, RFC 4122 string
// form, any case) is sent in lower case; any other non-empty id is replaced
// by [CorrelationGUID](id), a name-based (version 5) UUID that is the same
// every time for the same id, so a caller can keep its own ids in its logs
// and still find the call Medtech traced. Without an id each call makes a
// new random (version 4) GUID. [Error.CorrelationID] holds what was sent.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey, id)
}

// CorrelationNamespace is the UUID namespace [CorrelationGUID] derives
// version 5 UUIDs in (itself a version 5 UUID of "clinicalimages
// mt-correlationid" in the URL namespace; it never changes).
const CorrelationNamespace = "6426f162-6d7e-542c-af2b-7c379547ab06"

// CorrelationGUID returns the mt-correlationid the client sends for a
// caller's correlation id (see [WithCorrelationID]): id itself in lower case
// when it is a GUID, else the version 5 UUID of id in
// [CorrelationNamespace]; "" for an empty id.
func CorrelationGUID(id string) string {
	if id == "" {
		return ""
	}
	if IsGUID(id) {
		return strings.ToLower(id)
	}
	ns := parseGUID(CorrelationNamespace)
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(id))
	var b [16]byte
	copy(b[:], h.Sum(nil))
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	return formatGUID(b)
}

// IsGUID reports whether s is a GUID in RFC 4122 string form: 32 hex digits
// in groups of 8-4-4-4-12 separated by hyphens, either case, not the nil
// UUID.
func IsGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	zero := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
			continue
		}
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
		if c != '0' {
			zero = false
		}
	}
	return !zero
}

// parseGUID decodes a string IsGUID accepts.
func parseGUID(s string) [16]byte {
	var b [16]byte
	j := 0
	for i := 0; i+1 < len(s) && j < 16; {
		if s[i] == '-' {
			i++
			continue
		}
		b[j] = hexVal(s[i])<<4 | hexVal(s[i+1])
		i += 2
		j++
	}
	return b
}

func hexVal(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func formatGUID(b [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// WithFacilityID returns a context whose calls go to the given facility
// (mt-facilityid) instead of the client's default: one server, many practices.
func WithFacilityID(ctx context.Context, facility string) context.Context {
	return context.WithValue(ctx, facilityKey, facility)
}

// correlationFrom returns the GUID a call sends as mt-correlationid.
func correlationFrom(ctx context.Context) string {
	if id, ok := ctx.Value(correlationKey).(string); ok && id != "" {
		return CorrelationGUID(id)
	}
	return newUUID()
}

// withCorrelation returns ctx with a correlation id, keeping one already
// there, so that every request of a multi-request operation shares it.
func withCorrelation(ctx context.Context) (context.Context, string) {
	if id, ok := ctx.Value(correlationKey).(string); ok && id != "" {
		return ctx, CorrelationGUID(id)
	}
	id := newUUID()
	return WithCorrelationID(ctx, id), id
}

// facilityFor returns the facility header's value for a call: the context's
// (WithFacilityID), else the source's, else the client's default. "" with a
// nil error means no header (a source said so).
func (c *Client) facilityFor(ctx context.Context) (string, error) {
	if f, ok := ctx.Value(facilityKey).(string); ok && f != "" {
		return f, validFacility(f)
	}
	if c.facilitySource != nil {
		f, err := c.facilitySource(ctx)
		if err != nil {
			return "", fmt.Errorf("%w: facility source: %w", ErrValidation, err)
		}
		if f == "" {
			return "", nil
		}
		return f, validFacility(f)
	}
	if c.facility == "" {
		return "", fmt.Errorf("%w: no facility: set alex.WithFacility or alex.WithFacilityID", ErrValidation)
	}
	return c.facility, nil
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatGUID(b)
}

// request describes one logical call.
type request struct {
	method string
	url    *url.URL
	// body opens the request body for each attempt; nil for no body.
	body   func() (io.ReadCloser, error)
	length int64 // body length, -1 if unknown
	accept string
	// root: a non-FHIR call (launch context) that needs no facility header.
	noFacility bool
}

// reply is a successful response: the caller reads and closes Body.
type reply struct {
	*http.Response
	correlationID string
	attempts      int
}

// do runs one logical call: token, headers, retries, one 401 refresh, and
// the error shape for every status >= 400.
func (c *Client) do(ctx context.Context, r request) (*reply, error) {
	corr := correlationFrom(ctx)
	redURL := redactURL(r.url)
	fail := func(err error, attempts int) *Error {
		return &Error{Method: r.method, URL: redURL, CorrelationID: corr, Err: err, Attempts: attempts}
	}
	facility := ""
	if !r.noFacility {
		f, err := c.facilityFor(ctx)
		if err != nil {
			return nil, fail(err, 0)
		}
		facility = f
	}
	attempts := 0
	for refreshed := false; ; refreshed = true {
		tok, err := c.tokens.Token(ctx)
		if err != nil {
			return nil, fail(err, attempts)
		}
		st := &attemptState{c: c, method: r.method, write: r.method != http.MethodGet && r.method != http.MethodHead, policy: c.retry, corr: corr, path: redURL}
		resp, err := c.attempt(ctx, r, st, tok.AccessToken, facility, corr)
		attempts += st.attempts
		if err != nil {
			e := fail(err, attempts)
			if st.write && st.unknown() {
				e.Err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
			}
			return nil, e
		}
		if resp.StatusCode == http.StatusUnauthorized && !refreshed {
			drain(resp.Body)
			c.tokens.Invalidate(tok.AccessToken)
			c.log.DebugContext(ctx, "alex: token rejected, refreshing once", "correlation", corr)
			continue
		}
		if resp.StatusCode >= 400 {
			return nil, errorFromResponse(resp, r.method, redURL, corr, attempts)
		}
		return &reply{Response: resp, correlationID: corr, attempts: attempts}, nil
	}
}

func drain(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(b, 1<<20))
	_ = b.Close()
}

// attempt sends the request with retryablehttp under the client's rules.
func (c *Client) attempt(ctx context.Context, r request, st *attemptState, token, facility, corr string) (*http.Response, error) {
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn:      func(httptrace.GotConnInfo) { st.gotConn.Store(true) },
		WroteRequest: func(i httptrace.WroteRequestInfo) { st.wrote.Store(i.Err == nil) },
	})
	var body any
	if r.body != nil {
		body = retryablehttp.ReaderFunc(func() (io.Reader, error) { return r.body() })
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, r.method, r.url.String(), body)
	if err != nil {
		return nil, err
	}
	if r.body != nil && r.length >= 0 {
		req.ContentLength = r.length
	}
	h := req.Header
	h.Set("Authorization", "Bearer "+token)
	if facility != "" {
		h.Set(c.facilityHeader, facility)
	}
	h.Set(HeaderCorrelationID, corr)
	if c.appID != "" {
		h.Set(HeaderAppID, c.appID)
	}
	accept := r.accept
	if accept == "" {
		accept = ContentTypeFHIR
	}
	h.Set("Accept", accept)
	h.Set("User-Agent", c.userAgent)
	if r.body != nil {
		h.Set("Content-Type", ContentTypeFHIR)
	}
	rc := &retryablehttp.Client{
		HTTPClient:     c.hc,
		RetryMax:       st.policy.MaxRetries,
		RetryWaitMin:   st.policy.MinWait,
		RetryWaitMax:   st.policy.MaxWait,
		CheckRetry:     st.checkRetry,
		Backoff:        st.backoff,
		RequestLogHook: st.beforeAttempt,
		ErrorHandler:   func(resp *http.Response, err error, _ int) (*http.Response, error) { return resp, err },
	}
	if st.policy.Disabled {
		rc.RetryMax = 0
	}
	resp, err := rc.Do(req)
	if err != nil && resp != nil {
		drain(resp.Body)
		resp = nil
	}
	if err == nil && resp == nil {
		err = errors.New("no response")
	}
	return resp, err
}

// redactURL keeps the scheme, host and the path's resource types and
// operations, and replaces ids and query values, so the result can appear in
// errors and logs without patient identifiers.
func redactURL(u *url.URL) string {
	segs := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
	for i, s := range segs {
		if i > 0 && looksLikeID(s) {
			segs[i] = "{id}"
		}
	}
	out := u.Scheme + "://" + u.Host + "/" + strings.Join(segs, "/")
	if u.RawQuery != "" {
		q := u.Query()
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			keys[i] = k + "=…"
		}
		out += "?" + strings.Join(keys, "&")
	}
	return out
}

// looksLikeID: FHIR resource types and _history/$operations start with an
// upper-case letter, '_' or '$'; everything else in a path may be an id.
func looksLikeID(s string) bool {
	if s == "" {
		return false
	}
	switch s[0] {
	case '_', '$':
		return false
	}
	if s[0] >= 'A' && s[0] <= 'Z' && !strings.ContainsAny(s, "0123456789") {
		return false
	}
	switch strings.ToLower(s) {
	case "fhir", "vendorforms", "api", "getlaunchcontextstring", "metadata":
		return false
	}
	return true
}

// jitter returns a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

// peekBody reads up to n bytes of resp's body and puts them back in front of
// the rest, so the body can still be read whole.
func peekBody(resp *http.Response, n int64) []byte {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, n))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), resp.Body), resp.Body}
	return b
}

// AccessToken returns the client's current access token, fetching one if
// needed, for diagnostics (the CLI's token and doctor commands). Treat it as
// a secret: never log it.
func (c *Client) AccessToken(ctx context.Context) (*oauth2.Token, error) {
	return c.tokens.Token(ctx)
}

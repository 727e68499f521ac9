package clinicalimages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/sync"
)

// HTTPOptions configure [Service.Handler]. The zero value takes every
// default.
type HTTPOptions struct {
	// CookieName is the desktop credential cookie (default "ci_desktop").
	CookieName string
	// InsecureCookies drops the Secure attribute, for plain-http development
	// on localhost only.
	InsecureCookies bool
	// AllowedOrigins enables CORS for these exact origins (none by default:
	// same-origin only). POST /launch accepts a browser's Origin only when
	// it is the server's own (its Host) or one of these.
	AllowedOrigins []string
	// TrustedProxies lists the networks of the reverse proxies in front of
	// the handler. When a request's peer is in one of them, its client
	// address is taken from X-Forwarded-For (every header line, in order):
	// the rightmost entry that is not itself in a trusted network, walking
	// from the right, so entries a client wrote to the left of what the
	// proxies appended are ignored. If every entry is trusted, the leftmost
	// is the client; a malformed entry stops the walk at the trusted hop that
	// passed it on. Empty (the default): X-Forwarded-For is never read and
	// the peer address is the client. The address is used only for rate
	// limits (the failure budget of handoff claims, see session.LimitScope).
	TrustedProxies []netip.Prefix
	// TrustProxyHeaders is the old switch for X-Forwarded-For.
	//
	// Deprecated: set TrustedProxies to your proxies' networks. True now
	// means TrustedProxies = [PrivateProxyNetworks]() (loopback and private
	// ranges), walked from the right as described there; it no longer
	// believes the leftmost entry. Clients that themselves have private
	// addresses can then forge theirs: name your proxies exactly instead.
	// Setting both is an error.
	TrustProxyHeaders bool
	// LaunchRate limits POST /launch with an Evolution launch pair, each of
	// which costs an ALEX call, before that call (default
	// DefaultLaunchRate). See [LaunchRate].
	LaunchRate LaunchRate
	// Logger receives a line for every reply with a 5xx status (default:
	// the Service's logger). Lines carry the path, status, code and request
	// id, never a token or patient data.
	Logger *slog.Logger
}

func (o HTTPOptions) withDefaults() (HTTPOptions, error) {
	for _, origin := range o.AllowedOrigins {
		if origin == "*" || !strings.Contains(origin, "://") {
			return o, errors.New("clinicalimages: allowed origins must be exact scheme://host[:port] values")
		}
	}
	var err error
	if o.LaunchRate, err = o.LaunchRate.withDefaults(); err != nil {
		return o, err
	}
	if err := o.trustProxies(); err != nil {
		return o, err
	}
	if o.CookieName == "" {
		o.CookieName = "ci_desktop"
	}
	return o, nil
}

const csrfHeader = "X-CSRF-Token"

// Handler returns the HTTP API (see the README's table): desktop endpoints
// authenticated by the desktop credential (bearer token, or cookie plus
// X-CSRF-Token on state changes), phone endpoints by the phone token, the
// claim endpoint by the handoff code. Mount it under any prefix with
// http.StripPrefix. Every error reply is an [APIError] whose code is a
// [FailureCode]; a storage outage is 503 storage_unavailable with
// Retry-After on every endpoint. Event streams end when the Service is
// closed. Handler fails only on invalid options and leaves the Service as it
// was: any number of handlers may serve one Service.
func (s *Service) Handler(opts HTTPOptions) (http.Handler, error) {
	cfg, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = s.Logger()
	}
	a := &api{s: s, cfg: cfg}
	sessionOf := func(r *http.Request) (string, error) { return a.desktop(r) }
	sse, err := sync.NewSSEHandler(s.Events(), sessionOf)
	if err != nil {
		return nil, err
	}
	poll, err := sync.NewPollHandler(s.Events(), sessionOf)
	if err != nil {
		return nil, err
	}
	a.sse, a.poll = sse, poll
	mux := http.NewServeMux()
	for _, rt := range a.routes() {
		mux.Handle(rt.pattern, rt.h)
	}
	return a.common(mux), nil
}

// route is one endpoint of the API.
type route struct {
	pattern string
	h       http.Handler
}

// routes lists every endpoint; the tests walk it, so a new endpoint without
// a test case fails them.
func (a *api) routes() []route {
	return []route{
		{"GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })},
		{"POST /launch", http.HandlerFunc(a.launch)},
		{"GET /session", a.withDesktop(a.getSession)},
		{"DELETE /session", a.withDesktop(a.endSession)},
		{"GET /patient", a.withDesktop(a.patient)},
		{"GET /presence", a.withDesktop(a.presence)},
		{"POST /handoff", a.withDesktop(a.issueHandoff)},
		{"DELETE /handoff", a.withDesktop(a.revokePhone)},
		{"POST /images", a.withDesktop(a.desktopUpload)},
		{"GET /images/{id}/content", a.withDesktop(a.imageContent)},
		{"GET /history", a.withDesktop(a.history)},
		{"GET /history/{id}/thumbnail", a.withDesktop(a.historyThumbnail)},
		{"PATCH /images/{id}", a.withDesktop(a.updateImage)},
		{"POST /images/{id}/edit", a.withDesktop(a.editImage)},
		{"POST /images/{id}/reset", a.withDesktop(a.resetImage)},
		{"DELETE /images/{id}", a.withDesktop(a.removeImage)},
		{"POST /commit", a.withDesktop(a.commit)},
		{"GET /events", a.authOnly(a.untilClosed(a.sse))},
		{"GET /events/poll", a.authOnly(a.poll)},
		{"POST /phone/claim", http.HandlerFunc(a.claim)},
		{"GET /phone", http.HandlerFunc(a.phone)},
		{"GET /phone/patient", http.HandlerFunc(a.phonePatient)},
		{"POST /phone/images", http.HandlerFunc(a.phoneUpload)},
		{"POST /phone/heartbeat", http.HandlerFunc(a.phoneHeartbeat)},
		{"POST /phone/done", http.HandlerFunc(a.phoneDone)},
	}
}

type api struct {
	s    *Service
	cfg  HTTPOptions
	sse  http.Handler
	poll http.Handler
}

// untilClosed ends a long-lived request (an event stream) when the Service
// is closed, so that http.Server.Shutdown does not wait for it forever.
func (a *api) untilClosed(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		done := a.s.Done()
		select {
		case <-done:
			a.fail(w, r, ErrClosed)
			return
		default:
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			select {
			case <-done:
				cancel()
			case <-ctx.Done():
			}
		}()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

type ctxKey int

const (
	sessionKey ctxKey = iota
	requestIDKey
)

// common adds request ids, security headers and CORS.
func (a *api) common(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rid := r.Header.Get("X-Request-ID")
		if rid == "" || len(rid) > 64 || strings.ContainsAny(rid, "\r\n") {
			rid = newRequestID()
		}
		w.Header().Set("X-Request-ID", rid)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		if origin := r.Header.Get("Origin"); origin != "" && slices.Contains(a.cfg.AllowedOrigins, origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions {
				h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, Last-Event-ID, X-CSRF-Token, X-Request-ID")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, rid)))
	})
}

// desktop authenticates a desktop request and returns its session id.
func (a *api) desktop(r *http.Request) (string, error) {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return a.s.Authenticate(strings.TrimPrefix(h, "Bearer "))
	}
	c, err := r.Cookie(a.cfg.CookieName)
	if err != nil {
		return "", ErrUnauthenticated
	}
	sid, err := a.s.Authenticate(c.Value)
	if err != nil {
		return "", err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if err := a.s.CheckCSRF(sid, r.Header.Get(csrfHeader)); err != nil {
			return "", err
		}
	}
	return sid, nil
}

func (a *api) withDesktop(h func(w http.ResponseWriter, r *http.Request, sid string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sid, err := a.desktop(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		h(w, r, sid)
	}
}

// authOnly rejects unauthenticated requests with our JSON error before the
// sync handlers (which take the session from the same check).
func (a *api) authOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid, err := a.desktop(r)
		if err == nil {
			_, err = a.s.LookupSession(r.Context(), sid)
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (a *api) getSession(w http.ResponseWriter, r *http.Request, sid string) {
	sess, err := a.s.Session(r.Context(), sid)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, 200, a.sessionView(sess))
}

func (a *api) endSession(w http.ResponseWriter, r *http.Request, sid string) {
	if err := a.s.EndSession(r.Context(), sid); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) patient(w http.ResponseWriter, r *http.Request, sid string) {
	p, err := a.s.Patient(r.Context(), sid)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, 200, p)
}

func (a *api) presence(w http.ResponseWriter, r *http.Request, sid string) {
	p, err := a.s.Presence(r.Context(), sid)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, 200, p)
}

func (a *api) issueHandoff(w http.ResponseWriter, r *http.Request, sid string) {
	code, exp, err := a.s.IssueHandoff(r.Context(), sid)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"code": code, "expiresAt": exp})
}

func (a *api) revokePhone(w http.ResponseWriter, r *http.Request, sid string) {
	if err := a.s.RevokePhone(r.Context(), sid); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) desktopUpload(w http.ResponseWriter, r *http.Request, sid string) {
	a.upload(w, r, Uploader{SessionID: sid, Hint: hintFrom(r), IdempotencyKey: r.Header.Get("Idempotency-Key")})
}

// hintFrom reads optional metadata given with an upload as query
// parameters (?bodySite=<SNOMED code>&laterality=<SNOMED code>): codes, never
// patient data.
func hintFrom(r *http.Request) session.Clinical {
	q := r.URL.Query()
	return session.Clinical{BodySite: q.Get("bodySite"), Laterality: q.Get("laterality")}
}

func (a *api) phoneUpload(w http.ResponseWriter, r *http.Request) {
	tok, ok := bearer(r)
	if !ok {
		a.fail(w, r, ErrUnauthenticated)
		return
	}
	a.upload(w, r, Uploader{PhoneToken: tok, Hint: hintFrom(r), IdempotencyKey: r.Header.Get("Idempotency-Key")})
}

// sizedReader is a body with its declared length as Len, a size hint for
// the reader's consumer (bytes.Reader's Len, read as one).
type sizedReader struct {
	io.Reader
	n int
}

func (s sizedReader) Len() int { return s.n }

// upload streams the body (raw image, or the "file" part of a multipart
// form) into AcceptUploadOnce, with the byte limit applied before reading.
// An upload that made an image answers 201; a replay of one (the same
// Idempotency-Key and bytes again) answers 200 with the same body and
// Idempotent-Replayed: true.
func (a *api) upload(w http.ResponseWriter, r *http.Request, who Uploader) {
	limit := a.s.Limits().MaxUploadBytes
	if r.ContentLength > limit+64<<10 {
		a.fail(w, r, fmt.Errorf("%w: %d bytes declared", compress.ErrTooLarge, r.ContentLength))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit+64<<10)
	var body io.Reader = r.Body
	if r.ContentLength > 0 {
		// The declared length sizes the normaliser's buffer at once.
		body = sizedReader{r.Body, int(r.ContentLength)}
	}
	if mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		part, err := filePart(multipart.NewReader(r.Body, params["boundary"]))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		body = part
	}
	img, replayed, err := a.s.AcceptUploadOnce(r.Context(), who, body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	status := http.StatusCreated
	if replayed {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	}
	if who.PhoneToken != "" {
		// A phone learns only that its photo arrived.
		writeJSON(w, status, map[string]any{"image": img.ID, "bytes": img.Size, "width": img.Width, "height": img.Height})
		return
	}
	writeJSON(w, status, a.imageView(img))
}

func filePart(mr *multipart.Reader) (io.Reader, error) {
	for {
		p, err := mr.NextPart()
		if err != nil {
			return nil, invalidRequest("multipart body has no \"file\" part")
		}
		if p.FormName() == "file" {
			return p, nil
		}
	}
}

func (a *api) imageContent(w http.ResponseWriter, r *http.Request, sid string) {
	rc, img, err := a.s.OpenImage(r.Context(), sid, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", img.ContentType)
	w.Header().Set("Content-Length", strconv.FormatInt(img.Size, 10))
	w.Header().Set("Cache-Control", "private, no-store")
	_, _ = io.Copy(w, rc)
}

func (a *api) updateImage(w http.ResponseWriter, r *http.Request, sid string) {
	var body struct {
		Clinical session.Clinical `json:"clinical"`
		Consent  session.Consent  `json:"consent"`
	}
	if !a.decode(w, r, &body, 16<<10) {
		return
	}
	img, err := a.s.UpdateImage(r.Context(), sid, r.PathValue("id"), body.Clinical, body.Consent)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, 200, a.imageView(img))
}

// editRect is a rectangle of the edit API: the top-left corner and the
// size, in pixels of the picture after the rotation.
type editRect struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

func (r editRect) rect() image.Rectangle { return image.Rect(r.X, r.Y, r.X+r.W, r.Y+r.H) }

// editImage answers POST /images/{id}/edit with the image as PATCH does.
// Body: {"rotate": 0|90|180|270, "crop": {"x","y","w","h"} (optional),
// "redact": [{"x","y","w","h"}, ...] (optional)}.
func (a *api) editImage(w http.ResponseWriter, r *http.Request, sid string) {
	var body struct {
		Rotate int        `json:"rotate"`
		Crop   *editRect  `json:"crop"`
		Redact []editRect `json:"redact"`
	}
	if !a.decode(w, r, &body, 16<<10) {
		return
	}
	if len(body.Redact) > compress.MaxRedactions {
		a.fail(w, r, fmt.Errorf("%w: more than %d redactions", compress.ErrInvalidEdit, compress.MaxRedactions))
		return
	}
	e := compress.Edit{Rotate: body.Rotate}
	if body.Crop != nil {
		if body.Crop.W <= 0 || body.Crop.H <= 0 {
			a.fail(w, r, fmt.Errorf("%w: empty crop", compress.ErrInvalidEdit))
			return
		}
		e.Crop = body.Crop.rect()
	}
	for _, rr := range body.Redact {
		if rr.W <= 0 || rr.H <= 0 {
			a.fail(w, r, fmt.Errorf("%w: empty redaction", compress.ErrInvalidEdit))
			return
		}
		e.Redact = append(e.Redact, rr.rect())
	}
	img, err := a.s.EditImage(r.Context(), sid, r.PathValue("id"), e)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, 200, a.imageView(img))
}

// resetImage answers POST /images/{id}/reset with the image as PATCH does.
func (a *api) resetImage(w http.ResponseWriter, r *http.Request, sid string) {
	img, err := a.s.ResetImage(r.Context(), sid, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, 200, a.imageView(img))
}

func (a *api) removeImage(w http.ResponseWriter, r *http.Request, sid string) {
	if err := a.s.RemoveImage(r.Context(), sid, r.PathValue("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) commit(w http.ResponseWriter, r *http.Request, sid string) {
	var body struct {
		Images        []string `json:"images"`
		ConfirmResend bool     `json:"confirmResend"`
	}
	if r.ContentLength != 0 && !a.decode(w, r, &body, 16<<10) {
		return
	}
	var opts []CommitOption
	if body.ConfirmResend {
		opts = append(opts, ConfirmResend())
	}
	res, err := a.s.Commit(r.Context(), sid, body.Images, opts...)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, 200, res)
}

func (a *api) claim(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Code   string `json:"code"`
		Device string `json:"device"`
	}
	if !a.decode(w, r, &body, 4<<10) {
		return
	}
	device := body.Device
	if device == "" {
		device = r.UserAgent()
	}
	tok, view, err := a.s.ClaimHandoff(r.Context(), body.Code, truncate(device, 200), a.clientAddr(r))
	if err != nil {
		if rl := (*session.RateLimitError)(nil); errors.As(err, &rl) {
			// The budget's window: by then the window counting the failures
			// has closed. A right code is never refused, so this slows
			// only wrong guesses.
			w.Header().Set("Retry-After", strconv.Itoa(int((rl.RetryAfter+time.Second-1)/time.Second)))
			if a.s.metrics.RateLimited != nil {
				a.s.metrics.RateLimited("claim_" + string(rl.Scope)) // claim_address, claim_session
			}
		}
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": tok, "session": phoneView(view)})
}

func (a *api) phone(w http.ResponseWriter, r *http.Request) {
	tok, ok := bearer(r)
	if !ok {
		a.fail(w, r, ErrUnauthenticated)
		return
	}
	view, err := a.s.AuthenticatePhone(r.Context(), tok)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, 200, phoneView(view))
}

// phonePatient answers the phone's patient check: initials, age and sex,
// for the GP to compare with the desktop's banner. Nothing else about the
// patient is readable with a phone token.
func (a *api) phonePatient(w http.ResponseWriter, r *http.Request) {
	tok, ok := bearer(r)
	if !ok {
		a.fail(w, r, ErrUnauthenticated)
		return
	}
	c, err := a.s.PhonePatientCheck(r.Context(), tok)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, 200, c)
}

// phoneHeartbeat answers POST /phone/heartbeat (204): the phone is there.
// An optional body {"capturing": true} says it is opening its camera.
func (a *api) phoneHeartbeat(w http.ResponseWriter, r *http.Request) {
	tok, ok := bearer(r)
	if !ok {
		a.fail(w, r, ErrUnauthenticated)
		return
	}
	var body struct {
		Capturing bool `json:"capturing"`
	}
	if r.ContentLength != 0 && !a.decode(w, r, &body, 1<<10) {
		return
	}
	if err := a.s.PhoneHeartbeat(r.Context(), tok, body.Capturing); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// phoneDone answers POST /phone/done (204): the phone has finished.
func (a *api) phoneDone(w http.ResponseWriter, r *http.Request) {
	tok, ok := bearer(r)
	if !ok {
		a.fail(w, r, ErrUnauthenticated)
		return
	}
	if err := a.s.PhoneDone(r.Context(), tok); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func phoneView(v session.PhoneView) map[string]any {
	return map[string]any{"expiresAt": v.ExpiresAt, "uploads": v.Uploads}
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if !strings.HasPrefix(h, "Bearer ") || len(h) < 8 {
		return "", false
	}
	return strings.TrimPrefix(h, "Bearer "), true
}

// PrivateProxyNetworks returns the networks the deprecated
// HTTPOptions.TrustProxyHeaders trusts: loopback and private ranges
// (127.0.0.0/8, ::1, RFC 1918, RFC 4193 fc00::/7).
func PrivateProxyNetworks() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("fc00::/7"),
	}
}

// trustProxies checks TrustedProxies, folds the deprecated switch into it
// and keeps a masked copy, so the caller's slice may change afterwards.
func (o *HTTPOptions) trustProxies() error {
	if o.TrustProxyHeaders && len(o.TrustedProxies) > 0 {
		return errors.New("clinicalimages: set TrustedProxies or the deprecated TrustProxyHeaders, not both")
	}
	nets := o.TrustedProxies
	if o.TrustProxyHeaders {
		nets = PrivateProxyNetworks()
	}
	o.TrustedProxies = make([]netip.Prefix, 0, len(nets))
	for _, p := range nets {
		if !p.IsValid() {
			return fmt.Errorf("clinicalimages: TrustedProxies: %v is not a network", p)
		}
		o.TrustedProxies = append(o.TrustedProxies, p.Masked())
	}
	return nil
}

// clientAddr is the request's client address for rate limiting: the peer,
// or, when the peer is a trusted proxy, what the proxies report (see
// HTTPOptions.TrustedProxies). A peer that is no IP address (a Unix socket)
// is used as given.
func (a *api) clientAddr(r *http.Request) string {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return forwardedClient(peer.Addr(), r.Header.Values("X-Forwarded-For"), a.cfg.TrustedProxies).String()
}

// forwardedClient walks the X-Forwarded-For lines xff from the right while
// the hop seen so far, starting with the peer, is a trusted proxy, and
// returns the first untrusted address; if every hop is trusted, the
// leftmost; if an entry is malformed, the trusted hop that passed it on.
// It splits nothing it does not read, so a long forged header costs little.
func forwardedClient(peer netip.Addr, xff []string, trusted []netip.Prefix) netip.Addr {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	client := peer.Unmap().WithZone("")
	for i := len(xff) - 1; i >= 0 && isTrusted(client); i-- {
		rest := xff[i]
		for rest != "" && isTrusted(client) {
			var hop string
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				rest, hop = rest[:j], rest[j+1:]
			} else {
				rest, hop = "", rest
			}
			if hop = strings.TrimSpace(hop); hop == "" {
				continue
			}
			a, ok := parseHop(hop)
			if !ok {
				return client
			}
			client = a
		}
	}
	return client
}

// parseHop reads one X-Forwarded-For entry: an IPv4 or IPv6 address,
// optionally with a port ("192.0.2.1:443", "[2001:db8::1]:443") or in
// brackets. Obfuscated identifiers ("unknown", "_hidden") are malformed.
func parseHop(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		switch {
		case perr == nil:
			a = ap.Addr()
		case len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']':
			if a, err = netip.ParseAddr(s[1 : len(s)-1]); err != nil {
				return netip.Addr{}, false
			}
		default:
			return netip.Addr{}, false
		}
	}
	return a.Unmap().WithZone(""), true
}

// decode reads a JSON body of at most max bytes; on failure it has answered.
func (a *api) decode(w http.ResponseWriter, r *http.Request, v any, max int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			a.fail(w, r, invalidRequest("body too large"))
		} else {
			a.fail(w, r, invalidRequest("body is not the expected JSON"))
		}
		return false
	}
	return true
}

// sessionView is the desktop's view of a session: ids and states, the
// patient's ALEX id but no other patient data (GET /patient has those).
func (a *api) sessionView(s *session.Session) map[string]any {
	imgs := make([]map[string]any, 0, len(s.Images))
	for _, img := range s.Images {
		imgs = append(imgs, a.imageView(img))
	}
	return map[string]any{
		"id": s.ID, "facility": s.Facility, "patientId": s.PatientID, "practitioner": s.Practitioner,
		"createdAt": s.CreatedAt, "expiresAt": s.ExpiresAt,
		"phone":  map[string]any{"state": s.Phone.State, "device": s.Phone.Device, "uploads": s.Phone.Uploads},
		"images": imgs,
	}
}

// imageView is the desktop's view of an image. "title" is the exact
// content.title its record will carry ([Service.Title]), so the GP sees
// what Evolution will show; "clinical" holds what the GP typed (plain).
func (a *api) imageView(img session.Image) map[string]any {
	return map[string]any{
		"title": a.s.Title(img),
		"id":    img.ID, "source": img.Source, "contentType": img.ContentType, "bytes": img.Size,
		"width": img.Width, "height": img.Height, "sha256": img.SHA256, "state": img.State,
		"clinical": img.Clinical, "consent": img.Consent, "mediaId": img.MediaID, "failCode": img.FailCode, "failReason": img.FailReason,
		"createdAt": img.CreatedAt, "version": img.Version, "edited": img.Edited, "lossless": img.Lossless,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

package clinicalimages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/media"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/sync"
)

// HTTPOptions configure [Service.Handler].
type HTTPOptions struct {
	// CookieName is the desktop credential cookie (default "ci_desktop").
	CookieName string
	// InsecureCookies drops the Secure attribute, for plain-http development
	// on localhost only.
	InsecureCookies bool
	// AllowedOrigins enables CORS for these exact origins (none by default:
	// same-origin only).
	AllowedOrigins []string
	// TrustProxyHeaders takes the client address from X-Forwarded-For (set it
	// only behind a proxy that overwrites that header). The address is used
	// only to rate-limit handoff claims.
	TrustProxyHeaders bool
	// LaunchMaxAge rejects Evolution launch contexts older than this
	// (default 10 minutes; a launch URL must not be replayable later).
	LaunchMaxAge time.Duration
}

type httpConfig = HTTPOptions

// WithHTTP sets the HTTP API's options.
func WithHTTP(h HTTPOptions) Option {
	return func(o *options) error {
		for _, origin := range h.AllowedOrigins {
			if origin == "*" || !strings.Contains(origin, "://") {
				return errors.New("clinicalimages: allowed origins must be exact scheme://host[:port] values")
			}
		}
		o.httpCfg = h
		return nil
	}
}

const csrfHeader = "X-CSRF-Token"

// Handler returns the HTTP API (see the README's table): desktop endpoints
// authenticated by the desktop credential (bearer token, or cookie plus
// X-CSRF-Token on state changes), phone endpoints by the phone token, the
// claim endpoint by the handoff code. Mount it under any prefix with
// http.StripPrefix.
func (s *Service) Handler() http.Handler {
	cfg := s.httpCfg
	if cfg.CookieName == "" {
		cfg.CookieName = "ci_desktop"
	}
	if cfg.LaunchMaxAge == 0 {
		cfg.LaunchMaxAge = 10 * time.Minute
	}
	a := &api{s: s, cfg: cfg}
	sessionOf := func(r *http.Request) (string, error) { return a.desktop(r) }
	sse, err := sync.NewSSEHandler(s.events, sessionOf)
	if err != nil {
		panic(err) // only on invalid options, which are fixed here
	}
	s.mu.Lock()
	s.streams = append(s.streams, sse)
	s.mu.Unlock()
	poll, err := sync.NewPollHandler(s.events, sessionOf)
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("POST /launch", a.launch)
	mux.HandleFunc("GET /session", a.withDesktop(a.getSession))
	mux.HandleFunc("DELETE /session", a.withDesktop(a.endSession))
	mux.HandleFunc("GET /patient", a.withDesktop(a.patient))
	mux.HandleFunc("GET /presence", a.withDesktop(a.presence))
	mux.HandleFunc("POST /handoff", a.withDesktop(a.issueHandoff))
	mux.HandleFunc("DELETE /handoff", a.withDesktop(a.revokePhone))
	mux.HandleFunc("POST /images", a.withDesktop(a.desktopUpload))
	mux.HandleFunc("GET /images/{id}/content", a.withDesktop(a.imageContent))
	mux.HandleFunc("PATCH /images/{id}", a.withDesktop(a.updateImage))
	mux.HandleFunc("DELETE /images/{id}", a.withDesktop(a.removeImage))
	mux.HandleFunc("POST /commit", a.withDesktop(a.commit))
	mux.Handle("GET /events", a.authOnly(sse))
	mux.Handle("GET /events/poll", a.authOnly(poll))
	mux.HandleFunc("POST /phone/claim", a.claim)
	mux.HandleFunc("GET /phone", a.phone)
	mux.HandleFunc("POST /phone/images", a.phoneUpload)
	return a.common(mux)
}

type api struct {
	s   *Service
	cfg HTTPOptions
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
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID, X-CSRF-Token, X-Request-ID")
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
		return a.s.creds.check(strings.TrimPrefix(h, "Bearer "))
	}
	c, err := r.Cookie(a.cfg.CookieName)
	if err != nil {
		return "", ErrUnauthenticated
	}
	sid, err := a.s.creds.check(c.Value)
	if err != nil {
		return "", err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
	default:
		if !a.s.creds.checkCSRF(sid, r.Header.Get(csrfHeader)) {
			return "", fmt.Errorf("%w: missing or wrong %s", ErrForbidden, csrfHeader)
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
			_, err = a.s.sessions.Get(r.Context(), sid)
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (a *api) launch(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Context   string `json:"context"`
		Signature string `json:"signature"`
		Token     string `json:"token"`
	}
	if !a.decode(w, r, &body, 64<<10) {
		return
	}
	var vl VerifiedLaunch
	var err error
	switch {
	case body.Token != "":
		vl, err = a.s.LaunchFromToken(r.Context(), body.Token)
	case body.Context != "" && body.Signature != "":
		vl, err = a.s.LaunchFromEvolution(r.Context(), body.Context, body.Signature, a.cfg.LaunchMaxAge)
		if errors.Is(err, alex.ErrForbidden) || errors.Is(err, alex.ErrValidation) || errors.Is(err, alex.ErrUnauthorized) && !isTokenError(err) {
			err = fmt.Errorf("%w: ALEX did not accept the launch context", ErrUnauthenticated)
		}
	default:
		err = fmt.Errorf("%w: give context and signature, or token", ErrInvalidRequest)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	st, err := a.s.StartSession(r.Context(), vl)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: a.cfg.CookieName, Value: st.Credential, Path: "/", HttpOnly: true,
		Secure: !a.cfg.InsecureCookies, SameSite: http.SameSiteLaxMode, Expires: st.Session.CreatedAt.Add(credentialLifetime)})
	writeJSON(w, http.StatusCreated, map[string]any{
		"session":    sessionView(st.Session),
		"credential": st.Credential,
		"csrf":       st.CSRF,
	})
}

func isTokenError(err error) bool {
	var te *alex.TokenError
	return errors.As(err, &te)
}

func (a *api) getSession(w http.ResponseWriter, r *http.Request, sid string) {
	sess, err := a.s.Session(r.Context(), sid)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, 200, sessionView(sess))
}

func (a *api) endSession(w http.ResponseWriter, r *http.Request, sid string) {
	if err := a.s.EndSession(r.Context(), sid); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *api) patient(w http.ResponseWriter, r *http.Request, sid string) {
	sess, err := a.s.sessions.Get(r.Context(), sid)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, err := a.s.alex.ReadPatient(alex.WithFacilityID(r.Context(), sess.Facility), sess.PatientID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := map[string]any{"id": sess.PatientID, "nhi": sess.NHI}
	if len(p.Name) > 0 {
		n := p.Name[0]
		out["name"] = strings.TrimSpace(strings.Join(n.Given, " ") + " " + deref(n.Family))
	}
	if p.BirthDate != nil {
		out["birthDate"] = *p.BirthDate
	}
	if p.Gender != nil {
		out["gender"] = p.Gender.Code()
	}
	writeJSON(w, 200, out)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
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
	a.upload(w, r, Uploader{SessionID: sid, Hint: hintFrom(r)})
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
	a.upload(w, r, Uploader{PhoneToken: tok, Hint: hintFrom(r)})
}

// upload streams the body (raw image, or the "file" part of a multipart
// form) into AcceptUpload, with the byte limit applied before reading.
func (a *api) upload(w http.ResponseWriter, r *http.Request, who Uploader) {
	limit := a.s.limits.MaxUploadBytes
	if r.ContentLength > limit+64<<10 {
		a.fail(w, r, fmt.Errorf("%w: %d bytes declared", compress.ErrTooLarge, r.ContentLength))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit+64<<10)
	var body io.Reader = r.Body
	if mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		part, err := filePart(multipart.NewReader(r.Body, params["boundary"]))
		if err != nil {
			a.fail(w, r, err)
			return
		}
		body = part
	}
	img, err := a.s.AcceptUpload(r.Context(), who, body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if who.PhoneToken != "" {
		// A phone learns only that its photo arrived.
		writeJSON(w, http.StatusCreated, map[string]any{"image": img.ID, "bytes": img.Size, "width": img.Width, "height": img.Height})
		return
	}
	writeJSON(w, http.StatusCreated, imageView(img))
}

func filePart(mr *multipart.Reader) (io.Reader, error) {
	for {
		p, err := mr.NextPart()
		if err != nil {
			return nil, fmt.Errorf("%w: multipart body has no \"file\" part", ErrInvalidRequest)
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
	writeJSON(w, 200, imageView(img))
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
	view, err := a.s.sessions.AuthenticatePhone(r.Context(), tok)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, 200, phoneView(view))
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

func (a *api) clientAddr(r *http.Request) string {
	if a.cfg.TrustProxyHeaders {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			return strings.TrimSpace(strings.Split(xff, ",")[0])
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// decode reads a JSON body of at most max bytes; on failure it has answered.
func (a *api) decode(w http.ResponseWriter, r *http.Request, v any, max int64) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			a.fail(w, r, fmt.Errorf("%w: body too large", ErrInvalidRequest))
		} else {
			a.fail(w, r, fmt.Errorf("%w: body is not the expected JSON", ErrInvalidRequest))
		}
		return false
	}
	return true
}

// sessionView is the desktop's view of a session: ids and states, the
// patient's ALEX id but no other patient data (GET /patient has those).
func sessionView(s *session.Session) map[string]any {
	imgs := make([]map[string]any, 0, len(s.Images))
	for _, img := range s.Images {
		imgs = append(imgs, imageView(img))
	}
	return map[string]any{
		"id": s.ID, "facility": s.Facility, "patientId": s.PatientID, "practitioner": s.Practitioner,
		"createdAt": s.CreatedAt, "expiresAt": s.ExpiresAt,
		"phone":  map[string]any{"state": s.Phone.State, "device": s.Phone.Device, "uploads": s.Phone.Uploads},
		"images": imgs,
	}
}

func imageView(img session.Image) map[string]any {
	return map[string]any{
		"id": img.ID, "source": img.Source, "contentType": img.ContentType, "bytes": img.Size,
		"width": img.Width, "height": img.Height, "sha256": img.SHA256, "state": img.State,
		"clinical": img.Clinical, "consent": img.Consent, "mediaId": img.MediaID, "failReason": img.FailReason,
		"createdAt": img.CreatedAt, "version": img.Version,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// APIError is the body of every error reply.
type APIError struct {
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	RequestID string          `json:"requestId"`
	Fields    []media.Problem `json:"fields,omitempty"`
}

func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	rid, _ := r.Context().Value(requestIDKey).(string)
	body := APIError{Code: code, Message: publicMessage(err), RequestID: rid}
	var ve *media.ValidationError
	if errors.As(err, &ve) {
		body.Fields = ve.Problems
	}
	if status >= 500 {
		a.s.log.WarnContext(r.Context(), "request failed", "path", r.URL.Path, "status", status, "code", code, "request", rid)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="clinicalimages"`)
	}
	if code == "storage_unavailable" || code == "facility_unavailable" || code == "alex_busy" {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, status, map[string]any{"error": body})
}

// classify maps an error to an HTTP status and a stable machine code.
func classify(err error) (int, string) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), errors.Is(err, compress.ErrTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, compress.ErrTooManyPixels):
		return http.StatusRequestEntityTooLarge, "too_many_pixels"
	case errors.Is(err, compress.ErrUnsupportedFormat):
		return http.StatusUnsupportedMediaType, "unsupported_format"
	case errors.Is(err, compress.ErrCorrupt):
		return http.StatusUnprocessableEntity, "corrupt_image"
	case errors.Is(err, compress.ErrBudget):
		return http.StatusUnprocessableEntity, "cannot_compress"
	case errors.Is(err, ErrUnauthenticated), errors.Is(err, session.ErrInvalidToken):
		return http.StatusUnauthorized, "unauthenticated"
	case errors.Is(err, session.ErrRevoked):
		return http.StatusForbidden, "phone_revoked"
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, "forbidden"
	case errors.Is(err, session.ErrInvalidCode):
		return http.StatusBadRequest, "invalid_code"
	case errors.Is(err, session.ErrRateLimited):
		return http.StatusTooManyRequests, "rate_limited"
	case errors.Is(err, session.ErrExpired):
		return http.StatusGone, "session_expired"
	case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrInvalidID):
		return http.StatusNotFound, "not_found"
	case errors.Is(err, session.ErrAlreadyCommitting):
		return http.StatusConflict, "already_committing"
	case errors.Is(err, session.ErrAlreadyCommitted):
		return http.StatusConflict, "already_committed"
	case errors.Is(err, ErrTooManyImages):
		return http.StatusConflict, "too_many_images"
	case errors.Is(err, session.ErrConflict):
		return http.StatusConflict, "conflict"
	case errors.Is(err, media.ErrInvalid):
		return http.StatusUnprocessableEntity, "invalid_metadata"
	case errors.Is(err, ErrInvalidRequest):
		return http.StatusBadRequest, "invalid_request"
	case errors.Is(err, alex.ErrNoPatient):
		return http.StatusUnprocessableEntity, "no_patient"
	case errors.Is(err, alex.ErrFacilityUnavailable):
		return http.StatusServiceUnavailable, "facility_unavailable"
	case errors.Is(err, alex.ErrFacilityNotFound):
		return http.StatusBadGateway, "facility_not_linked"
	case errors.Is(err, alex.ErrOutcomeUnknown):
		return http.StatusBadGateway, "outcome_unknown"
	case errors.Is(err, alex.ErrRateLimited):
		return http.StatusServiceUnavailable, "alex_busy"
	case errors.Is(err, alex.ErrUnauthorized):
		return http.StatusBadGateway, "alex_unauthorized"
	case errors.Is(err, alex.ErrForbidden):
		return http.StatusBadGateway, "alex_forbidden"
	case errors.Is(err, alex.ErrValidation):
		return http.StatusUnprocessableEntity, "alex_rejected"
	case errors.Is(err, alex.ErrNotFound):
		return http.StatusBadGateway, "alex_not_found"
	case errors.Is(err, ErrStorageUnavailable):
		return http.StatusServiceUnavailable, "storage_unavailable"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "timeout"
	}
	var ae *alex.Error
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return http.StatusServiceUnavailable, "alex_busy" // Medtech's gateway or ALEX, temporarily
		}
		return http.StatusBadGateway, "alex_error"
	}
	return http.StatusInternalServerError, "internal"
}

func errorCode(err error) string {
	_, code := classify(err)
	return code
}

// publicMessage is a plain-language sentence for the GP or the phone's user.
// It never repeats tokens, codes or patient data.
func publicMessage(err error) string {
	switch code := errorCode(err); code {
	case "too_large":
		return "The photo is too large to upload."
	case "too_many_pixels":
		return "The photo has too many pixels to process safely."
	case "unsupported_format":
		return "That file is not a supported photo (JPEG, PNG, GIF, WebP or HEIC)."
	case "corrupt_image":
		return "The photo is damaged or incomplete; take or choose it again."
	case "cannot_compress":
		return "The photo could not be made small enough to send."
	case "unauthenticated":
		return "Please open the widget again from Medtech Evolution."
	case "phone_revoked":
		return "This phone was disconnected from the session on the desktop."
	case "forbidden":
		return "You are not allowed to do that."
	case "invalid_code":
		return "This QR code has already been used or has expired. Show a new one on the desktop."
	case "rate_limited":
		return "Too many attempts. Wait a few minutes and scan a new QR code."
	case "session_expired":
		return "The capture session has ended. Open the widget again from Medtech Evolution."
	case "not_found":
		return "Not found."
	case "already_committing":
		return "This photo is already being sent."
	case "already_committed":
		return "This photo is already in the patient's record."
	case "too_many_images":
		return "This session already holds the maximum number of photos."
	case "invalid_metadata":
		var ve *media.ValidationError
		if errors.As(err, &ve) {
			return "Please check: " + strings.Join(ve.Fields(), ", ") + "."
		}
		return "Please check the photo's details."
	case "invalid_request":
		// Every ErrInvalidRequest is made here with safe text: say what.
		if _, detail, ok := strings.Cut(err.Error(), ErrInvalidRequest.Error()+": "); ok {
			return "The request was not understood: " + detail + "."
		}
		return "The request was not understood."
	case "no_patient":
		return "Open a patient in Medtech Evolution before launching the widget."
	case "facility_unavailable":
		return "Medtech cannot reach the practice's server right now. Try again in a few minutes."
	case "facility_not_linked":
		return "This practice is not yet linked to the app in Medtech. Contact support."
	case "outcome_unknown":
		return "Medtech did not answer; the photo will be checked before it is sent again."
	case "alex_busy":
		return "Medtech is busy. Try again shortly."
	case "alex_unauthorized", "alex_forbidden":
		return "Medtech refused the app's access. Contact support."
	case "alex_rejected":
		var ae *alex.Error
		if errors.As(err, &ae) && ae.Summary() != "" {
			return "Medtech refused the photo: " + ae.Summary()
		}
		return "Medtech refused the photo."
	case "timeout":
		return "That took too long. Try again."
	case "storage_unavailable":
		return "Storage is unavailable for a moment. Nothing was lost; try again shortly."
	}
	return "Something went wrong. Try again."
}

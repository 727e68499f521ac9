package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/skip2/go-qrcode"

	"github.com/clinicpro/clinicalimages/media"
)

//go:embed web
var webFS embed.FS

// pageData is what the page templates show.
type pageData struct {
	Simulated bool
	Desktop   bool   // the desktop page (the phone page offers no simulator links)
	PublicURL string // empty: the pages use their own origin
}

// Handler returns the whole site: the API under /api/, the desktop page at
// /, the phone page at /m, static assets, value sets, the QR code endpoint
// and, with the simulator, the development launch link.
func (a *app) Handler() http.Handler {
	static, err := fs.Sub(webFS, "web/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	pages := template.Must(template.ParseFS(webFS, "web/*.html"))
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var buf bytes.Buffer
			if err := pages.ExecuteTemplate(&buf, name, pageData{Simulated: a.sim != nil, Desktop: name == "desktop.html", PublicURL: a.publicURL()}); err != nil {
				a.log.ErrorContext(r.Context(), "page template", "page", name, "error", err)
				http.Error(w, "page unavailable", http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = buf.WriteTo(w)
		}
	}

	mux := http.NewServeMux()
	mux.Handle("/api/", a.endStreamsOnShutdown(http.StripPrefix("/api", a.api)))
	mux.HandleFunc("GET /{$}", page("desktop.html"))
	mux.HandleFunc("GET /m", page("phone.html"))
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /valuesets.json", a.valueSets)
	mux.HandleFunc("GET /bodysites", a.bodySites)
	mux.HandleFunc("POST /qr", a.qr)
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.Handle("GET /metrics", a.metricsHandler())
	if a.sim != nil {
		// Never with real ALEX credentials: config refuses SIMULATE with
		// ALEX_CLIENT_ID, so a.sim is nil and these routes are 404.
		mux.HandleFunc("GET /dev/launch", a.devLaunch)
		mux.HandleFunc("GET /dev/patients", a.devPatients)
	}
	return a.accessLog(securityHeaders(a.cfg.secure(), a.deadlines(a.streamCap().wrap(mux))))
}

// securityHeaders keeps the pages same-origin: no inline script, no
// framing, no referrer (the phone URL's fragment never leaves anyway).
// Over HTTPS it adds HSTS, so a browser never tries plain HTTP again.
func securityHeaders(secure bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if secure {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		}
		next.ServeHTTP(w, r)
	})
}

// statusWriter records the status for the access log. It forwards Flush
// (event streams need it) through Unwrap, which http.ResponseController uses.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// accessLog logs method, path (never the query: the development launch
// link carries a patient id there), status and duration at debug level.
func (a *app) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		a.log.DebugContext(r.Context(), "http", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
	})
}

// endStreamsOnShutdown cancels event-stream requests when shutdown begins:
// http.Server.Shutdown waits for active requests, and a stream never ends on
// its own. Other requests (uploads, commits) are left to finish.
func (a *app) endStreamsOnShutdown(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/events" || r.URL.Path == "/api/events/poll" {
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			stop := context.AfterFunc(a.streams, cancel)
			defer stop()
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

type option struct {
	Code   string `json:"code"`
	Name   string `json:"name"`
	Region string `json:"region,omitempty"`
	Paired bool   `json:"paired,omitempty"`
	Hint   string `json:"hint,omitempty"`
}

// valueSets serves the laterality and view pickers' options.
func (a *app) valueSets(w http.ResponseWriter, r *http.Request) {
	var out struct {
		Lateralities []option `json:"lateralities"`
		Views        []option `json:"views"`
	}
	for _, l := range media.Lateralities() {
		out.Lateralities = append(out.Lateralities, option{Code: l.Code, Name: l.Name})
	}
	for _, v := range media.Views() {
		out.Views = append(out.Views, option{Code: v.Code, Name: v.Name, Hint: v.Definition})
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	writeJSON(w, out)
}

// bodySites serves the body-site picker: every site, or those matching ?q=
// (names and synonyms, as media.SearchBodySites matches them).
func (a *app) bodySites(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if len(q) > 100 {
		q = q[:100]
	}
	sites := media.BodySites()
	if q != "" {
		sites = media.SearchBodySites(q)
	}
	out := make([]option, 0, len(sites))
	for _, s := range sites {
		out = append(out, option{Code: s.Code, Name: s.Name, Region: string(s.Region), Paired: s.Paired})
	}
	writeJSON(w, out)
}

// qr draws the QR code for a phone URL. It accepts only this server's own
// phone URLs (so it is not a general QR service), in a POST body so the
// handoff code never reaches an access log as a query string.
func (a *app) qr(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 2048))
	if err != nil {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	var req struct {
		URL string `json:"url"`
	}
	if json.Unmarshal(body, &req) != nil || !a.isPhoneURL(req.URL) {
		http.Error(w, "not a phone URL of this server", http.StatusBadRequest)
		return
	}
	png, err := qrcode.Encode(req.URL, qrcode.Medium, 320)
	if err != nil {
		http.Error(w, "cannot draw the QR code", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(png)
}

// isPhoneURL reports whether raw is the public URL + "/m#code=...". The
// public URL is PUBLIC_URL or, on a loopback listener without it, the
// listen address; never the request's Host header, which a client chooses
// (a QR code for any host would be a phishing kit).
func (a *app) isPhoneURL(raw string) bool {
	base := a.publicURL()
	if base == "" {
		return false
	}
	code, ok := strings.CutPrefix(raw, base+"/m#code=")
	return ok && code != "" && len(code) <= 256 && !strings.ContainsAny(code, " \r\n#&")
}

// publicURL is PUBLIC_URL or, when unset (loopback only: config requires
// it elsewhere), the scheme and address this instance listens on.
func (a *app) publicURL() string {
	if a.cfg.PublicURL != "" {
		return a.cfg.PublicURL
	}
	return a.listenURL
}

// listening records the address the server listens on, from which the
// public URL is derived when PUBLIC_URL is unset. Call it before serving.
func (a *app) listening(addr net.Addr) {
	scheme := "http"
	if a.cfg.TLSCert != "" {
		scheme = "https"
	}
	a.listenURL = scheme + "://" + addr.String()
}

// devLaunch stands in for Medtech Evolution: it issues a simulated launch
// for ?patient= (default: the first test patient) and sends the browser to
// the desktop page with the launch pair in the URL fragment, which the page
// posts to /api/launch.
func (a *app) devLaunch(w http.ResponseWriter, r *http.Request) {
	patient := r.URL.Query().Get("patient")
	pats := a.sim.Patients()
	if patient == "" && len(pats) > 0 {
		patient = pats[0].ID
	}
	known := false
	for _, p := range pats {
		known = known || p.ID == patient
	}
	if !known {
		http.Error(w, "unknown simulated patient; see /dev/patients", http.StatusNotFound)
		return
	}
	var provider string
	if prs := a.sim.Practitioners(); len(prs) > 0 {
		provider = prs[0].ID
	}
	lc, sig := a.sim.IssueLaunch(patient, "", provider)
	frag := url.Values{"context": {lc}, "signature": {sig}}.Encode()
	http.Redirect(w, r, "/#"+frag, http.StatusSeeOther)
}

// devPatients lists the simulator's fictional patients with their launch
// links.
func (a *app) devPatients(w http.ResponseWriter, r *http.Request) {
	type row struct {
		ID, Name, NHI, Launch string
	}
	var out []row
	for _, p := range a.sim.Patients() {
		out = append(out, row{ID: p.ID, Name: p.Given + " " + p.Family, NHI: p.NHI, Launch: "/dev/launch?patient=" + p.ID})
	}
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}

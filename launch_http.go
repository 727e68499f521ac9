package clinicalimages

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/clinicpro/clinicalimages/alex"
)

// LaunchRate limits launches by Evolution launch pair, which anyone can
// send and each of which costs an ALEX call with the vendor's credentials:
// counted in fixed windows before the call, per client address and in
// total. Counters live in the Service's store when it is a session.Limiter
// (the memory and Redis stores are), so with Redis they hold across
// instances; otherwise per instance. A refused launch gets 429 rate_limited
// with Retry-After and costs nothing. Launch tokens are verified locally
// and not counted. Zero fields take DefaultLaunchRate's.
type LaunchRate struct {
	PerClient int           // launches per client address per window (default 30)
	Total     int           // launches from all clients per window (default 600)
	Window    time.Duration // default one minute
}

// DefaultLaunchRate is used for zero fields of LaunchRate. A practice
// behind one address launches once per patient per GP, far below 30 a
// minute; 600 a minute across a deployment keeps a flood of garbage pairs
// from getting the app throttled by ALEX for every practice.
var DefaultLaunchRate = LaunchRate{PerClient: 30, Total: 600, Window: time.Minute}

func (l LaunchRate) withDefaults() (LaunchRate, error) {
	if l.PerClient < 0 || l.Total < 0 || l.Window < 0 {
		return l, errors.New("clinicalimages: LaunchRate fields must not be negative")
	}
	if l.PerClient == 0 {
		l.PerClient = DefaultLaunchRate.PerClient
	}
	if l.Total == 0 {
		l.Total = DefaultLaunchRate.Total
	}
	if l.Window == 0 {
		l.Window = DefaultLaunchRate.Window
	}
	if l.Window < time.Second {
		return l, errors.New("clinicalimages: LaunchRate.Window must be at least a second")
	}
	return l, nil
}

// allowLaunch counts one launch against the client's and the total budget,
// the client's first so that a client over its own budget does not spend
// everyone's.
func (a *api) allowLaunch(ctx context.Context, clientAddr string) error {
	rate := a.cfg.LaunchRate
	for _, k := range []struct {
		key   string
		limit int
	}{
		{"launch:addr:" + digest(clientAddr), rate.PerClient},
		{"launch:total", rate.Total},
	} {
		n, err := a.s.limiter.Fail(ctx, k.key, rate.Window)
		if err != nil {
			return storage(fmt.Errorf("clinicalimages: launch rate limit: %w", err))
		}
		if n > int64(k.limit) {
			if a.s.metrics.RateLimited != nil {
				a.s.metrics.RateLimited("launch")
			}
			return &RateLimitError{Limit: "launch", RetryAfter: rate.Window}
		}
	}
	return nil
}

// checkLaunchRequest refuses a launch not sent as JSON (415) and one from a
// page on another site (403): a browser sends Origin on a cross-site POST,
// which must then be this server's own origin (its Host) or one of
// HTTPOptions.AllowedOrigins. A request without Origin (not a browser's
// cross-site POST) passes.
func (a *api) checkLaunchRequest(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return fmt.Errorf("%w: launch takes application/json", ErrUnsupportedContentType)
	}
	origin := r.Header.Get("Origin")
	if origin == "" || slices.Contains(a.cfg.AllowedOrigins, origin) {
		return nil
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && u.Host == r.Host && (u.Scheme == "https" || u.Scheme == "http") {
		return nil
	}
	a.cfg.Logger.InfoContext(r.Context(), "launch refused", "reason", "cross-site origin")
	return fmt.Errorf("%w: launch from another site", ErrForbidden)
}

func (a *api) launch(w http.ResponseWriter, r *http.Request) {
	var code FailureCode
	if m := a.s.metrics.Launch; m != nil {
		defer func() { m(code) }()
	}
	fail := func(err error) {
		_, code = classify(err)
		a.fail(w, r, err)
	}
	if err := a.checkLaunchRequest(r); err != nil {
		fail(err)
		return
	}
	var body struct {
		Context   string `json:"context"`
		Signature string `json:"signature"`
		Token     string `json:"token"`
	}
	if !a.decode(w, r, &body, 64<<10) {
		code = CodeInvalidRequest
		return
	}
	var vl VerifiedLaunch
	var err error
	switch {
	case body.Token != "":
		vl, err = a.s.LaunchFromToken(r.Context(), body.Token)
	case body.Context != "" && body.Signature != "":
		if err = a.allowLaunch(r.Context(), a.clientAddr(r)); err != nil {
			break
		}
		vl, err = a.s.LaunchFromEvolution(r.Context(), body.Context, body.Signature)
		if errors.Is(err, alex.ErrForbidden) || errors.Is(err, alex.ErrValidation) || errors.Is(err, alex.ErrUnauthorized) && !isTokenError(err) {
			err = fmt.Errorf("%w: ALEX did not accept the launch context", ErrUnauthenticated)
		}
	default:
		err = invalidRequest("give context and signature, or token")
	}
	if err != nil {
		fail(err)
		return
	}
	st, err := a.s.StartSession(r.Context(), vl)
	if err != nil {
		fail(err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: a.cfg.CookieName, Value: st.Credential, Path: "/", HttpOnly: true,
		Secure: !a.cfg.InsecureCookies, SameSite: http.SameSiteLaxMode, Expires: st.Expires})
	writeJSON(w, http.StatusCreated, map[string]any{
		"session":    a.sessionView(st.Session),
		"credential": st.Credential,
		"csrf":       st.CSRF,
	})
}

func isTokenError(err error) bool {
	var te *alex.TokenError
	return errors.As(err, &te)
}

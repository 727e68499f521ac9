package main

import (
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"golang.org/x/net/netutil"
)

// The edge: what keeps slow and greedy clients from holding the server.
//
//   - Headers: http.Server.ReadHeaderTimeout.
//   - Bodies: a read deadline per request. A non-upload body (JSON) must
//     arrive whole within BodyTimeout; an upload body gets BodyTimeout of
//     grace and must then average MinUploadRate bytes per second, its
//     deadline moving on as bytes arrive. A trickling client is cut when the
//     deadline passes (the server closes the connection).
//   - Writes: each response write may block on the client for WriteTimeout
//     at most, so a client that stops reading is cut; a handler that thinks
//     for long (a commit waiting on ALEX) is not, and event streams stay
//     open for as long as the desktop reads them.
//   - Between requests: IdleTimeout. Connections: MaxConns (more wait in the
//     kernel's accept queue). Event streams: MaxStreams per credential.

// uploadRoute reports whether r carries an image body, which may be large
// and come from a phone on a poor network.
func uploadRoute(r *http.Request) bool {
	return r.Method == http.MethodPost && (r.URL.Path == "/api/images" || r.URL.Path == "/api/phone/images")
}

// streamRoute reports whether r opens an event stream or a long poll.
func streamRoute(r *http.Request) bool {
	return r.Method == http.MethodGet && (r.URL.Path == "/api/events" || r.URL.Path == "/api/events/poll")
}

// deadlines sets the read deadline of a request's body and the write
// deadline of each response write.
func (a *app) deadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if streamRoute(r) {
			// An event stream has no end: no deadline but each write's own.
			_ = rc.SetWriteDeadline(time.Time{})
		}
		if r.Body != nil && r.Body != http.NoBody {
			now := time.Now()
			body := &deadlineBody{rc: rc, rd: r.Body, start: now, grace: a.cfg.BodyTimeout, want: r.ContentLength}
			if uploadRoute(r) {
				body.rate = float64(a.cfg.MinUploadRate)
			}
			if body.set(now) == nil {
				r.Body = body
			}
		}
		next.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: rc, d: a.cfg.WriteTimeout}, r)
	})
}

// deadlineBody moves the connection's read deadline as a body arrives:
// start + grace + received/rate (rate 0: start + grace). Once the body is
// read whole it clears the deadline, so the server's background read that
// watches for a vanished client does not time out and cancel a handler
// still at work.
type deadlineBody struct {
	rc    *http.ResponseController
	rd    io.ReadCloser
	start time.Time
	grace time.Duration
	rate  float64 // bytes per second; 0 for one total deadline
	want  int64   // Content-Length, or -1
	got   int64
	done  bool
}

func (b *deadlineBody) set(now time.Time) error {
	d := b.start.Add(b.grace)
	if b.rate > 0 {
		d = d.Add(time.Duration(float64(b.got) / b.rate * float64(time.Second)))
	}
	return b.rc.SetReadDeadline(d)
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.rd.Read(p)
	b.got += int64(n)
	switch {
	case b.done:
	case err == io.EOF || (err == nil && b.want >= 0 && b.got >= b.want):
		// Read whole. (After any other error, a deadline that passed
		// stays: the server discards what is left of the body before it
		// answers, and that must not wait on the trickle either.)
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case b.rate > 0 && n > 0:
		_ = b.set(time.Now())
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = errSlowBody
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.rd.Close() }

// errSlowBody is what a handler reading a body cut for slowness sees.
var errSlowBody = errors.New("request body too slow")

// deadlineWriter gives each response write WriteTimeout to complete.
// Flush and Unwrap keep event streams and http.ResponseController working.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	return w.ResponseWriter.Write(p)
}

func (w *deadlineWriter) Flush() {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.d))
	_ = w.rc.Flush()
}

func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// limitListener caps concurrent connections: netutil.LimitListener (the
// golang.org/x/net one, well kept and used by x/net's own servers) holds
// Accept until a connection closes.
func limitListener(ln net.Listener, n int) net.Listener { return netutil.LimitListener(ln, n) }

// streamCap caps concurrent event streams per credential (the desktop's
// bearer token or cookie, or the phone's bearer token). The credential
// itself is neither kept nor logged: streams are counted under its SHA-256.
type streamCap struct {
	max    int
	cookie string
	gauge  func(delta float64) // live streams, for metrics; may be nil
	refuse func()              // a refusal, for metrics; may be nil

	mu   gosync.Mutex
	open map[[32]byte]int
}

func (s *streamCap) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !streamRoute(r) {
			next.ServeHTTP(w, r)
			return
		}
		cred := credentialOf(r, s.cookie)
		if cred == "" {
			next.ServeHTTP(w, r) // the API answers 401
			return
		}
		key := sha256.Sum256([]byte(cred))
		s.mu.Lock()
		if s.open[key] >= s.max {
			s.mu.Unlock()
			if s.refuse != nil {
				s.refuse()
			}
			w.Header().Set("Retry-After", strconv.Itoa(5))
			http.Error(w, "too many event streams for this session; close another tab", http.StatusTooManyRequests)
			return
		}
		s.open[key]++
		s.mu.Unlock()
		if s.gauge != nil {
			s.gauge(1)
		}
		defer func() {
			s.mu.Lock()
			if s.open[key]--; s.open[key] <= 0 {
				delete(s.open, key)
			}
			s.mu.Unlock()
			if s.gauge != nil {
				s.gauge(-1)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// credentialOf returns the bearer token or the desktop cookie's value, or "".
func credentialOf(r *http.Request, cookie string) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(tok)
		}
	}
	if c, err := r.Cookie(cookie); err == nil {
		return c.Value
	}
	return ""
}

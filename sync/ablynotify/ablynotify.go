// Package ablynotify mirrors a session's events to an existing Ably app over
// Ably's REST API, so a frontend that already listens on Ably channels keeps
// working while the SDK's own hub (sync.Hub or sync/redisnotify) stays the
// source of truth for ids, history and replay.
//
// Each event becomes one Ably message, POSTed to
// {endpoint}/channels/{channel}/messages with HTTP basic authentication by
// the API key: the message name is the event type, the data is the event as
// JSON (encoding "json", so Ably's client libraries hand the frontend an
// object), and the message id is "{session}:{event id}", which makes retries
// idempotent on Ably's side.
//
// The API key never appears in logs, errors or formatted values.
package ablynotify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/clinicpro/clinicalimages/sync"
)

// DefaultEndpoint is Ably's REST endpoint.
const DefaultEndpoint = "https://rest.ably.io"

// DefaultChannel names a session's channel: "clinicalimages:{session}".
func DefaultChannel(session string) string { return "clinicalimages:" + session }

// ErrUnauthorized is matched (errors.Is) by an [*Error] for HTTP 401 or 403:
// the API key is wrong, revoked, or lacks publish capability on the channel.
var ErrUnauthorized = errors.New("ablynotify: Ably rejected the API key")

// Error is Ably's answer to a failed publish. It never holds the API key.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is Ably's error code (for example 40140), 0 if none was given.
	Code int
	// Message is Ably's error message, cut to 200 bytes and with the key
	// removed should Ably quote it.
	Message string
}

// Error describes the failure: status, Ably code and message, never the key.
func (e *Error) Error() string {
	s := "ablynotify: Ably returned HTTP " + strconv.Itoa(e.StatusCode)
	if e.Code != 0 {
		s += " (code " + strconv.Itoa(e.Code) + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is reports whether target is ErrUnauthorized and e is a 401 or 403.
func (e *Error) Is(target error) bool {
	return target == ErrUnauthorized && (e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden)
}

func (e *Error) temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// Option configures a [Publisher].
type Option func(*config) error

type config struct {
	endpoint *url.URL
	client   *http.Client
	channel  func(string) string
	logger   *slog.Logger
	onError  func(context.Context, sync.Event, error)
	attempts int
	backoff  time.Duration
}

// WithEndpoint sets the REST endpoint (default [DefaultEndpoint]), for a
// dedicated Ably cluster or an environment-specific host. It must be https,
// except for a loopback host.
func WithEndpoint(raw string) Option {
	return func(c *config) error {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" {
			return errors.New("ablynotify: endpoint must be an absolute URL without credentials or query")
		}
		loopback := u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1"
		if u.Scheme != "https" && (u.Scheme != "http" || !loopback) {
			return errors.New("ablynotify: endpoint must use https")
		}
		u.Path = strings.TrimRight(u.Path, "/")
		c.endpoint = u
		return nil
	}
}

// WithHTTPClient sets the HTTP client (default: one with a 10s timeout).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return errors.New("ablynotify: nil HTTP client")
		}
		c.client = hc
		return nil
	}
}

// WithChannel sets how a session id maps to an Ably channel name (default
// [DefaultChannel]), to match what an existing frontend subscribes to.
func WithChannel(name func(session string) string) Option {
	return func(c *config) error {
		if name == nil {
			return errors.New("ablynotify: nil channel naming func")
		}
		c.channel = name
		return nil
	}
}

// WithLogger sets a logger for failed mirrors (default: silent). It logs the
// session, event type and id, status and Ably's error code, never the key
// and never event data.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("ablynotify: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithErrorHandler sets a func that Publish calls when mirroring an event to
// Ably failed after all attempts (for metrics or alerting). It runs on the
// publishing goroutine and must not block for long.
func WithErrorHandler(f func(ctx context.Context, ev sync.Event, err error)) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("ablynotify: nil error handler")
		}
		c.onError = f
		return nil
	}
}

// WithRetry sets how many attempts a mirror makes (default 3) and the wait
// before the second (default 200ms, doubling). Only network errors, 429 and
// 5xx are retried; the message id makes a repeated publish harmless.
func WithRetry(attempts int, backoff time.Duration) Option {
	return func(c *config) error {
		if attempts < 1 || attempts > 10 || backoff < 0 || backoff > time.Minute {
			return errors.New("ablynotify: retry needs 1-10 attempts and a backoff up to a minute")
		}
		c.attempts, c.backoff = attempts, backoff
		return nil
	}
}

// Publisher is a sync.Publisher that publishes to another Publisher (the
// hub, which assigns ids and keeps history) and then mirrors the stored
// event to Ably. It is safe for concurrent use and holds no goroutine.
type Publisher struct {
	next   sync.Publisher
	keyID  string // "app.key": identifies the key, not secret
	secret string
	cfg    config
}

var _ sync.Publisher = (*Publisher)(nil)

// New returns a Publisher in front of next, authenticating to Ably with key
// ("appId.keyId:secret", as the Ably dashboard shows it). Errors never quote
// the key.
func New(next sync.Publisher, key string, opts ...Option) (*Publisher, error) {
	if next == nil {
		return nil, errors.New("ablynotify: nil next Publisher")
	}
	keyID, secret, ok := strings.Cut(key, ":")
	if !ok || secret == "" || !strings.Contains(keyID, ".") || strings.HasPrefix(keyID, ".") ||
		strings.HasSuffix(keyID, ".") || strings.ContainsAny(key, " \t\r\n") {
		return nil, errors.New(`ablynotify: API key must look like "appId.keyId:secret"`)
	}
	def, _ := url.Parse(DefaultEndpoint)
	cfg := config{
		endpoint: def,
		client:   &http.Client{Timeout: 10 * time.Second},
		channel:  DefaultChannel,
		logger:   slog.New(slog.DiscardHandler),
		attempts: 3,
		backoff:  200 * time.Millisecond,
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	return &Publisher{next: next, keyID: keyID, secret: secret, cfg: cfg}, nil
}

// String describes p without its secret.
func (p *Publisher) String() string {
	return "ablynotify.Publisher{endpoint: " + p.cfg.endpoint.String() + ", key: " + p.keyID + ":[REDACTED]}"
}

// GoString is String, so %#v cannot reveal the secret either.
func (p *Publisher) GoString() string { return p.String() }

// LogValue implements slog.LogValuer without the secret.
func (p *Publisher) LogValue() slog.Value {
	return slog.GroupValue(slog.String("endpoint", p.cfg.endpoint.String()), slog.String("key", p.keyID+":[REDACTED]"))
}

// Publish publishes ev to the next Publisher and, once it is stored, mirrors
// the stored event to Ably. Its result is the next Publisher's: Ably is a
// mirror, so a failure to reach it is logged and handed to the error
// handler (see [WithErrorHandler]) but does not fail the publish, which
// would make callers retry an upload that succeeded.
func (p *Publisher) Publish(ctx context.Context, ev sync.Event) (sync.Event, error) {
	stored, err := p.next.Publish(ctx, ev)
	if err != nil {
		return stored, err
	}
	if err := p.Send(ctx, stored); err != nil {
		p.cfg.logger.WarnContext(ctx, "ablynotify: mirroring to Ably failed",
			"session", stored.Session, "type", stored.Type, "id", stored.ID, "err", err)
		if p.cfg.onError != nil {
			p.cfg.onError(ctx, stored, err)
		}
	}
	return stored, nil
}

// message is Ably's REST message shape.
type message struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Data     string `json:"data"`
	Encoding string `json:"encoding"`
}

// Send posts one stored event (with its id) to the session's Ably channel,
// retrying as configured. Errors: an [*Error] for Ably's refusal (matching
// ErrUnauthorized for key problems), the context's error, or a wrapped
// network error.
func (p *Publisher) Send(ctx context.Context, ev sync.Event) error {
	if ev.ID == 0 || ev.Session == "" {
		return errors.New("ablynotify: Send needs a stored event (with id and session)")
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("ablynotify: encoding event: %w", err)
	}
	body, err := json.Marshal(message{
		ID:       ev.Session + ":" + strconv.FormatUint(ev.ID, 10),
		Name:     string(ev.Type),
		Data:     string(data),
		Encoding: "json",
	})
	if err != nil {
		return fmt.Errorf("ablynotify: encoding message: %w", err)
	}
	u := p.cfg.endpoint.String() + "/channels/" + url.PathEscape(p.cfg.channel(ev.Session)) + "/messages"

	wait := p.cfg.backoff
	for attempt := 1; ; attempt++ {
		err = p.post(ctx, u, body)
		var ae *Error
		retry := err != nil && ctx.Err() == nil && (!errors.As(err, &ae) || ae.temporary())
		if !retry || attempt >= p.cfg.attempts {
			if err != nil && ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait *= 2
	}
}

func (p *Publisher) post(ctx context.Context, u string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("ablynotify: building request: %w", err)
	}
	req.SetBasicAuth(p.keyID, p.secret)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := p.cfg.client.Do(req)
	if err != nil {
		return fmt.Errorf("ablynotify: sending to Ably: %w", p.scrub(err))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := &Error{StatusCode: resp.StatusCode}
	var env struct {
		Error struct {
			Message string `json:"message"`
			Code    int    `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &env) == nil {
		e.Code = env.Error.Code
		msg := env.Error.Message
		msg = strings.ReplaceAll(msg, p.secret, "[REDACTED]")
		msg = strings.ReplaceAll(msg, p.keyID, "[key]")
		if len(msg) > 200 {
			msg = strings.ToValidUTF8(msg[:200], "")
		}
		e.Message = msg
	}
	return e
}

// scrub keeps the secret out of a transport error, should a custom
// transport ever quote the request's credentials.
func (p *Publisher) scrub(err error) error {
	if strings.Contains(err.Error(), p.secret) {
		return errors.New(strings.ReplaceAll(err.Error(), p.secret, "[REDACTED]"))
	}
	return err
}

package clinicalimages_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	gosync "sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/redisstore"
)

// claimStores are the stores the pairing attacks run against: the failure
// budgets live in the store's Limiter, shared across instances on Redis.
var claimStores = []struct {
	name string
	new  func(t *testing.T) session.Store // nil store: the world's memory store
}{
	{"Memory", func(t *testing.T) session.Store { return nil }},
	{"Redis", func(t *testing.T) session.Store {
		opt, err := redis.ParseURL(testenv.RedisURL(t))
		require.NoError(t, err)
		c := redis.NewClient(opt)
		t.Cleanup(func() { _ = c.Close() })
		p := testenv.Prefix(t) + ":"
		t.Cleanup(func() {
			if keys, _ := c.Keys(t.Context(), p+"*").Result(); len(keys) > 0 {
				_ = c.Del(t.Context(), keys...).Err()
			}
		})
		st, err := redisstore.New(c, redisstore.WithPrefix(p))
		require.NoError(t, err)
		return st
	}},
}

// claimer posts to /phone/claim on its own handler over the world's Service,
// so it can trust proxies, with the X-Forwarded-For it is given.
type claimer struct {
	t   *testing.T
	srv *httptest.Server
}

func newClaimer(t *testing.T, w *world, opts ci.HTTPOptions) *claimer {
	t.Helper()
	opts.InsecureCookies = true
	h, err := w.svc.Handler(opts)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &claimer{t: t, srv: srv}
}

// claim returns the status, the error code ("" on success) and Retry-After.
func (c *claimer) claim(code string, xff ...string) (status int, errCode, retryAfter string) {
	c.t.Helper()
	body, err := json.Marshal(map[string]string{"code": code})
	require.NoError(c.t, err)
	req, err := http.NewRequestWithContext(c.t.Context(), "POST", c.srv.URL+"/phone/claim", bytes.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	for _, v := range xff {
		req.Header.Add("X-Forwarded-For", v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, errorCode(out), resp.Header.Get("Retry-After")
}

func errorCode(m map[string]any) string {
	if e, ok := m["error"].(map[string]any); ok {
		s, _ := e["code"].(string)
		return s
	}
	return ""
}

// handoffCode opens a session and returns a fresh QR code for it.
func (w *world) handoffCode() string {
	w.t.Helper()
	desktop, _ := w.launch()
	st, h := w.call("POST", "/handoff", desktop, nil)
	require.Equal(w.t, http.StatusCreated, st, h)
	return h["code"].(string)
}

func wrongCode() string { return session.NewID() + "." + session.NewID() }

// TestPairingCannotBeBlocked runs each attack on pairing over HTTP, on the
// memory store and on Redis, with the default budgets (20 wrong claims per
// address, 5 per session id, per 5 minutes).
func TestPairingCannotBeBlocked(t *testing.T) {
	t.Parallel()
	window := fmt.Sprint(int(session.DefaultClaimWindow.Seconds()))
	for _, st := range claimStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			attacks := []struct {
				name string
				run  func(t *testing.T, w *world)
			}{
				{"WrongFromSameAddressThenRightCode", func(t *testing.T, w *world) {
					// One NAT address: someone scans, the GP's phone pairs.
					c := newClaimer(t, w, ci.HTTPOptions{})
					code := w.handoffCode()
					for i := range session.DefaultAddressLimit + 5 {
						bad := wrongCode()
						if i%3 == 0 {
							bad = "garbage"
						}
						status, _, _ := c.claim(bad)
						require.Contains(t, []int{400, 429}, status)
					}
					status, ecode, retry := c.claim(wrongCode())
					require.Equal(t, http.StatusTooManyRequests, status, "the address is past its budget")
					assert.Equal(t, "rate_limited", ecode)
					assert.Equal(t, window, retry)
					status, ecode, _ = c.claim(code)
					assert.Equal(t, http.StatusCreated, status, ecode)
				}},
				{"WrongSecretsThenRightSecret", func(t *testing.T, w *world) {
					// The session id (the QR code's prefix) is known: guesses at
					// its secret from rotating addresses never lock it.
					c := newClaimer(t, w, ci.HTTPOptions{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
					code := w.handoffCode()
					sid, _, _ := strings.Cut(code, ".")
					for i := range 3 * session.DefaultSessionLimit {
						status, ecode, retry := c.claim(sid+"."+session.NewID(), fmt.Sprintf("203.0.113.%d", i))
						if i < session.DefaultSessionLimit {
							require.Equal(t, http.StatusBadRequest, status, i)
							assert.Equal(t, "invalid_code", ecode)
						} else {
							require.Equal(t, http.StatusTooManyRequests, status, i)
							assert.Equal(t, window, retry)
						}
					}
					status, ecode, _ := c.claim(code, "203.0.113.1")
					assert.Equal(t, http.StatusCreated, status, ecode)
				}},
				{"RotatingForgedForwardedFor", func(t *testing.T, w *world) {
					// Behind a trusted proxy (the test client, on loopback) that
					// appends the real client: rotating forged entries to its
					// left buy no fresh budget.
					c := newClaimer(t, w, ci.HTTPOptions{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
					const real = "198.51.100.7"
					limited := 0
					for i := range session.DefaultAddressLimit + 10 {
						status, _, _ := c.claim(wrongCode(), fmt.Sprintf("10.%d.%d.1, 192.0.2.%d", i/256, i%256, i), real)
						if status == http.StatusTooManyRequests {
							limited++
						}
					}
					assert.Equal(t, 10, limited, "limited by the real client address")
					status, _, _ := c.claim(wrongCode(), "198.51.100.8")
					assert.Equal(t, http.StatusBadRequest, status, "another client keeps its budget")

					// With no proxy trusted, the header is never read.
					direct := newClaimer(t, w, ci.HTTPOptions{})
					limited = 0
					for i := range session.DefaultAddressLimit + 10 {
						status, _, _ := direct.claim(wrongCode(), fmt.Sprintf("192.0.2.%d", i))
						if status == http.StatusTooManyRequests {
							limited++
						}
					}
					assert.Equal(t, 10, limited, "limited by the peer address")
				}},
				{"ScannerIsBraked", func(t *testing.T, w *world) {
					c := newClaimer(t, w, ci.HTTPOptions{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
					for i := range session.DefaultAddressLimit + 5 {
						status, ecode, retry := c.claim(wrongCode(), "2001:db8:5::"+fmt.Sprintf("%x", i+1))
						if i < session.DefaultAddressLimit {
							require.Equal(t, http.StatusBadRequest, status, i)
							assert.Empty(t, retry)
						} else {
							require.Equal(t, http.StatusTooManyRequests, status, "a /64 is one budget")
							assert.Equal(t, "rate_limited", ecode)
							assert.Equal(t, window, retry)
						}
					}
				}},
			}
			for _, a := range attacks {
				t.Run(a.name, func(t *testing.T) {
					t.Parallel()
					a.run(t, newWorldWith(t, st.new(t)))
				})
			}
		})
	}
}

// TestClaimRefusalsReachMetrics: each claim a failure budget refuses is
// reported, named by the budget.
func TestClaimRefusalsReachMetrics(t *testing.T) {
	t.Parallel()
	var mu gosync.Mutex
	got := map[string]int{}
	w := newWorld(t, ci.WithMetrics(ci.Metrics{RateLimited: func(limit string) {
		mu.Lock()
		defer mu.Unlock()
		got[limit]++
	}}))
	c := newClaimer(t, w, ci.HTTPOptions{})
	sid, _, _ := strings.Cut(w.handoffCode(), ".")
	for range session.DefaultSessionLimit + 2 {
		c.claim(sid + "." + session.NewID())
	}
	for range session.DefaultAddressLimit {
		c.claim("garbage")
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{"claim_session": 2, "claim_address": 2 + session.DefaultSessionLimit}, got)
}

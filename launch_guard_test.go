package clinicalimages_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"
	_ "time/tzdata" // the tests compare with the tz database whatever the host has

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
	"github.com/clinicpro/clinicalimages/session/storetest"
)

// launchServer serves w's Service with opts.
func launchServer(t *testing.T, w *world, opts ci.HTTPOptions) *httptest.Server {
	t.Helper()
	opts.InsecureCookies = true
	h, err := w.svc.Handler(opts)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// post sends body to srv's /launch with the given headers and returns the
// status, the error code ("" on success), the Retry-After and the body.
func post(t *testing.T, srv *httptest.Server, body any, headers map[string]string) (int, string, string, map[string]any) {
	t.Helper()
	j, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/launch", bytes.NewReader(j))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, errCode(out), resp.Header.Get("Retry-After"), out
}

func launchCalls(srv *alextest.Server) int {
	n := 0
	for _, r := range srv.Requests() {
		if strings.Contains(r.Path, "getlaunchcontextstring") {
			n++
		}
	}
	return n
}

// garbagePair is a launch pair ALEX refuses.
func garbagePair(i int) map[string]string {
	return map[string]string{"context": "garbage/" + rand.Text(), "signature": strings.Repeat("x", i%7+1) + "=="}
}

// TestLaunchFloodIsBounded: 1,000 garbage launch pairs from one client
// make at most LaunchRate.PerClient ALEX calls; the rest are refused with
// 429 rate_limited and Retry-After before ALEX is called. With limits so
// high they never bite, every garbage pair costs an ALEX call (the figure
// before the limit).
func TestLaunchFloodIsBounded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		rate      ci.LaunchRate
		wantCalls int
	}{
		{"Defaults", ci.LaunchRate{}, ci.DefaultLaunchRate.PerClient},
		{"Unlimited", ci.LaunchRate{PerClient: 1 << 20, Total: 1 << 20}, 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			srv := launchServer(t, w, ci.HTTPOptions{LaunchRate: tc.rate})
			refused := 0
			for i := range 1000 {
				st, code, retry, _ := post(t, srv, garbagePair(i), nil)
				switch st {
				case http.StatusTooManyRequests:
					refused++
					assert.Equal(t, string(ci.CodeRateLimited), code)
					assert.Equal(t, "60", retry, "Retry-After is the window")
				case http.StatusUnauthorized:
					assert.Equal(t, string(ci.CodeUnauthenticated), code)
				default:
					t.Fatalf("garbage launch %d: status %d %s", i, st, code)
				}
			}
			calls := launchCalls(w.alex)
			t.Logf("ALEX launch calls for 1,000 garbage launches: %d (refused before ALEX: %d)", calls, refused)
			assert.Equal(t, tc.wantCalls, calls)
			assert.Equal(t, 1000-tc.wantCalls, refused)
		})
	}
}

// TestLaunchRateTotal: the total budget holds whatever address the launches
// come from (each client below its own budget).
func TestLaunchRateTotal(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := launchServer(t, w, ci.HTTPOptions{TrustProxyHeaders: true, LaunchRate: ci.LaunchRate{PerClient: 2, Total: 5}})
	var limited []string
	for i := range 20 {
		st, _, _, _ := post(t, srv, garbagePair(i), map[string]string{"X-Forwarded-For": "203.0.113." + strconv.Itoa(i+1)})
		if st == http.StatusTooManyRequests {
			limited = append(limited, "x")
		}
	}
	assert.Equal(t, 5, launchCalls(w.alex), "the total budget")
	assert.Len(t, limited, 15)
}

// TestLaunchPairReplay: one valid pair sent 30 times at once makes exactly
// one session; the others are refused as launch_replayed.
func TestLaunchPairReplay(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.alex.Patients()[0]
	lc, sig := w.alex.IssueLaunch(p.ID, w.alex.Facility(), w.alex.Practitioners()[0].ID)
	var created, replayed atomic.Int32
	var wg gosync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, body := w.call("POST", "/launch", "", map[string]string{"context": lc, "signature": sig})
			switch {
			case st == http.StatusCreated:
				created.Add(1)
			case st == http.StatusUnauthorized && errCode(body) == string(ci.CodeLaunchReplayed):
				replayed.Add(1)
			default:
				t.Errorf("replay: %d %v", st, body)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), created.Load(), "exactly one session from one pair")
	assert.Equal(t, int32(29), replayed.Load())
	assert.NotContains(t, w.logs.String(), lc, "no launch value in logs")
	assert.NotContains(t, w.logs.String(), sig, "no launch value in logs")
}

// TestGarbageIsNotRecorded: only pairs ALEX verified are recorded, so a
// flood of garbage leaves nothing in the store.
func TestGarbageIsNotRecorded(t *testing.T) {
	t.Parallel()
	mem, err := memory.NewStore()
	require.NoError(t, err)
	w := newWorldWith(t, mem)
	srv := launchServer(t, w, ci.HTTPOptions{LaunchRate: ci.LaunchRate{PerClient: 100, Total: 100}})
	before := mem.Len() // the rate counters
	for i := range 20 {
		st, _, _, _ := post(t, srv, garbagePair(i), nil)
		require.Equal(t, http.StatusUnauthorized, st)
	}
	assert.Equal(t, before+2, mem.Len(), "only the two rate counters")
}

func signToken(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(hsKey)
	require.NoError(t, err)
	return s
}

// TestLaunchTokenClaims: a token is used once, needs a jti, and its claims
// must be in their formats; a refusal names no claim and logs no value.
func TestLaunchTokenClaims(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ci.WithLaunchTokens("clinicpro-bff", ci.LaunchKey{Secret: hsKey}))
	now := time.Now()
	with := func(k string, v any) jwt.MapClaims {
		c := launchClaims("clinicpro-bff", now, now.Add(5*time.Minute))
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	reused := signToken(t, with("nhi", "ZZZ0016"))
	tests := []struct {
		name   string
		token  string
		status int
		code   ci.FailureCode
		secret string // must not be logged
	}{
		{"Good", reused, 201, "", ""},
		{"Reused", reused, 401, ci.CodeLaunchReplayed, ""},
		{"NoJTI", signToken(t, with("jti", nil)), 401, ci.CodeUnauthenticated, ""},
		{"PatientPath", signToken(t, with("patient", "../../Patient/x")), 401, ci.CodeUnauthenticated, "../../Patient/x"},
		{"PatientTooLong", signToken(t, with("patient", strings.Repeat("a", 65))), 401, ci.CodeUnauthenticated, ""},
		{"FacilityCRLF", signToken(t, with("facility", "F2N060-E\r\nX-Evil: 1")), 401, ci.CodeUnauthenticated, "X-Evil"},
		{"FacilitySlash", signToken(t, with("facility", "F2N060/E")), 401, ci.CodeUnauthenticated, "F2N060/E"},
		{"PractitionerControl", signToken(t, with("practitioner", "prac\x001")), 401, ci.CodeUnauthenticated, ""},
		{"PractitionerSpace", signToken(t, with("practitioner", "prac 1")), 401, ci.CodeUnauthenticated, "prac 1"},
		{"EncounterPath", signToken(t, with("encounter", "Encounter/1")), 401, ci.CodeUnauthenticated, "Encounter/1"},
		{"JTIControl", signToken(t, with("jti", "a\nb")), 401, ci.CodeUnauthenticated, ""},
		{"FHIRIdDots", signToken(t, with("patient", "Ab-1.2")), 201, "", ""},
	}
	for _, tc := range tests {
		st, body := w.call("POST", "/launch", "", map[string]string{"token": tc.token})
		assert.Equal(t, tc.status, st, "%s: %v", tc.name, body)
		assert.Equal(t, string(tc.code), errCode(body), tc.name)
		if tc.status != 201 {
			msg := body["error"].(map[string]any)["message"].(string)
			assert.NotContains(t, msg, "patient", "%s: no detail leaks", tc.name)
		}
		if tc.secret != "" {
			assert.NotContains(t, w.logs.String(), tc.secret, tc.name)
		}
	}
	assert.Contains(t, w.logs.String(), "claims missing or not in their formats")
}

// TestLaunchCreatedTime: times with an offset are read as written; times
// without one in the practice's zone (Pacific/Auckland: +13 in summer, +12
// in winter), from the system's tz database or the SDK's built-in rule.
func TestLaunchCreatedTime(t *testing.T) {
	t.Parallel()
	sys, err := time.LoadLocation("Pacific/Auckland")
	require.NoError(t, err)
	built, err := ci.BuiltAuckland()
	require.NoError(t, err)
	tests := []struct {
		raw  string
		want string // UTC, "" when unreadable
	}{
		{"2026-01-12T10:00:00", "2026-01-11T21:00:00Z"},         // NZDT
		{"2026-07-12T10:00:00", "2026-07-11T22:00:00Z"},         // NZST
		{"2026-01-12 10:00:00.1234567", "2026-01-11T21:00:00Z"}, // Evolution's .NET form
		{"2026-01-12T10:00:00Z", "2026-01-12T10:00:00Z"},
		{"2026-01-12T10:00:00+13:00", "2026-01-11T21:00:00Z"},
		{"", ""},
		{"yesterday", ""},
		{"1736629200", ""},
	}
	for _, zone := range []*time.Location{sys, built} {
		for _, tc := range tests {
			got, ok := ci.LaunchCreated(tc.raw, zone)
			if tc.want == "" {
				assert.False(t, ok, tc.raw)
				continue
			}
			require.True(t, ok, tc.raw)
			assert.Equal(t, tc.want, got.UTC().Truncate(time.Second).Format(time.RFC3339), "%s in %s", tc.raw, zone)
		}
	}
	// The built-in rule agrees with the tz database around both changes.
	for _, s := range []string{"2025-09-28T01:59:59Z", "2025-09-27T14:00:00Z", "2026-04-04T13:59:59Z", "2026-04-04T14:00:00Z", "2030-12-25T00:00:00Z", "2027-06-01T00:00:00Z"} {
		at, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		_, a := at.In(sys).Zone()
		_, b := at.In(built).Zone()
		assert.Equal(t, a, b, s)
	}
}

// TestLaunchFreshness: the freshness check fails closed.
func TestLaunchFreshness(t *testing.T) {
	t.Parallel()
	nz, err := time.LoadLocation("Pacific/Auckland")
	require.NoError(t, err)
	now := time.Date(2026, 1, 12, 10, 0, 0, 0, nz) // NZDT
	clk := storetest.NewClock(now)
	mem, err := memory.NewStore(memory.WithClock(clk.Now))
	require.NoError(t, err)
	w := newWorldWith(t, mem, ci.WithClock(clk.Now))
	tests := []struct {
		raw string
		ok  bool
	}{
		{"2026-01-12T09:55:00", true},       // 5 minutes ago, NZ time
		{"2026-01-12T09:45:00", false},      // 15 minutes ago
		{"2026-01-11T20:55:00Z", true},      // 5 minutes ago, UTC
		{"2026-01-11T20:55:00", false},      // the same digits read as NZ time: 13 hours ago
		{"2026-01-12T10:01:30", true},       // a practice clock a little ahead
		{"2026-01-12T10:05:00", false},      // from the future
		{"", false},                         // missing
		{"not a time", false},               // unreadable
		{"2026-01-12T09:55:00+13:00", true}, // explicit offset
		{"2026-01-12T09:55:00.1234567+13:00", true},
	}
	for _, tc := range tests {
		err := w.svc.CheckFresh(t.Context(), tc.raw)
		if tc.ok {
			assert.NoError(t, err, tc.raw)
		} else {
			assert.ErrorIs(t, err, ci.ErrUnauthenticated, tc.raw)
		}
	}
	// WithLaunchMaxAge relaxes the age, never the missing time.
	w2 := newWorldWith(t, mem, ci.WithClock(clk.Now), ci.WithLaunchMaxAge(time.Hour))
	assert.NoError(t, w2.svc.CheckFresh(t.Context(), "2026-01-12T09:45:00"))
	assert.Error(t, w2.svc.CheckFresh(t.Context(), ""))
	// A zone given by option.
	w3 := newWorldWith(t, mem, ci.WithClock(clk.Now), ci.WithLaunchZone(time.UTC))
	assert.NoError(t, w3.svc.CheckFresh(t.Context(), "2026-01-11T20:55:00"))
}

// TestLaunchTooOldThroughALEX: a launch ALEX verified is refused when its
// createdTime is older than the max age by the Service's clock.
func TestLaunchTooOldThroughALEX(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ci.WithClock(func() time.Time { return time.Now().Add(11 * time.Minute) }))
	p := w.alex.Patients()[0]
	lc, sig := w.alex.IssueLaunch(p.ID, w.alex.Facility(), w.alex.Practitioners()[0].ID)
	st, body := w.call("POST", "/launch", "", map[string]string{"context": lc, "signature": sig})
	assert.Equal(t, http.StatusUnauthorized, st)
	assert.Equal(t, string(ci.CodeUnauthenticated), errCode(body))
}

// TestLaunchRequestShape: JSON only, and a cross-site Origin is refused,
// before any ALEX call.
func TestLaunchRequestShape(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := launchServer(t, w, ci.HTTPOptions{AllowedOrigins: []string{"https://widget.example.nz"}})
	host := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name    string
		headers map[string]string
		status  int
		code    ci.FailureCode
	}{
		{"FormPost", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, ci.CodeUnsupportedContentType},
		{"TextPlain", map[string]string{"Content-Type": "text/plain"}, 415, ci.CodeUnsupportedContentType},
		{"NoType", map[string]string{"Content-Type": ""}, 415, ci.CodeUnsupportedContentType},
		{"CrossSite", map[string]string{"Origin": "https://evil.example"}, 403, ci.CodeForbidden},
		{"NullOrigin", map[string]string{"Origin": "null"}, 403, ci.CodeForbidden},
		{"SameHostOtherPort", map[string]string{"Origin": "http://127.0.0.1:1"}, 403, ci.CodeForbidden},
		{"SameOrigin", map[string]string{"Origin": "http://" + host}, 201, ""},
		{"AllowedOrigin", map[string]string{"Origin": "https://widget.example.nz"}, 201, ""},
		{"NoOrigin", nil, 201, ""},
		{"JSONCharset", map[string]string{"Content-Type": "application/json; charset=utf-8"}, 201, ""},
	}
	p := w.alex.Patients()[0]
	for _, tc := range tests {
		lc, sig := w.alex.IssueLaunch(p.ID, w.alex.Facility(), w.alex.Practitioners()[0].ID)
		before := launchCalls(w.alex)
		st, code, _, body := post(t, srv, map[string]string{"context": lc, "signature": sig}, tc.headers)
		assert.Equal(t, tc.status, st, "%s: %v", tc.name, body)
		assert.Equal(t, string(tc.code), code, tc.name)
		if tc.status != 201 {
			assert.Equal(t, before, launchCalls(w.alex), "%s: refused before ALEX", tc.name)
		}
	}
}

// TestSessionCaps: live sessions are capped per practitioner and per
// facility; ending or expiring a session frees its place, and a session
// kept alive by activity keeps it.
func TestSessionCaps(t *testing.T) {
	t.Parallel()
	clk := storetest.NewClock(time.Now())
	mem, err := memory.NewStore(memory.WithClock(clk.Now))
	require.NoError(t, err)
	w := newWorldWith(t, mem, ci.WithClock(clk.Now), ci.WithLaunchTokens("clinicpro-bff", ci.LaunchKey{Secret: hsKey}),
		ci.WithLimits(ci.Limits{MaxSessionsPerPractitioner: 2, MaxSessionsPerFacility: 3}))
	launch := func(practitioner string) (int, string, string) {
		t.Helper()
		c := launchClaims("clinicpro-bff", clk.Now(), clk.Now().Add(5*time.Minute))
		c["practitioner"] = practitioner
		st, body := w.call("POST", "/launch", "", map[string]string{"token": signToken(t, c)})
		cred, _ := body["credential"].(string)
		return st, errCode(body), "Bearer " + cred
	}
	st, _, a1 := launch("a")
	require.Equal(t, 201, st)
	st, _, _ = launch("a")
	require.Equal(t, 201, st)
	st, code, _ := launch("a")
	assert.Equal(t, http.StatusTooManyRequests, st, "third for one practitioner")
	assert.Equal(t, string(ci.CodeTooManySessions), code)

	st, _ = w.call("DELETE", "/session", a1, nil)
	require.Equal(t, http.StatusNoContent, st)
	st, _, _ = launch("a")
	assert.Equal(t, 201, st, "ending a session frees its place")

	st, _, b1 := launch("b")
	require.Equal(t, 201, st)
	st, code, _ = launch("c")
	assert.Equal(t, http.StatusTooManyRequests, st, "fourth for the facility")
	assert.Equal(t, string(ci.CodeTooManySessions), code)

	// b1 stays active past its first expiry; the others go idle.
	clk.Advance(9 * time.Minute)
	st, _ = w.call("GET", "/session", b1, nil)
	require.Equal(t, 200, st)
	clk.Advance(2 * time.Minute) // a's sessions expired; b1 alive past its roster entry
	st, _, _ = launch("b")
	assert.Equal(t, 201, st, "expired sessions free their places")
	st, code, _ = launch("b")
	assert.Equal(t, http.StatusTooManyRequests, st, "b1 kept alive by activity still counts")
	assert.Equal(t, string(ci.CodeTooManySessions), code)
}

// TestLaunchStoreOutage: when the store cannot record a launch, the launch
// fails 503 (never opens a session unrecorded).
func TestLaunchStoreOutage(t *testing.T) {
	t.Parallel()
	mem, err := memory.NewStore()
	require.NoError(t, err)
	st := &onceDown{Store: mem}
	w := newWorldWith(t, st, ci.WithLaunchTokens("clinicpro-bff", ci.LaunchKey{Secret: hsKey}))
	now := time.Now()
	status, body := w.call("POST", "/launch", "", map[string]string{"token": signToken(t, launchClaims("clinicpro-bff", now, now.Add(time.Minute)))})
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, string(ci.CodeStorageUnavailable), errCode(body))
}

type onceDown struct{ *memory.Store }

func (*onceDown) FirstUse(context.Context, string, time.Duration) (bool, error) {
	return false, errRedisDown
}

var _ session.Store = (*onceDown)(nil)

// The abuse suite (issue 13, point 8): each test starts the real server
// binary (built once per test binary by serverBinary in crash_test.go) with
// SIMULATE=true on a free loopback port, a temporary BLOB_DIR and small,
// explicit settings, runs one attack an outsider could run against a server
// on the internet, and checks the guarantee that holds it. Every attack is
// bounded in count and by a context deadline; nothing waits by sleeping
// (conditions are polled or signalled) and nothing asserts on wall-clock
// time. Each test prints the figure it measured with t.Logf:
//
//   - TestAbuseGarbageLaunches: ALEX calls made for a flood of garbage
//     {context, signature} launch pairs from one client (read from /metrics),
//     at most LAUNCH_RATE_PER_CLIENT; the rest 429 with Retry-After.
//   - TestAbuseReplayedLaunchPair: one valid Evolution launch pair replayed
//     concurrently makes exactly one session.
//   - TestAbuseBig16BitPNGs: four concurrent 7000x7000 16-bit RGBA PNGs (under
//     the pixel limit, over the default decode budget) each get 413
//     too_many_pixels, and the process's peak RSS (VmHWM, Linux) stays low.
//   - TestAbuseSlowBodies: launch bodies trickled a byte at a time are cut
//     once BODY_TIMEOUT passes, while a GP launches, uploads and commits.
//   - TestAbusePairingLockout: wrong handoff claims from one client cannot
//     lock the right code out.
//   - TestAbuseConnectionCap: idle connections, dialled again and again,
//     hold at most MAX_CONNECTIONS accepted connections while a GP launches,
//     uploads and commits.
//
// The sixth attack, kill -9 with photos on disk, is TestKill9LeavesNoPhotos
// and TestKill9S3PastRetention in crash_test.go.
package main

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress/enginetest"
	"github.com/clinicpro/clinicalimages/session"
)

// abuseBound bounds each attack (a test bound, not an assertion on time).
const abuseBound = 2 * time.Minute

// startAbuseServer starts the binary with the simulator, a temporary blob
// folder and env on top.
func startAbuseServer(t *testing.T, env map[string]string) *process {
	t.Helper()
	home := t.TempDir()
	all := map[string]string{"SIMULATE": "true", "BLOB_DIR": t.TempDir(), "HOME": home, "XDG_CACHE_HOME": home}
	for k, v := range env {
		all[k] = v
	}
	return startBinary(t, all)
}

// abuseCall sends one request and returns the status, the headers and the
// body; it never fails the test (it runs on attack goroutines).
func abuseCall(ctx context.Context, method, url string, hdr map[string]string, cookies []*http.Cookie, body io.Reader) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	res, err := noRedirect().Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b, err
}

// devLaunchPair asks the simulator for a launch pair the way /dev/launch
// hands it to the desktop page: in the redirect's fragment.
func devLaunchPair(t *testing.T, ctx context.Context, base string) (ctxValue, signature string) {
	t.Helper()
	st, hdr, _, err := abuseCall(ctx, "GET", base+"/dev/launch", nil, nil, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSeeOther, st)
	q, err := parseFragment(strings.TrimPrefix(hdr.Get("Location"), "/#"))
	require.NoError(t, err)
	require.NotEmpty(t, q["signature"])
	return q["context"], q["signature"]
}

func launchBody(ctxValue, signature string) []byte {
	b, _ := json.Marshal(map[string]string{"context": ctxValue, "signature": signature})
	return b
}

// alexCalls reads the ALEX requests the server made, by operation, from
// /metrics: token calls apart from the rest (reads and writes).
func alexCalls(t *testing.T, base string) (token, other float64) {
	t.Helper()
	body := scrape(t, base, "")
	all := metricValue(t, body, "clinicalimages_alex_requests_total")
	token = metricValue(t, body, "clinicalimages_alex_requests_total", `op="token"`)
	return token, all - token
}

// TestAbuseGarbageLaunches: garbage launch pairs from one client cost ALEX
// at most LAUNCH_RATE_PER_CLIENT calls; the rest get 429 with Retry-After
// before ALEX is called.
func TestAbuseGarbageLaunches(t *testing.T) {
	t.Parallel()
	const n, perClient, workers = 200, 10, 8
	// A window far longer than the attack, so however slowly a loaded
	// machine sends it, all of it falls in one window.
	p := startAbuseServer(t, map[string]string{"LAUNCH_RATE_PER_CLIENT": strconv.Itoa(perClient), "LAUNCH_RATE_WINDOW": "1h"})
	ctx, cancel := context.WithTimeout(t.Context(), abuseBound)
	defer cancel()
	tokBefore, before := alexCalls(t, p.base)

	type result struct {
		status     int
		retryAfter string
		err        error
	}
	jobs := make(chan int)
	results := make(chan result, n)
	var wg gosync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				body := launchBody(fmt.Sprintf("garbage-context-%d", i), fmt.Sprintf("garbage-signature-%d", i))
				st, hdr, _, err := abuseCall(ctx, "POST", p.base+"/api/launch", map[string]string{"Content-Type": "application/json"}, nil, bytes.NewReader(body))
				r := result{status: st, err: err}
				if hdr != nil {
					r.retryAfter = hdr.Get("Retry-After")
				}
				results <- r
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(results)

	statuses := map[int]int{}
	for r := range results {
		require.NoError(t, r.err)
		statuses[r.status]++
		if r.status == http.StatusTooManyRequests {
			assert.NotEmpty(t, r.retryAfter, "a 429 says when to come back")
		}
	}
	tokAfter, after := alexCalls(t, p.base)
	calls := after - before
	t.Logf("garbage launches: %d sent from one client, LAUNCH_RATE_PER_CLIENT=%d: %v ALEX launch calls (+%v token calls); statuses %v",
		n, perClient, calls, tokAfter-tokBefore, statuses)
	assert.Zero(t, statuses[http.StatusCreated], "no garbage pair starts a session")
	assert.LessOrEqual(t, calls, float64(perClient), "ALEX calls for garbage launches are bounded by the per-client limit")
	assert.Positive(t, calls, "the launches within the limit did reach ALEX (the metric counts them)")
	assert.GreaterOrEqual(t, statuses[http.StatusTooManyRequests], n-perClient, "the rest are refused with 429")
	body := scrape(t, p.base, "")
	assert.GreaterOrEqual(t, metricValue(t, body, "clinicalimages_rate_limited_total", `limit="launch"`), float64(n-perClient))
}

// TestAbuseReplayedLaunchPair: one valid Evolution launch pair sent many
// times at once starts exactly one session. The launch rate limit is set
// high so that the replay guard, not the limiter, refuses the copies.
func TestAbuseReplayedLaunchPair(t *testing.T) {
	t.Parallel()
	const m = 50
	p := startAbuseServer(t, map[string]string{"LAUNCH_RATE_PER_CLIENT": "1000", "LAUNCH_RATE_TOTAL": "1000"})
	ctx, cancel := context.WithTimeout(t.Context(), abuseBound)
	defer cancel()
	body := launchBody(devLaunchPair(t, ctx, p.base))

	statuses := make([]int, m)
	errs := make([]error, m)
	start := make(chan struct{})
	var wg gosync.WaitGroup
	for i := range m {
		wg.Go(func() {
			<-start
			statuses[i], _, _, errs[i] = abuseCall(ctx, "POST", p.base+"/api/launch", map[string]string{"Content-Type": "application/json"}, nil, bytes.NewReader(body))
		})
	}
	close(start)
	wg.Wait()
	counts := map[int]int{}
	for i := range m {
		require.NoError(t, errs[i])
		counts[statuses[i]]++
	}
	t.Logf("replayed launch pair: %d concurrent sends, %d sessions started; statuses %v", m, counts[http.StatusCreated], counts)
	assert.Equal(t, 1, counts[http.StatusCreated], "exactly one session from one launch pair")
	assert.Zero(t, counts[http.StatusTooManyRequests], "refused by the replay guard, not the rate limit")
	for st := range counts {
		assert.Less(t, st, 500, "a replay is refused, not a server failure")
	}
}

// png16Flat returns a valid w x h 16-bit RGBA PNG of transparent black, a
// few hundred kilobytes at 7000 x 7000, built without holding the pixels:
// one row deflated and sync-flushed (so it refers to nothing before it) is
// repeated h times, and the Adler-32 of all-zero data is 1 | n<<16 mod 65521.
func png16Flat(w, h int) []byte {
	rowLen := 1 + w*8 // filter byte, then 8 bytes a pixel
	var row bytes.Buffer
	fw, _ := flate.NewWriter(&row, flate.BestCompression)
	_, _ = fw.Write(make([]byte, rowLen))
	_ = fw.Flush()
	var z bytes.Buffer
	z.Write([]byte{0x78, 0xda}) // zlib header, best compression
	for range h {
		z.Write(row.Bytes())
	}
	z.Write([]byte{0x03, 0x00}) // a final, empty fixed-Huffman block
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], uint32(int64(rowLen)*int64(h)%65521)<<16|1)
	z.Write(sum[:])

	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 16, 6 // 16-bit RGBA
	return enginetest.PNGFile(ihdr, z.Bytes())
}

func TestAbusePNG16FlatDecodes(t *testing.T) {
	t.Parallel()
	img, err := png.Decode(bytes.NewReader(png16Flat(300, 200)))
	require.NoError(t, err, "the construction is a valid PNG")
	assert.Equal(t, image.Rect(0, 0, 300, 200), img.Bounds())
	_, ok := img.(*image.NRGBA64)
	assert.True(t, ok, "16-bit RGBA, got %T", img)
}

// vmHWM reads a process's peak resident set size in bytes (Linux).
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM line")
}

// issueCode has the desktop of a session issue a phone handoff code.
func issueCode(t *testing.T, ctx context.Context, base string, cookies []*http.Cookie, csrf string) string {
	t.Helper()
	st, _, b, err := abuseCall(ctx, "POST", base+"/api/handoff", map[string]string{"X-CSRF-Token": csrf}, cookies, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, st)
	var out struct {
		Code string `json:"code"`
	}
	require.NoError(t, json.Unmarshal(b, &out))
	require.NotEmpty(t, out.Code)
	return out.Code
}

// claimCode claims a handoff code as a phone; it returns the status and,
// on success, the phone token.
func claimCode(ctx context.Context, base, code string) (int, string, error) {
	b, _ := json.Marshal(map[string]string{"code": code, "device": "abuse test"})
	st, _, body, err := abuseCall(ctx, "POST", base+"/api/phone/claim", map[string]string{"Content-Type": "application/json"}, nil, bytes.NewReader(b))
	if err != nil || st != http.StatusCreated {
		return st, "", err
	}
	var out struct {
		Token string `json:"token"`
	}
	return st, out.Token, json.Unmarshal(body, &out)
}

// TestAbuseBig16BitPNGs: four concurrent uploads (two phones, two desktops)
// of a 7000x7000 16-bit RGBA PNG, under the 50 MP pixel limit but each over
// the default decode budget, all get 413 too_many_pixels, and the server's
// peak RSS stays far below what decoding them would take (the issue
// measured 2.35 GB).
func TestAbuseBig16BitPNGs(t *testing.T) {
	t.Parallel()
	const uploads, ceiling = 4, 400 << 20
	p := startAbuseServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), abuseBound)
	defer cancel()
	pic := png16Flat(7000, 7000)

	type uploader struct {
		url string
		hdr map[string]string
		cks []*http.Cookie
	}
	var ups []uploader
	for i := range uploads {
		cookies, csrf := launchVia(t, p.base)
		if i%2 == 0 {
			st, tok, err := claimCode(ctx, p.base, issueCode(t, ctx, p.base, cookies, csrf))
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, st)
			ups = append(ups, uploader{p.base + "/api/phone/images", map[string]string{"Content-Type": "image/png", "Authorization": "Bearer " + tok}, nil})
		} else {
			ups = append(ups, uploader{p.base + "/api/images", map[string]string{"Content-Type": "image/png", "X-CSRF-Token": csrf}, cookies})
		}
	}
	before, hwmErr := vmHWM(p.cmd.Process.Pid)

	type result struct {
		status int
		code   string
		err    error
	}
	results := make([]result, uploads)
	start := make(chan struct{})
	var wg gosync.WaitGroup
	for i, u := range ups {
		wg.Go(func() {
			<-start
			st, _, b, err := abuseCall(ctx, "POST", u.url, u.hdr, u.cks, bytes.NewReader(pic))
			var e struct {
				Error struct {
					Code string `json:"code"`
				} `json:"error"`
			}
			if err == nil {
				_ = json.Unmarshal(b, &e)
			}
			results[i] = result{st, e.Error.Code, err}
		})
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		require.NoError(t, r.err)
		assert.Equal(t, http.StatusRequestEntityTooLarge, r.status, "upload %d", i)
		assert.Equal(t, "too_many_pixels", r.code, "upload %d", i)
	}

	if runtime.GOOS != "linux" || hwmErr != nil {
		t.Logf("big 16-bit PNGs: %d concurrent %d-byte 7000x7000 16-bit RGBA uploads refused; peak RSS not measured here (%s, %v)", uploads, len(pic), runtime.GOOS, hwmErr)
		return
	}
	after, err := vmHWM(p.cmd.Process.Pid)
	require.NoError(t, err)
	t.Logf("big 16-bit PNGs: %d concurrent %d-byte 7000x7000 16-bit RGBA uploads, statuses 413 too_many_pixels; server peak RSS (VmHWM) %.1f MiB (%.1f MiB before the uploads)",
		uploads, len(pic), float64(after)/(1<<20), float64(before)/(1<<20))
	assert.Less(t, after, int64(ceiling), "peak RSS under four big 16-bit PNGs")
}

// TestAbuseSlowBodies: connections that send a launch request's headers and
// then trickle its body a byte at a time are closed by the server once
// BODY_TIMEOUT passes, while a GP launches, uploads and commits.
func TestAbuseSlowBodies(t *testing.T) {
	t.Parallel()
	const k = 20
	p := startAbuseServer(t, map[string]string{"BODY_TIMEOUT": "2s"})
	addr := strings.TrimPrefix(p.base, "http://")
	ctx, cancel := context.WithTimeout(t.Context(), abuseBound)
	defer cancel()

	type outcome struct {
		held time.Duration
		err  error
	}
	results := make(chan outcome, k)
	sending := make(chan struct{}, k)
	var closed atomic.Int32
	var wg gosync.WaitGroup
	for range k {
		wg.Go(func() {
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				sending <- struct{}{}
				results <- outcome{err: err}
				return
			}
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { _ = c.Close() })
			defer stop()
			began := time.Now()
			_, err = fmt.Fprintf(c, "POST /api/launch HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{", addr)
			sending <- struct{}{}
			if err != nil {
				results <- outcome{err: err}
				return
			}
			// The trickle is the attack itself, not synchronisation.
			go func() {
				tick := time.NewTicker(100 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
					}
					if _, err := c.Write([]byte{' '}); err != nil {
						return
					}
				}
			}()
			// Read until the server hangs up: EOF or a reset. Only the
			// test's bound (ctx) closing it first is a failure.
			_, err = io.Copy(io.Discard, bufio.NewReader(c))
			held := time.Since(began)
			closed.Add(1)
			if ctx.Err() != nil {
				results <- outcome{err: fmt.Errorf("still open at the test's bound: the server never cut the slow body (%v)", err)}
				return
			}
			results <- outcome{held: held}
		})
	}
	for range k {
		<-sending
	}
	openAtStart := k - int(closed.Load())
	require.NoError(t, gpFlow(ctx, p.base), "a normal GP is served during the attack")
	openAfterGP := k - int(closed.Load())

	wg.Wait()
	close(results)
	cut := 0
	var longest time.Duration
	for r := range results {
		if !assert.NoError(t, r.err) {
			continue
		}
		cut++
		longest = max(longest, r.held)
	}
	t.Logf("slow bodies: %d launch bodies trickled a byte per 100ms, BODY_TIMEOUT=2s: %d cut by the server, longest held %v; GP flow served with %d of them open when it began, %d when it finished",
		k, cut, longest.Round(10*time.Millisecond), openAtStart, openAfterGP)
	assert.Equal(t, k, cut, "every slow body was cut by the server")
}

// TestAbusePairingLockout: a client that sends wrong handoff codes (some
// naming the session, some malformed) cannot lock out the right code sent
// from the same address afterwards.
func TestAbusePairingLockout(t *testing.T) {
	t.Parallel()
	const wrong = 25
	p := startAbuseServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), abuseBound)
	defer cancel()
	cookies, csrf := launchVia(t, p.base)
	code := issueCode(t, ctx, p.base, cookies, csrf)
	sid, secret, ok := strings.Cut(code, ".")
	require.True(t, ok, "a handoff code is <session id>.<secret>")

	statuses := map[int]int{}
	for i := range wrong {
		guess := session.NewID() + "." + session.NewID() // another session, or none
		if i%2 == 0 {
			s := session.NewID()
			require.NotEqual(t, secret, s)
			guess = sid + "." + s // this session, a wrong secret
		}
		if i%5 == 4 {
			guess = "not-a-code"
		}
		st, _, err := claimCode(ctx, p.base, guess)
		require.NoError(t, err)
		require.NotEqual(t, http.StatusCreated, st, "a wrong code never pairs")
		statuses[st]++
	}
	st, tok, err := claimCode(ctx, p.base, code)
	require.NoError(t, err)
	t.Logf("pairing lockout: %d wrong claims from one client (statuses %v), then the right code from the same client: status %d", wrong, statuses, st)
	assert.Equal(t, http.StatusCreated, st, "the right code is never locked out")
	assert.NotEmpty(t, tok)
}

// TestAbuseConnectionCap: clients that open connections and send nothing,
// dialling again whenever the server hangs up, hold no more than
// MAX_CONNECTIONS of the server's accepted connections (counted by the
// kernel: established sockets on the server's port that the process has
// accepted), READ_HEADER_TIMEOUT frees each slot, and a GP who connects
// behind them still launches, uploads and commits.
func TestAbuseConnectionCap(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts accepted sockets from /proc/net/tcp")
	}
	t.Parallel()
	const maxConns, attackers = 6, 30
	p := startAbuseServer(t, map[string]string{"MAX_CONNECTIONS": strconv.Itoa(maxConns), "READ_HEADER_TIMEOUT": "1s"})
	addr := strings.TrimPrefix(p.base, "http://")
	_, portText, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	port, err := strconv.Atoi(portText)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), abuseBound)
	defer cancel()

	attack, stopAttack := context.WithCancel(ctx)
	var cut, dialled atomic.Int64
	var wg gosync.WaitGroup
	for range attackers {
		wg.Go(func() {
			for attack.Err() == nil {
				var d net.Dialer
				c, err := d.DialContext(attack, "tcp", addr)
				if err != nil {
					return
				}
				dialled.Add(1)
				stop := context.AfterFunc(attack, func() { _ = c.Close() })
				// Send nothing; wait for the server to hang up.
				if _, err := io.Copy(io.Discard, c); err == nil || attack.Err() == nil {
					cut.Add(1)
				}
				stop()
				_ = c.Close()
			}
		})
	}
	// Wait until the attackers hold the server's slots (polled: a
	// condition, not a sleep).
	for accepted, _ := acceptedConns(t, port); accepted < maxConns; accepted, _ = acceptedConns(t, port) {
		require.NoError(t, ctx.Err(), "the attackers never filled the server's connections")
		runtime.Gosched()
	}

	// Watch the kernel's count while a GP goes through the whole flow.
	var peak, peakQueued atomic.Int64
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for attack.Err() == nil {
			// The kernel's table is not read atomically: a slot freed and
			// taken again during one read can be counted twice. An excess
			// that is real lasts (an idle connection is held for
			// READ_HEADER_TIMEOUT), so a sample is the lower of two reads.
			a1, q1 := acceptedConns(t, port)
			a2, q2 := acceptedConns(t, port)
			a, q := min(a1, a2), min(q1, q2)
			for v := peak.Load(); int64(a) > v && !peak.CompareAndSwap(v, int64(a)); v = peak.Load() {
			}
			for v := peakQueued.Load(); int64(q) > v && !peakQueued.CompareAndSwap(v, int64(q)); v = peakQueued.Load() {
			}
			select {
			case <-attack.Done():
			case <-time.After(5 * time.Millisecond): // sampling rate of a measurement, not synchronisation
			}
		}
	}()
	flowErr := gpFlow(ctx, p.base)
	stopAttack()
	wg.Wait()
	<-watched

	require.NoError(t, flowErr, "a GP is served while the connections are held")
	t.Logf("connection cap: %d clients holding idle connections (%d dialled, %d cut by READ_HEADER_TIMEOUT=1s), MAX_CONNECTIONS=%d: at most %d accepted at once, up to %d waiting in the kernel's queue; GP launch, upload and commit served",
		attackers, dialled.Load(), cut.Load(), maxConns, peak.Load(), peakQueued.Load())
	assert.LessOrEqual(t, peak.Load(), int64(maxConns), "never more accepted connections than MAX_CONNECTIONS")
	assert.Positive(t, cut.Load(), "the server hung up on idle connections")
}

// acceptedConns counts the established TCP connections on the local port
// (IPv4 and IPv6): those a process has accepted (they have an inode) and
// those still waiting in the listen queue (inode 0).
func acceptedConns(t *testing.T, port int) (accepted, queued int) {
	t.Helper()
	hexPort := fmt.Sprintf(":%04X", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		require.NoError(t, err)
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
			if len(fs) < 10 || !strings.HasSuffix(fs[1], hexPort) || fs[3] != "01" {
				continue
			}
			if fs[9] == "0" {
				queued++
			} else {
				accepted++
			}
		}
	}
	return accepted, queued
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/media"
)

// gpFlow is a GP's whole visit: launch, one upload, body site and consent,
// commit. It returns the first thing that went wrong.
func gpFlow(ctx context.Context, base string) error {
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	call := func(method, path string, cookies []*http.Cookie, csrf, ctype string, body io.Reader, want int) (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, body)
		if err != nil {
			return nil, nil, err
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		for _, c := range cookies {
			req.AddCookie(c)
		}
		res, err := hc.Do(req)
		if err != nil {
			return nil, nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			return nil, nil, fmt.Errorf("%s %s: status %d: %s", method, path, res.StatusCode, b)
		}
		return res, b, nil
	}
	res, _, err := call("GET", "/dev/launch", nil, "", "", nil, http.StatusSeeOther)
	if err != nil {
		return err
	}
	frag := strings.TrimPrefix(res.Header.Get("Location"), "/#")
	q, err := parseFragment(frag)
	if err != nil {
		return err
	}
	lb, _ := json.Marshal(map[string]string{"context": q["context"], "signature": q["signature"]})
	res, b, err := call("POST", "/api/launch", nil, "", "application/json", bytes.NewReader(lb), http.StatusCreated)
	if err != nil {
		return err
	}
	cookies := res.Cookies()
	var launched struct {
		CSRF string `json:"csrf"`
	}
	if err := json.Unmarshal(b, &launched); err != nil {
		return err
	}
	var pic bytes.Buffer
	if err := png.Encode(&pic, image.NewRGBA(image.Rect(0, 0, 320, 240))); err != nil {
		return err
	}
	_, b, err = call("POST", "/api/images", cookies, launched.CSRF, "image/png", &pic, http.StatusCreated)
	if err != nil {
		return err
	}
	var img struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &img); err != nil || img.ID == "" {
		return fmt.Errorf("upload reply %s: %v", b, err)
	}
	pb, _ := json.Marshal(map[string]any{
		"clinical": map[string]string{"bodySite": media.BodySites()[0].Code, "laterality": media.LateralityLeft, "title": "Lesion"},
		"consent":  map[string]any{"given": true, "method": "verbal"},
	})
	if _, _, err := call("PATCH", "/api/images/"+img.ID, cookies, launched.CSRF, "application/json", bytes.NewReader(pb), http.StatusOK); err != nil {
		return err
	}
	cb, _ := json.Marshal(map[string]any{"images": []string{img.ID}})
	_, b, err = call("POST", "/api/commit", cookies, launched.CSRF, "application/json", bytes.NewReader(cb), http.StatusOK)
	if err != nil {
		return err
	}
	if !strings.Contains(string(b), "committed") {
		return fmt.Errorf("commit reply: %s", b)
	}
	return nil
}

func parseFragment(frag string) (map[string]string, error) {
	out := map[string]string{}
	req, err := http.NewRequest("GET", "/?"+frag, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range req.URL.Query() {
		out[k] = v[0]
	}
	if out["context"] == "" {
		return nil, errors.New("no launch context in the redirect")
	}
	return out, nil
}

// TestSlowBodiesAreCut runs the slow-body attack: many connections that
// send headers, then trickle a body one byte at a time (launch JSON and
// phone uploads). Each is cut by the server (its connection closed) once
// its body deadline passes, while a GP's launch, upload and commit are
// served meanwhile.
func TestSlowBodiesAreCut(t *testing.T) {
	t.Parallel()
	base := startServer(t, map[string]string{"BODY_TIMEOUT": "300ms", "MIN_UPLOAD_RATE": "1000", "MAX_CONNECTIONS": "64"}, alextest.NewTestServer(t))
	addr := strings.TrimPrefix(base, "http://")
	// Half the attackers hold a desktop credential, so their uploads reach
	// the handler that reads the body (the minimum-rate path).
	cookies, csrf := launchVia(t, base)
	var cred strings.Builder
	for _, c := range cookies {
		fmt.Fprintf(&cred, "Cookie: %s=%s\r\n", c.Name, c.Value)
	}
	fmt.Fprintf(&cred, "X-CSRF-Token: %s\r\n", csrf)

	const attackers = 40 // fewer than MAX_CONNECTIONS, so the GP gets in
	type outcome struct {
		closedByServer bool
		err            error
	}
	results := make(chan outcome, attackers)
	stop := make(chan struct{})
	var wg gosync.WaitGroup
	for i := range attackers {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				results <- outcome{err: err}
				return
			}
			defer c.Close()
			path, ctype, size, extra := "/api/launch", "application/json", 4000, ""
			if i%2 == 1 {
				path, ctype, size, extra = "/api/images", "image/jpeg", 1<<20, cred.String()
			}
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\n%sContent-Length: %d\r\n\r\n", path, addr, ctype, extra, size)
			// Trickle a byte at a time until the server hangs up (the
			// attack itself, not synchronisation).
			go func() {
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					if _, err := c.Write([]byte{'{'}); err != nil {
						return
					}
				}
			}()
			// A bound for the test, not an assertion on timing: the server
			// must close the connection long before it.
			_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
			var got bytes.Buffer
			_, err = io.Copy(&got, bufio.NewReader(c))
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				results <- outcome{err: fmt.Errorf("%s still open: the server never cut the slow body (read %q)", path, got.String())}
				return
			}
			results <- outcome{closedByServer: true}
		})
	}

	// A GP works meanwhile.
	require.NoError(t, gpFlow(t.Context(), base), "a normal GP is served during the attack")

	wg.Wait()
	close(stop)
	close(results)
	cut := 0
	for r := range results {
		assert.NoError(t, r.err)
		if r.closedByServer {
			cut++
		}
	}
	assert.Equal(t, attackers, cut, "every slow connection was closed by the server")
}

// TestUploadAboveMinimumRateNotCut: an upload that takes several times the
// grace but stays above the minimum rate is not cut (the deadline moves as
// bytes arrive).
func TestUploadAboveMinimumRateNotCut(t *testing.T) {
	t.Parallel()
	const grace, piece = time.Second, 8192
	base := startServer(t, map[string]string{"BODY_TIMEOUT": grace.String(), "MIN_UPLOAD_RATE": "1000"}, alextest.NewTestServer(t))
	cookies, csrf := launchVia(t, base)
	// Noise does not compress, so the photo comes in several pieces (an
	// empty picture would be one piece, sent whole inside the grace).
	img := image.NewRGBA(image.Rect(0, 0, 96, 96))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(rng.Uint32())
	}
	var pic bytes.Buffer
	require.NoError(t, png.Encode(&pic, img))
	data := pic.Bytes()
	require.Greater(t, len(data), 3*piece, "a body of several pieces")
	pr, pw := io.Pipe()
	go func() {
		// The first piece at once, then one every half grace, with one
		// pause of three halves after the first: the body takes several
		// graces, so a fixed deadline would cut it, while each piece (8 KiB
		// at 1000 B/s) moves the deadline far past the next gap.
		tick := time.NewTicker(grace / 2)
		defer tick.Stop()
		for off := 0; off < len(data); off += piece {
			if off > 0 {
				<-tick.C
			}
			if _, err := pw.Write(data[off:min(off+piece, len(data))]); err != nil {
				return
			}
			if off == 0 {
				<-tick.C
				<-tick.C
				<-tick.C
			}
		}
		_ = pw.Close()
	}()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", base+"/api/images", pr)
	req.Header.Set("Content-Type", "image/png")
	req.Header.Set("X-CSRF-Token", csrf)
	req.ContentLength = int64(len(data))
	for _, c := range cookies {
		req.AddCookie(c)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusCreated, res.StatusCode, string(b))
}

// TestEventStreamsCappedPerCredential: beyond MAX_STREAMS_PER_CREDENTIAL
// open streams, one credential gets 429 with Retry-After; another
// credential is unaffected, and closing a stream frees its place.
func TestEventStreamsCappedPerCredential(t *testing.T) {
	t.Parallel()
	base := startServer(t, map[string]string{"MAX_STREAMS_PER_CREDENTIAL": "2"}, alextest.NewTestServer(t))
	cookies, _ := launchVia(t, base)
	other, _ := launchVia(t, base)
	open := func(cs []*http.Cookie) (*http.Response, context.CancelFunc) {
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/events", nil)
		for _, c := range cs {
			req.AddCookie(c)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { cancel(); res.Body.Close() })
		return res, cancel
	}
	s1, cancel1 := open(cookies)
	require.Equal(t, 200, s1.StatusCode)
	s2, _ := open(cookies)
	require.Equal(t, 200, s2.StatusCode)
	s3, _ := open(cookies)
	assert.Equal(t, http.StatusTooManyRequests, s3.StatusCode)
	assert.Equal(t, "5", s3.Header.Get("Retry-After"))
	o1, _ := open(other)
	assert.Equal(t, 200, o1.StatusCode, "another desktop is not affected")

	cancel1()
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/events", nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		return res.StatusCode == 200
	}, time.Minute, 20*time.Millisecond, "a closed stream frees its place")

	body := scrape(t, base, "")
	// At least the refusal above (the polling loop may add more).
	assert.GreaterOrEqual(t, metricValue(t, body, "clinicalimages_rate_limited_total", `limit="event_streams"`), 1.0)
	assert.Positive(t, metricValue(t, body, "clinicalimages_event_streams"), "the open streams are counted")
}

// scrape fetches /metrics (with token as bearer when set).
func scrape(t *testing.T, base, token string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", base+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	require.Equal(t, 200, res.StatusCode, string(b))
	return string(b)
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/internal/testenv"
)

// envAxe names axe-core's browser script (scripts/setup.d/axe.sh installs it
// and exports the variable).
const envAxe = "AXE_CORE_JS"

// phoneRig is a desktop tab launched for a patient and a phone tab (a
// separate browser context at 390x844, mobile, touch) that has claimed its
// QR code, on one server.
type phoneRig struct {
	desk, phone context.Context
	patient     alextest.Patient
	shots       string
}

// newPhoneRig launches the desktop and connects the phone. before, if not
// nil, runs on the phone's tab before it opens the page (to intercept its
// requests from the first).
func newPhoneRig(t *testing.T, ctx context.Context, chromium, base string, sim *alextest.Server, shots string, before func(phone context.Context)) *phoneRig {
	t.Helper()
	r := &phoneRig{patient: sim.Patients()[0], shots: shots}
	r.desk = newBrowser(ctx, t, chromium)
	launchDesktop(t, r.desk, base, r.patient, 1280, 900)
	phoneURL := evalJS(t, r.desk, `document.getElementById("phone-link").dataset.phoneUrl`)

	phone, cancel := chromedp.NewContext(r.desk, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	r.phone = phone
	require.NoError(t, chromedp.Do(phone, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch)))
	if before != nil {
		before(phone)
	}
	require.NoError(t, chromedp.Do(phone, chromedp.Navigate(phoneURL)))
	pollJS(t, phone, "the phone to claim the code", `document.body.dataset.claimed === "true"`, 20*time.Second)
	require.Equal(t, "true", evalJS(t, phone, `String(navigator.maxTouchPoints > 0 && matchMedia("(pointer: coarse)").matches)`), "a touch phone")
	return r
}

// commitAll sends every photo on the desktop and returns once all are
// committed.
func (r *phoneRig) commitAll(t *testing.T, want int) {
	t.Helper()
	pollJS(t, r.desk, "the photos on the desktop", fmt.Sprintf(`document.querySelectorAll("#photos .photo[data-loaded=true]").length === %d`, want), 20*time.Second)
	pollJS(t, r.desk, "the commit button", `!document.getElementById("commit").disabled`, 20*time.Second)
	require.NoError(t, chromedp.Do(r.desk, chromedp.Click(chromedp.CSS("#commit"))))
	pollJS(t, r.desk, "the commit", `[...document.querySelectorAll("#photos .photo")].every(c => c.dataset.state === "committed")`, 30*time.Second)
}

// interceptor answers the phone's uploads through the DevTools Fetch
// domain: decide gets each paused request (at the request stage, or at the
// response stage once the server has answered) and acts on it. It records
// the Idempotency-Key of every attempt.
type interceptor struct {
	mu   gosync.Mutex
	keys []string
}

func (in *interceptor) seen() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.keys...)
}

func intercept(t *testing.T, phone context.Context, stage fetch.RequestStage, decide func(n int, ev fetch.EventRequestPaused) error) *interceptor {
	t.Helper()
	in := &interceptor{}
	events := chromedp.Events(phone, fetch.RequestPaused)
	_, err := chromedp.Call(phone, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		{URLPattern: "*/api/phone/images*", RequestStage: stage}}})
	require.NoError(t, err)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			in.mu.Lock()
			key, _ := ev.Request.Headers["Idempotency-Key"].(string)
			in.keys = append(in.keys, key)
			n := len(in.keys)
			in.mu.Unlock()
			if err := decide(n, ev); err != nil {
				return
			}
		}
	}()
	return in
}

func proceed(phone context.Context, ev fetch.EventRequestPaused) error {
	_, err := chromedp.Call(phone, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: ev.RequestID})
	return err
}

// TestBrowserPhoneQueue: the phone's queue survives the network. A send the
// server answers 503 with Retry-After is sent again by itself with the same
// idempotency key; with the network gone, photos wait ("2 waiting for
// network") and go by themselves when it is back; thumbnails keep each
// photo's aspect; the page passes axe-core with no serious or critical
// violation; the simulator gets exactly one Media per photo.
func TestBrowserPhoneQueue(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	axe := axePath(t)
	sim := alextest.NewTestServer(t)
	base := startServer(t, map[string]string{}, sim)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	jpegPath, pngPath := writePhotos(t)
	r := newPhoneRig(t, ctx, chromium, base, sim, filepath.Join(screenshotDir(t), "phone"), nil)
	phone := r.phone

	// 1. The server is busy: the first attempt gets 503 with Retry-After.
	busy := intercept(t, phone, fetch.RequestStageRequest, func(n int, ev fetch.EventRequestPaused) error {
		if n == 1 {
			_, err := chromedp.Call(phone, fetch.FulfillRequest, fetch.FulfillRequestParams{RequestID: ev.RequestID, ResponseCode: 503,
				ResponseHeaders: []*fetch.HeaderEntry{{Name: "Retry-After", Value: "1"}, {Name: "Content-Type", Value: "application/json"}},
				Body:            []byte(`{"error":{"code":"unavailable","message":"The service is busy. Try again shortly."}}`)})
			return err
		}
		return proceed(phone, ev)
	})
	require.NoError(t, chromedp.Do(phone, chromedp.SetUploadFiles(chromedp.CSS("#camera"), []string{jpegPath})))
	pollJS(t, phone, "the busy server's answer", `document.querySelector("#uploads li")?.dataset.state === "waiting" || document.body.dataset.sent === "1"`, 20*time.Second)
	pollJS(t, phone, "the automatic resend", `document.body.dataset.sent === "1"`, 30*time.Second)
	keys := busy.seen()
	require.Len(t, keys, 2, "one refused attempt, one resend")
	assert.NotEmpty(t, keys[0])
	assert.Equal(t, keys[0], keys[1], "the resend carries the photo's idempotency key")
	_, err := chromedp.Call(phone, fetch.Disable, cdp.Empty{})
	require.NoError(t, err)

	// 2. The network drops: two photos wait, visibly, and go by themselves
	// when it comes back (no tap).
	setOffline(t, phone, true)
	require.NoError(t, chromedp.Do(phone, chromedp.SetUploadFiles(chromedp.CSS("#camera"), []string{jpegPath, pngPath})))
	pollJS(t, phone, "two photos waiting", `document.body.dataset.waiting === "2"`, 20*time.Second)
	pollJS(t, phone, "the thumbnails", `document.querySelectorAll("#uploads canvas").length === 3`, 20*time.Second)
	assert.Contains(t, evalJS(t, phone, `document.getElementById("queue").textContent`), "2 waiting for network")
	assert.Empty(t, evalJS(t, phone, `[...document.querySelectorAll("#uploads button")].map(b => b.textContent).join(",")`), "no tap needed")
	screenshot(t, phone, r.shots, "phone-waiting-for-network")
	setOffline(t, phone, false)
	pollJS(t, phone, "the queue to drain after the network is back", `document.body.dataset.sent === "3" && document.body.dataset.unsent === "0"`, 60*time.Second)
	assert.Contains(t, evalJS(t, phone, `document.getElementById("queue").textContent`), "3 photos sent")

	// 3. Thumbnails keep the photo's aspect: the upright JPEG (480x640
	// once turned) and the wide PNG (2600x1000), as drawn and as shown.
	var aspects []struct{ Drawn, Shown float64 }
	require.NoError(t, json.Unmarshal([]byte(evalJS(t, phone, `JSON.stringify([...document.querySelectorAll("#uploads canvas")].map(c => {
		const b = c.getBoundingClientRect();
		return {drawn: c.width / c.height, shown: b.width / b.height};
	}))`)), &aspects))
	require.Len(t, aspects, 3)
	for i, want := range []float64{480.0 / 640, 480.0 / 640, 2600.0 / 1000} {
		assert.InDelta(t, want, aspects[i].Drawn, 0.02, "photo %d as drawn", i+1)
		assert.InDelta(t, want, aspects[i].Shown, 0.03, "photo %d as shown", i+1)
	}
	screenshot(t, phone, r.shots, "phone-sent")
	assertLabelled(t, phone)
	runAxe(t, phone, axe)

	// 4. Exactly one Media per photo.
	r.commitAll(t, 3)
	assert.Len(t, sim.Media(), 3, "three photos, three Media")

	// 5. The phone still shows what it sent until it finishes, and keeps
	// nothing.
	assert.Equal(t, "3", evalJS(t, phone, `String(document.querySelectorAll("#uploads li[data-state=sent] canvas").length)`))
	require.NoError(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS("#done"))))
	pollJS(t, phone, "the phone's end state", `document.body.dataset.ended === "true"`, 20*time.Second)
	assert.Equal(t, "0|0|", evalJS(t, phone, `localStorage.length + "|" + sessionStorage.length + "|" + document.cookie`))
	assert.Equal(t, "0", evalJS(t, phone, `String(document.querySelectorAll("canvas, img").length)`), "no photo left on the page")
}

// TestBrowserPhoneLostReply: the server stores a photo and its reply never
// reaches the phone (the DevTools Fetch domain fails the response after the
// server answered). The phone sends the photo again with the same key and
// the server returns the image it made: one photo on the desktop, one Media.
// The desktop's own upload whose reply is lost is sent again by the GP's
// Retry with the same key: one more photo, one more Media.
// The phone shows the patient check (initials, age, sex) that the GP
// compares with the desktop's banner, never in the URL or storage. When the
// GP disconnects the phone with a photo still waiting, the phone says that
// photo was not sent.
func TestBrowserPhoneLostReply(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	sim := alextest.NewTestServer(t)
	base := startServer(t, map[string]string{}, sim)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	jpegPath, _ := writePhotos(t)
	var lost *interceptor
	r := newPhoneRig(t, ctx, chromium, base, sim, filepath.Join(screenshotDir(t), "phone"), func(phone context.Context) {
		lost = intercept(t, phone, fetch.RequestStageResponse, func(n int, ev fetch.EventRequestPaused) error {
			if n == 1 {
				// The server has stored the photo and answered; the phone
				// never hears it.
				_, err := chromedp.Call(phone, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonConnectionReset})
				return err
			}
			return proceed(phone, ev)
		})
	})
	phone := r.phone

	// The patient check, as the desktop's banner shows the patient.
	pollJS(t, phone, "the patient check", `document.body.dataset.check === "shown"`, 20*time.Second)
	initials := string([]rune(r.patient.Given)[:1]) + string([]rune(r.patient.Family)[:1])
	check := evalJS(t, phone, `document.getElementById("check").innerText`)
	assert.Contains(t, strings.ReplaceAll(check, ".", ""), initials, "initials")
	assert.Regexp(t, `\d+ (years|months|weeks|days)`, check, "age")
	assert.Regexp(t, `(?i)female|male|other|unknown`, check, "sex")
	assert.NotContains(t, check, r.patient.Family, "no name on the phone")
	assert.NotContains(t, evalJS(t, phone, `document.body.innerText`), r.patient.NHI, "no NHI on the phone")
	assert.Equal(t, "0|0|", evalJS(t, phone, `localStorage.length + "|" + sessionStorage.length + "|" + document.cookie`), "the check is not stored")
	assert.NotContains(t, evalJS(t, phone, `location.href`), "#", "nothing in the URL")
	screenshot(t, phone, r.shots, "phone-patient-check")

	// The reply to the first attempt is lost after the server stored it.
	require.NoError(t, chromedp.Do(phone, chromedp.SetUploadFiles(chromedp.CSS("#camera"), []string{jpegPath})))
	pollJS(t, phone, "the photo sent after its lost reply", `document.body.dataset.sent === "1"`, 30*time.Second)
	keys := lost.seen()
	require.Len(t, keys, 2, "the lost attempt and the resend")
	assert.Equal(t, keys[0], keys[1], "one key for one photo")
	pollJS(t, r.desk, "the phone's photo on the desktop", `document.querySelectorAll("#photos .photo[data-loaded=true]").length === 1`, 20*time.Second)

	// The desktop's own upload loses its reply too; the GP's Retry sends it
	// with the same key.
	deskLost := interceptDesktop(t, r.desk)
	require.NoError(t, chromedp.Do(r.desk, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{jpegPath})))
	pollJS(t, r.desk, "the desktop's lost reply", `!!document.querySelector("#uploads li button")`, 20*time.Second)
	require.NoError(t, chromedp.Do(r.desk, chromedp.Click(chromedp.CSS("#uploads li button"))))
	pollJS(t, r.desk, "the desktop's resend", `document.querySelector("#uploads li")?.textContent.includes("Added") ?? false`, 20*time.Second)
	dk := deskLost.seen()
	require.Len(t, dk, 2, "the lost attempt and the resend")
	assert.NotEmpty(t, dk[0])
	assert.Equal(t, dk[0], dk[1], "the desktop's resend carries its photo's key")
	r.commitAll(t, 2)
	assert.Equal(t, "2", evalJS(t, r.desk, `String(document.querySelectorAll("#photos .photo").length)`), "two photos on the desktop")
	assert.Len(t, sim.Media(), 2, "one Media for each photo whose reply was lost")

	// A photo waiting for the network when the GP disconnects the phone.
	setOffline(t, phone, true)
	require.NoError(t, chromedp.Do(phone, chromedp.SetUploadFiles(chromedp.CSS("#camera"), []string{jpegPath})))
	pollJS(t, phone, "the photo waiting", `document.body.dataset.waiting === "1"`, 20*time.Second)
	require.NoError(t, chromedp.Do(r.desk, chromedp.Click(chromedp.CSS("#disconnect"))))
	pollJS(t, r.desk, "the phone disconnected", `document.getElementById("presence").dataset.connected === "false"`, 20*time.Second)
	pollPhoneRevoked(t, r.desk)
	setOffline(t, phone, false)
	pollJS(t, phone, "the phone's end state", `document.body.dataset.ended === "true"`, 30*time.Second)
	assert.Contains(t, evalJS(t, phone, `document.getElementById("end-title").textContent`), "1 photo was not sent")
	assert.Contains(t, evalJS(t, phone, `document.getElementById("end-msg").textContent`), "1 photo was sent")
	assert.Equal(t, "true|", evalJS(t, phone, `document.getElementById("check").hidden + "|" + document.querySelector(".check-who").textContent.trim()`), "the patient check is gone")
	screenshot(t, phone, r.shots, "phone-ended-unsent")
}

// interceptDesktop fails the reply to the desktop's first upload after the
// server answered it, and records every upload's Idempotency-Key.
func interceptDesktop(t *testing.T, desk context.Context) *interceptor {
	t.Helper()
	in := &interceptor{}
	events := chromedp.Events(desk, fetch.RequestPaused)
	_, err := chromedp.Call(desk, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{
		{URLPattern: "*/api/images", RequestStage: fetch.RequestStageResponse}}})
	require.NoError(t, err)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			if ev.Request.Method != "POST" {
				if proceed(desk, ev) != nil {
					return
				}
				continue
			}
			in.mu.Lock()
			key, _ := ev.Request.Headers["Idempotency-Key"].(string)
			in.keys = append(in.keys, key)
			n := len(in.keys)
			in.mu.Unlock()
			if n == 1 {
				_, err = chromedp.Call(desk, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonConnectionReset})
			} else {
				err = proceed(desk, ev)
			}
			if err != nil {
				return
			}
		}
	}()
	return in
}

// axePath returns axe-core's script, or skips (fails under CI) without it.
func axePath(t *testing.T) string {
	t.Helper()
	p := os.Getenv(envAxe)
	if p == "" {
		p = filepath.Join("..", "..", ".tools", "node-axe", "node_modules", "axe-core", "axe.min.js")
	}
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(t, "axe-core", fmt.Sprintf("%s not found (scripts/setup.d/axe.sh installs it; %s names another)", p, envAxe))
	}
	return p
}

// runAxe injects axe-core into the page, runs it on the whole document
// (WCAG 2.x A and AA rules and best practices) and fails on any serious or
// critical violation, naming the rule and the elements.
func runAxe(t *testing.T, c context.Context, script string) {
	t.Helper()
	src, err := os.ReadFile(script)
	require.NoError(t, err)
	_, err = chromedp.Run(c, chromedp.Evaluate[bool](string(src)+"\n;true"))
	require.NoError(t, err, "injecting axe-core")
	out, err := chromedp.Run(c, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify({
		version: axe.version, rules: r.passes.length + r.violations.length + r.incomplete.length + r.inapplicable.length,
		violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(" "))}))}))`,
		chromedp.EvalAwaitPromise))
	require.NoError(t, err, "running axe-core")
	var res struct {
		Version    string
		Rules      int
		Violations []struct {
			ID, Impact, Help string
			Nodes            []string
		}
	}
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	require.NotEmpty(t, res.Version, "axe-core ran")
	require.Positive(t, res.Rules, "axe-core checked rules")
	for _, v := range res.Violations {
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Errorf("axe-core %s: %s violation %s (%s) on %v", res.Version, v.Impact, v.ID, v.Help, v.Nodes)
		} else {
			t.Logf("axe-core %s: %s violation %s (%s) on %v", res.Version, v.Impact, v.ID, v.Help, v.Nodes)
		}
	}
	t.Logf("axe-core %s checked %d rules: %d violations", res.Version, res.Rules, len(res.Violations))
}

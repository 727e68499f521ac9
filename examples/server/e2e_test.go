package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/redis/go-redis/v9"
	"github.com/rwcarlsen/goexif/exif"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/media"
)

// Environment variables the browser tests read (scripts/setup.d/browser.sh
// exports the first).
const (
	envChromium    = "CHROMIUM_PATH"   // the browser binary (default /usr/bin/chromium)
	envScreenshots = "E2E_SCREENSHOTS" // keep screenshots in this folder (default a test temp dir)
)

const forearm = "14975008" // SNOMED CT: forearm structure

// TestBrowserWholeStory runs the GP's whole story in real headless Chromium
// against one server on embedded defaults with the ALEX simulator.
func TestBrowserWholeStory(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	sim := alextest.NewTestServer(t)
	srv := startServer(t, map[string]string{}, sim)
	runStory(t, story{chromium: chromium, sim: sim, desktop: srv, phone: srv, shots: screenshotDir(t)})
}

// TestBrowserTwoInstances runs the same story with the desktop on one
// server and the phone on another, sharing the real Redis and S3 server.
func TestBrowserTwoInstances(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	redisURL := testenv.RedisURL(t)
	s3 := testenv.S3(t)
	prefix := testenv.Prefix(t)
	bucket := testenv.Prefix(t)
	cleanupShared(t, redisURL, prefix, s3, bucket)
	env := map[string]string{
		"REDIS_URL": redisURL, "REDIS_PREFIX": prefix + ":", "SESSION_SECRET": "two-instances-share-this-secret-0123456789",
		"S3_ENDPOINT": s3.Endpoint, "S3_BUCKET": bucket, "S3_ACCESS_KEY": s3.AccessKey, "S3_SECRET_KEY": s3.SecretKey, "S3_REGION": s3.Region,
	}
	sim := alextest.NewTestServer(t)
	a := startServerAt(t, "127.0.0.1:0", env, sim)
	b := startServerAt(t, "127.0.0.1:0", env, sim)
	runStory(t, story{chromium: chromium, sim: sim, desktop: a.base, phone: b.base, shots: filepath.Join(screenshotDir(t), "two-instances"),
		// The desktop's instance restarts (a rolling deploy) before the
		// phone uploads: the page's event stream reconnects by itself to
		// the new process, which replays from Redis what it missed.
		beforeUpload: func(desk context.Context) {
			a.stop()
			startServerAt(t, a.addr, env, sim)
			pollJS(t, desk, "the event stream to reconnect", `+document.body.dataset.opens >= 2 && document.body.dataset.events === "open"`, 30*time.Second)
		}})
}

// TestBrowserErrorsInPlainLanguage: a used QR code and a photo Medtech
// refuses are explained in plain language; the GP retries and the photo
// lands once. The photo is added from the desktop's own file input.
func TestBrowserErrorsInPlainLanguage(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	sim := alextest.NewTestServer(t)
	base := startServer(t, map[string]string{}, sim)
	shots := filepath.Join(screenshotDir(t), "errors")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	jpegPath, _ := writePhotos(t)
	desk := newBrowser(ctx, t, chromium)

	require.NoError(t, chromedp.Do(desk, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base+"/dev/launch")))
	pollJS(t, desk, "the QR code", `document.getElementById("qr").dataset.ready === "true"`, 20*time.Second)
	pollJS(t, desk, "the event stream", `document.body.dataset.events === "open"`, 20*time.Second)
	phoneURL := evalJS(t, desk, `document.getElementById("phone-link").dataset.phoneUrl`)

	// The code is single use: a second phone is told so. The first sends
	// a file that is not a photo and is told that, with a way to dismiss it.
	notPhoto := filepath.Join(t.TempDir(), "notes.jpg")
	require.NoError(t, os.WriteFile(notPhoto, []byte("shopping list, not a photo"), 0o644))
	var first context.Context
	for i, want := range []string{"true", ""} {
		phone, cancelPhone := chromedp.NewContext(desk, chromedp.WithNewBrowserContext())
		defer cancelPhone()
		require.NoError(t, chromedp.Do(phone, chromedp.EmulateViewport(390, 844), chromedp.Navigate(phoneURL)))
		if want == "true" {
			pollJS(t, phone, "the first phone to connect", `document.body.dataset.claimed === "true"`, 20*time.Second)
			require.NoError(t, chromedp.Do(phone, chromedp.SetUploadFiles(chromedp.CSS("#camera"), []string{notPhoto})))
			pollJS(t, phone, "the refused upload", `document.querySelector("#uploads li")?.dataset.state === "failed"`, 20*time.Second)
			assert.Contains(t, evalJS(t, phone, `document.querySelector("#uploads li").textContent`), "not a supported photo")
			assert.Equal(t, "Remove", evalJS(t, phone, `document.querySelector("#uploads li button")?.textContent || ""`), "resending cannot help")
			screenshot(t, phone, shots, "phone-not-a-photo")
			require.NoError(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS("#uploads li button"))))
			pollJS(t, phone, "the dismissal", `document.querySelectorAll("#uploads li").length === 0`, 20*time.Second)
			first = phone
		} else {
			pollJS(t, phone, "the second phone's end state", `document.body.dataset.ended === "true"`, 20*time.Second)
			assert.Contains(t, evalJS(t, phone, `document.getElementById("end-msg").textContent`), "already been used", "attempt %d", i)
			screenshot(t, phone, shots, "phone-code-used")
		}
	}

	// A photo from the desktop's file input; Medtech refuses the first send.
	require.NoError(t, chromedp.Do(desk, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{jpegPath})))
	pollJS(t, desk, "the thumbnail", `document.querySelectorAll("#photos .photo[data-loaded=true]").length === 1`, 20*time.Second)
	sim.FailNext(1, alextest.Fault{Status: 400, Path: "/FHIR/Media",
		Body: `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"The photo is larger than the practice allows"}]}`})
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#commit"))))
	pollJS(t, desk, "the refusal", `document.querySelector("#photos .photo").dataset.state === "failed"`, 30*time.Second)
	state := evalJS(t, desk, `document.querySelector("#photos .photo .state").textContent`)
	assert.Contains(t, state, "Medtech refused the photo")
	assert.Contains(t, evalJS(t, desk, `document.getElementById("commit-status").textContent`), "1 not sent")
	screenshot(t, desk, shots, "desktop-refused")
	assert.Empty(t, sim.Media())

	// Retry after reloading the page (the cookie and the CSRF token carry
	// over, the event stream reconnects): it lands once.
	require.NoError(t, chromedp.Do(desk, chromedp.Reload()))
	pollJS(t, desk, "the event stream after reload", `document.body.dataset.events === "open" && document.body.dataset.photos === "1"`, 20*time.Second)
	pollJS(t, desk, "the commit button", `!document.getElementById("commit").disabled`, 20*time.Second)
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#commit"))))
	pollJS(t, desk, "the retry", `document.querySelector("#photos .photo").dataset.state === "committed"`, 30*time.Second)
	assert.Len(t, sim.Media(), 1)

	// The phone loses the network during an upload: it says so, and sends
	// the photo by itself once the network is back.
	setOffline(t, first, true)
	require.NoError(t, chromedp.Do(first, chromedp.SetUploadFiles(chromedp.CSS("#camera"), []string{jpegPath})))
	// The phone queues the interrupted photo and resends it by itself when
	// the network returns (no tap on Retry).
	pollJS(t, first, "the photo waiting", `document.body.dataset.waiting === "1"`, 20*time.Second)
	assert.Contains(t, evalJS(t, first, `document.getElementById("queue").textContent`), "1 waiting for network")
	setOffline(t, first, false)
	pollJS(t, first, "the automatic resend", `document.body.dataset.sent === "1"`, 30*time.Second)
	pollJS(t, desk, "the retried photo on the desktop", `document.querySelectorAll("#photos .photo[data-loaded=true]").length === 2`, 20*time.Second)

	// The GP disconnects the phone: the desktop shows it, and the phone's
	// next upload is refused with an explanation and a clear end.
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#disconnect"))))
	pollJS(t, desk, "the phone disconnected", `document.getElementById("presence").dataset.connected === "false"`, 20*time.Second)
	pollPhoneRevoked(t, desk)
	require.NoError(t, chromedp.Do(first, chromedp.SetUploadFiles(chromedp.CSS("#camera"), []string{jpegPath})))
	pollJS(t, first, "the phone's end state", `document.body.dataset.ended === "true"`, 20*time.Second)
	assert.Contains(t, evalJS(t, first, `document.getElementById("end-msg").textContent`), "disconnected")
	assert.Equal(t, "2", evalJS(t, desk, `String(document.querySelectorAll("#photos .photo").length)`), "nothing more arrived")
}

// pollPhoneRevoked waits until the server holds the session's phone as
// revoked, read through the desktop tab: the GP's Disconnect has landed.
// The desktop showing the phone gone is no proof of that: a phone quiet for
// longer than the lapse window (PHONE_LAPSE, 10 s by default; an offline or
// slow phone) is shown gone before the click's request arrives.
func pollPhoneRevoked(t *testing.T, desk context.Context) {
	t.Helper()
	pollJS(t, desk, "the phone revoked on the server", `fetch("/api/session", {headers: {Authorization: "Bearer " + sessionStorage.getItem("ci_credential")}, cache: "no-store"})
		.then(r => r.json()).then(s => s.phone?.state === "revoked")`, 20*time.Second)
}

// setOffline cuts the page's network (as a phone losing signal does) or
// restores it.
func setOffline(t *testing.T, c context.Context, offline bool) {
	t.Helper()
	var conds []*network.Conditions
	if offline {
		conds = []*network.Conditions{{Offline: true, DownloadThroughput: -1, UploadThroughput: -1}}
	}
	require.NoError(t, chromedp.Do(c, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{MatchedNetworkConditions: conds})
		return err
	})))
}

// TestBrowserDesktopCamera takes two photos with the computer's own camera
// (Chromium's synthetic one), drops a third on the drop zone, removes it and
// commits the other two.
func TestBrowserDesktopCamera(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	sim := alextest.NewTestServer(t)
	base := startServer(t, map[string]string{}, sim)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	desk := newBrowser(ctx, t, chromium)
	// Launched as Evolution would, with the launch values put into the URL
	// template unencoded: base64 with '/', '=' and, here, '+'.
	var lc, sig string
	for range 200 {
		if lc, sig = sim.IssueLaunch(sim.Patients()[0].ID, "", sim.Practitioners()[0].ID); strings.Contains(lc+sig, "+") {
			break
		}
	}
	require.Contains(t, lc+sig, "+")
	require.NoError(t, chromedp.Do(desk, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(base+"/#context="+lc+"&signature="+sig)))
	pollJS(t, desk, "the launch", `!document.getElementById("main").hidden || !document.getElementById("error").hidden`, 20*time.Second)
	require.Empty(t, evalJS(t, desk, `document.getElementById("error").textContent`))
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#camera-start"))))
	pollJS(t, desk, "the camera preview", `document.getElementById("camera-video").videoWidth > 0`, 20*time.Second)
	for n := 1; n <= 2; n++ {
		require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#camera-snap"))))
		pollJS(t, desk, "the camera photo", fmt.Sprintf(`document.querySelectorAll("#photos .photo[data-loaded=true]").length === %d`, n), 20*time.Second)
	}
	screenshot(t, desk, filepath.Join(screenshotDir(t), "camera"), "desktop-camera")
	// A third photo dropped on the drop zone.
	dropped, err := chromedp.Run(desk, chromedp.Evaluate[string](`(async () => {
		const c = document.createElement("canvas");
		c.width = 300; c.height = 200;
		c.getContext("2d").fillRect(20, 20, 100, 80);
		const b = await new Promise((r) => c.toBlob(r, "image/png"));
		const dt = new DataTransfer();
		dt.items.add(new File([b], "dropped.png", { type: "image/png" }));
		document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
		return "dropped";
	})()`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, "dropped", dropped)
	pollJS(t, desk, "the dropped photo", `document.querySelectorAll("#photos .photo[data-loaded=true]").length === 3`, 20*time.Second)
	// Remove the third photo: one press arms the button, the second removes.
	// The desktop shows one photo at a time: select the third in the strip.
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#strip li:nth-child(3) .pick"))))
	// Both presses in one script: the button disarms itself after 5 s, and a
	// stalled CI machine could let that pass between two separate clicks.
	presses := evalJS(t, desk, `(() => { const b = document.querySelector("#photos .photo:nth-child(3) .remove");
		b.click(); const after = b.dataset.confirm + ":" + document.querySelectorAll("#photos .photo").length;
		b.click(); return after; })()`)
	assert.Equal(t, "true:3", presses, "one press arms the button and removes nothing")
	pollJS(t, desk, "the removal", `document.querySelectorAll("#photos .photo").length === 2`, 20*time.Second)
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#camera-stop")), chromedp.Click(chromedp.CSS("#commit"))))
	pollJS(t, desk, "the commit", `[...document.querySelectorAll("#photos .photo")].every(c => c.dataset.state === "committed")`, 30*time.Second)
	require.Len(t, sim.Media(), 2, "the two camera photos, not the removed one")
	assert.Equal(t, "false", evalJS(t, desk, `String(!!document.getElementById("camera-video").srcObject)`), "the camera is released")
}

// story is one run of the flow: the desktop on one server, the phone on
// another (or the same).
type story struct {
	chromium       string
	sim            *alextest.Server
	desktop, phone string // base URLs
	shots          string
	// beforeUpload, if set, runs after the phone connects and before it
	// uploads.
	beforeUpload func(desk context.Context)
}

func runStory(t *testing.T, s story) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	require.NoError(t, os.MkdirAll(s.shots, 0o755))
	jpegPath, pngPath := writePhotos(t)
	patient := s.sim.Patients()[0]

	desk := newBrowser(ctx, t, s.chromium)
	shot := func(c context.Context, name string) { screenshot(t, c, s.shots, name) }
	poll := func(c context.Context, what, expr string, timeout time.Duration) { pollJS(t, c, what, expr, timeout) }
	eval := func(c context.Context, expr string) string { return evalJS(t, c, expr) }

	// 1. The desktop opens through the launch link, as from Evolution.
	require.NoError(t, chromedp.Do(desk, chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(s.desktop+"/dev/launch?patient="+patient.ID)))
	poll(desk, "the patient banner", fmt.Sprintf(`document.getElementById("patient-name").textContent.includes(%q)`, patient.Given), 20*time.Second)
	poll(desk, "the QR code", `document.getElementById("qr").dataset.ready === "true" && document.getElementById("qr").naturalWidth > 0`, 20*time.Second)
	poll(desk, "the event stream", `document.body.dataset.events === "open"`, 20*time.Second)
	assert.Empty(t, eval(desk, `location.hash`), "the launch pair is cleared from the address bar")
	assert.Contains(t, eval(desk, `document.body.innerText`), "SIMULATED ALEX")
	phoneURL := eval(desk, `document.getElementById("phone-link").dataset.phoneUrl`)
	require.True(t, strings.HasPrefix(phoneURL, s.desktop+"/m#code="), phoneURL)
	shot(desk, "01-desktop-launched")

	// 2. The phone, a separate browser context sized like a phone, opens the
	// QR's URL (on its own server in the two-instance run).
	phoneURL = s.phone + strings.TrimPrefix(phoneURL, s.desktop)
	phone, cancelPhone := chromedp.NewContext(desk, chromedp.WithNewBrowserContext())
	defer cancelPhone()
	require.NoError(t, chromedp.Do(phone, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1)), chromedp.Navigate(phoneURL)))
	poll(phone, "the phone to claim the code", `document.body.dataset.claimed === "true"`, 20*time.Second)
	assert.Empty(t, eval(phone, `location.hash`), "the handoff code is cleared from the address bar")
	poll(desk, "phone connected on the desktop", `document.getElementById("presence").dataset.connected === "true"`, 20*time.Second)
	shot(phone, "02-phone-connected")

	if s.beforeUpload != nil {
		s.beforeUpload(desk)
	}

	// 3. Two photos through the phone's camera input, with the optional body
	// site and side chosen on the phone first.
	hintSite, ok := media.LookupBodySite(media.SearchBodySites("scalp")[0].Code)
	require.True(t, ok)
	require.NoError(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS("#hint summary"))))
	poll(phone, "the body-site options", fmt.Sprintf(`!!document.querySelector('#hint-site option[value="%s"]') && document.querySelectorAll('#hint-side option').length > 1`, hintSite.Code), 20*time.Second)
	require.NoError(t, chromedp.Do(phone,
		chromedp.SetValue(chromedp.CSS("#hint-site"), hintSite.Code),
		chromedp.SetValue(chromedp.CSS("#hint-side"), media.LateralityRight)))
	require.NoError(t, chromedp.Do(phone, chromedp.SetUploadFiles(chromedp.CSS("#camera"), []string{jpegPath, pngPath})))
	poll(phone, "both uploads", `document.body.dataset.sent === "2"`, 60*time.Second)
	shot(phone, "03-phone-sent")

	// 4. The desktop shows both thumbnails through the event stream (it does
	// not poll). How soon is logged, not asserted: on a loaded machine the
	// bound is only a bound.
	start := time.Now()
	poll(desk, "two thumbnails on the desktop", `document.querySelectorAll("#photos .photo[data-loaded=true]").length === 2`, 20*time.Second)
	t.Logf("desktop showed both thumbnails %v after the phone's last upload", time.Since(start).Round(time.Millisecond))

	// 5. Body site and laterality on the upright photo (the JPEG turned by
	// its EXIF orientation), through the searchable picker.
	id := eval(desk, `[...document.querySelectorAll("#photos .photo")].find(c => +c.dataset.height > +c.dataset.width)?.dataset.id || ""`)
	require.NotEmpty(t, id, "one photo is upright")
	sel := func(cls string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(`[id="%s-%s"]`, cls, id)) }
	// The desktop shows one photo at a time: select it in the strip; the
	// body site is one combobox (type, then pick from its list).
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#strip li[data-id="%s"] .pick`, id)))))
	// The box shows the site chosen on the phone (Scalp): empty it first.
	eval(desk, fmt.Sprintf(`document.getElementById("site-q-%s").value = "", ""`, id))
	require.NoError(t, chromedp.Do(desk, chromedp.SendKeys(sel("site-q"), "forearm")))
	poll(desk, "the body-site search", fmt.Sprintf(`!!document.querySelector('[id="site-list-%s"] [data-code="%s"]')`, id, forearm), 20*time.Second)
	require.NoError(t, chromedp.Do(desk,
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`[id="site-list-%s"] [data-code="%s"]`, id, forearm))),
		chromedp.SetValue(sel("laterality"), media.LateralityLeft),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`.photo[data-id="%s"] .save`, id)))))
	poll(desk, "the details to save", fmt.Sprintf(`!!document.querySelector('.photo[data-id="%s"]').dataset.saved`, id), 20*time.Second)
	shot(desk, "04-desktop-details")
	assertLabelled(t, desk)
	assertLabelled(t, phone)

	// 6. Commit: both land, and the desktop says so.
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#commit"))))
	poll(desk, "the commit", `document.body.dataset.committed === "2" && [...document.querySelectorAll("#photos .photo")].every(c => c.dataset.state === "committed")`, 30*time.Second)
	assert.Contains(t, eval(desk, `document.getElementById("commit-status").textContent`), "All 2 sent")
	shot(desk, "05-desktop-committed")

	// 7. The phone finishes and keeps nothing.
	require.NoError(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS("#done"))))
	poll(phone, "the phone's end state", `document.body.dataset.ended === "true"`, 20*time.Second)
	assert.Equal(t, "0|0|", eval(phone, `localStorage.length + "|" + sessionStorage.length + "|" + document.cookie`), "nothing in the phone's storage")
	shot(phone, "06-phone-finished")

	// 8. ALEX holds exactly two Media for the right patient: the JPEG
	// upright without GPS, titled with its site and side.
	ms := s.sim.Media()
	require.Len(t, ms, 2)
	upright := 0
	for _, m := range ms {
		require.NotNil(t, m.Subject)
		require.NotNil(t, m.Subject.Reference)
		assert.Contains(t, *m.Subject.Reference, patient.ID, "the Media is on the launched patient")
		require.NotNil(t, m.Id)
		data, ok := s.sim.MediaData(*m.Id)
		require.True(t, ok)
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		require.NoError(t, err, "ALEX received a JPEG")
		require.NotNil(t, m.Content.Title)
		title := strings.ToLower(*m.Content.Title)
		if cfg.Width < cfg.Height {
			upright++
			assert.Contains(t, title, "left forearm", "the title carries the site and side")
			if x, err := exif.Decode(bytes.NewReader(data)); err == nil {
				_, _, gpsErr := x.LatLong()
				assert.Error(t, gpsErr, "no GPS left in the photo")
			}
		} else {
			assert.NotContains(t, title, "forearm")
			// The phone's hint stayed on the photo the GP did not change.
			assert.Contains(t, title, strings.ToLower(hintSite.Name), "the site chosen on the phone")
			assert.Contains(t, title, "right", "and its side")
		}
	}
	assert.Equal(t, 1, upright, "the orientation-6 JPEG arrives upright")
}

// newBrowser starts headless Chromium (flags from shared/TOOLING.md) and
// returns a context for its first tab; it ends with ctx.
func newBrowser(ctx context.Context, t *testing.T, chromium string) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// A synthetic camera that needs no permission prompt, for the
		// desktop camera test.
		chromedp.Flag("use-fake-device-for-media-stream", true), chromedp.Flag("use-fake-ui-for-media-stream", true))
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	return tab
}

func screenshot(t *testing.T, c context.Context, dir, name string) {
	t.Helper()
	b, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644))
}

// pollJS waits until the JavaScript expression is true.
func pollJS(t *testing.T, c context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	_, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		// What the page showed, so a failure says why, not only that it
		// timed out (fictional patients only: safe to print).
		state, _ := chromedp.Run(c, chromedp.Evaluate[string](`JSON.stringify({body: document.body.dataset, photos: [...document.querySelectorAll("#photos .photo")].map(p => p.dataset), text: document.body.innerText.slice(0, 2000)})`))
		require.NoError(t, err, "waiting for %s; the page: %s", what, state)
	}
}

func evalJS(t *testing.T, c context.Context, expr string) string {
	t.Helper()
	v, err := chromedp.Run(c, chromedp.Evaluate[string](expr))
	require.NoError(t, err, expr)
	return v
}

// assertLabelled checks that every form control on the page has a label
// and every image a text alternative (empty only where decorative).
func assertLabelled(t *testing.T, c context.Context) {
	t.Helper()
	unlabelled := evalJS(t, c, `[...document.querySelectorAll("input, select, textarea")]
		.filter(e => e.type !== "hidden" && e.labels.length === 0 && !e.getAttribute("aria-label"))
		.map(e => e.id || e.className).join(",")`)
	assert.Empty(t, unlabelled, "controls without a label")
	noAlt := evalJS(t, c, `[...document.querySelectorAll("img")].filter(e => !e.hasAttribute("alt")).length + ""`)
	assert.Equal(t, "0", noAlt, "images without alt")
}

// startServer runs the real server (config from env, the real serve loop)
// on a loopback port until the test ends, and returns its base URL.
func startServer(t *testing.T, env map[string]string, sim *alextest.Server) string {
	t.Helper()
	return startServerAt(t, "127.0.0.1:0", env, sim).base
}

// instance is one running server; stop shuts it down gracefully (at most
// once; the test's cleanup calls it too).
type instance struct {
	base, addr string
	stop       func()
}

func startServerAt(t *testing.T, addr string, env map[string]string, sim *alextest.Server) *instance {
	t.Helper()
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, os.Stderr)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	a, err := newApp(t.Context(), cfg, discardLogger(), appDeps{Sim: sim})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.serve(ctx, ln) }()
	var once gosync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			assert.NoError(t, <-done)
			assert.NoError(t, a.Close())
		})
	}
	t.Cleanup(stop)
	return &instance{base: "http://" + ln.Addr().String(), addr: ln.Addr().String(), stop: stop}
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv(envChromium)
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(t, "Chromium", fmt.Sprintf("%s not found (scripts/setup.d/browser.sh installs it; %s names another)", p, envChromium))
	}
	return p
}

func screenshotDir(t *testing.T) string {
	if d := os.Getenv(envScreenshots); d != "" {
		if !filepath.IsAbs(d) {
			// go test runs in the package folder; a relative path means the
			// repository root, where scripts/test runs.
			d = filepath.Join("..", "..", d)
		}
		return d
	}
	return t.TempDir()
}

// writePhotos writes the two test photos: a 640x480 JPEG with EXIF
// orientation 6 (shown upright as 480x640) and GPS tags, and a large PNG
// that the phone page shrinks with its canvas before uploading.
func writePhotos(t *testing.T) (jpegPath, pngPath string) {
	t.Helper()
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 640, 480))
	for y := range 480 {
		for x := range 640 {
			img.Set(x, y, color.RGBA{uint8(x / 3), uint8(y / 2), 120, 255})
		}
	}
	var raw bytes.Buffer
	require.NoError(t, jpeg.Encode(&raw, img, &jpeg.Options{Quality: 85}))
	withExif := append([]byte{0xFF, 0xD8}, exifSegment()...)
	withExif = append(withExif, raw.Bytes()[2:]...)
	x, err := exif.Decode(bytes.NewReader(withExif))
	require.NoError(t, err, "the test JPEG's EXIF is readable")
	lat, _, err := x.LatLong()
	require.NoError(t, err, "the test JPEG carries GPS")
	require.Less(t, lat, 0.0)
	jpegPath = filepath.Join(dir, "lesion.jpg")
	require.NoError(t, os.WriteFile(jpegPath, withExif, 0o644))

	big := image.NewRGBA(image.Rect(0, 0, 2600, 1000))
	for y := range 1000 {
		for x := range 2600 {
			big.Set(x, y, color.RGBA{uint8(x / 11), 80, uint8(y / 4), 255})
		}
	}
	var p bytes.Buffer
	require.NoError(t, png.Encode(&p, big))
	pngPath = filepath.Join(dir, "rash.png")
	require.NoError(t, os.WriteFile(pngPath, p.Bytes(), 0o644))
	return jpegPath, pngPath
}

// exifSegment is an APP1 segment: IFD0 with Orientation 6 and a GPS IFD
// (36°50'S 174°45'E).
func exifSegment() []byte {
	be := binary.BigEndian
	tiff := []byte("MM\x00\x2a\x00\x00\x00\x08")
	entry := func(tag, typ uint16, count, value uint32) []byte {
		b := make([]byte, 12)
		be.PutUint16(b, tag)
		be.PutUint16(b[2:], typ)
		be.PutUint32(b[4:], count)
		be.PutUint32(b[8:], value)
		return b
	}
	const gps = 8 + 2 + 2*12 + 4 // after the header and IFD0's two entries
	const latOff = gps + 2 + 4*12 + 4
	const lonOff = latOff + 24
	tiff = be.AppendUint16(tiff, 2)
	tiff = append(tiff, entry(0x0112, 3, 1, 6<<16)...) // Orientation SHORT 6, left-justified
	tiff = append(tiff, entry(0x8825, 4, 1, gps)...)   // GPS IFD pointer
	tiff = be.AppendUint32(tiff, 0)
	tiff = be.AppendUint16(tiff, 4)
	tiff = append(tiff, entry(0x0001, 2, 2, 'S'<<24)...)
	tiff = append(tiff, entry(0x0002, 5, 3, latOff)...)
	tiff = append(tiff, entry(0x0003, 2, 2, 'E'<<24)...)
	tiff = append(tiff, entry(0x0004, 5, 3, lonOff)...)
	tiff = be.AppendUint32(tiff, 0)
	for _, v := range []uint32{36, 50, 0, 174, 45, 0} {
		tiff = be.AppendUint32(tiff, v)
		tiff = be.AppendUint32(tiff, 1)
	}
	seg := []byte{0xFF, 0xE1, 0, 0}
	seg = append(seg, "Exif\x00\x00"...)
	seg = append(seg, tiff...)
	be.PutUint16(seg[2:], uint16(len(seg)-2))
	return seg
}

// cleanupShared removes the test's Redis keys and S3 bucket when it ends.
func cleanupShared(t *testing.T, redisURL, prefix string, s3 testenv.S3Config, bucket string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if opt, err := redis.ParseURL(redisURL); err == nil {
			rdb := redis.NewClient(opt)
			iter := rdb.Scan(ctx, 0, prefix+":*", 500).Iterator()
			for iter.Next(ctx) {
				_ = rdb.Del(ctx, iter.Val()).Err()
			}
			_ = rdb.Close()
		}
		u, err := url.Parse(s3.Endpoint)
		if err != nil {
			return
		}
		c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""),
			Secure: u.Scheme == "https", Region: s3.Region, BucketLookup: minio.BucketLookupPath})
		if err != nil {
			return
		}
		for oi := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
			if oi.Err == nil {
				_ = c.RemoveObject(ctx, bucket, oi.Key, minio.RemoveObjectOptions{})
			}
		}
		_ = c.RemoveBucket(ctx, bucket)
	})
}

// TestBrowserOneTabOnePatient launches two patients in two tabs of one
// browser (one cookie jar, as on a GP's computer): each tab keeps showing,
// editing and committing only its own patient, even after a reload once the
// other launch has replaced the browser-wide cookie; a tab opened without a
// launch shows no patient; a tab whose session ends stops and says so.
func TestBrowserOneTabOnePatient(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	sim := alextest.NewTestServer(t)
	base := startServer(t, map[string]string{}, sim)
	shots := filepath.Join(screenshotDir(t), "one-tab-one-patient")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	jpegPath, pngPath := writePhotos(t)
	pa, pb := sim.Patients()[0], sim.Patients()[1]

	banner := func(tab context.Context, p alextest.Patient) {
		pollJS(t, tab, "the banner of "+p.Given, fmt.Sprintf(`document.getElementById("patient-name").textContent.includes(%q)`, p.Given), 20*time.Second)
		pollJS(t, tab, "the event stream", `document.body.dataset.events === "open"`, 20*time.Second)
	}
	launch := func(tab context.Context, p alextest.Patient) {
		require.NoError(t, chromedp.Do(tab, chromedp.EmulateViewport(1366, 768), chromedp.Navigate(base+"/dev/launch?patient="+p.ID)))
		banner(tab, p)
	}
	tabA := newBrowser(ctx, t, chromium)
	launch(tabA, pa)
	// A second tab of the same (now running) browser, sharing its cookies.
	tabB, cancelB := chromedp.NewContext(tabA)
	defer cancelB()
	launch(tabB, pb)
	sidA, sidB := evalJS(t, tabA, `document.body.dataset.session`), evalJS(t, tabB, `document.body.dataset.session`)
	require.NotEmpty(t, sidA)
	require.NotEqual(t, sidA, sidB)

	// The browser-wide cookie now holds B's credential: the case of the bug.
	credB := evalJS(t, tabB, `sessionStorage.getItem("ci_credential") || ""`)
	require.NotEmpty(t, credB)
	var cookies []*network.Cookie
	require.NoError(t, chromedp.Do(tabA, chromedp.Func(func(c context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(c, tg, network.GetCookies, network.GetCookiesParams{})
		if err == nil {
			cookies = res.Cookies
		}
		return err
	})))
	shared := false
	for _, c := range cookies {
		shared = shared || c.Value == credB
	}
	require.True(t, shared, "tab A's cookie jar holds B's credential")
	assert.NotContains(t, evalJS(t, tabA, `location.href`), credB, "no credential in a URL")

	// Tab A reloaded still shows A, and each tab gets its own photo.
	require.NoError(t, chromedp.Do(tabA, chromedp.Reload()))
	banner(tabA, pa)
	assert.Equal(t, sidA, evalJS(t, tabA, `document.body.dataset.session`))
	assert.NotContains(t, evalJS(t, tabA, `document.body.innerText`), pb.Given)
	require.NoError(t, chromedp.Do(tabA, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{jpegPath})))
	require.NoError(t, chromedp.Do(tabB, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{pngPath})))
	for _, tab := range []context.Context{tabA, tabB} {
		pollJS(t, tab, "its one photo", `document.querySelectorAll("#photos .photo[data-loaded=true]").length === 1`, 30*time.Second)
	}
	require.NoError(t, chromedp.Do(tabA, chromedp.Reload()))
	banner(tabA, pa)
	pollJS(t, tabA, "its one photo after a reload", `document.querySelectorAll("#photos .photo[data-loaded=true]").length === 1`, 20*time.Second)
	idA, idB := evalJS(t, tabA, `document.querySelector("#photos .photo").dataset.id`), evalJS(t, tabB, `document.querySelector("#photos .photo").dataset.id`)
	require.NotEqual(t, idA, idB)

	// Each tab edits its own photo; the card shows the title Medtech will.
	edit := func(tab context.Context, id string, site, side, title string) {
		sel := func(cls string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf(`[id="%s-%s"]`, cls, id)) }
		if site != "" {
			// One body-site combobox: type, then pick from its list.
			require.NoError(t, chromedp.Do(tab, chromedp.SendKeys(sel("site-q"), "forearm")))
			pollJS(t, tab, "the body-site search", fmt.Sprintf(`!!document.querySelector('[id="site-list-%s"] [data-code="%s"]')`, id, site), 20*time.Second)
			require.NoError(t, chromedp.Do(tab, chromedp.Click(chromedp.CSS(fmt.Sprintf(`[id="site-list-%s"] [data-code="%s"]`, id, site))), chromedp.SetValue(sel("laterality"), side)))
		}
		require.NoError(t, chromedp.Do(tab, chromedp.SetValue(sel("title"), title), chromedp.Click(sel("consent")),
			chromedp.Click(chromedp.CSS(fmt.Sprintf(`.photo[data-id="%s"] .save`, id)))))
		pollJS(t, tab, "the details to save", fmt.Sprintf(`!!document.querySelector('.photo[data-id="%s"]').dataset.saved`, id), 20*time.Second)
	}
	edit(tabA, idA, forearm, media.LateralityLeft, "Lesion")
	edit(tabB, idB, "", "", "Rash")
	assert.Equal(t, "Lesion — left forearm", evalJS(t, tabA, `document.querySelector(".record-title-text").textContent`))
	assert.Equal(t, "Rash", evalJS(t, tabB, `document.querySelector(".record-title-text").textContent`))
	viewShot(t, tabA, shots, "tab-a-patient-a")
	viewShot(t, tabB, shots, "tab-b-patient-b")

	// Each commits; the simulator has each photo on its own patient.
	for _, tab := range []context.Context{tabA, tabB} {
		require.NoError(t, chromedp.Do(tab, chromedp.Click(chromedp.CSS("#commit"))))
		pollJS(t, tab, "the commit", `document.body.dataset.committed === "1" && document.querySelector("#photos .photo").dataset.state === "committed"`, 30*time.Second)
	}
	ms := sim.Media()
	require.Len(t, ms, 2)
	got := map[string]string{}
	for _, m := range ms {
		got[*m.Identifier[0].Value] = *m.Subject.Reference + " " + *m.Content.Title
	}
	assert.Equal(t, map[string]string{idA: "Patient/" + pa.ID + " Lesion — left forearm", idB: "Patient/" + pb.ID + " Rash"}, got)

	// A tab opened on the address alone (a copied link) shows no patient.
	tabC, cancelC := chromedp.NewContext(tabA)
	defer cancelC()
	require.NoError(t, chromedp.Do(tabC, chromedp.EmulateViewport(1366, 768), chromedp.Navigate(base+"/")))
	pollJS(t, tabC, "the refusal", `!document.getElementById("error").hidden`, 20*time.Second)
	assert.Contains(t, evalJS(t, tabC, `document.getElementById("error").textContent`), "Open the widget again")
	assert.Equal(t, "true", evalJS(t, tabC, `String(document.getElementById("main").hidden)`))
	assert.NotContains(t, evalJS(t, tabC, `document.body.innerText`), pb.Given)

	// B's session ends: tab B stops and says so; tab A carries on.
	ended, err := chromedp.Run(tabB, chromedp.Evaluate[int](`fetch("/api/session", {method: "DELETE", headers: {Authorization: "Bearer " + sessionStorage.getItem("ci_credential")}}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	require.Equal(t, 204, ended)
	pollJS(t, tabB, "the end of B's session", `document.body.dataset.ended === "true" && !document.getElementById("error").hidden`, 20*time.Second)
	assert.Equal(t, "true", evalJS(t, tabB, `String(document.getElementById("commit").disabled)`))
	viewShot(t, tabB, shots, "tab-b-ended")
	assert.Equal(t, "open", evalJS(t, tabA, `document.body.dataset.events`))
	assert.Empty(t, evalJS(t, tabA, `document.body.dataset.ended || ""`))
}

// viewShot saves what the viewport shows from the top of the page, where
// the patient banner is (not the full page).
func viewShot(t *testing.T, c context.Context, dir, name string) {
	t.Helper()
	_, err := chromedp.Run(c, chromedp.Evaluate[bool](`window.scrollTo(0, 0), true`))
	require.NoError(t, err)
	b, err := chromedp.Run(c, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644))
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/media"
)

// desktopShots is where the desktop tests keep their screenshots
// (docs/screenshots/desktop under E2E_SCREENSHOTS=docs/screenshots).
func desktopShots(t *testing.T) string { return filepath.Join(screenshotDir(t), "desktop") }

// TestDesktopFitsScreen: at 1366x768 and in a 1024x700 window the GP's
// whole loop is on one screen with six photos (five from this computer, one
// from the phone): the phone's status, the strip, the selected photo large
// with its details and the title Medtech will show, Send and its outcome,
// without scrolling the page. Arrow keys move along the strip, Enter in a
// field saves, the desktop shows the phone gone when it is disconnected,
// and axe-core finds no serious or critical violation at either size.
func TestDesktopFitsScreen(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	axe := axePath(t)
	sim := alextest.NewTestServer(t)
	base := startServer(t, map[string]string{}, sim)
	shots := desktopShots(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	photos := writeDesktopPhotos(t, 6)

	desk := newBrowser(ctx, t, chromium)
	launchDesktop(t, desk, base, sim.Patients()[0], 1366, 768)

	// The phone joins and sends one photo; five more from this computer.
	phone := joinPhone(t, desk)
	require.NoError(t, chromedp.Do(phone, chromedp.SetUploadFiles(chromedp.CSS("#camera"), photos[:1])))
	pollJS(t, phone, "the phone's upload", `document.body.dataset.sent === "1"`, 30*time.Second)
	screenshot(t, phone, shots, "phone-390x844")
	require.NoError(t, chromedp.Do(desk, chromedp.SetUploadFiles(chromedp.CSS("#file"), photos[1:])))
	pollJS(t, desk, "six pictures", `document.querySelectorAll("#photos .photo[data-loaded=true]").length === 6 && document.querySelectorAll("#strip .mini").length === 6 && [...document.querySelectorAll("#strip .mini")].every(i => i.complete && i.naturalWidth > 0)`, 60*time.Second)
	_, err := chromedp.Run(desk, chromedp.Evaluate[bool](`document.activeElement.blur(), true`))
	require.NoError(t, err)

	// Keyboard: the strip is one tab stop; arrows move the selection.
	first := evalJS(t, desk, `document.body.dataset.selected`)
	require.NoError(t, chromedp.Do(desk, chromedp.Focus(chromedp.CSS(`#strip .pick[aria-current="true"]`)), chromedp.KeyEvent(kb.ArrowRight)))
	second := evalJS(t, desk, `document.body.dataset.selected`)
	assert.NotEqual(t, first, second, "ArrowRight selects the next photo")
	assert.Equal(t, second, evalJS(t, desk, `document.activeElement.closest("#strip li")?.dataset.id || ""`), "focus follows the selection")
	assert.Equal(t, "1", evalJS(t, desk, `String([...document.querySelectorAll("#strip .pick")].filter(b => b.tabIndex === 0).length)`), "one tab stop in the strip")
	require.NoError(t, chromedp.Do(desk, chromedp.KeyEvent(kb.ArrowLeft)))
	assert.Equal(t, first, evalJS(t, desk, `document.body.dataset.selected`), "ArrowLeft goes back")

	// Enter in the Title field saves, and the strip's caption shows the
	// site and side saved; the exact title is shown with the photo.
	id := first
	card := fmt.Sprintf(`.photo[data-id="%s"]`, id)
	require.NoError(t, chromedp.Do(desk, chromedp.SendKeys(chromedp.CSS(card+" .site-q"), "forearm")))
	pollJS(t, desk, "the site list", fmt.Sprintf(`!!document.querySelector('%s .site-list [data-code="%s"]')`, card, forearm), 20*time.Second)
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(fmt.Sprintf(`%s .site-list [data-code="%s"]`, card, forearm)))))
	require.NoError(t, chromedp.Do(desk, chromedp.SetValue(chromedp.CSS(card+" .laterality"), media.LateralityRight),
		chromedp.SendKeys(chromedp.CSS(card+" .title"), "Mole"), chromedp.KeyEvent(kb.Enter)))
	pollJS(t, desk, "Enter to save", fmt.Sprintf(`!!document.querySelector('%s').dataset.saved`, card), 20*time.Second)
	assert.Equal(t, "Mole — right forearm", evalJS(t, desk, `document.querySelector('`+card+` .record-title-text').textContent`))
	assert.Equal(t, "R|Forearm", evalJS(t, desk, fmt.Sprintf(`[...document.querySelectorAll('#strip li[data-id="%s"] .badge')].map(b => b.textContent).join("|")`, id)))

	checkFits := func(w, h int64, name string) {
		require.NoError(t, chromedp.Do(desk, chromedp.EmulateViewport(w, h)))
		pollJS(t, desk, "the layout at "+name, fmt.Sprintf(`innerWidth === %d && innerHeight === %d`, w, h), 20*time.Second)
		assertOnScreen(t, desk, name)
		runAxe(t, desk, axe)
		viewShot(t, desk, shots, "desktop-"+name)
	}
	checkFits(1366, 768, "1366x768")
	checkFits(1024, 700, "1024x700")

	// Send at 1024x700: the outcome is on screen, no scrolling.
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#commit"))))
	pollJS(t, desk, "the commit", `document.body.dataset.committed === "6"`, 60*time.Second)
	assert.Contains(t, evalJS(t, desk, `document.getElementById("commit-status").textContent`), "All 6 sent")
	assertOnScreen(t, desk, "1024x700 after sending")
	assert.Equal(t, "true", evalJS(t, desk, `(() => { const r = document.getElementById("commit-status").getBoundingClientRect(); return String(r.width > 0 && r.bottom <= innerHeight && r.right <= innerWidth); })()`), "the outcome is on screen")
	assert.Len(t, sim.Media(), 6)
	viewShot(t, desk, shots, "desktop-1024x700-sent")

	// The GP disconnects the phone: the desktop shows it gone.
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#disconnect"))))
	pollJS(t, desk, "the phone shown as gone", `document.getElementById("presence").dataset.connected === "false" && document.getElementById("presence").dataset.phone === "gone"`, 20*time.Second)
	assert.Contains(t, evalJS(t, desk, `document.getElementById("presence").textContent`), "Phone disconnected")
}

// TestDesktopPhoneFinished: the phone taps Finished and the desktop shows
// it as finished (the presence event the server publishes when a phone
// leaves; the desktop does not poll presence).
func TestDesktopPhoneFinished(t *testing.T) {
	t.Parallel()
	chromium := chromiumPath(t)
	sim := alextest.NewTestServer(t)
	base := startServer(t, map[string]string{}, sim)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	desk := newBrowser(ctx, t, chromium)
	launchDesktop(t, desk, base, sim.Patients()[0], 1024, 700)
	phone := joinPhone(t, desk)
	require.NoError(t, chromedp.Do(phone, chromedp.Click(chromedp.CSS("#done"))))
	pollJS(t, phone, "the phone's end state", `document.body.dataset.ended === "true"`, 20*time.Second)
	pollJS(t, desk, "the desktop to show the phone finished", `document.getElementById("presence").dataset.connected === "false" && document.getElementById("presence").dataset.phone === "finished"`, 20*time.Second)
	assert.Contains(t, evalJS(t, desk, `document.getElementById("presence").textContent`), "Phone finished")
	pollJS(t, desk, "a fresh QR code", `document.getElementById("qr").dataset.ready === "true"`, 20*time.Second)
	viewShot(t, desk, desktopShots(t), "desktop-phone-finished")
}

// TestDesktopEditBodyMapCompare: the body map sets the site and side, the
// earlier photos of the patient are listed (same site first) and one is
// shown beside the new photo; the photo is turned, cropped and blacked out
// with the editor and sent: ALEX's Media has the cropped size, the turned
// picture, black where the box was, and the body map's site in its title.
func TestDesktopEditBodyMapCompare(t *testing.T) {
	t.Parallel()
	for _, size := range [][2]int64{{1366, 768}, {1024, 700}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) { editBodyMapCompare(t, size[0], size[1]) })
	}
}

// editBodyMapCompare is TestDesktopEditBodyMapCompare in a w x h window;
// screenshots are taken at 1366 x 768 only.
func editBodyMapCompare(t *testing.T, w, h int64) {
	chromium := chromiumPath(t)
	axe := axePath(t)
	sim := alextest.NewTestServer(t)
	seeded := sim.SeedEarlierMedia()
	base := startServer(t, map[string]string{}, sim)
	shots := desktopShots(t)
	if w != 1366 {
		shots = t.TempDir() // the docs keep the 1366 x 768 pictures
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	patient := sim.Patients()[0]
	require.Len(t, seeded[patient.ID], 5)
	src := filepath.Join(t.TempDir(), "halves.jpg")
	writeHalves(t, src)

	desk := newBrowser(ctx, t, chromium)
	launchDesktop(t, desk, base, patient, w, h)
	require.NoError(t, chromedp.Do(desk, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{src})))
	pollJS(t, desk, "the photo", `document.querySelectorAll("#photos .photo[data-loaded=true]").length === 1`, 30*time.Second)
	id := evalJS(t, desk, `document.body.dataset.selected`)
	card := fmt.Sprintf(`.photo[data-id="%s"]`, id)

	// Every body-map region names a site of the server's value set.
	bad, err := chromedp.Run(desk, chromedp.Evaluate[string](`(async () => { const all = await (await fetch("/bodysites")).json(); const codes = new Set(all.map(s => s.code));
		return [...document.querySelectorAll("#bodymap .region")].filter(r => !codes.has(r.dataset.code)).map(r => r.getAttribute("aria-label")).join(","); })()`, chromedp.EvalAwaitPromise))
	require.NoError(t, err)
	assert.Empty(t, bad, "regions whose code is not in /bodysites")

	// Two clicks: Body map, then the figure's left forearm on the front
	// view (drawn on the viewer's right).
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(card+" .map-open"))))
	pollJS(t, desk, "the body map", `!document.getElementById("bodymap").hidden`, 20*time.Second)
	viewShot(t, desk, shots, "desktop-bodymap")
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(fmt.Sprintf(`#bodymap .region[data-view="front"][data-code="%s"][data-side="left"]`, forearm)))))
	assert.Equal(t, "true", evalJS(t, desk, `String(document.getElementById("bodymap").hidden)`), "the map closes")
	assert.Equal(t, forearm, evalJS(t, desk, `document.querySelector('`+card+` .site').value`))
	assert.Equal(t, "Forearm", evalJS(t, desk, `document.querySelector('`+card+` .site-q').value`))
	assert.Equal(t, media.LateralityLeft, evalJS(t, desk, `document.querySelector('`+card+` .laterality').value`))
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(card+" .save"))))
	pollJS(t, desk, "the details to save", fmt.Sprintf(`!!document.querySelector('%s').dataset.saved`, card), 20*time.Second)
	assert.True(t, strings.HasPrefix(evalJS(t, desk, `document.querySelector('`+card+` .record-title-text').textContent`), "Left forearm"), "the title shown carries the body map's site and side")

	// Earlier photos: the five seeded, the two of the left forearm first.
	pollJS(t, desk, "the earlier photos", `document.getElementById("history").dataset.items === "5" && [...document.querySelectorAll("#history-list img")].every(i => i.complete && i.naturalWidth > 0)`, 20*time.Second)
	// The seeded forearms (two left, one right) first, the same side first.
	order := evalJS(t, desk, `[...document.querySelectorAll("#history-list li")].map(li => (li.classList.contains("same") ? "same:" : "other:") + li.dataset.side).join(",")`)
	assert.Equal(t, "same:L,same:L,same:R,other:,other:R", order)
	assert.Equal(t, forearm+","+forearm+","+forearm, evalJS(t, desk, `[...document.querySelectorAll("#history-list li.same")].map(li => li.dataset.site).join(",")`))
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#history-list li:first-child .hist"))))
	pollJS(t, desk, "the earlier photo beside the new one", fmt.Sprintf(`(() => { const a = document.querySelector('%[1]s .then-img'), b = document.querySelector('%[1]s .thumb');
		if (!a.complete || !a.naturalWidth) return false; const ra = a.getBoundingClientRect(), rb = b.getBoundingClientRect();
		return ra.width > 150 && rb.width > 150 && ra.right <= rb.left + 1; })()`, card), 20*time.Second)
	runAxe(t, desk, axe)
	viewShot(t, desk, shots, "desktop-compare")

	// Edit: rotate right (the 800x600 picture becomes 600x800, its left
	// half on top), black out a box, crop, save.
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(card+" .edit-start"))))
	pollJS(t, desk, "the editor", `document.querySelector('`+card+` .edit-area').dataset.ready === "true"`, 20*time.Second)
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(card+" .rot-r"))))
	pollJS(t, desk, "the turned picture", `document.querySelector('`+card+`').dataset.rotation === "90" && document.querySelector('`+card+` .edit-area').dataset.ready === "true"`, 20*time.Second)
	// Black out: drag the frame's top-left handle to the middle.
	drag(t, desk, card+" .cropper-point.point-nw", 0.45, 0.45)
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(card+" .redact-add"))))
	pollJS(t, desk, "the black box", `document.querySelector('`+card+`').dataset.boxes === "1" && document.querySelectorAll('`+card+` .redact-box').length === 1`, 20*time.Second)
	// Crop: the frame's bottom-right handle up and left.
	drag(t, desk, card+" .cropper-point.point-se", -0.2, -0.15)
	viewShot(t, desk, shots, "desktop-edit")
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS(card+" .edit-save"))))
	pollJS(t, desk, "the edit to be saved", `document.querySelector('`+card+`').dataset.edits === "1" && !document.querySelector('`+card+`').dataset.editing`, 20*time.Second)
	var sent struct {
		Rotate int
		Crop   *struct{ X, Y, W, H int }
		Redact []struct{ X, Y, W, H int }
	}
	require.NoError(t, json.Unmarshal([]byte(evalJS(t, desk, `document.querySelector('`+card+`').dataset.lastEdit`)), &sent))
	require.Equal(t, 90, sent.Rotate)
	require.NotNil(t, sent.Crop, "the frame was made smaller")
	require.Len(t, sent.Redact, 1)
	t.Logf("edit sent: rotate %d, crop %+v, redact %+v", sent.Rotate, *sent.Crop, sent.Redact[0])
	pollJS(t, desk, "the edited picture", fmt.Sprintf(`document.querySelector('%s').dataset.width === "%d" && document.querySelector('%s').dataset.picture === document.querySelector('%s').dataset.version && document.querySelector('#strip li[data-id="%s"] .mini').naturalWidth === %d`,
		card, sent.Crop.W, card, card, id, sent.Crop.W), 20*time.Second)
	assert.False(t, evalJS(t, desk, `document.querySelector('`+card+` .edit-reset').hidden ? "hidden" : ""`) == "hidden", "Undo all edits is offered")
	viewShot(t, desk, shots, "desktop-edited")

	shown := evalJS(t, desk, `document.querySelector('`+card+` .record-title-text').textContent`)
	assert.True(t, strings.HasPrefix(shown, "Left forearm"), shown)
	require.NoError(t, chromedp.Do(desk, chromedp.Click(chromedp.CSS("#commit"))))
	pollJS(t, desk, "the commit", `document.body.dataset.committed === "1"`, 30*time.Second)
	var got []byte
	for _, m := range sim.Media() {
		if len(m.Identifier) > 0 && m.Identifier[0].Value != nil && *m.Identifier[0].Value == id {
			require.NotNil(t, m.Content.Title)
			assert.Equal(t, shown, *m.Content.Title, "the title shown is the title sent")
			data, ok := sim.MediaData(*m.Id)
			require.True(t, ok)
			got = data
		}
	}
	require.NotNil(t, got, "the photo reached ALEX")
	pic, err := jpeg.Decode(bytes.NewReader(got))
	require.NoError(t, err)
	b := pic.Bounds()
	assert.Equal(t, [2]int{sent.Crop.W, sent.Crop.H}, [2]int{b.Dx(), b.Dy()}, "the committed size is the crop's")
	// Inside the box (less a margin for JPEG ringing): black.
	r := sent.Redact[0]
	x0, y0 := max(r.X, sent.Crop.X)-sent.Crop.X+4, max(r.Y, sent.Crop.Y)-sent.Crop.Y+4
	x1, y1 := min(r.X+r.W, sent.Crop.X+sent.Crop.W)-sent.Crop.X-4, min(r.Y+r.H, sent.Crop.Y+sent.Crop.H)-sent.Crop.Y-4
	require.Less(t, x0, x1)
	require.Less(t, y0, y1)
	assert.Less(t, meanLuma(pic, image.Rect(x0, y0, x1, y1)), 12.0, "the blacked-out box is black")
	// Outside it: the turned picture (clockwise: the left half, red, now
	// on top; the right half, green, at the bottom).
	top := pic.At(4, 4)
	bottom := pic.At(4, b.Dy()-5)
	assert.True(t, isReddish(top), "top-left after turning is from the red left half: %v", top)
	if sent.Crop.Y+b.Dy() > 400+8 {
		assert.True(t, isGreenish(bottom), "bottom-left is from the green right half: %v", bottom)
	}
}

// launchDesktop opens the desktop for the patient at w x h and waits for it.
func launchDesktop(t *testing.T, desk context.Context, base string, p alextest.Patient, w, h int64) {
	t.Helper()
	require.NoError(t, chromedp.Do(desk, chromedp.EmulateViewport(w, h), chromedp.Navigate(base+"/dev/launch?patient="+p.ID)))
	pollJS(t, desk, "the patient banner", fmt.Sprintf(`document.getElementById("patient-name").textContent.includes(%q)`, p.Given), 20*time.Second)
	pollJS(t, desk, "the QR code", `document.getElementById("qr").dataset.ready === "true"`, 20*time.Second)
	pollJS(t, desk, "the event stream", `document.body.dataset.events === "open"`, 20*time.Second)
}

// joinPhone opens the desktop's phone link in a phone-sized tab of its own
// browser context and waits until the desktop shows the phone connected.
// The tab ends with the test.
func joinPhone(t *testing.T, desk context.Context) context.Context {
	t.Helper()
	phoneURL := evalJS(t, desk, `document.getElementById("phone-link").dataset.phoneUrl`)
	phone, cancel := chromedp.NewContext(desk, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	require.NoError(t, chromedp.Do(phone, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1)), chromedp.Navigate(phoneURL)))
	pollJS(t, phone, "the phone to claim the code", `document.body.dataset.claimed === "true"`, 20*time.Second)
	pollJS(t, desk, "phone connected", `document.getElementById("presence").dataset.connected === "true"`, 20*time.Second)
	return phone
}

// assertOnScreen checks that the page does not scroll and that the loop's
// parts are inside the viewport.
func assertOnScreen(t *testing.T, c context.Context, name string) {
	t.Helper()
	out := evalJS(t, c, `(() => {
		const bad = [];
		const se = document.scrollingElement;
		if (se.scrollHeight > innerHeight) bad.push("page scrolls: scrollHeight " + se.scrollHeight + " > innerHeight " + innerHeight);
		if (se.scrollWidth > innerWidth) bad.push("page scrolls sideways: scrollWidth " + se.scrollWidth + " > innerWidth " + innerWidth);
		const inside = (what, el) => {
			if (!el) { bad.push(what + " missing"); return; }
			const r = el.getBoundingClientRect();
			if (r.width === 0 || r.height === 0) bad.push(what + " not shown");
			else if (r.top < 0 || r.left < 0 || r.bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5)
				bad.push(what + " outside the viewport: " + JSON.stringify([r.left, r.top, r.right, r.bottom].map(Math.round)));
		};
		inside("presence", document.getElementById("presence"));
		inside("send button", document.getElementById("commit"));
		inside("send status", document.getElementById("commit-status").parentElement);
		inside("strip", document.getElementById("strip"));
		const items = [...document.querySelectorAll("#strip .pick")];
		if (items.length !== 6) bad.push(items.length + " strip items, not 6");
		items.forEach((b, i) => inside("strip item " + (i + 1), b));
		const card = document.querySelector("#photos .photo:not([hidden])");
		inside("selected photo", card && card.querySelector(".thumb"));
		if (card && card.querySelector(".thumb").getBoundingClientRect().width < 300) bad.push("the selected photo is small: " + Math.round(card.querySelector(".thumb").getBoundingClientRect().width) + " px");
		inside("details panel", card && card.querySelector(".fields"));
		inside("save button", card && card.querySelector(".save"));
		inside("title sent", card && card.querySelector(".record-title"));
		inside("earlier photos", document.getElementById("history"));
		return bad.join("; ");
	})()`)
	assert.Empty(t, out, "at %s", name)
}

// drag presses on the element's centre and moves by the fractions of the
// crop area's width and height, with real mouse events.
func drag(t *testing.T, c context.Context, sel string, fx, fy float64) {
	t.Helper()
	var pos struct{ X, Y, W, H float64 }
	require.NoError(t, json.Unmarshal([]byte(evalJS(t, c, fmt.Sprintf(`(() => { const p = document.querySelector(%q).getBoundingClientRect();
		const a = document.querySelector(%q).closest(".edit-area").querySelector(".cropper-canvas").getBoundingClientRect();
		return JSON.stringify({X: p.left + p.width / 2, Y: p.top + p.height / 2, W: a.width, H: a.height}); })()`, sel, sel))), &pos))
	steps := []input.DispatchMouseEventParams{
		{Type: input.DispatchMouseEventTypeMouseMoved, X: pos.X, Y: pos.Y},
		{Type: input.DispatchMouseEventTypeMousePressed, X: pos.X, Y: pos.Y, Button: input.MouseButtonLeft, Buttons: 1, ClickCount: 1},
	}
	for i := 1; i <= 5; i++ {
		steps = append(steps, input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseMoved,
			X: pos.X + fx*pos.W*float64(i)/5, Y: pos.Y + fy*pos.H*float64(i)/5, Button: input.MouseButtonLeft, Buttons: 1})
	}
	steps = append(steps, input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseReleased,
		X: pos.X + fx*pos.W, Y: pos.Y + fy*pos.H, Button: input.MouseButtonLeft, ClickCount: 1})
	require.NoError(t, chromedp.Do(c, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, s := range steps {
			if _, err := cdp.Call(ctx, tg, input.DispatchMouseEvent, s); err != nil {
				return err
			}
		}
		return nil
	})))
}

// writeDesktopPhotos writes n distinct JPEGs, some upright, none dark.
func writeDesktopPhotos(t *testing.T, n int) []string {
	t.Helper()
	dir := t.TempDir()
	out := make([]string, n)
	for i := range n {
		w, h := 640, 480
		if i%3 == 1 {
			w, h = 480, 640
		}
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				img.Set(x, y, color.RGBA{uint8(120 + (x*7+i*40)%120), uint8(110 + (y*3+i*25)%120), uint8(100 + i*25), 255})
			}
		}
		var b bytes.Buffer
		require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: 85}))
		out[i] = filepath.Join(dir, fmt.Sprintf("photo-%d.jpg", i+1))
		require.NoError(t, os.WriteFile(out[i], b.Bytes(), 0o644))
	}
	return out
}

// writeHalves writes an 800x600 JPEG: the left half red, the right half
// green, both bright, so turning and blacking out can be told apart.
func writeHalves(t *testing.T, path string) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 800, 600))
	for y := range 600 {
		for x := range 800 {
			c := color.RGBA{220, 70, 60, 255}
			if x >= 400 {
				c = color.RGBA{70, 200, 80, 255}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, img, &jpeg.Options{Quality: 90}))
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

func meanLuma(img image.Image, r image.Rectangle) float64 {
	var sum float64
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := color.GrayModel.Convert(img.At(x, y)).(color.Gray)
			sum += float64(c.Y)
			n++
		}
	}
	if n == 0 {
		return 255
	}
	return sum / float64(n)
}

func isReddish(c color.Color) bool {
	r, g, _, _ := c.RGBA()
	return r>>8 > 150 && g>>8 < 130
}

func isGreenish(c color.Color) bool {
	r, g, _, _ := c.RGBA()
	return g>>8 > 150 && r>>8 < 130
}

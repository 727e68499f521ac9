package clinicalimages_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/media"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
	"github.com/clinicpro/clinicalimages/sync"
)

// world is one test's ALEX simulator, Service and HTTP server.
type world struct {
	t     *testing.T
	alex  *alextest.Server
	svc   *ci.Service
	srv   *httptest.Server
	store session.Store
	blobs *memory.BlobStore
	logs  *testenv.SyncBuffer
}

func alexClient(t testing.TB, srv *alextest.Server, logger *slog.Logger) *alex.Client {
	id, secret, scope := srv.Credentials()
	c, err := alex.New(srv.BaseURL(),
		alex.WithClientCredentials(alex.Credentials{TokenURL: srv.TokenURL(), ClientID: id, ClientSecret: secret, Scope: scope}),
		alex.WithRetryPolicy(alex.RetryPolicy{MaxRetries: 3, MinWait: time.Millisecond, MaxWait: 5 * time.Millisecond}),
		alex.WithLogger(logger))
	require.NoError(t, err)
	return c
}

func newWorld(t *testing.T, opts ...ci.Option) *world {
	t.Helper()
	return newWorldWith(t, nil, opts...)
}

// newWorldWith uses store (nil: a new memory store).
func newWorldWith(t *testing.T, store session.Store, opts ...ci.Option) *world {
	t.Helper()
	return newWorldBlobs(t, store, nil, opts...)
}

// newWorldBlobs uses store and blobs (nil: new memory stores).
func newWorldBlobs(t *testing.T, store session.Store, blobs *memory.BlobStore, opts ...ci.Option) *world {
	t.Helper()
	w := &world{t: t, alex: alextest.NewTestServer(t), logs: &testenv.SyncBuffer{}, store: store, blobs: blobs}
	logger := slog.New(slog.NewJSONHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	if w.store == nil {
		w.store, err = memory.NewStore()
		require.NoError(t, err)
	}
	if w.blobs == nil {
		w.blobs, err = memory.NewBlobStore()
		require.NoError(t, err)
	}
	all := append([]ci.Option{ci.WithStore(w.store), ci.WithBlobStore(w.blobs), ci.WithLogger(logger)}, opts...)
	w.svc, err = ci.New(alexClient(t, w.alex, logger), all...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.svc.Close() })
	h, err := w.svc.Handler(ci.HTTPOptions{InsecureCookies: true})
	require.NoError(t, err)
	w.srv = httptest.NewServer(h)
	t.Cleanup(w.srv.Close)
	return w
}

// call makes a request; auth is "Bearer ..." or "".
func (w *world) call(method, path, auth string, body any) (int, map[string]any) {
	w.t.Helper()
	resp := w.do(method, path, auth, body)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// do makes a request and returns the response, for the caller to close.
func (w *world) do(method, path, auth string, body any) *http.Response {
	w.t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/octet-stream"
	default:
		j, err := json.Marshal(b)
		require.NoError(w.t, err)
		rd, ctype = bytes.NewReader(j), "application/json"
	}
	req, err := http.NewRequestWithContext(w.t.Context(), method, w.srv.URL+path, rd)
	require.NoError(w.t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(w.t, err)
	return resp
}

func errCode(m map[string]any) string {
	if e, ok := m["error"].(map[string]any); ok {
		s, _ := e["code"].(string)
		return s
	}
	return ""
}

// launch opens a session for the simulator's first patient.
func (w *world) launch() (desktop string, sessionID string) {
	w.t.Helper()
	p := w.alex.Patients()[0]
	lc, sig := w.alex.IssueLaunch(p.ID, w.alex.Facility(), w.alex.Practitioners()[0].ID)
	st, body := w.call("POST", "/launch", "", map[string]string{"context": lc, "signature": sig})
	require.Equal(w.t, http.StatusCreated, st, body)
	sess := body["session"].(map[string]any)
	return "Bearer " + body["credential"].(string), sess["id"].(string)
}

// pair issues a handoff code and claims it as a phone.
func (w *world) pair(desktop string) (phone string) {
	w.t.Helper()
	st, h := w.call("POST", "/handoff", desktop, nil)
	require.Equal(w.t, http.StatusCreated, st, h)
	st, c := w.call("POST", "/phone/claim", "", map[string]string{"code": h["code"].(string), "device": "test phone"})
	require.Equal(w.t, http.StatusCreated, st, c)
	return "Bearer " + c["token"].(string)
}

func photo(t testing.TB, w, h int, seed uint8) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{R: uint8(x) ^ seed, G: uint8(y), B: seed, A: 255})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}))
	return buf.Bytes()
}

func (w *world) blobCount() int {
	n := 0
	_ = w.blobs.List(context.Background(), func(session.BlobInfo) error { n++; return nil })
	return n
}

func (w *world) events(desktop string) []string {
	w.t.Helper()
	st, body := w.call("GET", "/events/poll?after=0", desktop, nil)
	require.Equal(w.t, 200, st, body)
	var types []string
	for _, e := range body["events"].([]any) {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	return types
}

func TestWholeFlow(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, sid := w.launch()
	phone := w.pair(desktop)

	var ids []string
	for i := range 2 {
		st, body := w.call("POST", "/phone/images", phone, photo(t, 2600, 1800, uint8(i*40)))
		require.Equal(t, http.StatusCreated, st, body)
		ids = append(ids, body["image"].(string))
	}
	events := w.events(desktop)
	assert.Contains(t, events, "phone.connected")
	assert.Equal(t, 2, strings.Count(strings.Join(events, " "), "image.added"))

	st, sess := w.call("GET", "/session", desktop, nil)
	require.Equal(t, 200, st)
	require.Len(t, sess["images"], 2)
	assert.Equal(t, sid, sess["id"])

	site := media.BodySites()[0]
	for i, id := range ids {
		st, body := w.call("PATCH", "/images/"+id, desktop, map[string]any{
			"clinical": map[string]string{"bodySite": site.Code, "laterality": media.LateralityLeft, "title": fmt.Sprintf("Photo %d", i+1)},
			"consent":  map[string]any{"given": true, "method": "verbal"},
		})
		require.Equal(t, 200, st, body)
	}
	st, res := w.call("POST", "/commit", desktop, map[string]any{})
	require.Equal(t, 200, st, res)
	outs := res["images"].([]any)
	require.Len(t, outs, 2)
	for _, o := range outs {
		assert.Equal(t, "committed", o.(map[string]any)["state"], o)
	}

	stored := w.alex.Media()
	require.Len(t, stored, 2, "two Media, one per photo")
	p := w.alex.Patients()[0]
	for _, m := range stored {
		assert.Equal(t, "Patient/"+p.ID, *m.Subject.Reference, "the launched patient")
		require.NotEmpty(t, m.Identifier)
		assert.Contains(t, ids, *m.Identifier[0].Value)
		assert.Equal(t, media.DefaultIdentifierSystem, *m.Identifier[0].System)
		assert.Regexp(t, `^Photo [12] — left scalp$`, *m.Content.Title)
		data, ok := w.alex.MediaData(*m.Id)
		require.True(t, ok)
		assert.Equal(t, []byte{0xFF, 0xD8}, data[:2])
	}
	assert.Zero(t, w.blobCount(), "committed blobs are gone")
	events = w.events(desktop)
	assert.Equal(t, 2, strings.Count(strings.Join(events, " "), "image.committed"))

	// A second commit changes nothing.
	_, res = w.call("POST", "/commit", desktop, map[string]any{"images": ids})
	for _, o := range res["images"].([]any) {
		assert.Equal(t, "committed", o.(map[string]any)["state"])
	}
	assert.Len(t, w.alex.Media(), 2)

	// Nothing sensitive in any log or audit line.
	logs := w.logs.String()
	assert.Contains(t, logs, `"msg":"audit"`)
	assert.Contains(t, logs, "image.committed")
	for _, leak := range []string{p.NHI, p.Family, p.Given, strings.TrimPrefix(desktop, "Bearer "), strings.TrimPrefix(phone, "Bearer "), "Bearer ", "eyJ"} {
		assert.NotContains(t, logs, leak)
	}
	_, secret, _ := w.alex.Credentials()
	assert.NotContains(t, logs, secret)
}

func TestCommitLostReplyIsReconciledNotResent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, _ := w.launch()
	st, img := w.call("POST", "/images", desktop, photo(t, 800, 600, 1))
	require.Equal(t, http.StatusCreated, st, img)
	w.alex.DropNext(1) // ALEX stores the Media, the reply is lost
	st, res := w.call("POST", "/commit", desktop, map[string]any{})
	require.Equal(t, 200, st)
	o := res["images"].([]any)[0].(map[string]any)
	assert.Equal(t, "committed", o["state"], o)
	assert.Equal(t, true, o["reconciled"])
	assert.Len(t, w.alex.Media(), 1, "exactly one Media")
}

func TestCommitFacilityUnavailableThenCreated(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, _ := w.launch()
	w.call("POST", "/images", desktop, photo(t, 800, 600, 2))
	w.alex.FailNext(2, alextest.Fault{Status: 503, RetryAfter: "0", Path: "/FHIR/Media",
		Body: `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception","diagnostics":"Cannot establish connection to the facility. Please try again later."}]}`})
	_, res := w.call("POST", "/commit", desktop, map[string]any{})
	assert.Equal(t, "committed", res["images"].([]any)[0].(map[string]any)["state"])
	assert.Len(t, w.alex.Media(), 1)
}

func TestCommitRefusedThenFixedAndRetried(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, _ := w.launch()
	_, img := w.call("POST", "/images", desktop, photo(t, 800, 600, 3))
	id := img["id"].(string)
	w.alex.FailNext(1, alextest.Fault{Status: 400, Path: "/FHIR/Media",
		Body: `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"business-rule","diagnostics":"The title is not acceptable"}]}`})
	_, res := w.call("POST", "/commit", desktop, map[string]any{})
	o := res["images"].([]any)[0].(map[string]any)
	assert.Equal(t, "failed", o["state"])
	assert.Equal(t, "alex_rejected", o["code"])
	assert.Contains(t, o["message"], "The title is not acceptable")
	assert.Empty(t, w.alex.Media())
	assert.Equal(t, 1, w.blobCount(), "the blob is kept for the retry")

	st, _ := w.call("PATCH", "/images/"+id, desktop, map[string]any{"clinical": map[string]string{"title": "Better title"}})
	require.Equal(t, 200, st)
	_, res = w.call("POST", "/commit", desktop, map[string]any{"images": []string{id}})
	assert.Equal(t, "committed", res["images"].([]any)[0].(map[string]any)["state"])
	require.Len(t, w.alex.Media(), 1)
	assert.Equal(t, "Better title", *w.alex.Media()[0].Content.Title)
}

func TestConcurrentCommitsSendEachImageOnce(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.alex.SetLatency(100 * time.Millisecond)
	desktop, _ := w.launch()
	for i := range 4 {
		st, _ := w.call("POST", "/images", desktop, photo(t, 400, 300, uint8(i)))
		require.Equal(t, http.StatusCreated, st)
	}
	var wg gosync.WaitGroup
	for range 3 {
		wg.Go(func() { w.call("POST", "/commit", desktop, map[string]any{}) })
	}
	wg.Wait()
	assert.Len(t, w.alex.Media(), 4, "each image sent once")
}

func TestRecoveryAfterACrashMidCommit(t *testing.T) {
	t.Parallel()
	var now = time.Now()
	var mu gosync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	w := newWorld(t, ci.WithClock(clock))
	desktop, sid := w.launch()
	_, img := w.call("POST", "/images", desktop, photo(t, 800, 600, 5))
	id := img["id"].(string)

	// The first process claims the image, sends it, and dies before
	// recording the outcome.
	claim, err := w.svc.Sessions().ClaimCommit(t.Context(), sid, id)
	require.NoError(t, err)
	m, err := media.New()
	require.NoError(t, err)
	built, err := m.Build(media.Input{
		Image:   media.ImageFacts{ID: id, ContentType: "image/jpeg", Size: claim.Image.Size},
		Patient: media.Patient{ID: claim.Session.PatientID, NHI: claim.Session.NHI}, Operator: claim.Session.Practitioner,
		Facility: claim.Session.Facility,
	})
	require.NoError(t, err)
	rc, err := w.svc.Sessions().OpenImage(t.Context(), claim.Image)
	require.NoError(t, err)
	data, _ := io.ReadAll(rc)
	rc.Close()
	_, err = alexClient(t, w.alex, slog.New(slog.DiscardHandler)).CreateMedia(alex.WithFacilityID(t.Context(), claim.Session.Facility), built, alex.BytesContent(data))
	require.NoError(t, err)
	require.Len(t, w.alex.Media(), 1)

	// A new Service on the same stores, after the commit lease.
	svc2, err := ci.New(alexClient(t, w.alex, slog.New(slog.DiscardHandler)), ci.WithStore(w.store), ci.WithBlobStore(w.blobs), ci.WithClock(clock))
	require.NoError(t, err)
	defer svc2.Close()
	mu.Lock()
	now = now.Add(6 * time.Minute)
	mu.Unlock()
	n, err := svc2.Recover(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	sess, err := svc2.Sessions().Get(t.Context(), sid)
	require.NoError(t, err)
	assert.Equal(t, session.StateCommitted, sess.Image(id).State)
	assert.Equal(t, *w.alex.Media()[0].Id, sess.Image(id).MediaID)
	assert.Len(t, w.alex.Media(), 1, "reconciled, not resent")
}

func TestPhoneCannotReadTheSession(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, _ := w.launch()
	phone := w.pair(desktop)
	_, img := w.call("POST", "/images", desktop, photo(t, 300, 200, 9))
	for _, path := range []string{"/session", "/patient", "/images/" + img["id"].(string) + "/content", "/events/poll?after=0"} {
		st, body := w.call("GET", path, phone, nil)
		assert.Equal(t, http.StatusUnauthorized, st, path)
		assert.Equal(t, "unauthenticated", errCode(body), path)
	}
	st, body := w.call("GET", "/phone", phone, nil)
	require.Equal(t, 200, st)
	assert.NotContains(t, fmt.Sprint(body), w.alex.Patients()[0].NHI)
	assert.NotContains(t, fmt.Sprint(body), w.alex.Patients()[0].ID)

	// The phone cannot name a patient: unknown fields are refused, and there
	// is no endpoint that takes one.
	st, _ = w.call("PATCH", "/images/"+img["id"].(string), desktop, map[string]any{"patientId": "someone-else"})
	assert.Equal(t, http.StatusBadRequest, st)

	// Revoked: the phone is cut off.
	st, _ = w.call("DELETE", "/handoff", desktop, nil)
	require.Equal(t, http.StatusNoContent, st)
	st, body = w.call("POST", "/phone/images", phone, photo(t, 300, 200, 1))
	assert.Equal(t, http.StatusForbidden, st)
	assert.Equal(t, "phone_revoked", errCode(body))
}

func TestHandoffCodesAreSingleUseAndExpire(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var mu gosync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	w := newWorld(t, ci.WithClock(clock))
	desktop, _ := w.launch()
	_, h := w.call("POST", "/handoff", desktop, nil)
	code := h["code"].(string)
	st, _ := w.call("POST", "/phone/claim", "", map[string]string{"code": code})
	require.Equal(t, http.StatusCreated, st)
	st, body := w.call("POST", "/phone/claim", "", map[string]string{"code": code})
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "invalid_code", errCode(body))

	_, h = w.call("POST", "/handoff", desktop, nil)
	mu.Lock()
	now = now.Add(6 * time.Minute)
	mu.Unlock()
	st, body = w.call("POST", "/phone/claim", "", map[string]string{"code": h["code"].(string)})
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Equal(t, "invalid_code", errCode(body))
}

func TestAnotherSessionsImageIsRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	d1, _ := w.launch()
	d2, _ := w.launch()
	_, img := w.call("POST", "/images", d1, photo(t, 300, 200, 7))
	id := img["id"].(string)
	for _, c := range []struct{ method, path string }{{"GET", "/images/" + id + "/content"}, {"DELETE", "/images/" + id}, {"PATCH", "/images/" + id}} {
		var body any
		if c.method == "PATCH" {
			body = map[string]any{"clinical": map[string]string{"title": "x"}}
		}
		st, _ := w.call(c.method, c.path, d2, body)
		assert.Equal(t, http.StatusNotFound, st, c)
	}
	_, res := w.call("POST", "/commit", d2, map[string]any{"images": []string{id}})
	assert.Equal(t, "not_found", res["images"].([]any)[0].(map[string]any)["code"])
	assert.Empty(t, w.alex.Media())
}

func TestBadUploadsGetClearErrorsAndLeaveNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ci.WithLimits(ci.Limits{MaxUploadBytes: 2 << 20}))
	desktop, _ := w.launch()
	bomb := pngBomb(t)
	cases := []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"not an image", []byte("<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"), 415, "unsupported_format"},
		{"empty", []byte{}, 415, "unsupported_format"},
		{"truncated", photo(t, 600, 400, 1)[:3000], 422, "corrupt_image"},
		{"too large", bytes.Repeat([]byte{0xFF}, 3<<20), 413, "too_large"},
		{"decompression bomb", bomb, 413, "too_many_pixels"},
	}
	for _, tc := range cases {
		st, body := w.call("POST", "/images", desktop, tc.body)
		assert.Equal(t, tc.status, st, tc.name)
		assert.Equal(t, tc.code, errCode(body), tc.name)
		assert.NotEmpty(t, body["error"].(map[string]any)["message"], tc.name)
	}
	_, sess := w.call("GET", "/session", desktop, nil)
	assert.Empty(t, sess["images"])
	assert.Zero(t, w.blobCount())
}

func TestCookieCredentialNeedsCSRF(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := w.alex.Patients()[0]
	lc, sig := w.alex.IssueLaunch(p.ID, w.alex.Facility(), "prov")
	j, _ := json.Marshal(map[string]string{"context": lc, "signature": sig})
	resp, err := http.Post(w.srv.URL+"/launch", "application/json", bytes.NewReader(j))
	require.NoError(t, err)
	var launched map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&launched))
	resp.Body.Close()
	cookies := resp.Cookies()
	require.Len(t, cookies, 1)
	assert.True(t, cookies[0].HttpOnly)

	do := func(method, path, csrf string) int {
		req, _ := http.NewRequest(method, w.srv.URL+path, nil)
		req.AddCookie(cookies[0])
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		r, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		r.Body.Close()
		return r.StatusCode
	}
	assert.Equal(t, 200, do("GET", "/session", ""), "reads need no CSRF token")
	assert.Equal(t, 403, do("POST", "/handoff", ""), "state changes do")
	assert.Equal(t, 403, do("POST", "/handoff", "wrong"))
	assert.Equal(t, 201, do("POST", "/handoff", launched["csrf"].(string)))
}

func TestForgedCredentialsAndLaunchesAreRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, _ := w.launch()
	forged := desktop[:len(desktop)-4] + "AAAA"
	st, _ := w.call("GET", "/session", forged, nil)
	assert.Equal(t, 401, st)
	p := w.alex.Patients()[0]
	lc, sig := w.alex.IssueLaunch(p.ID, w.alex.Facility(), "prov")
	st, body := w.call("POST", "/launch", "", map[string]string{"context": lc, "signature": sig + "x"})
	assert.Equal(t, 401, st, body)
	lc, sig = w.alex.IssueLaunch("", w.alex.Facility(), "prov")
	st, body = w.call("POST", "/launch", "", map[string]string{"context": lc, "signature": sig})
	assert.Equal(t, 422, st)
	assert.Equal(t, "no_patient", errCode(body))
	// A launch that names no practitioner is a clear 400, not a 500.
	lc, sig = w.alex.IssueLaunch(p.ID, w.alex.Facility(), "")
	st, body = w.call("POST", "/launch", "", map[string]string{"context": lc, "signature": sig})
	assert.Equal(t, 400, st, body)
	assert.Equal(t, "invalid_request", errCode(body))
}

func TestSSEStreamsEvents(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, _ := w.launch()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", w.srv.URL+"/events", nil)
	req.Header.Set("Authorization", desktop)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "text/event-stream", strings.Split(resp.Header.Get("Content-Type"), ";")[0])

	phone := w.pair(desktop)
	st, _ := w.call("POST", "/phone/images", phone, photo(t, 500, 400, 8))
	require.Equal(t, 201, st)
	buf := make([]byte, 4096)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "event: image.added") {
		n, err := resp.Body.Read(buf)
		require.NoError(t, err, "stream ended before image.added: %q", seen.String())
		seen.Write(buf[:n])
	}
	assert.Contains(t, seen.String(), "event: phone.connected")
	assert.NotContains(t, seen.String(), w.alex.Patients()[0].NHI)
}

// pngBomb is a 30000x30000 PNG header with a tiny body: it must be refused
// from its header.
func pngBomb(t testing.TB) []byte {
	img := image.NewGray(image.Rect(0, 0, 1, 1))
	var buf bytes.Buffer
	require.NoError(t, jpegOrPNG(&buf, img))
	b := buf.Bytes()
	// Rewrite IHDR width/height (bytes 16..23) and its CRC.
	putU32(b[16:], 30000)
	putU32(b[20:], 30000)
	putU32(b[29:], crc(b[12:29]))
	return b
}

func TestCloseEndsEventStreamsSoShutdownCompletes(t *testing.T) {
	t.Parallel()
	// A hub the Service does not own: Close must end the streams itself.
	hub, err := sync.NewHub()
	require.NoError(t, err)
	t.Cleanup(func() { _ = hub.Close() })
	w := newWorld(t, ci.WithEvents(hub))
	desktop, _ := w.launch()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", w.srv.URL+"/events", nil)
	req.Header.Set("Authorization", desktop)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); done <- err }()
	require.NoError(t, w.svc.Close())
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the event stream")
	}
}

func TestPhoneMayHintBodySiteAndSide(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, _ := w.launch()
	phone := w.pair(desktop)
	site := media.BodySites()[0].Code
	st, body := w.call("POST", "/phone/images?bodySite="+site+"&laterality="+media.LateralityRight, phone, photo(t, 300, 200, 3))
	require.Equal(t, http.StatusCreated, st, body)
	_, sess := w.call("GET", "/session", desktop, nil)
	img := sess["images"].([]any)[0].(map[string]any)
	clin := img["clinical"].(map[string]any)
	assert.Equal(t, site, clin["bodySite"])
	assert.Equal(t, media.LateralityRight, clin["laterality"])

	// A code outside the value set is refused before anything is stored.
	st, body = w.call("POST", "/phone/images?bodySite=123", phone, photo(t, 300, 200, 4))
	assert.Equal(t, 422, st)
	assert.Equal(t, "invalid_metadata", errCode(body))
	_, sess = w.call("GET", "/session", desktop, nil)
	assert.Len(t, sess["images"], 1)
}

package clinicalimages_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/session"
)

// keyed is one upload attempt's outcome.
type keyed struct {
	status   int
	body     map[string]any
	replayed string // the Idempotent-Replayed header
}

// uploadKeyed POSTs body to base+path with an Idempotency-Key, on a fresh
// connection each time (so the transport never retries by itself). A
// transport error (a reply that never came) is returned as err.
func uploadKeyed(t *testing.T, base, path, auth, key string, body []byte) (keyed, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", base+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "image/jpeg")
	req.Header.Set("Authorization", auth)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return keyed{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return keyed{status: resp.StatusCode, body: out, replayed: resp.Header.Get("Idempotent-Replayed")}, nil
}

// dropFirstReply serves the API in h behind a front that, for the first
// upload (a POST whose path ends in /images), lets the Service finish (the
// photo is stored and listed) and then closes the connection without a
// reply, as a phone losing signal at that moment sees it. dropped closes
// once that happened.
func dropFirstReply(t *testing.T, h http.Handler) (srv *httptest.Server, dropped <-chan struct{}) {
	t.Helper()
	var once atomic.Bool
	done := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || !strings.HasSuffix(r.URL.Path, "/images") || !once.CompareAndSwap(false, true) {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		require.Equal(t, http.StatusCreated, rec.Code, "the Service stored the photo: %s", rec.Body)
		conn, _, err := http.NewResponseController(w).Hijack()
		require.NoError(t, err)
		_ = conn.Close()
		close(done)
	}))
	t.Cleanup(srv.Close)
	return srv, done
}

func images(t *testing.T, w *world, desktop string) []any {
	t.Helper()
	st, s := w.call("GET", "/session", desktop, nil)
	require.Equal(t, 200, st, s)
	list, _ := s["images"].([]any)
	return list
}

func countEvents(events []string, typ string) int {
	n := 0
	for _, e := range events {
		if e == typ {
			n++
		}
	}
	return n
}

// TestIdempotentUploadReplays: the same Idempotency-Key and bytes again
// (desktop and phone) answer 200 Idempotent-Replayed with the first image
// and store, list and announce nothing more; the same key with other bytes
// is 422 idempotency_key_reused; a malformed key is 400; uploads without a
// key each make an image.
func TestIdempotentUploadReplays(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, _ := w.launch()
	phone := w.pair(desktop)
	a, b := photo(t, 640, 480, 1), photo(t, 640, 480, 2)

	for _, tc := range []struct {
		name, path, auth, key string
	}{
		{"Desktop", "/images", desktop, `"d-8e03978e-40d5-43e8-bc93-6894a57f9324"`},
		{"Phone", "/phone/images", phone, "p-5b1c2d3e4f"},
	} {
		t.Run(tc.name, func(t *testing.T) { // not parallel: one session, counted
			before := len(images(t, w, desktop))
			first, err := uploadKeyed(t, w.srv.URL, tc.path, tc.auth, tc.key, a)
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, first.status, first.body)
			assert.Empty(t, first.replayed)
			idField := "id"
			if tc.path == "/phone/images" {
				idField = "image"
			}
			id := first.body[idField]
			require.NotEmpty(t, id)
			for range 2 {
				again, err := uploadKeyed(t, w.srv.URL, tc.path, tc.auth, tc.key, a)
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, again.status, again.body)
				assert.Equal(t, "true", again.replayed)
				assert.Equal(t, id, again.body[idField], "the image the first attempt made")
				assert.Equal(t, first.body["bytes"], again.body["bytes"], "the same reply")
			}
			reused, err := uploadKeyed(t, w.srv.URL, tc.path, tc.auth, tc.key, b)
			require.NoError(t, err)
			assert.Equal(t, http.StatusUnprocessableEntity, reused.status, reused.body)
			assert.Equal(t, string(ci.CodeIdempotencyKeyReused), errCode(reused.body))
			assert.Len(t, images(t, w, desktop), before+1, "one image for one key")
		})
	}
	assert.Equal(t, 2, w.blobCount(), "one blob per key")
	assert.Equal(t, 2, countEvents(w.events(desktop), "image.added"), "a replay announces nothing")

	bad, err := uploadKeyed(t, w.srv.URL, "/images", desktop, "has space", a)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, bad.status, bad.body)
	assert.Equal(t, string(ci.CodeInvalidRequest), errCode(bad.body))

	for range 2 {
		st, body := w.call("POST", "/images", desktop, a)
		require.Equal(t, http.StatusCreated, st, body)
	}
	assert.Len(t, images(t, w, desktop), 4, "without a key, each upload is a new photo")
	assert.NotContains(t, w.logs.String(), "p-5b1c2d3e4f", "keys are not logged")
}

// TestLostReplyOneInstance: the Service stores a phone's photo and the
// reply is lost; the phone sends it again with the same key and gets the
// same image: one image listed, one Media after commit.
func TestLostReplyOneInstance(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, _ := w.launch()
	phone := w.pair(desktop)
	h, err := w.svc.Handler(ci.HTTPOptions{InsecureCookies: true})
	require.NoError(t, err)
	front, dropped := dropFirstReply(t, h)
	body, key := photo(t, 800, 600, 7), session.NewID()

	_, err = uploadKeyed(t, front.URL, "/phone/images", phone, key, body)
	require.Error(t, err, "the reply was lost")
	<-dropped
	require.Len(t, images(t, w, desktop), 1, "the photo was stored before the reply was lost")

	again, err := uploadKeyed(t, front.URL, "/phone/images", phone, key, body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, again.status, again.body)
	assert.Equal(t, "true", again.replayed)
	list := images(t, w, desktop)
	require.Len(t, list, 1, "the resend made no second image")
	assert.Equal(t, list[0].(map[string]any)["id"], again.body["image"])

	st, res := w.call("POST", "/commit", desktop, map[string]any{})
	require.Equal(t, 200, st, res)
	assert.Len(t, w.alex.Media(), 1, "one Media for one photo")
}

// TestLostReplyTwoInstances: two Services sharing one Redis (and S3). The
// first attempt reaches instance A, which stores the photo, and its reply
// is lost; the resend reaches instance B, which returns A's image. Racing
// attempts with one key on both instances make one image.
func TestLostReplyTwoInstances(t *testing.T) {
	t.Parallel()
	sh := sharedServices(t)
	sim := alextest.NewTestServer(t)
	secret := []byte("0123456789abcdef0123456789abcdef-shared")
	svcA, srvA, _ := sh.instance(t, sim, secret)
	_, srvB, _ := sh.instance(t, sim, secret)
	a := &world{t: t, alex: sim, srv: srvA}
	b := &world{t: t, alex: sim, srv: srvB}
	desktop, _ := a.launch()
	phone := b.pairVia(a, desktop)
	h, err := svcA.Handler(ci.HTTPOptions{InsecureCookies: true})
	require.NoError(t, err)
	frontA, dropped := dropFirstReply(t, h)
	body, key := photo(t, 800, 600, 9), session.NewID()

	_, err = uploadKeyed(t, frontA.URL, "/phone/images", phone, key, body)
	require.Error(t, err, "the reply was lost")
	<-dropped
	again, err := uploadKeyed(t, srvB.URL, "/phone/images", phone, key, body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, again.status, again.body)
	assert.Equal(t, "true", again.replayed, "instance B replays instance A's upload")
	list := images(t, a, desktop)
	require.Len(t, list, 1)
	assert.Equal(t, list[0].(map[string]any)["id"], again.body["image"])

	// Racing: the same new photo sent to both instances at once, 3 times each.
	body2, key2 := photo(t, 800, 600, 10), session.NewID()
	var wg gosync.WaitGroup
	var mu gosync.Mutex
	ids := map[any]int{}
	for i := range 6 {
		base := srvA.URL
		if i%2 == 1 {
			base = srvB.URL
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := uploadKeyed(t, base, "/phone/images", phone, key2, body2)
			if !assert.NoError(t, err) {
				return
			}
			if !assert.Contains(t, []int{http.StatusCreated, http.StatusOK, http.StatusConflict}, r.status, r.body) {
				return
			}
			if r.status == http.StatusConflict {
				assert.Equal(t, string(ci.CodeUploadInProgress), errCode(r.body))
				return
			}
			mu.Lock()
			ids[r.body["image"]]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	assert.Len(t, ids, 1, "every answer names one image")
	require.Len(t, images(t, a, desktop), 2, "two photos, two images")

	st, res := a.call("POST", "/commit", desktop, map[string]any{})
	require.Equal(t, 200, st, res)
	assert.Len(t, sim.Media(), 2, "one Media per photo")
}

// TestPhonePatientCheck: the paired phone reads initials, age and sex of the
// session's patient and nothing else; no other credential reads it; a
// revoked phone cannot.
func TestPhonePatientCheck(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, _ := w.launch()
	phone := w.pair(desktop)
	p := w.alex.Patients()[0]
	born, err := time.Parse(time.DateOnly, p.BirthDate)
	require.NoError(t, err)
	now := time.Now().UTC()
	years := now.Year() - born.Year()
	if now.YearDay() < born.YearDay() { // close enough away from 29 February
		years--
	}
	require.Greater(t, years, 2)

	resp := w.do("GET", "/phone/patient", phone, nil)
	raw, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, "%s", raw)
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	var check map[string]any
	require.NoError(t, json.Unmarshal(raw, &check))
	assert.Equal(t, map[string]any{"initials": p.Given[:1] + "." + p.Family[:1] + ".", "age": fmt.Sprintf("%d years", years), "sex": "Female"}, check)
	for _, secret := range []string{p.ID, p.NHI, p.Given, p.Family, p.BirthDate} {
		assert.NotContains(t, string(raw), secret, "nothing identifying")
	}

	st, body := w.call("GET", "/phone/patient", desktop, nil)
	assert.Equal(t, http.StatusUnauthorized, st, "a desktop credential is not a phone token: %v", body)
	st, body = w.call("GET", "/phone/patient", "", nil)
	assert.Equal(t, http.StatusUnauthorized, st, body)
	st, body = w.call("DELETE", "/handoff", desktop, nil)
	require.Less(t, st, 300, body)
	st, body = w.call("GET", "/phone/patient", phone, nil)
	assert.Equal(t, http.StatusForbidden, st, body)
	assert.Equal(t, string(ci.CodePhoneRevoked), errCode(body))
}

package clinicalimages

// Internal tests: they call the history handlers directly (their routes
// are registered in http.go) and dropHistory, which EndSession is to call.

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
)

type historyAudit struct {
	mu      gosync.Mutex
	records []AuditRecord
}

func (a *historyAudit) Audit(_ context.Context, r AuditRecord) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records = append(a.records, r)
}

func (a *historyAudit) events(name string) []AuditRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []AuditRecord
	for _, r := range a.records {
		if r.Event == name {
			out = append(out, r)
		}
	}
	return out
}

type historyWorld struct {
	sim   *alextest.Server
	svc   *Service
	blobs *memory.BlobStore
	audit *historyAudit
	now   time.Time
}

func newHistoryWorld(t *testing.T, simOpts ...alextest.Option) *historyWorld {
	t.Helper()
	now := time.Now()
	w := &historyWorld{now: now, audit: &historyAudit{}}
	w.sim = alextest.NewTestServer(t, append([]alextest.Option{alextest.WithEarlierMedia(),
		alextest.WithClock(func() time.Time { return now }), alextest.WithPageSize(2)}, simOpts...)...)
	id, secret, scope := w.sim.Credentials()
	ac, err := alex.New(w.sim.BaseURL(),
		alex.WithClientCredentials(alex.Credentials{TokenURL: w.sim.TokenURL(), ClientID: id, ClientSecret: secret, Scope: scope}),
		alex.WithRetryPolicy(alex.RetryPolicy{Disabled: true}))
	require.NoError(t, err)
	store, err := memory.NewStore()
	require.NoError(t, err)
	w.blobs, err = memory.NewBlobStore()
	require.NoError(t, err)
	w.svc, err = New(ac, WithStore(store), WithBlobStore(w.blobs), WithAudit(w.audit))
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.svc.Close() })
	return w
}

// start launches a session for the simulator's i-th patient.
func (w *historyWorld) start(t *testing.T, i int) *Started {
	t.Helper()
	p := w.sim.Patients()[i]
	st, err := w.svc.StartSession(t.Context(), VerifiedLaunch{Facility: w.sim.Facility(), PatientID: p.ID, NHI: p.NHI,
		Practitioner: w.sim.Practitioners()[0].ID, Source: "token"})
	require.NoError(t, err)
	return st
}

// blobsUnder lists the blob keys under a session's prefix.
func (w *historyWorld) blobsUnder(t *testing.T, sid string) []string {
	t.Helper()
	var out []string
	require.NoError(t, w.blobs.List(t.Context(), func(b session.BlobInfo) error {
		if strings.HasPrefix(string(b.Key), sid+"/") {
			out = append(out, string(b.Key))
		}
		return nil
	}))
	return out
}

func testJPEG(t *testing.T, w, h int, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: c.R + uint8(x), G: c.G + uint8(y), B: c.B, A: 255})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}))
	return buf.Bytes()
}

type seen struct {
	site, side string
	created    time.Time
}

func itemKeys(items []HistoryItem) []seen {
	out := make([]seen, len(items))
	for i, it := range items {
		out[i] = seen{it.BodySite, it.Laterality, it.Created.UTC().Truncate(time.Second)}
	}
	return out
}

func TestHistoryNewestFirstSameSiteFirst(t *testing.T) {
	t.Parallel()
	w := newHistoryWorld(t)
	ctx := t.Context()
	p, other := w.sim.Patients()[0], w.sim.Patients()[1]
	day := 24 * time.Hour
	// Found under p's NHI but naming another patient (the newest of all),
	// or on another server, or without a reference: never shown. A PDF is
	// not a photo.
	_, err := w.sim.SeedMedia(p.ID,
		alextest.SeedMedia{Created: w.now.Add(-1 * day), BodySite: alextest.SiteForearm, Laterality: alextest.SideLeft, Subject: "Patient/" + other.ID},
		alextest.SeedMedia{Created: w.now.Add(-2 * day), BodySite: alextest.SiteForearm, Subject: "https://elsewhere.example/fhir/Patient/" + p.ID},
		alextest.SeedMedia{Created: w.now.Add(-3 * day), ContentType: "application/pdf", Data: []byte("%PDF-1.4\n%%EOF\n")},
	)
	require.NoError(t, err)
	st := w.start(t, 0)
	sid := st.Session.ID

	at := func(days int) time.Time { return w.now.Add(-time.Duration(days) * day).UTC().Truncate(time.Second) }
	const fa, back, shin = alextest.SiteForearm, alextest.SiteBack, alextest.SiteShin
	const l, r = alextest.SideLeft, alextest.SideRight

	items, err := w.svc.History(ctx, sid, HistoryQuery{})
	require.NoError(t, err)
	assert.Equal(t, []seen{{fa, r, at(10)}, {fa, l, at(30)}, {back, "", at(60)}, {fa, l, at(120)}, {shin, r, at(200)}},
		itemKeys(items), "the patient's own photos, newest first; nothing of the other patient, nothing foreign, no PDF")
	ids := map[string]bool{}
	for _, it := range items {
		assert.True(t, session.ValidID(it.ID), "opaque id %q", it.ID)
		ids[it.ID] = true
		assert.False(t, it.SameSite)
		assert.NotEmpty(t, it.Title)
		assert.Positive(t, it.Width)
		assert.Positive(t, it.Height)
	}
	assert.Len(t, ids, len(items), "ids are distinct")
	for _, m := range w.sim.Media() {
		assert.False(t, ids[*m.Id], "an ALEX id is never an item id")
	}

	t.Run("same site and side first", func(t *testing.T) {
		items, err := w.svc.History(ctx, sid, HistoryQuery{BodySite: fa, Laterality: l})
		require.NoError(t, err)
		assert.Equal(t, []seen{{fa, l, at(30)}, {fa, l, at(120)}, {fa, r, at(10)}, {back, "", at(60)}, {shin, r, at(200)}}, itemKeys(items))
		var same []bool
		for _, it := range items {
			same = append(same, it.SameSite)
		}
		assert.Equal(t, []bool{true, true, true, false, false}, same)
	})
	t.Run("the site of an image of the session", func(t *testing.T) {
		img, err := w.svc.AcceptUpload(ctx, Uploader{SessionID: sid, Hint: session.Clinical{BodySite: shin, Laterality: r}},
			bytes.NewReader(testJPEG(t, 80, 60, color.RGBA{R: 10, G: 20, B: 30})))
		require.NoError(t, err)
		items, err := w.svc.History(ctx, sid, HistoryQuery{Image: img.ID, BodySite: back})
		require.NoError(t, err)
		assert.Equal(t, []seen{{shin, r, at(200)}, {fa, r, at(10)}, {fa, l, at(30)}, {back, "", at(60)}, {fa, l, at(120)}}, itemKeys(items),
			"the image's site wins over the bodySite given")
	})
	t.Run("refusals", func(t *testing.T) {
		_, err := w.svc.History(ctx, sid, HistoryQuery{Image: session.NewID()})
		assert.Equal(t, CodeNotFound, CodeOf(err))
		_, err = w.svc.History(ctx, sid, HistoryQuery{BodySite: "forearm"})
		assert.Equal(t, CodeInvalidRequest, CodeOf(err))
		_, err = w.svc.History(ctx, session.NewID(), HistoryQuery{})
		assert.Equal(t, CodeNotFound, CodeOf(err))
	})

	// Every view audited, with counts and no patient data.
	views := w.audit.events("history.viewed")
	require.GreaterOrEqual(t, len(views), 3)
	for _, v := range views {
		assert.Equal(t, sid, v.Session)
		assert.Equal(t, w.sim.Facility(), v.Facility)
		assert.Equal(t, session.AuditOK, v.Outcome)
		b, _ := json.Marshal(v)
		for _, phi := range []string{p.NHI, p.ID, p.Family, p.Given, other.ID} {
			assert.NotContains(t, string(b), phi)
		}
	}
	assert.Contains(t, views[0].Detail, "items=5")
	assert.Contains(t, views[0].Detail, "other_patient=2")
}

func TestHistoryOtherPatientsSession(t *testing.T) {
	t.Parallel()
	w := newHistoryWorld(t)
	ctx := t.Context()
	day := 24 * time.Hour
	// The second patient has one more photo than the first.
	_, err := w.sim.SeedMedia(w.sim.Patients()[1].ID, alextest.SeedMedia{Created: w.now.Add(-5 * day), BodySite: alextest.SiteCheek})
	require.NoError(t, err)
	a, b := w.start(t, 0), w.start(t, 1)
	ia, err := w.svc.History(ctx, a.Session.ID, HistoryQuery{})
	require.NoError(t, err)
	ib, err := w.svc.History(ctx, b.Session.ID, HistoryQuery{})
	require.NoError(t, err)
	require.Len(t, ia, 5)
	require.Len(t, ib, 6)
	for _, it := range ia {
		assert.NotEqual(t, alextest.SiteCheek, it.BodySite, "the other patient's photo is not in this one's history")
	}
	assert.Equal(t, alextest.SiteCheek, ib[0].BodySite)

	// Neither session can read the other's thumbnails.
	for _, it := range ia {
		_, _, err := w.svc.HistoryThumbnail(ctx, b.Session.ID, it.ID)
		require.ErrorIs(t, err, session.ErrNotFound)
	}
	for _, it := range ib {
		_, _, err := w.svc.HistoryThumbnail(ctx, a.Session.ID, it.ID)
		require.ErrorIs(t, err, session.ErrNotFound)
	}
	// A second session of the same patient gets other ids for the same photos.
	a2 := w.start(t, 0)
	ia2, err := w.svc.History(ctx, a2.Session.ID, HistoryQuery{})
	require.NoError(t, err)
	require.Len(t, ia2, len(ia))
	for i := range ia {
		assert.NotEqual(t, ia[i].ID, ia2[i].ID)
		_, _, err := w.svc.HistoryThumbnail(ctx, a2.Session.ID, ia[i].ID)
		require.ErrorIs(t, err, session.ErrNotFound)
	}
}

func TestHistoryThumbnails(t *testing.T) {
	t.Parallel()
	w := newHistoryWorld(t)
	ctx := t.Context()
	p := w.sim.Patients()[0]
	big := testJPEG(t, 1600, 1200, color.RGBA{R: 200, G: 100, B: 50})
	_, err := w.sim.SeedMedia(p.ID, alextest.SeedMedia{Created: w.now.Add(-time.Hour), BodySite: alextest.SiteBack, Data: big, Width: 1600, Height: 1200})
	require.NoError(t, err)
	st := w.start(t, 0)
	sid := st.Session.ID
	img, err := w.svc.AcceptUpload(ctx, Uploader{SessionID: sid}, bytes.NewReader(testJPEG(t, 80, 60, color.RGBA{B: 255})))
	require.NoError(t, err)

	items, err := w.svc.History(ctx, sid, HistoryQuery{})
	require.NoError(t, err)
	require.Len(t, items, 6)
	assert.Equal(t, 1600, items[0].Width)
	assert.Equal(t, 1200, items[0].Height)

	read := func(sid, id string) []byte {
		t.Helper()
		rc, ct, err := w.svc.HistoryThumbnail(ctx, sid, id)
		require.NoError(t, err)
		defer rc.Close()
		assert.Equal(t, "image/jpeg", ct)
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		return b
	}
	thumbs := map[string][]byte{}
	for _, it := range items {
		b := read(sid, it.ID)
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
		require.NoError(t, err, "a JPEG")
		assert.LessOrEqual(t, max(cfg.Width, cfg.Height), HistoryThumbnailEdge)
		assert.LessOrEqual(t, len(b), historyThumbnailBytes)
		thumbs[it.ID] = b
	}
	cfg, _ := jpeg.DecodeConfig(bytes.NewReader(thumbs[items[0].ID]))
	assert.Equal(t, HistoryThumbnailEdge, cfg.Width, "the 1600x1200 photo is shrunk to a 320 px long edge")
	assert.Equal(t, 240, cfg.Height)

	// Held under the session's prefix only: the upload, six thumbnails and
	// their index.
	keys := w.blobsUnder(t, sid)
	assert.Len(t, keys, 1+6+1)
	assert.Contains(t, keys, string(img.BlobKey))

	// Reused on the next view: no thumbnail is written again.
	before := map[string]time.Time{}
	require.NoError(t, w.blobs.List(ctx, func(b session.BlobInfo) error { before[string(b.Key)] = b.ModTime; return nil }))
	_, err = w.svc.History(ctx, sid, HistoryQuery{})
	require.NoError(t, err)
	require.NoError(t, w.blobs.List(ctx, func(b session.BlobInfo) error {
		assert.Equal(t, before[string(b.Key)], b.ModTime, "blob rewritten")
		return nil
	}))

	// An upload's id is not a history item: its bytes cannot be read here.
	_, _, err = w.svc.HistoryThumbnail(ctx, sid, img.ID)
	require.ErrorIs(t, err, session.ErrNotFound)
	for _, bad := range []string{"", "../x", strings.Repeat("a", 26) + "/", session.NewID()} {
		_, _, err = w.svc.HistoryThumbnail(ctx, sid, bad)
		require.ErrorIs(t, err, session.ErrNotFound, "%q", bad)
	}

	// A thumbnail the sweeper removed is made again from ALEX.
	for _, k := range keys {
		if k != string(img.BlobKey) {
			require.NoError(t, w.blobs.Delete(ctx, session.BlobKey(k)))
		}
	}
	searches := len(w.sim.Requests())
	again := read(sid, items[2].ID)
	assert.Equal(t, thumbs[items[2].ID], again, "the same thumbnail")
	assert.Greater(t, len(w.sim.Requests()), searches, "ALEX searched again")

	// Ending the session: nothing is served, and dropHistory (which
	// EndSession is to call) leaves nothing of it.
	require.NoError(t, w.svc.EndSession(ctx, sid))
	_, _, err = w.svc.HistoryThumbnail(ctx, sid, items[0].ID)
	require.Error(t, err)
	assert.Contains(t, []FailureCode{CodeNotFound, CodeSessionExpired}, CodeOf(err))
	require.NoError(t, w.svc.dropHistory(ctx, sid))
	assert.Empty(t, w.blobsUnder(t, sid))
}

// TestHistoryThumbnailsSweptWithSession: without dropHistory, the sweeper
// deletes a finished session's thumbnails.
func TestHistoryThumbnailsSweptWithSession(t *testing.T) {
	t.Parallel()
	w := newHistoryWorld(t)
	ctx := t.Context()
	st := w.start(t, 0)
	items, err := w.svc.History(ctx, st.Session.ID, HistoryQuery{})
	require.NoError(t, err)
	require.NotEmpty(t, items)
	require.Len(t, w.blobsUnder(t, st.Session.ID), len(items)+1)
	require.NoError(t, w.svc.EndSession(ctx, st.Session.ID))
	_, err = w.svc.Sessions().Sweep(ctx)
	require.NoError(t, err)
	assert.Empty(t, w.blobsUnder(t, st.Session.ID))
}

func TestHistoryALEXForbidden(t *testing.T) {
	t.Parallel()
	var roles []string
	for _, r := range alextest.DefaultRoles() {
		if r != alextest.RoleMediaRead {
			roles = append(roles, r)
		}
	}
	w := newHistoryWorld(t, alextest.WithRoles(roles...))
	st := w.start(t, 0)
	_, err := w.svc.History(t.Context(), st.Session.ID, HistoryQuery{})
	require.ErrorIs(t, err, alex.ErrForbidden)
	assert.Equal(t, CodeALEXForbidden, CodeOf(err))
	views := w.audit.events("history.viewed")
	require.Len(t, views, 1)
	assert.Equal(t, session.AuditFailed, views[0].Outcome)
	assert.Equal(t, string(CodeALEXForbidden), views[0].Reason)
	assert.Empty(t, w.blobsUnder(t, st.Session.ID))
}

func TestHistoryHTTP(t *testing.T) {
	t.Parallel()
	w := newHistoryWorld(t)
	st := w.start(t, 0)
	cfg, err := HTTPOptions{}.withDefaults()
	require.NoError(t, err)
	cfg.Logger = w.svc.Logger()
	a := &api{s: w.svc, cfg: cfg}
	get := func(h http.HandlerFunc, target, id, cred string) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, target, nil)
		if id != "" {
			req.SetPathValue("id", id)
		}
		if cred != "" {
			req.Header.Set("Authorization", "Bearer "+cred)
		}
		rec := httptest.NewRecorder()
		h(rec, req)
		return rec
	}
	list := a.withDesktop(a.history)
	thumb := a.withDesktop(a.historyThumbnail)

	rec := get(list, "/history?bodySite="+alextest.SiteShin, "", st.Credential)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	var body struct{ Items []HistoryItem }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Len(t, body.Items, 5)
	assert.Equal(t, alextest.SiteShin, body.Items[0].BodySite)
	assert.True(t, body.Items[0].SameSite)
	assert.NotContains(t, rec.Body.String(), w.sim.Patients()[0].NHI)

	rec = get(thumb, "/history/x/thumbnail", body.Items[0].ID, st.Credential)
	require.Equal(t, 200, rec.Code, rec.Body.String())
	assert.Equal(t, "image/jpeg", rec.Header().Get("Content-Type"))
	assert.Equal(t, "private, no-store", rec.Header().Get("Cache-Control"))
	_, err = jpeg.DecodeConfig(bytes.NewReader(rec.Body.Bytes()))
	require.NoError(t, err)

	other := w.start(t, 1)
	rec = get(thumb, "/history/x/thumbnail", body.Items[0].ID, other.Credential)
	assert.Equal(t, 404, rec.Code)
	assert.Contains(t, rec.Body.String(), `"not_found"`)

	rec = get(list, "/history?bodySite=knee", "", st.Credential)
	assert.Equal(t, 400, rec.Code)
	rec = get(list, "/history", "", "")
	assert.Equal(t, 401, rec.Code)

	w.sim.SetRoles(slices.DeleteFunc(alextest.DefaultRoles(), func(r string) bool { return r == alextest.RoleMediaRead })...)
	w.sim.ExpireTokens()
	rec = get(list, "/history", "", st.Credential)
	assert.Equal(t, 502, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"alex_forbidden"`)
}

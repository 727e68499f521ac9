package clinicalimages_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
	"github.com/clinicpro/clinicalimages/session/storetest"
)

// brightPhoto is a JPEG of w x h light, textured pixels: nothing in it is
// near black, so a black region can only come from a redaction.
func brightPhoto(t testing.TB, w, h int, seed uint8) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{R: 150 + uint8((x+int(seed))%100), G: 140 + uint8(y%100), B: 170 + uint8((x*y)%80), A: 255})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 92}))
	return buf.Bytes()
}

// content reads an image's current bytes through the API.
func (w *world) content(desktop, id string) []byte {
	w.t.Helper()
	resp := w.do("GET", "/images/"+id+"/content", desktop, nil)
	defer resp.Body.Close()
	require.Equal(w.t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(w.t, err)
	return b
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// auditFor returns the records of one event.
func auditFor(a *auditLog, event string) []ci.AuditRecord {
	var out []ci.AuditRecord
	for _, r := range a.records() {
		if r.Event == event {
			out = append(out, r)
		}
	}
	return out
}

// TestEditRedactionReachesALEXAndNothingElse: a photo turned and redacted
// through HTTP is committed as a Media whose JPEG is the edited blob byte
// for byte, with the redacted rectangle black; the captured original is
// kept until the commit and deleted by it.
func TestEditRedactionReachesALEXAndNothingElse(t *testing.T) {
	t.Parallel()
	audit := &auditLog{}
	w := newWorld(t, ci.WithAudit(audit))
	desktop, _ := w.launch()
	st, up := w.call("POST", "/images", desktop, brightPhoto(t, 640, 480, 3))
	require.Equal(t, http.StatusCreated, st, up)
	id := up["id"].(string)
	captured := w.content(desktop, id)

	// Turned a quarter clockwise, the picture is 480 x 640; the face is at
	// (40, 100) to (200, 260) of the turned picture.
	face := image.Rect(40, 100, 200, 260)
	st, img := w.call("POST", "/images/"+id+"/edit", desktop, map[string]any{
		"rotate": 90,
		"redact": []map[string]int{{"x": face.Min.X, "y": face.Min.Y, "w": face.Dx(), "h": face.Dy()}},
	})
	require.Equal(t, http.StatusOK, st, img)
	assert.Equal(t, true, img["edited"])
	assert.Equal(t, false, img["lossless"], "a redaction is one re-encode")
	assert.EqualValues(t, 480, img["width"])
	assert.EqualValues(t, 640, img["height"])
	assert.EqualValues(t, 2, img["version"])
	assert.Contains(t, img, "title")
	edited := w.content(desktop, id)
	assert.Equal(t, sha256hex(edited), img["sha256"])
	assert.NotEqual(t, captured, edited)
	assert.Equal(t, 2, w.blobCount(), "the edit and the captured original")
	assert.Contains(t, w.events(desktop), "image.updated")

	recs := auditFor(audit, "image.edited")
	require.Len(t, recs, 1)
	assert.Equal(t, "rotate=90 crop=none redactions=1 lossless=false", recs[0].Detail)
	assert.Equal(t, img["sha256"], recs[0].SHA256)

	st, res := w.call("POST", "/commit", desktop, map[string]any{})
	require.Equal(t, 200, st, res)
	require.Equal(t, "committed", res["images"].([]any)[0].(map[string]any)["state"], res)
	ms := w.alex.Media()
	require.Len(t, ms, 1)
	data, ok := w.alex.MediaData(*ms[0].Id)
	require.True(t, ok)
	assert.Equal(t, sha256hex(edited), sha256hex(data), "the edited bytes, and only they, were sent")
	assert.EqualValues(t, 480, *ms[0].Width)
	assert.EqualValues(t, 640, *ms[0].Height)

	pic, err := jpeg.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 480, 640), pic.Bounds())
	// Inside the rectangle every pixel is black within JPEG's tolerance:
	// luma near 0 throughout (less 1 px of ringing at its edges), and every
	// channel near 0 away from the edges, where 4:2:0 chroma bleeds in.
	maxLuma, maxCore := 0, 0
	core := face.Inset(8)
	for y := face.Min.Y + 1; y < face.Max.Y-1; y++ {
		for x := face.Min.X + 1; x < face.Max.X-1; x++ {
			r, g, b, _ := pic.At(x, y).RGBA()
			r, g, b = r>>8, g>>8, b>>8
			maxLuma = max(maxLuma, int(299*r+587*g+114*b)/1000)
			if image.Pt(x, y).In(core) {
				maxCore = max(maxCore, int(r), int(g), int(b))
			}
		}
	}
	t.Logf("redaction: max luma %d, max channel inside the core %d", maxLuma, maxCore)
	assert.LessOrEqual(t, maxLuma, 12, "luma inside the redaction")
	assert.LessOrEqual(t, maxCore, 8, "colour inside the redaction's core")
	r, g, b, _ := pic.At(face.Max.X+20, face.Max.Y+20).RGBA()
	assert.Greater(t, int(r>>8+g>>8+b>>8), 300, "outside the redaction the photo is as it was")

	assert.Zero(t, w.blobCount(), "after commit neither the edit nor the original survives")
	sess, err := w.svc.LookupSession(t.Context(), w.sessionOf(desktop))
	require.NoError(t, err)
	assert.Nil(t, sess.Images[0].Original, "the committed image no longer points at an original")
	assert.True(t, sess.Images[0].Edited)

	// A committed image cannot be edited or reset.
	st, body := w.call("POST", "/images/"+id+"/edit", desktop, map[string]any{"rotate": 180})
	assert.Equal(t, http.StatusConflict, st, body)
	assert.Equal(t, "already_committed", errCode(body))
	st, body = w.call("POST", "/images/"+id+"/reset", desktop, nil)
	assert.Equal(t, http.StatusConflict, st, body)
	assert.Equal(t, "already_committed", errCode(body))
	_, err = w.svc.EditImage(t.Context(), w.sessionOf(desktop), id, compress.Edit{Rotate: 90})
	assert.ErrorIs(t, err, session.ErrAlreadyCommitted)
	assert.Len(t, w.alex.Media(), 1)
}

// sessionOf returns the session a desktop credential is for.
func (w *world) sessionOf(desktop string) string {
	w.t.Helper()
	st, body := w.call("GET", "/session", desktop, nil)
	require.Equal(w.t, 200, st, body)
	return body["id"].(string)
}

// TestEditLosslessThenReset: through the Service, a quarter turn and a crop
// on the block grid stay lossless (and the audit says so), each edit
// replaces the last without piling up blobs, and a reset gives back the
// captured bytes exactly.
func TestEditLosslessThenReset(t *testing.T) {
	t.Parallel()
	audit := &auditLog{}
	w := newWorld(t, ci.WithAudit(audit))
	desktop, sid := w.launch()
	id := w.upload(desktop, 5) // 320 x 240
	captured := w.content(desktop, id)
	ctx := t.Context()

	img, err := w.svc.EditImage(ctx, sid, id, compress.Edit{Rotate: 90})
	require.NoError(t, err)
	assert.True(t, img.Edited)
	assert.True(t, img.Lossless)
	assert.Equal(t, [2]int{240, 320}, [2]int{img.Width, img.Height})
	require.NotNil(t, img.Original)
	assert.Equal(t, sha256hex(captured), img.Original.SHA256)

	img, err = w.svc.EditImage(ctx, sid, id, compress.Edit{Crop: image.Rect(16, 32, 16+160, 32+192)})
	require.NoError(t, err)
	assert.True(t, img.Lossless, "a crop on the block grid keeps every coefficient")
	assert.Equal(t, [2]int{160, 192}, [2]int{img.Width, img.Height})
	assert.Equal(t, sha256hex(captured), img.Original.SHA256, "the original is the captured photo, not the first edit")
	assert.Equal(t, 2, w.blobCount(), "the intermediate edit was deleted")

	recs := auditFor(audit, "image.edited")
	require.Len(t, recs, 2)
	assert.Equal(t, "rotate=90 crop=none redactions=0 lossless=true", recs[0].Detail)
	assert.Equal(t, "rotate=0 crop=160x192 redactions=0 lossless=true", recs[1].Detail)
	assert.Equal(t, img.SHA256, recs[1].SHA256)

	img, err = w.svc.ResetImage(ctx, sid, id)
	require.NoError(t, err)
	assert.False(t, img.Edited)
	assert.False(t, img.Lossless)
	assert.Nil(t, img.Original)
	assert.Equal(t, [2]int{320, 240}, [2]int{img.Width, img.Height})
	assert.Equal(t, captured, w.content(desktop, id), "the captured bytes exactly")
	assert.Equal(t, sha256hex(captured), img.SHA256)
	assert.Equal(t, 1, w.blobCount(), "the edit was deleted")
	resets := auditFor(audit, "image.reset")
	require.Len(t, resets, 1)
	assert.Equal(t, img.SHA256, resets[0].SHA256)

	// A reset of an image not edited changes and audits nothing.
	again, err := w.svc.ResetImage(ctx, sid, id)
	require.NoError(t, err)
	assert.Equal(t, img.Version, again.Version)
	assert.Len(t, auditFor(audit, "image.reset"), 1)

	// Reset through HTTP answers with the image.
	st, body := w.call("POST", "/images/"+id+"/edit", desktop, map[string]any{"rotate": 270, "crop": map[string]int{"x": 0, "y": 0, "w": 240, "h": 160}})
	require.Equal(t, 200, st, body)
	assert.Equal(t, true, body["lossless"])
	st, body = w.call("POST", "/images/"+id+"/reset", desktop, nil)
	require.Equal(t, 200, st, body)
	assert.Equal(t, false, body["edited"])
	assert.EqualValues(t, 320, body["width"])
	assert.Equal(t, sha256hex(captured), body["sha256"])
}

// TestEditRefusals: edits that do not fit the photo are 422 invalid_edit
// and change nothing; an unknown image is 404.
func TestEditRefusals(t *testing.T) {
	t.Parallel()
	audit := &auditLog{}
	w := newWorld(t, ci.WithAudit(audit))
	desktop, _ := w.launch()
	id := w.upload(desktop, 7)
	tests := []struct {
		name string
		body map[string]any
	}{
		{"Rotate45", map[string]any{"rotate": 45}},
		{"CropOutside", map[string]any{"crop": map[string]int{"x": 300, "y": 0, "w": 100, "h": 100}}},
		{"EmptyCrop", map[string]any{"crop": map[string]int{"x": 0, "y": 0, "w": 0, "h": 10}}},
		{"RedactOutside", map[string]any{"rotate": 90, "redact": []map[string]int{{"x": 0, "y": 0, "w": 300, "h": 10}}}},
		{"EmptyRedaction", map[string]any{"redact": []map[string]int{{"x": 0, "y": 0, "w": 10, "h": -1}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, body := w.call("POST", "/images/"+id+"/edit", desktop, tc.body)
			assert.Equal(t, http.StatusUnprocessableEntity, st, body)
			assert.Equal(t, "invalid_edit", errCode(body))
			msg := body["error"].(map[string]any)["message"].(string)
			assert.Equal(t, ci.CodeInvalidEdit.Message(), msg)
		})
	}
	st, body := w.call("POST", "/images/"+session.NewID()+"/edit", desktop, map[string]any{"rotate": 90})
	assert.Equal(t, http.StatusNotFound, st, body)
	st, body = w.call("POST", "/images/"+id+"/edit", desktop, map[string]any{"rotate": 90, "colour": "red"})
	assert.Equal(t, http.StatusBadRequest, st, body)
	st, body = w.call("POST", "/images/"+id+"/edit", "", map[string]any{"rotate": 90})
	assert.Equal(t, http.StatusUnauthorized, st, body)

	st, img := w.call("GET", "/session", desktop, nil)
	require.Equal(t, 200, st)
	assert.EqualValues(t, 1, img["images"].([]any)[0].(map[string]any)["version"], "nothing changed")
	assert.Equal(t, 1, w.blobCount())
	refused := auditFor(audit, "image.edited")
	require.NotEmpty(t, refused)
	for _, r := range refused {
		assert.Equal(t, session.AuditRefused, r.Outcome)
		assert.Equal(t, string(ci.CodeInvalidEdit), r.Reason)
	}
}

// TestEditInboxScanSendsTheEdit: in Inbox Scan mode the TIFF carries the
// edited JPEG byte for byte, not the captured one.
func TestEditInboxScanSendsTheEdit(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ci.WithInboxScan())
	desktop, sid := w.launch()
	id := w.upload(desktop, 9)
	captured := w.content(desktop, id)
	_, err := w.svc.EditImage(t.Context(), sid, id, compress.Edit{Redact: []image.Rectangle{image.Rect(10, 10, 60, 60)}})
	require.NoError(t, err)
	edited := w.content(desktop, id)
	_, res := w.call("POST", "/commit", desktop, map[string]any{})
	require.Equal(t, "committed", res["images"].([]any)[0].(map[string]any)["state"], res)
	docs := w.alex.DocumentReferences()
	require.Len(t, docs, 1)
	tiff, ok := w.alex.DocumentReferenceData(*docs[0].Id)
	require.True(t, ok)
	assert.True(t, bytes.Contains(tiff, edited), "the edit inside")
	assert.False(t, bytes.Contains(tiff, captured[len(captured)/2:len(captured)/2+256]), "nothing of the captured JPEG")
	assert.Zero(t, w.blobCount())
}

// TestEditOriginalsGoWithTheSession: the captured original of an edited
// image is deleted when the session ends; the sweeper keeps it while the
// image is live (it is no orphan) and deletes it with the edit when the
// retention window passes or the session expires.
func TestEditOriginalsGoWithTheSession(t *testing.T) {
	t.Parallel()
	t.Run("EndSession", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		desktop, sid := w.launch()
		id := w.upload(desktop, 1)
		_, err := w.svc.EditImage(t.Context(), sid, id, compress.Edit{Rotate: 180})
		require.NoError(t, err)
		require.Equal(t, 2, w.blobCount())
		st, _ := w.call("DELETE", "/session", desktop, nil)
		require.Equal(t, http.StatusNoContent, st)
		assert.Zero(t, w.blobCount(), "no original survives the end of the session")
	})
	t.Run("RemoveImage", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		desktop, sid := w.launch()
		id := w.upload(desktop, 1)
		_, err := w.svc.EditImage(t.Context(), sid, id, compress.Edit{Rotate: 180})
		require.NoError(t, err)
		st, _ := w.call("DELETE", "/images/"+id, desktop, nil)
		require.Equal(t, http.StatusNoContent, st)
		assert.Zero(t, w.blobCount())
	})
	t.Run("Sweep", func(t *testing.T) {
		t.Parallel()
		clk := storetest.NewClock(time.Now())
		store, err := memory.NewStore(memory.WithClock(clk.Now))
		require.NoError(t, err)
		blobs, err := memory.NewBlobStore(memory.WithClock(clk.Now))
		require.NoError(t, err)
		w := newWorldBlobs(t, store, blobs, ci.WithClock(clk.Now), ci.WithSessionOptions(session.WithRetention(8*time.Minute)))
		sweep := func() session.SweepReport {
			t.Helper()
			rep, err := w.svc.Sessions().Sweep(t.Context())
			require.NoError(t, err)
			return rep
		}
		desktop, sid := w.launch()
		id := w.upload(desktop, 1)
		_, err = w.svc.EditImage(t.Context(), sid, id, compress.Edit{Rotate: 90, Redact: []image.Rectangle{image.Rect(0, 0, 16, 16)}})
		require.NoError(t, err)
		require.Equal(t, 2, w.blobCount())

		clk.Advance(6 * time.Minute) // past the orphan grace, within retention
		other, osid := w.launch()
		oid := w.upload(other, 2)
		_, err = w.svc.EditImage(t.Context(), osid, oid, compress.Edit{Rotate: 270})
		require.NoError(t, err)
		assert.Equal(t, 0, sweep().BlobsDeleted, "an original held by a live image is no orphan")
		assert.Equal(t, 4, w.blobCount())

		// The first session's retention passes (it is still live).
		_, err = w.svc.Session(t.Context(), sid)
		require.NoError(t, err)
		clk.Advance(3 * time.Minute)
		rep := sweep()
		assert.Equal(t, 2, rep.BlobsDeleted, "the edit and its original, both past retention: %+v", rep)
		sess, err := w.svc.LookupSession(t.Context(), sid)
		require.NoError(t, err)
		assert.True(t, sess.Images[0].Purged)
		assert.Nil(t, sess.Images[0].Original)
		assert.Equal(t, 2, w.blobCount(), "the second session's edit and original are within retention")

		// The second session expires without its desktop ending it.
		clk.Advance(11 * time.Minute)
		assert.Equal(t, 2, sweep().BlobsDeleted)
		var left []string
		_ = w.blobs.List(context.Background(), func(b session.BlobInfo) error { left = append(left, string(b.Key)); return nil })
		assert.Empty(t, left, "no original survives the sweep")
	})
}

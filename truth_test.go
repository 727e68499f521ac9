package clinicalimages_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/media"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/storetest"
)

// Issue 14: what the GP reads in Evolution (the title) tells the truth,
// PATCH refuses what commit would, consent provenance comes from the server,
// and only plain text reaches ALEX.

const forearm = "14975008"

// upload adds one photo from the desktop and returns its id.
func (w *world) upload(desktop string, seed uint8) string {
	w.t.Helper()
	st, img := w.call("POST", "/images", desktop, photo(w.t, 320, 240, seed))
	require.Equal(w.t, http.StatusCreated, st, img)
	return img["id"].(string)
}

// fieldsOf returns the field names of an error reply.
func fieldsOf(body map[string]any) []string {
	e, _ := body["error"].(map[string]any)
	fs, _ := e["fields"].([]any)
	var out []string
	for _, f := range fs {
		name, _ := f.(map[string]any)["field"].(string) // media.Problem's JSON
		out = append(out, name)
	}
	return out
}

// TestTitleShownIsTitleSent is the Lesion example: a GP's title no
// longer erases the side, and PATCH and the session show, byte for byte,
// the title the simulator records.
func TestTitleShownIsTitleSent(t *testing.T) {
	t.Parallel()
	for _, inbox := range []bool{false, true} {
		name := "Media"
		var opts []ci.Option
		if inbox {
			name, opts = "InboxScan", []ci.Option{ci.WithInboxScan()}
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, opts...)
			desktop, _ := w.launch()
			typed, generated := w.upload(desktop, 1), w.upload(desktop, 2)

			st, body := w.call("PATCH", "/images/"+typed, desktop, map[string]any{
				"clinical": map[string]string{"bodySite": forearm, "laterality": media.LateralityLeft, "view": "close-up", "title": "Lesion"}})
			require.Equal(t, 200, st, body)
			assert.Equal(t, "Lesion — left forearm, close-up", body["title"], "the side is in the title Evolution shows")
			assert.Equal(t, "Lesion", body["clinical"].(map[string]any)["title"], "what the GP typed is kept apart")

			st, body = w.call("PATCH", "/images/"+generated, desktop, map[string]any{
				"clinical": map[string]string{"bodySite": forearm, "laterality": media.LateralityRight, "view": "overview"}})
			require.Equal(t, 200, st, body)
			genTitle := body["title"].(string)
			assert.Regexp(t, `^Right forearm, overview, \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}$`, genTitle)

			_, sess := w.call("GET", "/session", desktop, nil)
			shown := map[string]string{}
			for _, img := range sess["images"].([]any) {
				m := img.(map[string]any)
				shown[m["id"].(string)] = m["title"].(string)
			}
			assert.Equal(t, map[string]string{typed: "Lesion — left forearm, close-up", generated: genTitle}, shown)

			st, res := w.call("POST", "/commit", desktop, map[string]any{"images": []string{typed, generated}})
			require.Equal(t, 200, st, res)
			sent := map[string]string{}
			if inbox {
				for _, d := range w.alex.DocumentReferences() {
					sent[*d.Identifier[0].Value] = *d.Content[0].Attachment.Title
				}
			} else {
				for _, m := range w.alex.Media() {
					sent[*m.Identifier[0].Value] = *m.Content.Title
				}
			}
			assert.Equal(t, shown, sent, "what the desktop showed is what ALEX got, byte for byte")
		})
	}
}

// TestPatchRefusesWhatCommitWould: every limit commit enforces on the
// description is enforced by PATCH, as a field error naming the field, and
// nothing is stored.
func TestPatchRefusesWhatCommitWould(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, _ := w.launch()
	id := w.upload(desktop, 3)
	_, before := w.call("GET", "/session", desktop, nil)
	version := before["images"].([]any)[0].(map[string]any)["version"]

	tests := []struct {
		name   string
		body   map[string]any
		fields []string
	}{
		{"title of 81 characters", map[string]any{"clinical": map[string]string{"title": strings.Repeat("t", media.MaxTitleLength+1)}}, []string{"title"}},
		{"note of 4,001 characters", map[string]any{"clinical": map[string]string{"note": strings.Repeat("n", media.MaxNoteLength+1)}}, []string{"note"}},
		{"side without a site", map[string]any{"clinical": map[string]string{"laterality": media.LateralityLeft}}, []string{"laterality"}},
		{"unknown codes", map[string]any{"clinical": map[string]string{"bodySite": "1", "view": "selfie"}}, []string{"bodySite", "view"}},
		{"unknown consent method", map[string]any{"consent": map[string]any{"given": true, "method": "implied"}}, []string{"consent.method"}},
	}
	for _, tc := range tests {
		st, body := w.call("PATCH", "/images/"+id, desktop, tc.body)
		assert.Equal(t, http.StatusUnprocessableEntity, st, tc.name)
		assert.Equal(t, "invalid_metadata", errCode(body), tc.name)
		assert.Equal(t, tc.fields, fieldsOf(body), tc.name)
		msg, _ := body["error"].(map[string]any)["message"].(string)
		assert.Contains(t, msg, "Please check: "+tc.fields[0]+": ", "the GP is told what to fix: %s", tc.name)
	}
	_, after := w.call("GET", "/session", desktop, nil)
	assert.Equal(t, version, after["images"].([]any)[0].(map[string]any)["version"], "nothing refused was stored")

	// At the limits everything is accepted, and commits.
	long := strings.Repeat("t", media.MaxTitleLength)
	st, body := w.call("PATCH", "/images/"+id, desktop, map[string]any{
		"clinical": map[string]string{"bodySite": forearm, "laterality": media.LateralityLeft, "title": long, "note": strings.Repeat("n", media.MaxNoteLength)},
		"consent":  map[string]any{"given": true, "method": "Written "}})
	require.Equal(t, 200, st, body)
	title := body["title"].(string)
	assert.True(t, strings.HasSuffix(title, "… — left forearm"), "only the GP's words are shortened: %q", title)
	assert.Equal(t, media.MaxTitleLength, utf8.RuneCountInString(title))
	assert.Equal(t, "written", body["consent"].(map[string]any)["method"])
	_, res := w.call("POST", "/commit", desktop, map[string]any{})
	require.Equal(t, "committed", res["images"].([]any)[0].(map[string]any)["state"], res)
	assert.Equal(t, title, *w.alex.Media()[0].Content.Title)

	// The Go API refuses the same, with the same error.
	_, err := w.svc.UpdateImage(t.Context(), "no-such-session", id, session.Clinical{Title: strings.Repeat("t", 81)}, session.Consent{})
	assert.Error(t, err)
}

// TestServiceRefusesLongTextAtUpdate: the Service itself (not only its
// HTTP API) refuses at UpdateImage, with a *media.ValidationError.
func TestServiceRefusesLongTextAtUpdate(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, sid := w.launch()
	id := w.upload(desktop, 4)
	_, err := w.svc.UpdateImage(t.Context(), sid, id, session.Clinical{Title: strings.Repeat("t", 81), Note: strings.Repeat("n", 4001)}, session.Consent{})
	require.ErrorIs(t, err, media.ErrInvalid)
	assert.Equal(t, ci.CodeInvalidMetadata, ci.CodeOf(err))
	var ve *media.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, []string{"title", "note"}, ve.Fields())
}

// TestConsentProvenanceFromServer: who recorded consent and when come from
// the launch and the Service's clock; a forged author or time in the body
// is refused and never reaches the Media, and the method does.
func TestConsentProvenanceFromServer(t *testing.T) {
	t.Parallel()
	clk := storetest.NewClock(time.Now())
	w := newWorld(t, ci.WithClock(clk.Now))
	desktop, _ := w.launch()
	prac := w.alex.Practitioners()[0].ID
	forger := w.alex.Practitioners()[1].ID
	id := w.upload(desktop, 5)

	st, body := w.call("PATCH", "/images/"+id, desktop, map[string]any{
		"clinical": map[string]string{"bodySite": forearm, "laterality": media.LateralityLeft},
		"consent":  map[string]any{"given": true, "method": "verbal", "recordedBy": forger, "recordedAt": "1999-01-01T00:00:00Z"}})
	assert.Equal(t, http.StatusUnprocessableEntity, st)
	assert.Equal(t, []string{"consent.recordedBy", "consent.recordedAt"}, fieldsOf(body))

	recorded := clk.Now()
	st, body = w.call("PATCH", "/images/"+id, desktop, map[string]any{
		"clinical": map[string]string{"bodySite": forearm, "laterality": media.LateralityLeft},
		"consent":  map[string]any{"given": true, "method": "written"}})
	require.Equal(t, 200, st, body)
	c := body["consent"].(map[string]any)
	assert.Equal(t, prac, c["recordedBy"], "the launching practitioner")
	at, err := time.Parse(time.RFC3339Nano, c["recordedAt"].(string))
	require.NoError(t, err)
	assert.True(t, at.Equal(recorded), "the Service's clock: %v, want %v", at, recorded)

	// Saving again with the same consent keeps when it was recorded.
	clk.Advance(time.Minute)
	st, body = w.call("PATCH", "/images/"+id, desktop, map[string]any{
		"clinical": map[string]string{"bodySite": forearm, "laterality": media.LateralityLeft, "title": "Naevus"},
		"consent":  map[string]any{"given": true, "method": "written"}})
	require.Equal(t, 200, st, body)
	assert.Equal(t, c["recordedAt"], body["consent"].(map[string]any)["recordedAt"])

	_, res := w.call("POST", "/commit", desktop, map[string]any{})
	require.Equal(t, "committed", res["images"].([]any)[0].(map[string]any)["state"], res)
	m := w.alex.Media()[0]
	require.Len(t, m.Note, 1)
	n := m.Note[0]
	assert.Equal(t, "Consent (written): clinical record: yes; teaching: no; publication: no.", n.Text, "the method reaches the Media")
	assert.Equal(t, "Practitioner/"+prac, *n.AuthorReference.Reference)
	noteAt, err := time.Parse(time.RFC3339, *n.Time)
	require.NoError(t, err)
	assert.True(t, noteAt.Equal(recorded.Truncate(time.Second)), "%v", noteAt)
}

// TestForgedConsentStoredEarlierDoesNotReachMedia: a record written before
// the Service set provenance itself (a forged author and a time of 1999)
// is committed with the launching practitioner and a time the server knows.
func TestForgedConsentStoredEarlierDoesNotReachMedia(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	desktop, sid := w.launch()
	prac, forger := w.alex.Practitioners()[0].ID, w.alex.Practitioners()[1].ID
	id := w.upload(desktop, 6)
	_, err := w.store.Update(context.Background(), sid, func(s *session.Session) error {
		s.Image(id).Consent = session.Consent{Given: true, Method: "verbal", RecordedBy: forger, RecordedAt: time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)}
		return nil
	})
	require.NoError(t, err)
	_, res := w.call("POST", "/commit", desktop, map[string]any{})
	require.Equal(t, "committed", res["images"].([]any)[0].(map[string]any)["state"], res)
	n := w.alex.Media()[0].Note[0]
	assert.Equal(t, "Practitioner/"+prac, *n.AuthorReference.Reference)
	assert.NotContains(t, *n.Time, "1999")
	assert.Contains(t, n.Text, "(verbal)")
}

// TestOnlyPlainTextReachesALEX: bidirectional overrides, zero-width and
// control characters typed into the title and note are removed before they
// are stored, shown or sent.
func TestOnlyPlainTextReachesALEX(t *testing.T) {
	t.Parallel()
	for _, inbox := range []bool{false, true} {
		name := "Media"
		var opts []ci.Option
		if inbox {
			name, opts = "InboxScan", []ci.Option{ci.WithInboxScan()}
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, opts...)
			desktop, _ := w.launch()
			id := w.upload(desktop, 7)
			st, body := w.call("PATCH", "/images/"+id, desktop, map[string]any{
				"clinical": map[string]string{"bodySite": forearm, "laterality": media.LateralityRight,
					"title": "\u202eLesion\u202c\u200b \x1b[1m", "note": "\ufeffgrowing\u2066 fast\u2069\r\nbleeds\u00ad\x00"},
				"consent": map[string]any{"given": true, "method": "\u200bverbal\u200d"}})
			require.Equal(t, 200, st, body)
			clin := body["clinical"].(map[string]any)
			assert.Equal(t, "Lesion [1m", clin["title"])
			assert.Equal(t, "growing fast\nbleeds", clin["note"])
			assert.Equal(t, "verbal", body["consent"].(map[string]any)["method"])
			assert.Equal(t, "Lesion [1m — right forearm", body["title"])

			_, res := w.call("POST", "/commit", desktop, map[string]any{})
			require.Equal(t, "committed", res["images"].([]any)[0].(map[string]any)["state"], res)
			var texts []string
			if inbox {
				d := w.alex.DocumentReferences()[0]
				texts = append(texts, *d.Content[0].Attachment.Title)
				if d.Description != nil {
					texts = append(texts, *d.Description)
				}
			} else {
				m := w.alex.Media()[0]
				texts = append(texts, *m.Content.Title)
				for _, n := range m.Note {
					texts = append(texts, n.Text)
				}
				assert.Contains(t, texts, "growing fast\nbleeds")
			}
			for _, s := range texts {
				for _, r := range s {
					assert.False(t, (unicode.IsControl(r) && r != '\n') || unicode.Is(unicode.Cf, r), "%q holds %U", s, r)
				}
			}
		})
	}
}

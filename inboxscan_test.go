package clinicalimages_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/media"
)

func TestInboxScanPath(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ci.WithInboxScan())
	desktop, _ := w.launch()
	_, img := w.call("POST", "/images", desktop, photo(t, 1200, 900, 6))
	id := img["id"].(string)
	w.call("PATCH", "/images/"+id, desktop, map[string]any{"clinical": map[string]string{"title": "Mole, back"}})
	res0 := w.do("GET", "/images/"+id+"/content", desktop, nil)
	stored, err := io.ReadAll(res0.Body)
	res0.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res0.StatusCode)

	_, res := w.call("POST", "/commit", desktop, map[string]any{})
	o := res["images"].([]any)[0].(map[string]any)
	require.Equal(t, "committed", o["state"], o)
	assert.Empty(t, w.alex.Media(), "no Media in Inbox Scan mode")
	docs := w.alex.DocumentReferences()
	require.Len(t, docs, 1)
	p := w.alex.Patients()[0]
	assert.Contains(t, *docs[0].Subject.Reference, "Patient/"+p.ID)
	assert.Equal(t, id, *docs[0].Identifier[0].Value)
	require.Len(t, docs[0].Author, 1)
	assert.True(t, strings.HasSuffix(*docs[0].Author[0].Reference, "/Practitioner/"+w.alex.Practitioners()[0].ID), "filed in the launching GP's Inbox: %s", *docs[0].Author[0].Reference)
	assert.Equal(t, "image/tiff", *docs[0].Content[0].Attachment.ContentType)
	tiff, ok := w.alex.DocumentReferenceData(*docs[0].Id)
	require.True(t, ok)
	assert.True(t, bytes.HasPrefix(tiff, []byte("II*\x00")), "a TIFF")
	assert.True(t, bytes.Contains(tiff, stored), "the stored JPEG, byte for byte, inside: no second lossy generation")
}

// TestInboxScanPDF: WithInboxScanFormat(media.DocumentPDF) wraps each photo
// in a captioned PDF page instead.
func TestInboxScanPDF(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ci.WithInboxScanFormat(media.DocumentPDF))
	desktop, _ := w.launch()
	w.call("POST", "/images", desktop, photo(t, 1200, 900, 6))
	_, res := w.call("POST", "/commit", desktop, map[string]any{})
	require.Equal(t, "committed", res["images"].([]any)[0].(map[string]any)["state"], res)
	docs := w.alex.DocumentReferences()
	require.Len(t, docs, 1)
	assert.Equal(t, "application/pdf", *docs[0].Content[0].Attachment.ContentType)
	pdf, ok := w.alex.DocumentReferenceData(*docs[0].Id)
	require.True(t, ok)
	assert.True(t, bytes.HasPrefix(pdf, []byte("%PDF-")))

	_, err := ci.New(alexClient(t, w.alex, slog.New(slog.DiscardHandler)), ci.WithInboxScanFormat(media.DocumentFormat(7)))
	assert.Error(t, err, "an unknown format is refused")
}

func TestInboxScanUnknownOutcomeNeedsTheGPsWord(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ci.WithInboxScan())
	desktop, _ := w.launch()
	w.call("POST", "/images", desktop, photo(t, 600, 400, 6))
	w.alex.DropNext(1)
	_, res := w.call("POST", "/commit", desktop, map[string]any{})
	o := res["images"].([]any)[0].(map[string]any)
	assert.Equal(t, "failed", o["state"])
	assert.Equal(t, "outcome_unknown", o["code"])
	require.Len(t, w.alex.DocumentReferences(), 1, "ALEX stored it")

	_, res = w.call("POST", "/commit", desktop, map[string]any{})
	o = res["images"].([]any)[0].(map[string]any)
	assert.Equal(t, "needs_check", o["code"])
	assert.Len(t, w.alex.DocumentReferences(), 1, "not resent without confirmation")

	_, res = w.call("POST", "/commit", desktop, map[string]any{"confirmResend": true})
	assert.Equal(t, "committed", res["images"].([]any)[0].(map[string]any)["state"])
	assert.Len(t, w.alex.DocumentReferences(), 2, "resent once the GP confirmed")
}

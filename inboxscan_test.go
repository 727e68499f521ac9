package clinicalimages_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
)

func TestInboxScanPath(t *testing.T) {
	t.Parallel()
	w := newWorld(t, ci.WithInboxScan())
	desktop, _ := w.launch()
	_, img := w.call("POST", "/images", desktop, photo(t, 1200, 900, 6))
	id := img["id"].(string)
	w.call("PATCH", "/images/"+id, desktop, map[string]any{"clinical": map[string]string{"title": "Mole, back"}})

	_, res := w.call("POST", "/commit", desktop, map[string]any{})
	o := res["images"].([]any)[0].(map[string]any)
	require.Equal(t, "committed", o["state"], o)
	assert.Empty(t, w.alex.Media(), "no Media in Inbox Scan mode")
	docs := w.alex.DocumentReferences()
	require.Len(t, docs, 1)
	p := w.alex.Patients()[0]
	assert.Contains(t, *docs[0].Subject.Reference, "Patient/"+p.ID)
	assert.Equal(t, id, *docs[0].Identifier[0].Value)
	pdf, ok := w.alex.DocumentReferenceData(*docs[0].Id)
	require.True(t, ok)
	assert.True(t, bytes.HasPrefix(pdf, []byte("%PDF-")))
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

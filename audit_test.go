package clinicalimages_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/media"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/storetest"
)

func (a *auditLog) records() []ci.AuditRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]ci.AuditRecord(nil), a.recs...)
}

// TestAuditSaysWhoWhenOutcome walks a visit through the Service with a
// recording sink: every record carries the Service's time, the launching
// practitioner and an outcome, and the refusals and failures say so.
func TestAuditSaysWhoWhenOutcome(t *testing.T) {
	t.Parallel()
	start := time.Now().Truncate(time.Second)
	clk := storetest.NewClock(start)
	audit := &auditLog{}
	w := newWorld(t, ci.WithClock(clk.Now), ci.WithAudit(audit))
	prac := w.alex.Practitioners()[0].ID
	patient := w.alex.Patients()[0]

	desktop, _ := w.launch()
	clk.Advance(time.Second)
	phone := w.pair(desktop)
	clk.Advance(time.Second)
	st, up := w.call("POST", "/phone/images", phone, photo(t, 320, 240, 1))
	require.Equal(t, http.StatusCreated, st, up)
	kept := up["image"].(string)
	st, _ = w.call("POST", "/images", desktop, []byte("not a photo at all"))
	require.Equal(t, http.StatusUnsupportedMediaType, st)
	removed := w.upload(desktop, 2)
	failing := w.upload(desktop, 3)

	st, _ = w.call("PATCH", "/images/"+kept, desktop, map[string]any{
		"consent": map[string]any{"given": true, "method": "verbal", "recordedBy": "someone-else"}})
	require.Equal(t, http.StatusUnprocessableEntity, st)
	st, _ = w.call("PATCH", "/images/"+kept, desktop, map[string]any{
		"clinical": map[string]string{"bodySite": forearm, "laterality": media.LateralityLeft},
		"consent":  map[string]any{"given": true, "method": "verbal"}})
	require.Equal(t, 200, st)
	st, _ = w.call("PATCH", "/images/"+failing, desktop, map[string]any{"clinical": map[string]string{"title": "x"}})
	require.Equal(t, 200, st)

	st, _ = w.call("DELETE", "/images/"+removed, desktop, nil)
	require.Equal(t, http.StatusNoContent, st)
	st, res := w.call("POST", "/commit", desktop, map[string]any{"images": []string{kept}})
	require.Equal(t, 200, st, res)
	w.alex.FailNext(1, alextest.Fault{Status: 400, Path: "/FHIR/Media"})
	st, res = w.call("POST", "/commit", desktop, map[string]any{"images": []string{failing}})
	require.Equal(t, 200, st, res)
	require.Equal(t, "failed", res["images"].([]any)[0].(map[string]any)["state"])
	st, _ = w.call("DELETE", "/handoff", desktop, nil)
	require.Equal(t, http.StatusNoContent, st)
	st, _ = w.call("DELETE", "/session", desktop, nil)
	require.Equal(t, http.StatusNoContent, st)

	recs := audit.records()
	var events []string
	outcome := map[string][]string{}
	for _, r := range recs {
		events = append(events, r.Event)
		outcome[r.Event] = append(outcome[r.Event], r.Outcome)
		assert.Equal(t, prac, r.Practitioner, "who: %s", r.Event)
		assert.False(t, r.Time.IsZero(), "when: %s", r.Event)
		assert.False(t, r.Time.Before(start) || r.Time.After(clk.Now()), "when is the Service's clock: %s at %v", r.Event, r.Time)
		assert.Contains(t, []string{session.AuditOK, session.AuditRefused, session.AuditFailed}, r.Outcome, r.Event)
		assert.NotEmpty(t, r.Session, r.Event)
		for _, phi := range []string{patient.NHI, patient.ID, patient.Family, patient.Given} {
			assert.NotContains(t, r.Detail+r.Reason, phi, r.Event)
		}
	}
	for _, e := range []string{"session.started", "phone.connected", "image.uploaded", "image.rejected", "image.metadata",
		"image.removed", "commit.attempted", "image.committed", "image.failed", "phone.revoked", "session.ended"} {
		assert.Contains(t, events, e)
	}
	assert.Equal(t, []string{session.AuditRefused}, outcome["image.rejected"])
	assert.Equal(t, []string{session.AuditRefused, session.AuditOK, session.AuditOK}, outcome["image.metadata"])
	assert.Equal(t, []string{session.AuditFailed}, outcome["image.failed"])
	assert.Equal(t, []string{session.AuditOK}, outcome["image.committed"])
	assert.Equal(t, start, recs[0].Time, "session.started at the clock's time")

	var details []string
	for _, r := range recs {
		if r.Event == "image.metadata" {
			details = append(details, r.Detail)
		}
	}
	assert.Equal(t, []string{"fields=consent.recordedBy", "consent=verbal", "consent=none"}, details, "the consent method is in the audit")
}

// TestEveryAuditGoesThroughRecord: in the package's own code, the sink is
// called in one place only, the Service method that fills Time, Outcome and
// Practitioner; a new call site that bypasses it fails here.
func TestEveryAuditGoesThroughRecord(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	var callers []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		require.NoError(t, err)
		f, err := parser.ParseFile(fset, name, src, 0)
		require.NoError(t, err)
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Audit" {
					return true
				}
				if inner, ok := sel.X.(*ast.SelectorExpr); ok && inner.Sel.Name == "audit" {
					callers = append(callers, name+":"+fn.Name.Name)
				}
				return true
			})
		}
	}
	assert.Equal(t, []string{"audit.go:record"}, callers)
}

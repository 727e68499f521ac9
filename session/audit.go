package session

import (
	"context"
	"log/slog"
	"time"
)

// AuditRecord is one step of the flow, for the practice's audit trail. It
// carries ids, hashes and reason codes only: never image bytes, names, NHIs,
// handoff codes or tokens. The Service fills Time from its clock and
// Practitioner from the verified launch.
type AuditRecord struct {
	Time         time.Time // when the step happened (the server's clock)
	Event        string    // session.started, phone.connected, image.uploaded, image.metadata, commit.attempted, image.committed, image.failed, image.removed, session.expired...
	Practitioner string    // who: the ALEX Practitioner id of the launching GP
	Session      string
	Image        string
	Facility     string
	Source       string // launch source, for session.started
	SHA256       string // of the stored image bytes
	MediaID      string // ALEX Media (or DocumentReference) id, once committed
	Outcome      string // "ok", "refused" or "failed"; empty reads as "ok"
	Reason       string // a stable code for failures
	Detail       string // free text without PHI
}

// LogAttrs is r as log attributes: "event", "at" when Time is set, then
// every other field that is not empty (ids, hashes and codes only, as the
// record holds). SlogAudit and a sink that logs a record it could not keep
// write the same line.
func (r AuditRecord) LogAttrs() []slog.Attr {
	attrs := []slog.Attr{slog.String("event", r.Event)}
	if !r.Time.IsZero() {
		attrs = append(attrs, slog.String("at", r.Time.UTC().Format(time.RFC3339Nano)))
	}
	for _, f := range [...]struct{ k, v string }{
		{"practitioner", r.Practitioner}, {"session", r.Session}, {"image", r.Image},
		{"facility", r.Facility}, {"source", r.Source}, {"sha256", r.SHA256}, {"media", r.MediaID},
		{"outcome", r.Outcome}, {"reason", r.Reason}, {"detail", r.Detail},
	} {
		if f.v != "" {
			attrs = append(attrs, slog.String(f.k, f.v))
		}
	}
	return attrs
}

// Outcomes of an AuditRecord.
const (
	AuditOK      = "ok"
	AuditRefused = "refused"
	AuditFailed  = "failed"
)

// AuditSink receives audit records. Implementations must be safe for
// concurrent use and must not block for long.
type AuditSink interface {
	Audit(ctx context.Context, r AuditRecord)
}

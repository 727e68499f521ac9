package clinicalimages

import (
	"context"
	"log/slog"
	"time"

	"github.com/clinicpro/clinicalimages/session"
)

// AuditRecord is one step of the flow, for the practice's audit trail; see
// session.AuditRecord.
type AuditRecord = session.AuditRecord

// AuditSink receives audit records; see session.AuditSink.
type AuditSink = session.AuditSink

// SlogAudit writes audit records to a slog.Logger at INFO with the message
// "audit". It is the default sink.
type SlogAudit struct{ Logger *slog.Logger }

// Audit implements AuditSink.
func (a SlogAudit) Audit(ctx context.Context, r AuditRecord) {
	attrs := []slog.Attr{slog.String("event", r.Event)}
	if !r.Time.IsZero() {
		attrs = append(attrs, slog.String("at", r.Time.UTC().Format(time.RFC3339Nano)))
	}
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("practitioner", r.Practitioner)
	add("session", r.Session)
	add("image", r.Image)
	add("facility", r.Facility)
	add("source", r.Source)
	add("sha256", r.SHA256)
	add("media", r.MediaID)
	add("outcome", r.Outcome)
	add("reason", r.Reason)
	add("detail", r.Detail)
	a.Logger.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
}

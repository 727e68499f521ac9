package clinicalimages

import (
	"context"
	"log/slog"
)

// AuditRecord is one step of the flow, for the practice's audit trail. It
// carries ids, hashes and reason codes only: never image bytes, names, NHIs
// or tokens.
type AuditRecord struct {
	Event    string // session.started, phone.connected, image.uploaded, image.metadata, commit.attempted, image.committed, image.failed, image.removed, session.expired...
	Session  string
	Image    string
	Facility string
	Source   string // launch source, for session.started
	SHA256   string // of the stored image bytes
	MediaID  string // ALEX Media id, once committed
	Reason   string // a stable code for failures
	Detail   string // free text without PHI
}

// AuditSink receives audit records. Implementations must be safe for
// concurrent use and must not block for long.
type AuditSink interface {
	Audit(ctx context.Context, r AuditRecord)
}

// SlogAudit writes audit records to a slog.Logger at INFO with the message
// "audit". It is the default sink.
type SlogAudit struct{ Logger *slog.Logger }

// Audit implements AuditSink.
func (a SlogAudit) Audit(ctx context.Context, r AuditRecord) {
	attrs := []slog.Attr{slog.String("event", r.Event)}
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("session", r.Session)
	add("image", r.Image)
	add("facility", r.Facility)
	add("source", r.Source)
	add("sha256", r.SHA256)
	add("media", r.MediaID)
	add("reason", r.Reason)
	add("detail", r.Detail)
	a.Logger.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
}

package clinicalimages

import (
	"context"
	"log/slog"

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
	a.Logger.LogAttrs(ctx, slog.LevelInfo, "audit", r.LogAttrs()...)
}

// record writes one audit record; every record the Service writes goes
// through it. Time is the Service's clock, an empty Outcome is
// session.AuditOK, and when sess is given its id, facility and launching
// practitioner fill Session, Facility and Practitioner (the caller's values
// win where set). sess may be a snapshot from earlier in the same call: a
// session's launch never changes.
func (s *Service) record(ctx context.Context, sess *session.Session, r AuditRecord) {
	r.Time = s.now()
	if r.Outcome == "" {
		r.Outcome = session.AuditOK
	}
	if sess != nil {
		if r.Session == "" {
			r.Session = sess.ID
		}
		if r.Facility == "" {
			r.Facility = sess.Facility
		}
		if r.Practitioner == "" {
			r.Practitioner = sess.Practitioner
		}
	}
	s.audit.Audit(ctx, r)
}

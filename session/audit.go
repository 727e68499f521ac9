package session

import (
	"context"
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

package pgaudit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/clinicpro/clinicalimages/session"
)

// Errors callers branch on (test with errors.Is).
var (
	// ErrLost: Close's context ended before every queued record was
	// written; each lost record was logged and counted.
	ErrLost = errors.New("pgaudit: audit records lost")
	// ErrInvalidFilter: a Filter that selects nothing sensible (a negative
	// Limit, Until before Since). Nothing was asked of the database.
	ErrInvalidFilter = errors.New("pgaudit: invalid filter")
)

// DefaultLimit is how many entries List returns when Filter.Limit is zero.
const DefaultLimit = 1000

// Filter selects entries for [Trail.List]. Zero fields select everything:
// an empty Session any session, a zero Since or Until no bound on that side.
type Filter struct {
	Session string    // only this session's steps
	Since   time.Time // entries at or after this instant
	Until   time.Time // entries strictly before this instant
	Limit   int       // at most this many (0 means DefaultLimit)
}

// Entry is one row of the trail: the record as written, with its row id.
// Time is in UTC, to the microsecond (PostgreSQL's precision).
type Entry struct {
	ID int64 // increases in the order rows were written
	session.AuditRecord
}

// List returns the entries f selects in time order, oldest first (entries
// with the same time in the order they were written), at most f.Limit of
// them: the earliest. To read on, ask again with Since set to the last
// entry's Time and skip the entries already seen (by ID). Errors wrap
// [ErrInvalidFilter], or session.ErrUnavailable when the database fails,
// or ctx's error.
func (t *Trail) List(ctx context.Context, f Filter) ([]Entry, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("%w: negative limit %d", ErrInvalidFilter, f.Limit)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return nil, fmt.Errorf("%w: until %s is not after since %s", ErrInvalidFilter,
			f.Until.UTC().Format(time.RFC3339), f.Since.UTC().Format(time.RFC3339))
	}
	if f.Limit == 0 {
		f.Limit = DefaultLimit
	}
	var where []string
	var args []any
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Session != "" {
		arg("session = $%d", f.Session)
	}
	if !f.Since.IsZero() {
		arg("at >= $%d", f.Since)
	}
	if !f.Until.IsZero() {
		arg("at < $%d", f.Until)
	}
	q := `SELECT id, at, event, practitioner, session, image, facility, source, sha256, media_id, outcome, reason, detail FROM audit_trail`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(" ORDER BY at, id LIMIT $%d", len(args))

	rows, err := t.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, unavailable("list", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Entry, error) {
		var e Entry
		r := &e.AuditRecord
		err := row.Scan(&e.ID, &r.Time, &r.Event, &r.Practitioner, &r.Session, &r.Image, &r.Facility, &r.Source,
			&r.SHA256, &r.MediaID, &r.Outcome, &r.Reason, &r.Detail)
		r.Time = r.Time.UTC()
		return e, err
	})
	if err != nil {
		return nil, unavailable("list", err)
	}
	return out, nil
}

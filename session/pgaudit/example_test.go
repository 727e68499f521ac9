package pgaudit_test

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/session/pgaudit"
)

// newAuditedService keeps the audit trail in PostgreSQL, shared by every
// instance. The returned stop ends the Service, then flushes the trail.
func newAuditedService(ctx context.Context, ac *alex.Client, databaseURL string) (*ci.Service, func(context.Context) error, error) {
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return nil, nil, err
	}
	if err := pgaudit.Migrate(ctx, pool); err != nil { // safe from many instances at once
		pool.Close()
		return nil, nil, err
	}
	trail, err := pgaudit.New(pool) // Audit queues and returns: a slow database never holds up a GP
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	svc, err := ci.New(ac, ci.WithAudit(trail))
	if err != nil {
		_ = trail.Close(ctx)
		pool.Close()
		return nil, nil, err
	}
	stop := func(ctx context.Context) error {
		err := errors.Join(svc.Close(), trail.Close(ctx)) // Close writes what is still queued
		pool.Close()
		return err
	}
	return svc, stop, nil
}

// Example wires the trail into the Service (newAuditedService above). It
// compiles here; running it needs PostgreSQL and ALEX. trail.Lost() counts
// records that could not be written (each also logged): export it as a
// metric and alert on any increase.
func Example() {
	_ = newAuditedService
}

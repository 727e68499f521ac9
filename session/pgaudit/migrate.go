package pgaudit

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// AppRole is the group role the migrations grant INSERT and SELECT on the
// trail to, and nothing else. The application should log in as a member of
// it, never as the tables' owner.
const AppRole = "clinicalimages_app"

// AppendOnlyCode is the SQLSTATE with which the database refuses UPDATE,
// DELETE and TRUNCATE on the trail, whoever asks (see
// pgconn.PgError.Code). The application's role gets 42501
// (insufficient_privilege) before the trigger is reached.
const AppendOnlyCode = "CI001"

// migration is one embedded SQL file, migrations/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. Names that
// do not start with a number, or repeat one, are a build mistake and fail
// every Migrate (and this package's tests).
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("pgaudit: migration %s is not named NNNN_name.sql", base)
		}
		b, err := migrationFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("pgaudit: two migrations numbered %d", out[i].version)
		}
	}
	return out, nil
}

// Migrate brings the audit tables in the pool's current schema (the first
// one on its search_path) up to date, applying the embedded migrations not
// yet recorded in the pgaudit_migrations table, in order, all in one
// transaction: either every missing one is applied, or none is.
//
// It is safe to call from several instances starting at once: a
// transaction-scoped advisory lock (keyed by the schema's name) makes the
// others wait, and they then find nothing to do. An up-to-date schema needs
// only SELECT on pgaudit_migrations, so an instance connected as a member of
// [AppRole] may call it on every start once an owner has migrated;
// applying a migration needs the owner (CREATE on the schema, and CREATEROLE
// the first time unless [AppRole] exists). Versions in the database that
// this build does not know (a newer instance migrated) are left alone.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgaudit: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('clinicalimages.pgaudit.migrate:' || current_schema()))`); err != nil {
		return fmt.Errorf("pgaudit: migrate: lock: %w", err)
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass('pgaudit_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("pgaudit: migrate: %w", err)
	}
	if !exists {
		var schema *string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return fmt.Errorf("pgaudit: migrate: %w", err)
		}
		if schema == nil {
			return ErrNoSchema
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE pgaudit_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("pgaudit: migrate: %w", err)
		}
	}
	rows, err := tx.Query(ctx, `SELECT version FROM pgaudit_migrations`)
	if err != nil {
		return fmt.Errorf("pgaudit: migrate: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("pgaudit: migrate: %w", err)
	}
	applied := 0
	for _, m := range all {
		if slices.Contains(done, int32(m.version)) {
			continue
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("pgaudit: migration %s: %w", m.name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO pgaudit_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			return fmt.Errorf("pgaudit: migration %s: %w", m.name, err)
		}
		applied++
	}
	if applied == 0 {
		return nil // the deferred rollback ends the read-only transaction and its lock
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgaudit: migrate: commit: %w", err)
	}
	return nil
}

// ErrNoSchema means the connection has no current schema: no schema on its
// search_path exists, so Migrate has nowhere to create the tables.
var ErrNoSchema = errors.New("pgaudit: no current schema (search_path names no existing schema)")

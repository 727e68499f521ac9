package testenv

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDatabaseURL names the PostgreSQL server (and database) integration
// tests run against. scripts/test sets it.
const EnvDatabaseURL = "TEST_DATABASE_URL"

// DefaultDatabaseURL is used when TEST_DATABASE_URL is unset: the server on
// go-svc machines (and the one scripts/test starts), trust authentication.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Postgres returns a connection string for a schema of t's own on the
// PostgreSQL server named by TEST_DATABASE_URL, or skips/fails t through
// [Missing] when that server does not answer.
//
// The schema has a random name (see [Prefix]), so tests running at once,
// and other clones of the repository sharing the server, never see each
// other's tables. The returned string sets search_path to it alone (a
// run-time parameter of the connection, so every pooled connection gets
// it), and the schema is dropped, with everything in it, when t ends.
// Objects outside any schema (roles) are shared by every test: create them
// idempotently.
func Postgres(t testing.TB) string {
	t.Helper()
	raw := os.Getenv(EnvDatabaseURL)
	if raw == "" {
		raw = DefaultDatabaseURL
	}
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		// Not the parse error itself: it may quote the password.
		t.Fatalf("%s is not a PostgreSQL connection string", EnvDatabaseURL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		Missing(t, "PostgreSQL", err.Error()) // pgx's connect errors name user and database, never the password
		return ""
	}
	defer conn.Close(context.Background())
	schema := Prefix(t)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("testenv: creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() { dropSchema(t, cfg, schema) })
	return withSearchPath(raw, schema)
}

// dropSchema removes schema and everything in it. t's own context has ended
// by the time cleanups run, hence a fresh one.
func dropSchema(t testing.TB, cfg *pgx.ConnConfig, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Errorf("testenv: dropping schema %s: %v", schema, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		t.Errorf("testenv: dropping schema %s: %v", schema, err)
	}
}

// withSearchPath adds search_path=schema to a URL or keyword/value
// connection string; pgx sends parameters it does not know itself to the
// server as run-time parameters.
func withSearchPath(conn, schema string) string {
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := url.Parse(conn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return strings.TrimSpace(conn) + " search_path=" + schema
}

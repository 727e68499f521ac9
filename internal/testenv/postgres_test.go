package testenv

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestWithSearchPath(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgres://postgres@127.0.0.1:5432/test?search_path=tabc&sslmode=disable"},
		{"postgresql://u:p%40ss@h/db", "postgresql://u:p%40ss@h/db?search_path=tabc"},
		{"host=127.0.0.1 dbname=test ", "host=127.0.0.1 dbname=test search_path=tabc"},
	}
	for _, tc := range tests {
		if got := withSearchPath(tc.in, "tabc"); got != tc.want {
			t.Errorf("withSearchPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestPostgresSchemaPerTest: each call gets its own existing schema as the
// connection's current schema, invisible to the other, dropped when its test
// ends.
func TestPostgresSchemaPerTest(t *testing.T) {
	t.Parallel()
	schemaOf := func(t *testing.T, conn string) string {
		t.Helper()
		c, err := pgx.Connect(t.Context(), conn)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		var s *string
		if err := c.QueryRow(t.Context(), `SELECT current_schema()`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		if s == nil {
			t.Fatal("no current schema: the search_path names no existing schema")
		}
		if _, err := c.Exec(t.Context(), `CREATE TABLE mine (x int)`); err != nil {
			t.Fatalf("creating a table in the test's schema: %v", err)
		}
		return *s
	}
	var a, b string
	t.Run("a", func(t *testing.T) { a = schemaOf(t, Postgres(t)) })
	t.Run("b", func(t *testing.T) { b = schemaOf(t, Postgres(t)) })
	if a == "" || b == "" {
		t.Skip("PostgreSQL unavailable")
	}
	if a == b {
		t.Fatalf("two tests got one schema %q", a)
	}
	// Both subtests have ended: their schemas must be gone.
	c, err := pgx.Connect(t.Context(), Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var left int
	if err := c.QueryRow(t.Context(), `SELECT count(*) FROM pg_namespace WHERE nspname = ANY($1)`, []string{a, b}).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d of the subtests' schemas %s, %s outlived them", left, a, b)
	}
}

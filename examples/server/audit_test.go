package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/session/pgaudit"
)

// trailEvents lists the audit trail in the schema url names, oldest first.
func trailEvents(t *testing.T, url string) []pgaudit.Entry {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), url)
	require.NoError(t, err)
	defer pool.Close()
	tr, err := pgaudit.New(pool)
	require.NoError(t, err)
	defer func() { _ = tr.Close(context.Background()) }()
	got, err := tr.List(t.Context(), pgaudit.Filter{})
	require.NoError(t, err)
	return got
}

// textLogger logs everything to w, as the server's own logger does.
func textLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

func events(es []pgaudit.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Event)
	}
	return out
}

// TestDatabaseURLKeepsTheTrail: with DATABASE_URL the server migrates the
// tables on start, a GP's visit lands in PostgreSQL (and still in the log),
// /metrics counts the written records, and Close flushes what is queued.
func TestDatabaseURLKeepsTheTrail(t *testing.T) {
	t.Parallel()
	url := testenv.Postgres(t)
	var logs testenv.SyncBuffer
	cfg, err := parseConfig(nil, envOf(map[string]string{"DATABASE_URL": url}), io.Discard)
	require.NoError(t, err)
	a, err := newApp(t.Context(), cfg, textLogger(&logs), appDeps{Sim: alextest.NewTestServer(t)})
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = a.Close()
		}
	})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)

	require.NoError(t, gpFlow(t.Context(), srv.URL))
	// The trail is written in the background: wait for the commit to land.
	deadline := time.Now().Add(time.Minute)
	for !slices.Contains(events(trailEvents(t, url)), "image.committed") {
		require.True(t, time.Now().Before(deadline), "no image.committed in the trail; have %v", events(trailEvents(t, url)))
		time.Sleep(20 * time.Millisecond)
	}
	got := trailEvents(t, url)
	for _, want := range []string{"session.started", "image.uploaded", "commit.attempted", "image.committed"} {
		assert.Contains(t, events(got), want)
	}
	sess := got[0].Session
	require.NotEmpty(t, sess)
	for _, e := range got {
		assert.Equal(t, sess, e.Session, "one GP's visit, one session")
	}
	assert.Contains(t, logs.String(), `msg=audit event=session.started`, "the log keeps its copy")

	metrics := scrape(t, srv.URL, "")
	assert.Equal(t, float64(len(got)), metricValue(t, metrics, "clinicalimages_audit_records_written_total"))
	assert.Contains(t, metrics, "clinicalimages_audit_records_lost_total 0")
	status, ready := getText(t, srv.URL+"/readyz")
	assert.Equal(t, http.StatusOK, status, ready)
	assert.Contains(t, ready, `"audit_db":"ok"`, "readiness reports the audit database")

	// Once Close has returned every record is in the trail (it flushes the
	// queue), with no polling.
	launchVia(t, srv.URL)
	closed = true
	require.NoError(t, a.Close())
	after := trailEvents(t, url)
	assert.Equal(t, len(got)+1, len(after), "the second launch's session.started was flushed on Close: %v", events(after))
	assert.Equal(t, "session.started", after[len(after)-1].Event)
	assert.NotContains(t, logs.String(), "audit record lost")
}

func TestDatabaseURLUnusable(t *testing.T) {
	t.Parallel()
	const password = "pw-not-in-any-error"
	tests := []struct{ name, url, says string }{
		{"unreachable", fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/test?sslmode=disable&connect_timeout=2", password, testenv.FreePort(t)), "postgres"},
		{"malformed", "postgres://u:" + password + "@h:notaport/db", "DATABASE_URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs testenv.SyncBuffer
			cfg, err := parseConfig(nil, envOf(map[string]string{"DATABASE_URL": tc.url}), io.Discard)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			_, err = newApp(ctx, cfg, textLogger(&logs), appDeps{Sim: alextest.NewTestServer(t)})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.says)
			assert.NotContains(t, err.Error(), password)
			assert.NotContains(t, logs.String(), password)
		})
	}
}

// TestDatabaseURLNeverInHelp: DATABASE_URL is read from the environment
// only, so no flag would put its password in a process list.
func TestDatabaseURLNeverInHelp(t *testing.T) {
	t.Parallel()
	var help strings.Builder
	_, _ = parseConfig([]string{"-help"}, envOf(nil), &help)
	assert.NotContains(t, help.String(), "database")
	cfg, err := parseConfig(nil, envOf(map[string]string{"DATABASE_URL": " postgres://x@h/db "}), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "postgres://x@h/db", cfg.DatabaseURL)
}

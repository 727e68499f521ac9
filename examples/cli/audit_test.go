package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/pgaudit"
)

// seedTrail migrates a fresh schema on the real PostgreSQL and writes
// records through the Trail, as the server would. It returns the
// connection string (search_path included).
func seedTrail(t *testing.T, recs ...session.AuditRecord) string {
	t.Helper()
	url := testenv.Postgres(t)
	pool, err := pgxpool.New(t.Context(), url)
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, pgaudit.Migrate(t.Context(), pool))
	tr, err := pgaudit.New(pool, pgaudit.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	require.NoError(t, err)
	for _, r := range recs {
		tr.Audit(t.Context(), r)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, tr.Close(ctx))
	require.Equal(t, uint64(len(recs)), tr.Written())
	return url
}

func TestAuditListsTheTrail(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Microsecond)
	sha := strings.Repeat("0123456789abcdef", 4)
	url := seedTrail(t,
		session.AuditRecord{Time: now.Add(-48 * time.Hour), Event: "session.started", Session: "sess-old", Practitioner: "prac-2", Source: "evolution"},
		session.AuditRecord{Time: now.Add(-2 * time.Hour), Event: "session.started", Session: "sess-A", Practitioner: "prac-1", Facility: "F1"},
		session.AuditRecord{Time: now.Add(-30 * time.Minute), Event: "image.uploaded", Session: "sess-A", Practitioner: "prac-1", Image: "img-1", SHA256: sha},
		session.AuditRecord{Time: now.Add(-20 * time.Minute), Event: "image.committed", Session: "sess-A", Practitioner: "prac-1", Image: "img-1", SHA256: sha, MediaID: "media-7"},
		session.AuditRecord{Time: now.Add(-10 * time.Minute), Event: "image.failed", Session: "sess-B", Practitioner: "prac-1", Image: "img-2", Outcome: session.AuditFailed, Reason: "alex_unavailable"},
	)
	env := map[string]string{envDatabaseURL: url}
	lines := func(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

	code, out, errOut := runCLI(t, env, "audit", "--session", "sess-A")
	require.Equal(t, exitOK, code, errOut)
	got := lines(out)
	require.Len(t, got, 3, out)
	assert.Equal(t, []string{"session.started", "image.uploaded", "image.committed"},
		[]string{strings.Fields(got[0])[1], strings.Fields(got[1])[1], strings.Fields(got[2])[1]}, "oldest first")
	assert.Equal(t, []string{now.Add(-20 * time.Minute).Format("2006-01-02T15:04:05.000000Z"), "image.committed", "ok", "prac-1", "sess-A", "img-1", sha[:12], "media-7", "-"},
		strings.Fields(got[2]))
	assert.NotContains(t, out, sha, "only a prefix of the hash")

	code, out, errOut = runCLI(t, env, "audit", "--since", "1h")
	require.Equal(t, exitOK, code, errOut)
	got = lines(out)
	require.Len(t, got, 3, out)
	assert.Equal(t, []string{"image.failed", "failed", "prac-1", "sess-B", "img-2", "-", "-", "alex_unavailable"}, strings.Fields(got[2])[1:])

	code, out, errOut = runCLI(t, nil, "audit", "--database", url,
		"--since", now.Add(-3*time.Hour).Format(time.RFC3339), "--until", now.Add(-25*time.Minute).Format(time.RFC3339Nano))
	require.Equal(t, exitOK, code, errOut)
	assert.Len(t, lines(out), 2, out)

	code, out, errOut = runCLI(t, env, "audit", "--since", "3d", "--session", "sess-old")
	require.Equal(t, exitOK, code, errOut)
	assert.Equal(t, []string{"session.started", "ok", "prac-2", "sess-old"}, strings.Fields(out)[1:5])

	code, out, errOut = runCLI(t, env, "audit", "--session", "nobody")
	require.Equal(t, exitOK, code, errOut)
	assert.Empty(t, out)

	code, out, errOut = runCLI(t, env, "audit", "--since", "7d", "--limit", "2")
	require.Equal(t, exitOK, code, errOut)
	assert.Len(t, lines(out), 2)
	assert.Contains(t, errOut, "more match")
	assert.Contains(t, out, "sess-old", "the earliest are kept")
}

func TestAuditJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234000, time.UTC)
	rec := session.AuditRecord{Time: at, Event: "image.committed", Practitioner: "prac-1", Session: "sess-J", Image: "img-1",
		Facility: "F1", Source: "evolution", SHA256: strings.Repeat("ab", 32), MediaID: "media-1", Outcome: session.AuditOK,
		Reason: "r", Detail: "attempt=1"}
	url := seedTrail(t, rec, session.AuditRecord{Time: at.Add(time.Second), Event: "session.ended", Session: "sess-J"})
	code, out, errOut := runCLI(t, map[string]string{envDatabaseURL: url}, "audit", "--session", "sess-J", "--json")
	require.Equal(t, exitOK, code, errOut)
	var got []auditJSON
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var j auditJSON
		require.NoError(t, json.Unmarshal([]byte(line), &j), line)
		got = append(got, j)
	}
	require.Len(t, got, 2, out)
	assert.Positive(t, got[0].ID)
	got[0].ID = 0
	assert.Equal(t, auditJSON{Time: at, Event: "image.committed", Outcome: "ok", Practitioner: "prac-1", Session: "sess-J", Image: "img-1",
		Facility: "F1", Source: "evolution", SHA256: rec.SHA256, MediaID: "media-1", Reason: "r", Detail: "attempt=1"}, got[0])
	assert.Equal(t, "ok", got[1].Outcome)
	assert.NotContains(t, strings.SplitN(out, "\n", 3)[1], "practitioner", "empty fields are left out")
}

func TestAuditUsageAndConfigErrors(t *testing.T) {
	t.Parallel()
	const password = "pw-never-printed"
	closed := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/test?sslmode=disable&connect_timeout=2", password, testenv.FreePort(t))
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want int
		says string
	}{
		{"no filter", map[string]string{envDatabaseURL: closed}, nil, exitUsage, "--session"},
		{"bad since", map[string]string{envDatabaseURL: closed}, []string{"--since", "yesterday"}, exitUsage, "--since"},
		{"negative duration", map[string]string{envDatabaseURL: closed}, []string{"--since", "-1h"}, exitUsage, "positive"},
		{"bad until", map[string]string{envDatabaseURL: closed}, []string{"--since", "2h", "--until", "2026-13-01"}, exitUsage, "--until"},
		{"until before since", map[string]string{envDatabaseURL: closed}, []string{"--since", "1h", "--until", "2h"}, exitUsage, "later"},
		{"zero limit", map[string]string{envDatabaseURL: closed}, []string{"--session", "s", "--limit", "0"}, exitUsage, "--limit"},
		{"unknown flag", nil, []string{"--sesion", "s"}, exitUsage, "unknown flag"},
		{"no database", nil, []string{"--session", "s"}, exitBadConfig, envDatabaseURL},
		{"not a connection string", map[string]string{envDatabaseURL: "postgres://u:" + password + "@h:notaport/db"}, []string{"--session", "s"}, exitBadConfig, envDatabaseURL},
		{"unreachable", map[string]string{envDatabaseURL: closed}, []string{"--session", "s"}, exitFailed, "cli audit:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, tc.env, append([]string{"audit"}, tc.args...)...)
			assert.Equal(t, tc.want, code, errOut)
			assert.Contains(t, errOut, tc.says)
			assert.Empty(t, out)
			assert.NotContains(t, errOut, password)
		})
	}
}

func TestParseWhen(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"24h", now.Add(-24 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"2026-03-04T09:30:00+13:00", time.Date(2026, 3, 3, 20, 30, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		got, err := parseWhen(tc.in, now)
		require.NoError(t, err, tc.in)
		assert.True(t, tc.want.Equal(got), "%s: got %v, want %v", tc.in, got, tc.want)
	}
	for _, bad := range []string{"yesterday", "0h", "-2d", "d", "2026-03-04"} {
		_, err := parseWhen(bad, now)
		assert.Error(t, err, bad)
	}
}

func TestAuditHelpStatesExitCodes(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI(t, nil, "audit", "--help")
	require.Equal(t, exitOK, code, errOut)
	for _, s := range []string{"Exit codes: 0 ", "2 usage", "3 configuration problem", envDatabaseURL, `"go run" reports exit status 1`} {
		assert.Contains(t, out, s)
	}
	code, out, _ = runCLI(t, nil, "help")
	require.Equal(t, exitOK, code)
	assert.Contains(t, out, "audit")
}

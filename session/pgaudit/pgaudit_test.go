package pgaudit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/pgaudit"
)

// pool connects to a fresh schema of the test's own, not yet migrated.
func pool(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	url := testenv.Postgres(t)
	p, err := pgxpool.New(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p, url
}

// migrated is pool after Migrate.
func migrated(t *testing.T) *pgxpool.Pool {
	t.Helper()
	p, _ := pool(t)
	require.NoError(t, pgaudit.Migrate(t.Context(), p))
	return p
}

// newTrail returns a Trail logging to the returned buffer. The test closes
// it; a cleanup closes it too in case an assertion stopped the test first.
func newTrail(t *testing.T, p *pgxpool.Pool, opts ...pgaudit.Option) (*pgaudit.Trail, *testenv.SyncBuffer) {
	t.Helper()
	var logs testenv.SyncBuffer
	tr, err := pgaudit.New(p, append([]pgaudit.Option{pgaudit.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = tr.Close(ctx)
	})
	return tr, &logs
}

func closeTrail(t *testing.T, tr *pgaudit.Trail) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	require.NoError(t, tr.Close(ctx))
}

func TestRecordsRoundTripWithEveryField(t *testing.T) {
	t.Parallel()
	p := migrated(t)
	stamp := time.Date(2026, 3, 4, 5, 6, 7, 891234000, time.UTC)
	tr, logs := newTrail(t, p, pgaudit.WithClock(func() time.Time { return stamp }))
	full := session.AuditRecord{
		Time:         time.Date(2026, 3, 4, 5, 0, 0, 123456789, time.FixedZone("NZDT", 13*3600)),
		Event:        "image.committed",
		Practitioner: "prac-1",
		Session:      "sess-A",
		Image:        "img-1",
		Facility:     "F2N060-D",
		Source:       "evolution",
		SHA256:       strings.Repeat("ab", 32),
		MediaID:      "media-9",
		Outcome:      session.AuditFailed,
		Reason:       "alex_unavailable",
		Detail:       "attempt=2",
	}
	bare := session.AuditRecord{Event: "phone.connected", Session: "sess-A"} // no Time, no Outcome
	odd := session.AuditRecord{Time: stamp.Add(time.Second), Event: "image.metadata", Session: "sess-A", Detail: "nul\x00and\xffbyte"}
	tr.Audit(t.Context(), full)
	tr.Audit(t.Context(), bare)
	tr.Audit(t.Context(), odd)
	closeTrail(t, tr)
	assert.Equal(t, uint64(3), tr.Written())
	assert.Zero(t, tr.Lost(), logs.String())

	got, err := tr.List(t.Context(), pgaudit.Filter{Session: "sess-A"})
	require.NoError(t, err)
	require.Len(t, got, 3)

	want := full
	want.Time = full.Time.UTC().Truncate(time.Microsecond) // PostgreSQL keeps microseconds
	assert.Equal(t, want, got[0].AuditRecord)
	assert.Equal(t, session.AuditRecord{Time: stamp, Event: "phone.connected", Session: "sess-A", Outcome: session.AuditOK}, got[1].AuditRecord,
		"a record without Time is stamped by the Trail's clock, an empty Outcome stored as ok")
	assert.Equal(t, "nul\uFFFDand\uFFFDbyte", got[2].Detail, "NUL and invalid UTF-8 are replaced, not a reason to lose the record")
	assert.Less(t, got[0].ID, got[1].ID)
	assert.Less(t, got[1].ID, got[2].ID)
}

func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	p := migrated(t)
	tr, logs := newTrail(t, p, pgaudit.WithBatchSize(16))
	const writers, each = 8, 150
	base := time.Now().UTC().Truncate(time.Microsecond)
	var wg gosync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				tr.Audit(context.Background(), session.AuditRecord{
					Time: base.Add(time.Duration(i) * time.Millisecond), Event: "image.uploaded",
					Session: fmt.Sprintf("s%d", w), Image: fmt.Sprintf("i%d", i),
				})
			}
		})
	}
	wg.Wait()
	closeTrail(t, tr)
	assert.Equal(t, uint64(writers*each), tr.Written())
	assert.Zero(t, tr.Lost(), logs.String())
	assert.Zero(t, tr.Pending())
	for w := range writers {
		got, err := tr.List(t.Context(), pgaudit.Filter{Session: fmt.Sprintf("s%d", w)})
		require.NoError(t, err)
		require.Len(t, got, each)
		for i, e := range got {
			assert.Equal(t, fmt.Sprintf("i%d", i), e.Image, "writer %d: time order", w)
		}
	}
	var n int
	require.NoError(t, p.QueryRow(t.Context(), `SELECT count(*) FROM audit_trail`).Scan(&n))
	assert.Equal(t, writers*each, n)
}

func TestMigrateIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	p, url := pool(t)
	// A second pool, so the two Migrates surely use two connections.
	p2, err := pgxpool.New(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(p2.Close)

	errs := make(chan error, 2)
	start := make(chan struct{})
	for _, pp := range []*pgxpool.Pool{p, p2} {
		go func() {
			<-start
			errs <- pgaudit.Migrate(t.Context(), pp)
		}()
	}
	close(start)
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	require.NoError(t, pgaudit.Migrate(t.Context(), p), "a third run finds nothing to do")

	var versions, distinct int
	require.NoError(t, p.QueryRow(t.Context(), `SELECT count(*), count(DISTINCT version) FROM pgaudit_migrations`).Scan(&versions, &distinct))
	assert.Positive(t, versions)
	assert.Equal(t, versions, distinct, "each migration applied once")
	var triggers int
	require.NoError(t, p.QueryRow(t.Context(), `SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_trail'::regclass AND NOT tgisinternal`).Scan(&triggers))
	assert.Equal(t, 1, triggers)
}

func TestMigrateWithoutSchema(t *testing.T) {
	t.Parallel()
	_, url := pool(t)
	p, err := pgxpool.New(t.Context(), strings.Replace(url, "search_path=", "search_path=no_such_schema_", 1))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	assert.ErrorIs(t, pgaudit.Migrate(t.Context(), p), pgaudit.ErrNoSchema)
}

// pgCode returns the SQLSTATE of err, or "" when err is not from the server.
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestAppendOnly(t *testing.T) {
	t.Parallel()
	p := migrated(t)
	tr, _ := newTrail(t, p)
	tr.Audit(t.Context(), session.AuditRecord{Event: "session.started", Session: "s1", Practitioner: "p1"})
	closeTrail(t, tr)

	changes := map[string]string{
		"update":         `UPDATE audit_trail SET practitioner = 'someone else'`,
		"delete":         `DELETE FROM audit_trail`,
		"delete no rows": `DELETE FROM audit_trail WHERE false`,
		"truncate":       `TRUNCATE audit_trail`,
	}
	// The test connects as a superuser that owns the table: only the
	// trigger stands in its way, even with triggers off for replication.
	for name, sql := range changes {
		for _, replica := range []bool{false, true} {
			err := pgx.BeginFunc(t.Context(), p, func(tx pgx.Tx) error {
				if replica {
					if _, err := tx.Exec(t.Context(), `SET LOCAL session_replication_role = replica`); err != nil {
						return err
					}
				}
				_, err := tx.Exec(t.Context(), sql)
				return err
			})
			assert.Equal(t, pgaudit.AppendOnlyCode, pgCode(err), "owner, %s, replica=%v: %v", name, replica, err)
		}
	}
	// The application's role may insert and read, nothing else.
	asApp := func(sql string) error {
		return pgx.BeginFunc(t.Context(), p, func(tx pgx.Tx) error {
			if _, err := tx.Exec(t.Context(), `SET LOCAL ROLE `+pgaudit.AppRole); err != nil {
				return err
			}
			_, err := tx.Exec(t.Context(), sql)
			return err
		})
	}
	require.NoError(t, asApp(`INSERT INTO audit_trail (event, session) VALUES ('image.uploaded', 's1')`))
	require.NoError(t, asApp(`SELECT * FROM audit_trail`))
	for name, sql := range changes {
		assert.Equal(t, "42501", pgCode(asApp(sql)), "app role, %s", name)
	}
	assert.Equal(t, "42501", pgCode(asApp(`DROP TRIGGER audit_trail_append_only ON audit_trail`)), "app role may not drop the trigger")

	got, err := tr.List(t.Context(), pgaudit.Filter{Session: "s1"})
	require.NoError(t, err)
	require.Len(t, got, 2, "nothing deleted")
	assert.Equal(t, "p1", got[0].Practitioner, "nothing updated")
}

// TestAppRoleRunsTheServer: a pool logged in as the application's role can
// call Migrate on a migrated schema (nothing to do), write and list.
func TestAppRoleRunsTheServer(t *testing.T) {
	t.Parallel()
	_, url := pool(t)
	owner, err := pgxpool.New(t.Context(), url)
	require.NoError(t, err)
	t.Cleanup(owner.Close)
	require.NoError(t, pgaudit.Migrate(t.Context(), owner))

	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, `SET ROLE `+pgaudit.AppRole)
		return err
	}
	app, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(app.Close)
	var role string
	require.NoError(t, app.QueryRow(t.Context(), `SELECT current_user`).Scan(&role))
	require.Equal(t, pgaudit.AppRole, role)

	require.NoError(t, pgaudit.Migrate(t.Context(), app))
	tr, logs := newTrail(t, app)
	require.NoError(t, tr.Ping(t.Context()))
	tr.Audit(t.Context(), session.AuditRecord{Event: "session.started", Session: "s1"})
	closeTrail(t, tr)
	assert.Equal(t, uint64(1), tr.Written(), logs.String())
	got, err := tr.List(t.Context(), pgaudit.Filter{Session: "s1"})
	require.NoError(t, err)
	assert.Len(t, got, 1)
}

func TestListBySessionAndTimeRange(t *testing.T) {
	t.Parallel()
	p := migrated(t)
	tr, _ := newTrail(t, p)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	// Written out of time order: List orders by time, not by arrival.
	for _, i := range rand.Perm(10) {
		tr.Audit(t.Context(), session.AuditRecord{Time: at(i), Event: "e", Session: []string{"A", "B"}[i%2], Detail: fmt.Sprint(i)})
	}
	closeTrail(t, tr)
	details := func(f pgaudit.Filter) []string {
		t.Helper()
		got, err := tr.List(t.Context(), f)
		require.NoError(t, err)
		var out []string
		for _, e := range got {
			out = append(out, e.Detail)
		}
		return out
	}
	tests := []struct {
		name string
		f    pgaudit.Filter
		want []string
	}{
		{"everything", pgaudit.Filter{}, []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
		{"one session", pgaudit.Filter{Session: "A"}, []string{"0", "2", "4", "6", "8"}},
		{"since inclusive, until exclusive", pgaudit.Filter{Since: at(3), Until: at(7)}, []string{"3", "4", "5", "6"}},
		{"since only", pgaudit.Filter{Since: at(8)}, []string{"8", "9"}},
		{"until only", pgaudit.Filter{Until: at(2)}, []string{"0", "1"}},
		{"session and range", pgaudit.Filter{Session: "B", Since: at(2), Until: at(8)}, []string{"3", "5", "7"}},
		{"limit keeps the earliest", pgaudit.Filter{Session: "B", Limit: 2}, []string{"1", "3"}},
		{"unknown session", pgaudit.Filter{Session: "C"}, nil},
		{"another time zone, same instant", pgaudit.Filter{Since: at(9).In(time.FixedZone("NZDT", 13*3600))}, []string{"9"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, details(tc.f))
		})
	}
	for _, f := range []pgaudit.Filter{{Limit: -1}, {Since: at(5), Until: at(5)}, {Since: at(6), Until: at(5)}} {
		_, err := tr.List(t.Context(), f)
		assert.ErrorIs(t, err, pgaudit.ErrInvalidFilter, "%+v", f)
	}
}

// TestOutageClosedPort: with the database unreachable from the start, Audit
// still returns at once; the queue holds what it can, the rest is lost,
// logged and counted, and Close gives up when its context ends. The
// password in the connection string appears in no log line.
func TestOutageClosedPort(t *testing.T) {
	t.Parallel()
	const password = "pw-that-must-not-leak"
	p, err := pgxpool.New(t.Context(), fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/test?sslmode=disable&connect_timeout=2", password, testenv.FreePort(t)))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	tr, logs := newTrail(t, p, pgaudit.WithQueueSize(4), pgaudit.WithBatchSize(2))

	const n = 10
	returned := make(chan struct{})
	go func() {
		for i := range n {
			tr.Audit(context.Background(), session.AuditRecord{Event: "image.uploaded", Session: "sess-down", Image: fmt.Sprintf("img%d", i)})
		}
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(time.Minute): // a deadlock guard, not a timing assertion
		t.Fatal("Audit blocked on an unreachable database")
	}
	// At most the queue (4) and one batch (2) are held; the rest were refused at once.
	assert.GreaterOrEqual(t, tr.Lost(), uint64(n-6))
	assert.Contains(t, logs.String(), "cause=queue_full")

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = tr.Close(ctx)
	require.ErrorIs(t, err, pgaudit.ErrLost)
	assert.Equal(t, uint64(n), tr.Lost(), "every record accounted for")
	assert.Zero(t, tr.Written())
	assert.Zero(t, tr.Pending())
	tr.Audit(t.Context(), session.AuditRecord{Event: "session.ended", Session: "sess-down"})
	assert.Equal(t, uint64(n+1), tr.Lost(), "after Close a record is lost, and counted")

	out := logs.String()
	assert.Equal(t, n+1, strings.Count(out, `msg="audit record lost"`), out)
	for _, cause := range []string{"cause=queue_full", "cause=close_timeout", "cause=closed"} {
		assert.Contains(t, out, cause)
	}
	assert.Contains(t, out, "image=img0", "a lost record's log line is its trace")
	assert.NotContains(t, out, password)
	assert.NotContains(t, err.Error(), password)
}

// TestOutageThenRecovery: the table disappears (renamed away) while records
// arrive; they wait in the queue, Audit never blocks, and once the table is
// back they are all written, none lost.
func TestOutageThenRecovery(t *testing.T) {
	t.Parallel()
	p := migrated(t)
	tr, logs := newTrail(t, p)
	_, err := p.Exec(t.Context(), `ALTER TABLE audit_trail RENAME TO audit_trail_away`)
	require.NoError(t, err)
	for i := range 20 {
		tr.Audit(t.Context(), session.AuditRecord{Event: "image.uploaded", Session: "s", Detail: fmt.Sprint(i)})
	}
	require.Error(t, tr.Ping(t.Context()))
	assert.ErrorIs(t, tr.Ping(t.Context()), session.ErrUnavailable)
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(logs.String(), "retrying") {
		require.True(t, time.Now().Before(deadline), "the writer never reported a failed write")
		time.Sleep(10 * time.Millisecond)
	}
	assert.Equal(t, 20, tr.Pending())
	assert.Zero(t, tr.Written())

	_, err = p.Exec(t.Context(), `ALTER TABLE audit_trail_away RENAME TO audit_trail`)
	require.NoError(t, err)
	closeTrail(t, tr) // flushes through the backoff
	assert.Equal(t, uint64(20), tr.Written())
	assert.Zero(t, tr.Lost(), logs.String())
	got, err := tr.List(t.Context(), pgaudit.Filter{Session: "s"})
	require.NoError(t, err)
	assert.Len(t, got, 20)
	assert.NoError(t, tr.Ping(t.Context()))
}

// TestRejectedRecordIsLostAlone: a record the database refuses for its
// content costs only itself, not the batch it travelled in.
func TestRejectedRecordIsLostAlone(t *testing.T) {
	t.Parallel()
	p := migrated(t)
	_, err := p.Exec(t.Context(), `ALTER TABLE audit_trail ADD CONSTRAINT test_no_poison CHECK (reason <> 'poison')`)
	require.NoError(t, err)
	tr, logs := newTrail(t, p)
	for i := range 50 {
		r := session.AuditRecord{Event: "image.failed", Session: "s", Detail: fmt.Sprint(i)}
		if i == 25 {
			r.Reason = "poison"
		}
		tr.Audit(t.Context(), r)
	}
	closeTrail(t, tr)
	assert.Equal(t, uint64(49), tr.Written())
	assert.Equal(t, uint64(1), tr.Lost())
	assert.Contains(t, logs.String(), "cause=rejected")
	assert.Contains(t, logs.String(), "SQLSTATE 23514")
	got, err := tr.List(t.Context(), pgaudit.Filter{Session: "s"})
	require.NoError(t, err)
	assert.Len(t, got, 49)
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	p, err := pgxpool.New(t.Context(), "postgres://127.0.0.1:1/x")
	require.NoError(t, err)
	defer p.Close()
	for name, o := range map[string]pgaudit.Option{
		"queue":   pgaudit.WithQueueSize(0),
		"batch":   pgaudit.WithBatchSize(-1),
		"timeout": pgaudit.WithWriteTimeout(0),
		"logger":  pgaudit.WithLogger(nil),
		"clock":   pgaudit.WithClock(nil),
	} {
		_, err := pgaudit.New(p, o)
		assert.Error(t, err, name)
	}
	_, err = pgaudit.New(nil)
	assert.Error(t, err)
}

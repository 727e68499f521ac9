package pgaudit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/clinicpro/clinicalimages/session"
)

// Defaults of the options.
const (
	DefaultQueueSize    = 4096
	DefaultBatchSize    = 256
	DefaultWriteTimeout = 5 * time.Second
	// Waits between attempts at a batch the database refused for a reason
	// that may pass (an outage): doubling from the first to the last.
	firstBackoff = 100 * time.Millisecond
	lastBackoff  = 5 * time.Second
)

// Trail is the audit trail in one PostgreSQL schema: an [session.AuditSink]
// that queues records and writes them from a background goroutine, and the
// operators' [Trail.List]. Create it with [New] after [Migrate]; Close it
// to flush the queue and stop the writer. Every method is safe for
// concurrent use.
type Trail struct {
	pool         *pgxpool.Pool
	log          *slog.Logger
	now          func() time.Time
	batchSize    int
	writeTimeout time.Duration

	queue chan session.AuditRecord
	mu    gosync.RWMutex // held for reading while sending on queue; Close takes it to stop sends
	shut  bool

	stop      chan struct{}      // closed by Close: drain the queue, then exit
	abort     context.Context    // ends when Close's context does: give up on what is left
	cancel    context.CancelFunc // ends abort
	done      chan struct{}      // closed when the writer has exited
	closeOnce gosync.Once

	inflight  atomic.Int64  // records taken from the queue and not yet settled
	written   atomic.Uint64 // records the database holds
	lost      atomic.Uint64 // records given up on, each logged
	abandoned int           // records lost because Close's context ended; set before done closes
}

var _ session.AuditSink = (*Trail)(nil)

// Option configures a Trail.
type Option func(*Trail) error

// WithLogger sets where write failures and lost records are logged. The
// default is slog.Default(), not a discarding logger as elsewhere in the
// SDK: a lost audit record must never go unreported.
func WithLogger(l *slog.Logger) Option {
	return func(t *Trail) error {
		if l == nil {
			return errors.New("pgaudit: WithLogger(nil)")
		}
		t.log = l
		return nil
	}
}

// WithQueueSize sets how many records may wait for the database (default
// [DefaultQueueSize]). It bounds the memory an outage can take and how long
// one can last before records are lost: at 100 records a second, the
// default holds about 40 seconds.
func WithQueueSize(n int) Option {
	return func(t *Trail) error {
		if n <= 0 {
			return fmt.Errorf("pgaudit: queue size %d is not positive", n)
		}
		t.queue = make(chan session.AuditRecord, n)
		return nil
	}
}

// WithBatchSize sets how many queued records one INSERT may carry (default
// [DefaultBatchSize]).
func WithBatchSize(n int) Option {
	return func(t *Trail) error {
		if n <= 0 {
			return fmt.Errorf("pgaudit: batch size %d is not positive", n)
		}
		t.batchSize = n
		return nil
	}
}

// WithWriteTimeout bounds one attempt at an INSERT (default
// [DefaultWriteTimeout]); a slower attempt counts as failed and is retried.
func WithWriteTimeout(d time.Duration) Option {
	return func(t *Trail) error {
		if d <= 0 {
			return fmt.Errorf("pgaudit: write timeout %v is not positive", d)
		}
		t.writeTimeout = d
		return nil
	}
}

// WithClock sets the clock that stamps records arriving without a Time
// (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(t *Trail) error {
		if now == nil {
			return errors.New("pgaudit: WithClock(nil)")
		}
		t.now = now
		return nil
	}
}

// New returns a Trail writing to the audit tables that [Migrate] made in the
// pool's current schema, and starts its writer. The pool stays the
// caller's: close it after the Trail.
func New(pool *pgxpool.Pool, opts ...Option) (*Trail, error) {
	if pool == nil {
		return nil, errors.New("pgaudit: New(nil pool)")
	}
	t := &Trail{pool: pool, log: slog.Default(), now: time.Now, batchSize: DefaultBatchSize, writeTimeout: DefaultWriteTimeout,
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, o := range opts {
		if err := o(t); err != nil {
			return nil, err
		}
	}
	if t.queue == nil {
		t.queue = make(chan session.AuditRecord, DefaultQueueSize)
	}
	t.abort, t.cancel = context.WithCancel(context.Background())
	go t.run()
	return t, nil
}

// Audit queues r for the database and returns at once: it never waits on
// the database, and ctx is not used (a step whose request was cancelled is
// still recorded). A record without a Time is stamped with the Trail's
// clock now, not when it reaches the database; an empty Outcome is stored
// as "ok".
//
// When the queue is full (the database has been unreachable for a while)
// or the Trail is closed, r is lost: logged at ERROR with its fields (ids,
// hashes and codes only) and counted by [Trail.Lost].
func (t *Trail) Audit(_ context.Context, r session.AuditRecord) {
	if r.Time.IsZero() {
		r.Time = t.now()
	}
	if r.Outcome == "" {
		r.Outcome = session.AuditOK
	}
	t.mu.RLock()
	if t.shut {
		t.mu.RUnlock()
		t.lose(r, "closed", nil)
		return
	}
	select {
	case t.queue <- r:
		t.mu.RUnlock()
	default:
		t.mu.RUnlock()
		t.lose(r, "queue_full", nil)
	}
}

// Written returns how many records this Trail has written to the database.
func (t *Trail) Written() uint64 { return t.written.Load() }

// Lost returns how many records this Trail has given up on (each one was
// logged): the queue was full, the database refused the record itself, the
// Trail was closed, or Close's context ended before the record was written.
// A server exports it as a counter; any increase deserves an alert.
func (t *Trail) Lost() uint64 { return t.lost.Load() }

// Pending returns how many records are waiting for the database: queued or
// being written.
func (t *Trail) Pending() int { return len(t.queue) + int(t.inflight.Load()) }

// Ping checks that the trail's table answers (the database is reachable and
// migrated), for a readiness check. Its error wraps session.ErrUnavailable.
func (t *Trail) Ping(ctx context.Context) error {
	if _, err := t.pool.Exec(ctx, `SELECT 1 FROM audit_trail LIMIT 0`); err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Close stops accepting records, writes those still queued (retrying
// through an outage) until ctx ends, then stops the writer. Records it
// could not write before ctx ended are logged and counted as lost, and
// Close returns an error wrapping [ErrLost]. Close returns only once the
// writer has stopped; later calls wait likewise and return the same
// result. It does not close the pool.
func (t *Trail) Close(ctx context.Context) error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.shut = true // no send is in progress now, and none will start
		t.mu.Unlock()
		close(t.stop)
	})
	stopAbort := context.AfterFunc(ctx, t.cancel)
	<-t.done
	stopAbort()
	if t.abandoned > 0 {
		return fmt.Errorf("pgaudit: %d audit records not written before close: %w", t.abandoned, ErrLost)
	}
	return nil
}

// run is the writer: it takes whatever is queued, up to a batch, and writes
// it, until Close has been called and the queue is empty.
func (t *Trail) run() {
	defer close(t.done)
	defer t.cancel()
	batch := make([]session.AuditRecord, 0, t.batchSize)
	for {
		select {
		case r := <-t.queue:
			batch = append(batch, r)
		case <-t.stop:
			select {
			case r := <-t.queue:
				batch = append(batch, r)
			default:
				return // closed and drained: nothing can be queued any more
			}
		}
	fill:
		for len(batch) < t.batchSize {
			select {
			case r := <-t.queue:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		t.inflight.Store(int64(len(batch)))
		if rest := t.write(batch); rest != nil {
			// Close's context ended: what is left is lost, queued or not.
			for _, r := range rest {
				t.lose(r, "close_timeout", nil)
			}
			n := len(rest)
			for {
				select {
				case r := <-t.queue:
					t.lose(r, "close_timeout", nil)
					n++
					continue
				default:
				}
				break
			}
			t.abandoned = n
			t.inflight.Store(0)
			return
		}
		t.inflight.Store(0)
		clear(batch)
		batch = batch[:0]
	}
}

// write settles batch: written, or (records the database refuses for their
// content) lost one by one. It retries through an outage until the
// database takes the records or t.abort ends; then it returns the records
// it had not settled.
func (t *Trail) write(batch []session.AuditRecord) (unsettled []session.AuditRecord) {
	err := t.insertRetrying(batch)
	switch {
	case err == nil:
		t.written.Add(uint64(len(batch)))
		return nil
	case errors.Is(err, errAborted):
		return batch
	case len(batch) == 1:
		t.lose(batch[0], "rejected", err)
		return nil
	}
	// One record spoilt the whole INSERT: write them singly so only that one is lost.
	for i := range batch {
		if rest := t.write(batch[i : i+1]); rest != nil {
			return batch[i:]
		}
	}
	return nil
}

var errAborted = errors.New("pgaudit: aborted")

// insertRetrying inserts batch in one statement, retrying failures that may
// pass with a capped exponential backoff. It returns nil, a permanent
// error (the database refused the data), or errAborted.
func (t *Trail) insertRetrying(batch []session.AuditRecord) error {
	wait := firstBackoff
	stop := t.stop
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(t.abort, t.writeTimeout)
		err := t.insert(ctx, batch)
		cancel()
		if err == nil {
			if attempt > 1 {
				t.log.Info("audit: database writes resumed", "attempts", attempt, "records", len(batch))
			}
			return nil
		}
		if t.abort.Err() != nil {
			return errAborted
		}
		if permanent(err) {
			return err
		}
		t.log.Warn("audit: database write failed; retrying", "attempt", attempt, "records", len(batch),
			"pending", len(t.queue), "error", err)
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
			wait = min(2*wait, lastBackoff)
		case <-stop: // closing: try again now, then keep backing off
			timer.Stop()
			stop = nil
			wait = firstBackoff
		case <-t.abort.Done():
			timer.Stop()
			return errAborted
		}
	}
}

// permanent reports whether the database refused the data itself (a data
// exception or an integrity violation), which no retry will change.
// Everything else (no connection, a timeout, a missing table) may pass.
func permanent(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23")
}

// insertSQL writes a batch in one round trip, in the batch's order (the
// identity column then orders records with equal times).
const insertSQL = `INSERT INTO audit_trail (at, event, practitioner, session, image, facility, source, sha256, media_id, outcome, reason, detail)
SELECT at, event, practitioner, session, image, facility, source, sha256, media_id, outcome, reason, detail
FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
	WITH ORDINALITY AS r(at, event, practitioner, session, image, facility, source, sha256, media_id, outcome, reason, detail, n)
ORDER BY n`

func (t *Trail) insert(ctx context.Context, batch []session.AuditRecord) error {
	n := len(batch)
	at := make([]time.Time, n)
	cols := make([][]string, 11)
	for i := range cols {
		cols[i] = make([]string, n)
	}
	for i, r := range batch {
		at[i] = r.Time
		for j, v := range []string{r.Event, r.Practitioner, r.Session, r.Image, r.Facility, r.Source, r.SHA256, r.MediaID, r.Outcome, r.Reason, r.Detail} {
			cols[j][i] = clean(v)
		}
	}
	args := []any{at}
	for _, c := range cols {
		args = append(args, c)
	}
	_, err := t.pool.Exec(ctx, insertSQL, args...)
	return err
}

// clean makes s storable as PostgreSQL text, which refuses invalid UTF-8
// and NUL: a stray byte in a detail must not cost the record.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// lose counts r as lost and logs it: the log line is then the record's only
// trace, so it carries every field (ids, hashes and codes only, as the
// record does).
func (t *Trail) lose(r session.AuditRecord, cause string, err error) {
	t.lost.Add(1)
	attrs := append([]slog.Attr{slog.String("cause", cause)}, r.LogAttrs()...)
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	t.log.LogAttrs(context.Background(), slog.LevelError, "audit record lost", attrs...)
}

// unavailable wraps a database error for List and Ping: a context's own
// error stays itself, anything else is an outage.
func unavailable(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("pgaudit: %s: %w", op, err)
	}
	return fmt.Errorf("pgaudit: %s: %w: %w", op, session.ErrUnavailable, err)
}

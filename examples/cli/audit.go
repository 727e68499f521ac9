package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/clinicpro/clinicalimages/session/pgaudit"
)

// envDatabaseURL is the PostgreSQL the reference server writes its audit
// trail to; the audit command reads it from there.
const envDatabaseURL = "DATABASE_URL"

// auditFlags are the audit command's flags.
type auditFlags struct {
	session      string
	since, until string
	database     string
	json         bool
	limit        int
	timeout      time.Duration
}

func auditCmd(std stdio) *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "audit (--session ID | --since TIME [--until TIME])",
		Short: "list the audit trail kept in PostgreSQL",
		Long: `Lists the audit trail the reference server writes to PostgreSQL (DATABASE_URL): the
steps of one session (--session), or of a time range (--since, --until), or both,
oldest first. TIME is RFC 3339 (2026-03-04T09:30:00+13:00) or a duration meaning
that long ago (90m, 24h, 7d). --since is inclusive, --until exclusive.

Each line: time (UTC), event, outcome, practitioner, session, image, the first 12
hex digits of the image's SHA-256, the ALEX Media id and the failure reason ("-"
where empty). --json prints one JSON object per line instead, with every field.
At most --limit records are printed (the earliest); stderr says when more match.

The connection string comes from DATABASE_URL, or --database (which other users
of this machine can see in the process list: prefer the environment). A
search_path parameter in it selects the schema the server migrated.

Exit codes: 0 listed (possibly nothing); 1 the database could not be read; 2 usage
error (bad flag or time; nothing was done); 3 configuration problem (no
DATABASE_URL, or not a PostgreSQL connection string).` + goRunNote,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return exit(runAudit(cmd.Context(), std, &f)) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.session, "session", "", "list this session's steps")
	fs.StringVar(&f.since, "since", "", "list steps at or after TIME (RFC 3339, or a duration ago: 24h, 7d)")
	fs.StringVar(&f.until, "until", "", "list steps before TIME (RFC 3339, or a duration ago)")
	fs.StringVar(&f.database, "database", "", "PostgreSQL connection string (default env "+envDatabaseURL+")")
	fs.BoolVar(&f.json, "json", false, "print one JSON object per record per line")
	fs.IntVar(&f.limit, "limit", pgaudit.DefaultLimit, "print at most this many records")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "overall time limit for the command")
	return cmd
}

func runAudit(ctx context.Context, std stdio, f *auditFlags) int {
	usage := func(format string, a ...any) int {
		fmt.Fprintf(std.Err, "cli audit: "+format+"\n", a...)
		return exitUsage
	}
	if f.session == "" && f.since == "" && f.until == "" {
		return usage("give --session, --since or --until (or several)")
	}
	if f.limit <= 0 {
		return usage("--limit must be positive")
	}
	now := time.Now()
	filter := pgaudit.Filter{Session: f.session, Limit: f.limit + 1} // one more, to tell whether more match
	var err error
	if filter.Since, err = parseWhen(f.since, now); err != nil {
		return usage("--since: %v", err)
	}
	if filter.Until, err = parseWhen(f.until, now); err != nil {
		return usage("--until: %v", err)
	}
	if !filter.Since.IsZero() && !filter.Until.IsZero() && !filter.Until.After(filter.Since) {
		return usage("--until must be later than --since")
	}
	dsn := f.database
	if dsn == "" {
		dsn = std.Getenv(envDatabaseURL)
	}
	if strings.TrimSpace(dsn) == "" {
		fmt.Fprintf(std.Err, "cli audit: set %s (or --database) to the PostgreSQL the server writes its audit trail to\n", envDatabaseURL)
		return exitBadConfig
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// Not pgx's message: it quotes the string, password and all, when it cannot tell where the password is.
		fmt.Fprintf(std.Err, "cli audit: %s is not a PostgreSQL connection string (postgres://user@host:5432/db?sslmode=...)\n", envDatabaseURL)
		return exitBadConfig
	}
	ctx, cancel := withTimeout(ctx, f.timeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		fmt.Fprintln(std.Err, "cli audit:", err)
		return exitFailed
	}
	defer pool.Close()
	trail, err := pgaudit.New(pool, pgaudit.WithLogger(slog.New(slog.NewTextHandler(std.Err, nil))))
	if err != nil {
		fmt.Fprintln(std.Err, "cli audit:", err)
		return exitFailed
	}
	defer func() { _ = trail.Close(context.WithoutCancel(ctx)) }() // nothing queued: returns at once
	entries, err := trail.List(ctx, filter)
	if err != nil {
		fmt.Fprintln(std.Err, "cli audit:", err) // pgx names user and database, never the password
		return exitFailed
	}
	more := len(entries) > f.limit
	if more {
		entries = entries[:f.limit]
	}
	if f.json {
		enc := json.NewEncoder(std.Out)
		for _, e := range entries {
			if err := enc.Encode(jsonEntry(e)); err != nil {
				fmt.Fprintln(std.Err, "cli audit:", err)
				return exitFailed
			}
		}
	} else {
		printEntries(std, entries)
	}
	if more {
		fmt.Fprintf(std.Err, "cli audit: showing the first %d records; more match (narrow --since/--until or raise --limit)\n", f.limit)
	}
	return exitOK
}

// parseWhen reads RFC 3339 or a duration ago ("24h", "90m", "7d"); empty is
// the zero time (no bound).
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a duration like 24h or 7d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a duration like 24h or 7d", s)
		}
	}
	if d <= 0 {
		return time.Time{}, errors.New("a duration must be positive: it means that long ago")
	}
	return now.Add(-d), nil
}

// printEntries prints one aligned line per entry.
func printEntries(std stdio, entries []pgaudit.Entry) {
	tw := tabwriter.NewWriter(std.Out, 0, 0, 2, ' ', 0)
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, e := range entries {
		sha := e.SHA256
		if len(sha) > 12 {
			sha = sha[:12]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			e.Time.UTC().Format("2006-01-02T15:04:05.000000Z"), dash(e.Event), dash(e.Outcome), dash(e.Practitioner),
			dash(e.Session), dash(e.Image), dash(sha), dash(e.MediaID), dash(e.Reason))
	}
	_ = tw.Flush()
}

// auditJSON is one record in --json output.
type auditJSON struct {
	ID           int64     `json:"id"`
	Time         time.Time `json:"time"`
	Event        string    `json:"event"`
	Outcome      string    `json:"outcome"`
	Practitioner string    `json:"practitioner,omitempty"`
	Session      string    `json:"session,omitempty"`
	Image        string    `json:"image,omitempty"`
	Facility     string    `json:"facility,omitempty"`
	Source       string    `json:"source,omitempty"`
	SHA256       string    `json:"sha256,omitempty"`
	MediaID      string    `json:"media_id,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Detail       string    `json:"detail,omitempty"`
}

func jsonEntry(e pgaudit.Entry) auditJSON {
	return auditJSON{ID: e.ID, Time: e.Time.UTC(), Event: e.Event, Outcome: e.Outcome, Practitioner: e.Practitioner,
		Session: e.Session, Image: e.Image, Facility: e.Facility, Source: e.Source, SHA256: e.SHA256,
		MediaID: e.MediaID, Reason: e.Reason, Detail: e.Detail}
}

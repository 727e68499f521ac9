// Package pgaudit keeps the audit trail in PostgreSQL: a [session.AuditSink]
// ([Trail]) that many instances share, append-only in the database itself,
// and a query for operators ([Trail.List]).
//
// It uses github.com/jackc/pgx/v5 (pgxpool) directly: PostgreSQL's native
// protocol, a connection pool, PostgreSQL's types (arrays for one-statement
// batches, timestamptz), with no database/sql layer between.
//
// # Setting up
//
//	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	if err := pgaudit.Migrate(ctx, pool); err != nil { ... }
//	trail, err := pgaudit.New(pool, pgaudit.WithLogger(log))
//	svc, err := clinicalimages.New(alexClient, clinicalimages.WithAudit(trail))
//	...
//	defer pool.Close()
//	defer trail.Close(shutdownCtx) // before pool.Close: flushes the queue
//
// The tables live in the connection's current schema (the first on its
// search_path), so one database can hold several deployments' trails.
//
// # Migrations
//
// The schema is the SQL files in migrations/ (embedded), applied by
// [Migrate] in version order inside one transaction, recorded in the table
// pgaudit_migrations, under an advisory lock so instances starting at once
// are safe. Add a change as a new file with the next number; never edit one
// that has shipped.
//
// # Append-only
//
// The table audit_trail (id, at, event, practitioner, session, image,
// facility, source, sha256, media_id, outcome, reason, detail) holds ids,
// hashes and reason codes only, never patient details. A statement-level
// trigger refuses UPDATE, DELETE and TRUNCATE for every role, superusers
// included, with SQLSTATE [AppendOnlyCode]. The migration creates the group
// role [AppRole] (clinicalimages_app) when it is missing and grants it
// INSERT and SELECT on the trail, USAGE on the schema and SELECT on
// pgaudit_migrations: nothing else. For an audit trail the application
// itself cannot rewrite, let an owner role migrate and run the server as a
// login role in that group:
//
//	CREATE ROLE clinicalimages_owner LOGIN PASSWORD '...';  -- owns the tables, runs the first Migrate
//	CREATE ROLE clinicalimages_app NOLOGIN;                  -- if the owner lacks CREATEROLE
//	CREATE ROLE clinicalimages_server LOGIN PASSWORD '...' IN ROLE clinicalimages_app;
//
// An up-to-date schema needs no privilege beyond the group's, so the server
// may call Migrate on every start as clinicalimages_server. A role that owns
// the table can drop the trigger: keep that role for migrations.
//
// # Writing: a queue, never a wait
//
// [Trail.Audit] puts the record on a bounded in-memory queue and returns at
// once, so an audit step never slows the flow, even with the database down.
// One goroutine writes what is queued, up to [WithBatchSize] records in one
// INSERT, and retries through an outage with a capped backoff (each attempt
// bounded by [WithWriteTimeout]), holding records meanwhile. A record is
// lost only when the queue is full ([WithQueueSize]), when it arrives after
// Close, when the database refuses its content (after its batch was retried
// record by record), or when Close's context ends first. Every lost record
// is logged at ERROR as "audit record lost" with its fields and a cause
// (queue_full, closed, rejected, close_timeout), and counted by
// [Trail.Lost], which a server exports as a metric; nothing is lost
// silently. Close flushes the queue and stops the writer.
//
// Records on the queue live in the process: a crash (kill -9) loses those
// not yet written, without a log line, usually none or a few milliseconds'
// worth. A server that needs even those can tee the sink with a log-based
// one (clinicalimages.SlogAudit), as the reference server does.
//
// A record without a Time is stamped with the Trail's clock in Audit, not
// by the database when it is written: a record held through an outage keeps
// the time of its step. The column's default, now(), serves rows written by
// other means.
//
// # Reading
//
// [Trail.List] selects by session and by time range ([Filter]) and returns
// entries oldest first. The reference CLI's audit command prints it.
package pgaudit

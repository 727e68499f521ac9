// Command server is the reference server for the clinical images SDK: the
// Service's HTTP API under /api/, the GP's desktop page at / and the phone
// page at /m, all from one binary with no build step.
//
// # Quick start
//
//	go run ./examples/server
//
// With no configuration it runs on embedded defaults: sessions in memory,
// image bytes in a folder under the user's cache directory (removed on a
// clean exit, swept by the next start after a crash), the in-memory event
// hub, and the built-in ALEX simulator standing in for Medtech's ALEX with a
// few fictional patients. It says SIMULATED ALEX on start and on every page.
// It prints the URL to open: a development launch link
// (/dev/launch?patient=...) that does what Medtech Evolution does when a GP
// opens the app for a patient, and /dev/patients lists the others.
//
// # Configuration
//
// Every setting is a flag and an environment variable; the flag wins.
// Secrets are read from the environment only, so they never show in a
// process list.
//
//	flag                    environment          default
//	-listen                 LISTEN_ADDR          127.0.0.1:8080
//	-public-url             PUBLIC_URL           on loopback the listen address; required off loopback (the QR code's URL, never from the Host header)
//	-tls-cert, -tls-key     TLS_CERT_FILE, TLS_KEY_FILE   none (plain HTTP; put TLS in front or set both)
//	-trust-proxy-headers    TRUST_PROXY_HEADERS  false (true only behind a proxy that overwrites X-Forwarded-For)
//	-log-level              LOG_LEVEL            info (debug logs every request's method, path and status)
//	-shutdown-timeout       SHUTDOWN_TIMEOUT     30s (uploads and commits in flight may finish)
//	-sweep-interval         SWEEP_INTERVAL       1m (recovery of stuck commits, expiry, retention sweep)
//	-commit-lease           COMMIT_LEASE         5m (a commit is exclusive this long; then any instance recovers it)
//	-simulate               SIMULATE             false; the simulator runs on loopback when ALEX_CLIENT_ID is unset, off loopback only with SIMULATE=true; refused with ALEX_CLIENT_ID
//	-alex-base-url          ALEX_BASE_URL        ALEX UAT (alex.UATBaseURL)
//	-alex-client-id         ALEX_CLIENT_ID       none: the simulator is used
//	-                       ALEX_CLIENT_SECRET   required with ALEX_CLIENT_ID
//	-alex-scope             ALEX_SCOPE           required with ALEX_CLIENT_ID (api://<guid>/.default)
//	-alex-tenant-id         ALEX_TENANT_ID       Medtech's Azure AD tenant
//	-alex-token-url         ALEX_TOKEN_URL       made from the tenant
//	-alex-facility          ALEX_FACILITY_ID     none (each session uses its launch's facility)
//	-alex-app-id            ALEX_APP_ID          none (mt-appid header)
//	-alex-proxy             ALEX_PROXY           none (egress proxy for ALEX)
//	-redis-url              REDIS_URL            none: sessions and events in memory (one process)
//	-redis-prefix           REDIS_PREFIX         the packages' defaults (share one Redis between apps)
//	-blob-dir               BLOB_DIR             <os.UserCacheDir>/clinicalimages/blobs-N: 0700, one per live instance (locked), removed on a clean exit
//	-s3-endpoint            S3_ENDPOINT          none (image bytes in S3 instead of BLOB_DIR)
//	-s3-bucket              S3_BUCKET            none (created if missing)
//	-s3-access-key          S3_ACCESS_KEY        none
//	-                       S3_SECRET_KEY        none
//	-s3-region              S3_REGION            ap-southeast-2
//	-                       ABLY_KEY             none (mirror events to Ably as well; the hub stays the source of truth)
//	-ably-endpoint          ABLY_ENDPOINT        Ably's REST endpoint
//	-                       DATABASE_URL         none: the audit trail goes to the log only; set (postgres://user:pass@host:5432/db), it is also written to PostgreSQL (see below)
//	-                       SESSION_SECRET       random per process; required (>= 32 bytes, the same everywhere) with REDIS_URL
//	-                       LAUNCH_TOKEN_KEY     none (HS256 secret >= 32 bytes, or a PEM public key, for launch tokens)
//	-launch-audience        LAUNCH_AUDIENCE      none (the aud launch tokens carry; with LAUNCH_TOKEN_KEY)
//	-max-upload-mb          MAX_UPLOAD_MB        30
//	-max-images             MAX_IMAGES           30
//	-launch-rate-per-client LAUNCH_RATE_PER_CLIENT 30 (Evolution launches per client address per minute)
//	-launch-rate-total      LAUNCH_RATE_TOTAL    600 (Evolution launches per minute in all)
//	-launch-rate-window     LAUNCH_RATE_WINDOW   1m (the window both rates count in)
//	-max-sessions-per-practitioner MAX_SESSIONS_PER_PRACTITIONER 20
//	-max-sessions-per-facility     MAX_SESSIONS_PER_FACILITY     500
//	-allowed-origins        ALLOWED_ORIGINS      none (same-origin only)
//	-retention              RETENTION            1h (image bytes are deleted this long after upload at the latest)
//	-phone-lapse            PHONE_LAPSE          10s (silence after which the desktop is told the phone has gone; at least 5s)
//	-read-header-timeout    READ_HEADER_TIMEOUT  10s (a request's line and headers)
//	-body-timeout           BODY_TIMEOUT         10s (a whole non-upload body; the grace before an upload's minimum rate counts)
//	-min-upload-rate        MIN_UPLOAD_RATE      8192 (bytes/s an upload body must average after the grace, else it is cut)
//	-write-timeout          WRITE_TIMEOUT        30s (the longest one response write may wait on a client not reading)
//	-idle-timeout           IDLE_TIMEOUT         2m (a kept-alive connection between requests)
//	-max-connections        MAX_CONNECTIONS      1024 (concurrent connections; more wait to be accepted)
//	-max-streams-per-credential MAX_STREAMS_PER_CREDENTIAL 4 (event streams per desktop or phone credential; more get 429)
//	-memory-limit-mb        MEMORY_LIMIT_MB      unset: Go's default, which honours GOMEMLIMIT (the runtime's soft memory limit)
//	-decode-budget-mb       DECODE_BUDGET_MB     half of MEMORY_LIMIT_MB, else 512 (memory all uploads being decoded may hold at once; a picture needing more alone gets 413)
//	-                       METRICS_TOKEN        unset: /metrics only in development (loopback listener, no PUBLIC_URL), else 404; set, the bearer token /metrics requires
//
// # Trying it with a real phone
//
// The default address is reachable from this computer only. To scan the QR
// code with a phone on the same network, listen on every interface and tell
// the server the address the phone uses:
//
//	LISTEN_ADDR=0.0.0.0:8080 SIMULATE=true PUBLIC_URL=http://192.168.1.20:8080 go run ./examples/server
//
// Plain HTTP suits a trial with fictional patients only: in production serve
// HTTPS (TLS_CERT_FILE/TLS_KEY_FILE, or a proxy in front with an https
// PUBLIC_URL), which also makes the desktop credential cookie Secure.
//
// # Launching from Medtech Evolution
//
// Register the app in Evolution (Options > ALEX > ALEX Apps Configuration,
// mode "Web Browser", screen "Patient Manager") with the launch URL
//
//	https://<PUBLIC_URL host>/#context={context}&signature={signature}
//
// The launch values travel in the URL fragment, so they never reach a
// server or proxy log; the desktop page posts them to /api/launch (which
// has ALEX decode them) and clears them from the address bar. An integrating
// server that signs its own launch tokens (LAUNCH_TOKEN_KEY) opens
// /#token=<jwt> instead.
//
// # Routes
//
//	/                        the desktop page
//	/m#code=<handoff code>   the phone page (the QR code's URL)
//	/api/...                 the Service's JSON API (the README's table), under http.StripPrefix
//	/static/...              the pages' CSS and JavaScript (embedded)
//	GET /valuesets.json      laterality and view options for the pickers
//	GET /bodysites?q=text    body sites matching text (names and synonyms), all without q
//	POST /qr                 a PNG QR code for {"url": "<this server's phone URL>"}; other URLs are refused
//	GET /readyz              readiness: 200 when the session store and the blob store answer, else 503 naming which (with DATABASE_URL, also the audit database's state, without failing)
//	GET /metrics             Prometheus metrics (see METRICS_TOKEN); /api/healthz is the liveness check
//	GET /dev/launch?patient= simulator only: a simulated Evolution launch; /dev/patients lists the patients
//
// # Running it on the internet
//
// Off loopback the server refuses to start without real ALEX credentials
// unless SIMULATE=true, and requires PUBLIC_URL; with credentials the
// simulator and /dev/ routes do not exist (404). Over HTTPS (TLS_CERT_FILE,
// or an https PUBLIC_URL behind a TLS proxy) the desktop cookie is
// __Host-ci_desktop and every answer carries Strict-Transport-Security.
//
// Slow and greedy clients: headers must arrive within READ_HEADER_TIMEOUT;
// a JSON body within BODY_TIMEOUT; an upload gets BODY_TIMEOUT of grace and
// must then average MIN_UPLOAD_RATE (its read deadline moves as bytes
// arrive), or the server closes the connection. Each response write may wait
// WRITE_TIMEOUT for a client that does not read; there is no total write
// deadline, so event streams stay open while the desktop reads them and a
// commit may wait on ALEX. MAX_CONNECTIONS caps connections (netutil's
// LimitListener) and MAX_STREAMS_PER_CREDENTIAL the event streams one
// credential holds (counted under a hash of it; 429 with Retry-After).
//
// Retention after a crash: every start sweeps before it prints that it is
// listening, so photos a killed instance left (in its folder, or S3 objects
// past RETENTION) are gone by the time the new one serves. Two instances on
// one machine never share a default folder: each would sweep photos whose
// sessions only the other knows. An explicit BLOB_DIR shared by several
// instances needs REDIS_URL (shared sessions) for the same reason.
//
// Metrics (Prometheus text at /metrics, client_golang): uploads by source
// and result, normalising time, commit outcomes, launches, rate-limit and
// stream-cap refusals, ALEX requests by kind and status with latency, live
// event streams, the decode memory budget, and the Go runtime's own.
//
// # Audit trail
//
// Every step of the flow (launch, phone paired, upload, metadata, commit
// attempt and outcome, removal, expiry) is an audit record: ids, hashes and
// reason codes, never patient details. The server logs each one (message
// "audit"); with DATABASE_URL it also writes them to PostgreSQL through
// session/pgaudit, which every instance shares. On start it connects,
// refusing to start if it cannot, and migrates the tables in the
// connection's current schema (add search_path=<schema> to the URL for a
// schema of its own). The table is append-only in the database for every
// role; run the server as a member of the role clinicalimages_app (INSERT
// and SELECT only) once an owner has migrated, as session/pgaudit's
// documentation shows. Writes are queued and never hold up a request; a
// record that cannot be written is logged ("audit record lost") and counted
// in clinicalimages_audit_records_lost_total on /metrics. Shutdown flushes
// the queue for up to SHUTDOWN_TIMEOUT. "cli audit --session ID" (or
// --since 24h) lists the trail.
//
// # Several instances
//
// Start the same binary several times with one REDIS_URL, one S3 bucket,
// one SESSION_SECRET and one DATABASE_URL behind a load balancer: a phone on
// one instance and a desktop on another behave as one service, with one
// audit trail.
//
// # Browser tests
//
// The tests drive real headless Chromium (Debian's chromium, found at
// CHROMIUM_PATH, default /usr/bin/chromium; scripts/setup.d/browser.sh
// installs it) through the whole story: the desktop from the launch link, the
// phone in a separate phone-sized browser context from the QR code's URL, two
// uploads (a JPEG with EXIF orientation 6 and GPS, a PNG), live thumbnails,
// body site and side, commit, and the Media in the simulator; once on one
// server, once on two sharing Redis and S3 with the desktop's instance
// restarted midway. Others cover plain-language errors, a lost network on the
// phone, the desktop camera, drag and drop and removal. On a laptop without
// Chromium, Redis or S3 they skip; under CI=true they fail. Screenshots go to
// a temporary folder, or to E2E_SCREENSHOTS (relative to the repository root):
//
//	E2E_SCREENSHOTS=docs/screenshots ./scripts/test ./examples/server
//
// # Shutdown
//
// SIGINT or SIGTERM stops accepting connections, ends the desktop pages'
// event streams (the pages reconnect to another instance), lets uploads and
// commits in flight finish for up to SHUTDOWN_TIMEOUT, then stops the
// background sweeper and closes the stores.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/clinicpro/clinicalimages/compress/heic"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the whole program: it serves until ctx ends, then shuts down. It
// returns the process exit code (0 clean, 1 failure, 2 usage).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "server:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	if cfg.MemoryLimitMB > 0 {
		// GOMEMLIMIT from the config: the GC works harder near it, keeping
		// the decode budget's peaks under the container's ceiling.
		debug.SetMemoryLimit(int64(cfg.MemoryLimitMB) << 20)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintln(stderr, "server:", err)
		return 1
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	a, err := newApp(startCtx, cfg, log, appDeps{})
	cancel()
	if err != nil {
		_ = ln.Close()
		fmt.Fprintln(stderr, "server:", err)
		return 1
	}
	defer a.Close()
	// Sweep before saying we are ready: photos a crashed instance left past
	// retention (or whose sessions died with it) go now, not a
	// SWEEP_INTERVAL later.
	sweepCtx, cancel := context.WithTimeout(ctx, time.Minute)
	rep, err := a.svc.Sessions().Sweep(sweepCtx)
	cancel()
	if err != nil {
		log.Warn("startup sweep failed", "error", err)
	} else {
		log.Info("startup sweep", "blobs_deleted", rep.BlobsDeleted, "blobs_kept", rep.BlobsKept, "sessions_purged", rep.SessionsPurged)
	}
	// Which HEIC decoder runs: the system libheif (apt-get install
	// libheif1) or the slower WebAssembly one, and why.
	log.Info("heic decoder", "backend", heic.Active().String())
	announce(stdout, a, ln.Addr())
	if err := a.serve(ctx, ln); err != nil {
		fmt.Fprintln(stderr, "server:", err)
		return 1
	}
	return 0
}

// announce prints where to open the pages, and says plainly when ALEX is
// simulated.
func announce(w io.Writer, a *app, addr net.Addr) {
	a.listening(addr)
	base := a.publicURL()
	fmt.Fprintf(w, "clinical images server listening on %s\n", addr)
	if a.sim == nil {
		fmt.Fprintf(w, "ALEX: %s\nOpen the app from Medtech Evolution with the launch URL %s/#context={context}&signature={signature}\n", a.cfg.ALEXBaseURL, base)
		return
	}
	fmt.Fprintln(w, "SIMULATED ALEX: the built-in simulator stands in for Medtech; fictional patients only, nothing leaves this machine.")
	for i, p := range a.sim.Patients() {
		if i == 0 {
			fmt.Fprintf(w, "Open %s/dev/launch?patient=%s (simulated patient %s %s)\n", base, p.ID, p.Given, p.Family)
			continue
		}
		fmt.Fprintf(w, "  or %s/dev/launch?patient=%s (%s %s)\n", base, p.ID, p.Given, p.Family)
	}
}

// serve serves on ln until ctx ends, with the background work running, then
// shuts down gracefully: event streams end at once, other requests get up to
// ShutdownTimeout.
func (a *app) serve(ctx context.Context, ln net.Listener) error {
	a.listening(ln.Addr())
	ln = limitListener(ln, a.cfg.MaxConns)
	// No server-wide ReadTimeout or WriteTimeout: the deadlines middleware
	// sets them per request (an event stream must outlive any fixed one).
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: a.cfg.ReadHeaderTimeout,
		IdleTimeout:       a.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	runDone := make(chan error, 1)
	go func() { runDone <- a.svc.Run(runCtx, a.cfg.SweepInterval) }()

	serveErr := make(chan error, 1)
	go func() {
		if a.cfg.TLSCert != "" {
			serveErr <- srv.ServeTLS(ln, a.cfg.TLSCert, a.cfg.TLSKey)
			return
		}
		serveErr <- srv.Serve(ln)
	}()
	var err error
	select {
	case err = <-serveErr:
	case <-ctx.Done():
		a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout)
		a.stopStreams()
		sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		err = srv.Shutdown(sctx)
		cancel()
		if err != nil {
			_ = srv.Close()
		}
		<-serveErr
	}
	stopRun()
	if rerr := <-runDone; rerr != nil && !errors.Is(rerr, context.Canceled) {
		a.log.Warn("background work ended", "error", rerr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

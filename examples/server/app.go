package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/heic"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/fsblob"
	"github.com/clinicpro/clinicalimages/session/pgaudit"
	"github.com/clinicpro/clinicalimages/session/redisstore"
	"github.com/clinicpro/clinicalimages/session/s3blob"
	"github.com/clinicpro/clinicalimages/sync"
	"github.com/clinicpro/clinicalimages/sync/ablynotify"
	"github.com/clinicpro/clinicalimages/sync/redisnotify"
)

// app is one running instance: the Service and everything it was built
// from, plus the web pages. Close releases what newApp made.
type app struct {
	cfg     *config
	log     *slog.Logger
	svc     *ci.Service
	api     http.Handler     // the Service's HTTP API, mounted under /api
	sim     *alextest.Server // the simulator standing in for ALEX, or nil
	closers []func() error   // in reverse order of creation
	metrics *metrics
	blobs   session.BlobStore
	trail   *pgaudit.Trail // the audit trail in PostgreSQL (DATABASE_URL), or nil
	streamc *streamCap
	// listenURL is the scheme and address serve listens on: the public URL
	// when PUBLIC_URL is unset (loopback only).
	listenURL string
	// streams is cancelled when shutdown begins, ending event streams
	// (which would otherwise hold http.Server.Shutdown until its timeout).
	streams     context.Context
	stopStreams context.CancelFunc
}

// appDeps are parts a caller (a test) hands in instead of newApp making them.
type appDeps struct {
	// Sim is a simulator shared by several instances; nil makes one when the
	// configuration asks for the simulator.
	Sim *alextest.Server
}

// newApp wires the Service from c. ctx bounds only the connection checks
// made while starting.
func newApp(ctx context.Context, c *config, log *slog.Logger, deps appDeps) (_ *app, err error) {
	a := &app{cfg: c, log: log, metrics: newMetrics()}
	a.streams, a.stopStreams = context.WithCancel(context.Background())
	a.streamc = &streamCap{max: c.MaxStreams, cookie: c.cookieName(), open: map[[32]byte]int{},
		gauge: a.metrics.streams.Add, refuse: func() { a.metrics.limited.WithLabelValues("event_streams").Inc() }}
	defer func() {
		if err != nil {
			_ = a.Close()
		}
	}()

	ac, err := a.alexClient(deps.Sim)
	if err != nil {
		return nil, err
	}
	opts := []ci.Option{
		ci.WithLogger(log),
		ci.WithLimits(ci.Limits{MaxUploadBytes: int64(c.MaxUploadMB) << 20, MaxImagesPerSession: c.MaxImages, StuckCommit: c.CommitLease,
			MaxSessionsPerPractitioner: c.SessionsPerPractitioner, MaxSessionsPerFacility: c.SessionsPerFacility}),
		ci.WithSessionOptions(session.WithCommitLease(c.CommitLease), session.WithRetention(c.Retention)),
		ci.WithMetrics(a.metrics.hook()),
		ci.WithPhonePresence(ci.PhonePresence{Lapse: c.PhoneLapse}),
	}
	// The normaliser is built here, as the SDK would build its default one,
	// so the decode budget can be watched. Add compress options to this
	// list (ci.WithCompressOptions is ignored beside ci.WithNormalizer).
	copts := []compress.Option{
		compress.WithMaxInputBytes(int64(c.MaxUploadMB) << 20),
		heic.Option(), // iPhones send HEIC; opt-in in the SDK
	}
	if b := c.decodeBudget(); b > 0 {
		copts = append(copts, compress.WithDecodeBudget(b))
	}
	norm, err := compress.New(copts...)
	if err != nil {
		return nil, err
	}
	opts = append(opts, ci.WithNormalizer(norm))
	a.metrics.watchDecodeBudget(norm)
	if c.Secret != "" {
		opts = append(opts, ci.WithSecret([]byte(c.Secret)))
	}
	if c.LaunchKey != "" {
		k, err := c.launchKey()
		if err != nil {
			return nil, err
		}
		opts = append(opts, ci.WithLaunchTokens(c.LaunchAud, k))
	}
	stores, err := a.stores(ctx, c.RedisPrefix)
	if err != nil {
		return nil, err
	}
	opts = append(opts, stores...)
	if c.DatabaseURL != "" {
		sink, err := a.auditTrail(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, ci.WithAudit(sink))
	}
	a.svc, err = ci.New(ac, opts...)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, a.svc.Close)
	proxies := c.TrustedProxies
	if c.TrustProxy {
		// The deprecated TRUST_PROXY_HEADERS=true means what the SDK's
		// deprecated TrustProxyHeaders does: loopback and private proxies.
		// parseConfig refuses it together with TRUSTED_PROXIES.
		proxies = ci.PrivateProxyNetworks()
	}
	a.api, err = a.svc.Handler(ci.HTTPOptions{
		CookieName:      c.cookieName(),
		InsecureCookies: !c.secure(),
		TrustedProxies:  proxies,
		AllowedOrigins:  c.AllowOrigins,
		LaunchRate:      ci.LaunchRate{PerClient: c.LaunchPerClient, Total: c.LaunchTotal, Window: c.LaunchWindow},
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// secure reports whether pages are served over HTTPS (directly or behind a
// TLS-terminating proxy named by PUBLIC_URL), so cookies may be Secure.
func (c *config) secure() bool {
	if c.TLSCert != "" {
		return true
	}
	u, err := url.Parse(c.PublicURL)
	return err == nil && u.Scheme == "https"
}

func (a *app) alexClient(sim *alextest.Server) (*alex.Client, error) {
	c := a.cfg
	var opts []alex.Option
	base := c.ALEXBaseURL
	creds := c.Credentials
	facility := c.Facility
	if c.simulated() {
		if sim == nil {
			// Earlier photos for each fictional patient, so the desktop's
			// comparison panel has something to show.
			sim = alextest.NewServer(alextest.WithEarlierMedia())
			a.closers = append(a.closers, func() error { sim.Close(); return nil })
		}
		a.sim = sim
		id, secret, scope := sim.Credentials()
		creds = alex.Credentials{TokenURL: sim.TokenURL(), ClientID: id, ClientSecret: secret, Scope: scope}
		base = sim.BaseURL()
		if facility == "" {
			facility = sim.Facility()
		}
	}
	rt, err := alexTransport(c.Proxy)
	if err != nil {
		return nil, err
	}
	opts = append(opts, alex.WithTransport(a.metrics.transport(rt)), alex.WithClientCredentials(creds), alex.WithLogger(a.log))
	if facility != "" {
		opts = append(opts, alex.WithFacility(facility))
	}
	if c.AppID != "" {
		opts = append(opts, alex.WithAppID(c.AppID))
	}
	return alex.New(base, opts...)
}

// stores returns the options for the session store, blob store and event
// layer the configuration names (defaults: memory, a temporary directory,
// the in-memory hub).
func (a *app) stores(ctx context.Context, redisPrefix string) ([]ci.Option, error) {
	c := a.cfg
	var opts []ci.Option
	var events ci.Events
	if c.RedisURL != "" {
		ro, err := redis.ParseURL(c.RedisURL)
		if err != nil {
			return nil, errors.New("REDIS_URL is not a redis:// URL")
		}
		rdb := redis.NewClient(ro)
		a.closers = append(a.closers, rdb.Close)
		if err := rdb.Ping(ctx).Err(); err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		var sopts []redisstore.Option
		var hopts []redisnotify.Option
		if redisPrefix != "" {
			sopts = append(sopts, redisstore.WithPrefix(redisPrefix+"s:"))
			hopts = append(hopts, redisnotify.WithPrefix(redisPrefix+"e:"))
		}
		store, err := redisstore.New(rdb, sopts...)
		if err != nil {
			return nil, err
		}
		hub, err := redisnotify.New(ctx, rdb, append(hopts, redisnotify.WithLogger(a.log))...)
		if err != nil {
			return nil, fmt.Errorf("redis events: %w", err)
		}
		a.closers = append(a.closers, hub.Close)
		events = hub
		opts = append(opts, ci.WithStore(store))
	}
	if c.AblyKey != "" {
		if events == nil {
			hub, err := sync.NewHub()
			if err != nil {
				return nil, err
			}
			a.closers = append(a.closers, hub.Close)
			events = hub
		}
		aopts := []ablynotify.Option{ablynotify.WithLogger(a.log)}
		if c.AblyEndpoint != "" {
			aopts = append(aopts, ablynotify.WithEndpoint(c.AblyEndpoint))
		}
		pub, err := ablynotify.New(events, c.AblyKey, aopts...)
		if err != nil {
			return nil, err
		}
		events = ablyEvents{Events: events, pub: pub}
	}
	if events != nil {
		opts = append(opts, ci.WithEvents(events))
	}

	switch {
	case c.S3Endpoint != "":
		u, err := url.Parse(c.S3Endpoint)
		if err != nil || u.Host == "" {
			return nil, errors.New("S3_ENDPOINT must be an http(s) URL")
		}
		mc, err := minio.New(u.Host, &minio.Options{
			Creds:  credentials.NewStaticV4(c.S3AccessKey, c.S3SecretKey, ""),
			Secure: u.Scheme == "https", Region: c.S3Region, BucketLookup: minio.BucketLookupPath,
		})
		if err != nil {
			return nil, fmt.Errorf("s3: %w", err)
		}
		bs, err := s3blob.New(mc, c.S3Bucket)
		if err != nil {
			return nil, err
		}
		if err := bs.EnsureBucket(ctx, c.S3Region); err != nil {
			return nil, fmt.Errorf("s3 bucket: %w", err)
		}
		opts = append(opts, ci.WithBlobStore(bs))
		a.blobs = bs
	default:
		dir := c.BlobDir
		if dir == "" {
			d, release, err := defaultBlobDir()
			if err != nil {
				return nil, err
			}
			// Removed on a clean exit (sessions in memory die with the
			// process, so its photos are of no use); after a crash the next
			// instance takes the same folder and its first sweep deletes them.
			a.closers = append(a.closers, func() error { return errors.Join(os.RemoveAll(d), release()) })
			dir = d
		}
		bs, err := fsblob.New(dir)
		if err != nil {
			return nil, err
		}
		a.closers = append(a.closers, bs.Close)
		opts = append(opts, ci.WithBlobStore(bs))
		a.blobs = bs
	}
	return opts, nil
}

// auditTrail connects to DATABASE_URL, migrates the audit tables and
// returns the sink: the log (the Service's default, kept) and the trail in
// PostgreSQL. The trail is closed, flushing its queue, after the Service
// and before the pool; its counters are on /metrics.
func (a *app) auditTrail(ctx context.Context) (ci.AuditSink, error) {
	pc, err := pgxpool.ParseConfig(a.cfg.DatabaseURL)
	if err != nil {
		// Not pgx's message: it may quote the URL, password and all.
		return nil, errors.New("DATABASE_URL is not a PostgreSQL connection string")
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	a.closers = append(a.closers, func() error { pool.Close(); return nil })
	// pgx's errors name the user and database, never the password.
	if err := pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pgaudit.Migrate(ctx, pool); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	trail, err := pgaudit.New(pool, pgaudit.WithLogger(a.log))
	if err != nil {
		return nil, err
	}
	a.trail = trail
	a.closers = append(a.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		defer cancel()
		return trail.Close(ctx)
	})
	a.metrics.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "clinicalimages_audit_records_written_total",
			Help: "Audit records written to PostgreSQL.",
		}, func() float64 { return float64(trail.Written()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "clinicalimages_audit_records_lost_total",
			Help: "Audit records given up on (each logged as \"audit record lost\"): alert on any increase.",
		}, func() float64 { return float64(trail.Lost()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "clinicalimages_audit_records_pending",
			Help: "Audit records waiting for PostgreSQL (queued or being written).",
		}, func() float64 { return float64(trail.Pending()) }),
	)
	return teeAudit{ci.SlogAudit{Logger: a.log}, trail}, nil
}

// teeAudit hands every record to each sink in turn.
type teeAudit []ci.AuditSink

// Audit implements ci.AuditSink.
func (t teeAudit) Audit(ctx context.Context, r ci.AuditRecord) {
	for _, s := range t {
		s.Audit(ctx, r)
	}
}

// alexTransport is the transport under the ALEX client's metrics: the
// client's own defaults (short dial and TLS timeouts, a bound on waiting for
// headers) and ALEX_PROXY, which alex.WithProxy would otherwise set.
func alexTransport(proxy string) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	if proxy != "" {
		u, err := url.Parse(proxy)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") || u.Host == "" {
			return nil, errors.New("ALEX_PROXY must be an http://, https:// or socks5:// URL")
		}
		t.Proxy = http.ProxyURL(u)
	}
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = time.Minute
	return t, nil
}

// streamCap returns the app's cap on event streams per credential.
func (a *app) streamCap() *streamCap { return a.streamc }

// ablyEvents publishes through Ably's mirror (which records in the hub
// first) and reads history, subscriptions and presence from the hub.
type ablyEvents struct {
	ci.Events
	pub *ablynotify.Publisher
}

// Publish records ev in the hub and mirrors it to Ably.
func (e ablyEvents) Publish(ctx context.Context, ev sync.Event) (sync.Event, error) {
	return e.pub.Publish(ctx, ev)
}

// Presence forwards to the hub when it tracks presence.
func (e ablyEvents) Presence(ctx context.Context, session string) (sync.Presence, error) {
	if pr, ok := e.Events.(sync.PresenceReader); ok {
		return pr.Presence(ctx, session)
	}
	return sync.Presence{}, nil
}

// Close releases everything newApp made, in reverse order. It does not stop
// an http.Server; see serve.
func (a *app) Close() error {
	a.stopStreams()
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	a.closers = nil
	return errors.Join(errs...)
}

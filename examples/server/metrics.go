package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/session"
)

// metrics are the server's Prometheus collectors, in a registry of the
// app's own (no global state: several apps in one test binary each count
// their own). The SDK reports through ci.Metrics; the server adds what only
// it sees: ALEX calls on the wire, event streams, readiness.
type metrics struct {
	reg        *prometheus.Registry
	uploads    *prometheus.CounterVec
	normalize  *prometheus.HistogramVec
	commits    *prometheus.CounterVec
	launches   *prometheus.CounterVec
	limited    *prometheus.CounterVec
	alexCalls  *prometheus.CounterVec
	alexTime   *prometheus.HistogramVec
	streams    prometheus.Gauge
	readyFails *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		uploads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clinicalimages_uploads_total",
			Help: "Uploads the Service finished, by source (desktop, phone) and result (accepted, or the failure code).",
		}, []string{"source", "result"}),
		normalize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "clinicalimages_upload_normalize_seconds",
			Help:    "Time spent normalising an accepted upload.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 4, 8, 16},
		}, []string{"source"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clinicalimages_commit_images_total",
			Help: "Images a commit settled, by final state and failure code (empty when none).",
		}, []string{"state", "code"}),
		launches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clinicalimages_launches_total",
			Help: "Launch attempts, by result (started, or the failure code).",
		}, []string{"result"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clinicalimages_rate_limited_total",
			Help: "Requests refused by a rate limit or cap, by limit.",
		}, []string{"limit"}),
		alexCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clinicalimages_alex_requests_total",
			Help: "HTTP requests to ALEX and its token endpoint, by operation (token, read, write) and status (the HTTP status, or error).",
		}, []string{"op", "status"}),
		alexTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "clinicalimages_alex_request_seconds",
			Help:    "Latency of HTTP requests to ALEX, to the response headers.",
			Buckets: []float64{.1, .25, .5, 1, 2, 3.5, 5, 10, 30, 60},
		}, []string{"op"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "clinicalimages_event_streams",
			Help: "Event streams and long polls open now.",
		}),
		readyFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "clinicalimages_readiness_failures_total",
			Help: "Readiness checks that failed, by store (session, blob).",
		}, []string{"store"}),
	}
	m.reg.MustRegister(m.uploads, m.normalize, m.commits, m.launches, m.limited, m.alexCalls, m.alexTime, m.streams, m.readyFails,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// watchDecodeBudget exports the normaliser's decode memory budget (bytes in
// use and the limit) when the normaliser reports it.
func (m *metrics) watchDecodeBudget(n any) {
	b, ok := n.(interface{ DecodeBudget() (inUse, limit int64) })
	if !ok {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "clinicalimages_decode_budget_in_use_bytes",
			Help: "Decode memory (estimated bytes) held by the uploads being normalised now.",
		}, func() float64 { in, _ := b.DecodeBudget(); return float64(in) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "clinicalimages_decode_budget_limit_bytes",
			Help: "The decode memory budget shared by every upload on this instance.",
		}, func() float64 { _, limit := b.DecodeBudget(); return float64(limit) }),
	)
}

// hook adapts the SDK's measurements to the collectors.
func (m *metrics) hook() ci.Metrics {
	return ci.Metrics{
		Upload: func(source session.Source, code ci.FailureCode, normalize time.Duration) {
			result := "accepted"
			if code != "" {
				result = string(code)
			}
			m.uploads.WithLabelValues(string(source), result).Inc()
			if code == "" {
				m.normalize.WithLabelValues(string(source)).Observe(normalize.Seconds())
			}
		},
		Commit: func(state session.State, code ci.FailureCode) {
			m.commits.WithLabelValues(string(state), string(code)).Inc()
		},
		Launch: func(code ci.FailureCode) {
			result := "started"
			if code != "" {
				result = string(code)
			}
			m.launches.WithLabelValues(result).Inc()
		},
		RateLimited: func(limit string) { m.limited.WithLabelValues(limit).Inc() },
	}
}

// transport counts and times every request the ALEX client sends. Labels
// carry no URL (ids and patient references live there), only the kind of
// call and the status.
func (m *metrics) transport(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		op := "read"
		switch {
		case strings.HasSuffix(r.URL.Path, "/token"): // OAuth2 (Azure AD's or the simulator's)
			op = "token"
		case r.Method != http.MethodGet && r.Method != http.MethodHead:
			op = "write"
		}
		start := time.Now()
		res, err := next.RoundTrip(r)
		m.alexTime.WithLabelValues(op).Observe(time.Since(start).Seconds())
		status := "error"
		if err == nil {
			status = strconv.Itoa(res.StatusCode)
		}
		m.alexCalls.WithLabelValues(op, status).Inc()
		return res, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// metricsHandler serves /metrics. With METRICS_TOKEN it requires that
// bearer token from anyone; without it, it serves only a development setup
// (a loopback listener and no PUBLIC_URL) and is 404 otherwise, so a server
// on the internet, even one behind a proxy on the same host, never shows
// its figures to strangers by default.
func (a *app) metricsHandler() http.Handler {
	h := promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{})
	token := a.cfg.MetricsToken
	open := token == "" && loopback(a.cfg.Listen) && a.cfg.PublicURL == ""
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case open:
		case token == "":
			http.NotFound(w, r)
			return
		default:
			got := []byte(credentialOf(r, "-"))
			if r.Header.Get("Authorization") == "" || subtle.ConstantTimeCompare(got, []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
				http.Error(w, "metrics need the METRICS_TOKEN bearer token", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// readyz answers 200 when the session store and the blob store both answer
// (a lookup of a random id that must come back not found), else 503 with
// which one failed. With DATABASE_URL it also reports the audit database,
// without failing readiness (see below). /api/healthz stays a liveness check that touches
// nothing.
func (a *app) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	id := session.NewID()
	out := map[string]string{"session_store": "ok", "blob_store": "ok"}
	ready := true
	if _, err := a.svc.Sessions().Get(ctx, id); !errors.Is(err, session.ErrNotFound) && !errors.Is(err, session.ErrExpired) {
		out["session_store"], ready = "unavailable", false
		a.metrics.readyFails.WithLabelValues("session").Inc()
		a.log.WarnContext(ctx, "readiness: session store", "error", err)
	}
	if _, err := a.blobs.Stat(ctx, session.BlobKey(id+"/"+session.NewID())); !errors.Is(err, session.ErrNotFound) {
		out["blob_store"], ready = "unavailable", false
		a.metrics.readyFails.WithLabelValues("blob").Inc()
		a.log.WarnContext(ctx, "readiness: blob store", "error", err)
	}
	if a.trail != nil {
		// Reported, not failing readiness: the trail holds records through
		// an outage and never stops the flow, and every instance shares the
		// database, so failing here would take them all out at once.
		// clinicalimages_audit_records_pending and _lost_total alert on it.
		out["audit_db"] = "ok"
		if err := a.trail.Ping(ctx); err != nil {
			out["audit_db"] = "unavailable"
			a.log.WarnContext(ctx, "readiness: audit database", "error", err)
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	if !ready {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	writeJSON(w, out)
}

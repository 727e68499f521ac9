package clinicalimages

import (
	"time"

	"github.com/clinicpro/clinicalimages/session"
)

// Metrics receives the Service's measurements, for an operator's dashboard.
// The SDK carries no exporter: a server adapts these calls to its metrics
// system (the reference server exports them in Prometheus' format). Every
// field is optional; a nil field is not called. Functions are called inline
// on the request's goroutine, so they must be fast and safe for concurrent
// use, and they receive no patient data.
type Metrics struct {
	// Upload is called once per upload the Service finished: code is ""
	// when the image was accepted, else why it was refused; normalize is
	// the time spent normalising (0 when refused before any decoding).
	Upload func(source session.Source, code FailureCode, normalize time.Duration)
	// Commit is called once per image listed in a Commit's result, when
	// the Commit returns, with the image's state (committed, failed, or
	// committing when someone else holds it; "" when it was not even
	// tried: no such image, listed twice) and, when it did not reach the
	// record, the code.
	Commit func(state session.State, code FailureCode)
	// Launch is called once per launch attempt through the HTTP API
	// (POST /launch): code is "" when a session started, else why the
	// launch was refused (rate_limited, launch_replayed, unauthenticated,
	// too_many_sessions...).
	Launch func(code FailureCode)
	// RateLimited is called when a rate limit refuses a request; limit names
	// it (for example "launch", before any ALEX call, or "claim").
	RateLimited func(limit string)
}

// WithMetrics sets where the Service reports its measurements (none by
// default).
func WithMetrics(m Metrics) Option {
	return func(o *options) error {
		o.metrics = m
		return nil
	}
}

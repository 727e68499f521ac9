package alex

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// attemptState carries one logical call's retry decisions across
// retryablehttp's callbacks.
type attemptState struct {
	c      *Client
	method string
	write  bool
	policy RetryPolicy
	corr   string
	path   string

	attempts int
	waited   time.Duration
	nextWait time.Duration
	// Per attempt, from httptrace: was a connection obtained, and was the
	// request completely written to it?
	gotConn atomic.Bool
	wrote   atomic.Bool
	// sentOnce: some attempt of this call wrote a complete request and got
	// no reply.
	sentOnce bool
}

func (st *attemptState) beforeAttempt(_ retryablehttp.Logger, _ *http.Request, _ int) {
	st.attempts++
	st.gotConn.Store(false)
	st.wrote.Store(false)
}

// unknown reports whether a failed write may have reached ALEX.
func (st *attemptState) unknown() bool { return st.sentOnce }

// checkRetry decides whether to retry, under the rules documented on Client.
func (st *attemptState) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if err != nil {
		// The request never reached ALEX if no connection was obtained. With
		// a connection but an incomplete write, ALEX never received a whole
		// request (the body length is declared), so nothing was created.
		notSent := !st.gotConn.Load() || !st.wrote.Load()
		if !notSent {
			st.sentOnce = true
		}
		st.c.log.DebugContext(ctx, "alex: attempt failed", "method", st.method, "path", st.path,
			"attempt", st.attempts, "correlation", st.corr, "sent", !notSent, "error", errKind(err))
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if st.write && !notSent {
			return false, err // outcome unknown: never resend blindly
		}
		if ok, _ := retryablehttp.DefaultRetryPolicy(ctx, nil, err); !ok {
			return false, err
		}
		return st.allow(ctx, nil), err
	}
	st.c.log.DebugContext(ctx, "alex: attempt", "method", st.method, "path", st.path,
		"status", resp.StatusCode, "attempt", st.attempts, "correlation", st.corr)
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	retry := false
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		retry = true
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		retry = !st.write
	case http.StatusServiceUnavailable:
		if !st.write {
			retry = true
		} else {
			// Only ALEX's own "cannot reach the facility" proves nothing was
			// stored; a gateway's 503 might follow a processed request.
			body := peekBody(resp, maxErrorBody)
			retry = (&Error{Status: resp.StatusCode, Issues: parseIssues(body)}).Is(ErrFacilityUnavailable)
		}
	}
	if !retry {
		return false, nil
	}
	return st.allow(ctx, resp), nil
}

// allow computes the next wait and refuses the retry if it would pass the
// total-wait cap or the attempt budget.
func (st *attemptState) allow(ctx context.Context, resp *http.Response) bool {
	if st.policy.Disabled || st.attempts > st.policy.MaxRetries {
		return false
	}
	wait := st.policy.backoff(st.attempts, resp, st.c.now())
	if st.waited+wait > st.policy.MaxTotalWait {
		st.c.log.DebugContext(ctx, "alex: not retrying, total wait cap reached", "correlation", st.corr, "wait", wait)
		return false
	}
	if dl, ok := ctx.Deadline(); ok && st.c.now().Add(wait).After(dl) {
		return false
	}
	st.waited += wait
	st.nextWait = wait
	return true
}

// backoff is handed to retryablehttp; the wait was decided in allow.
func (st *attemptState) backoff(_, _ time.Duration, _ int, _ *http.Response) time.Duration {
	return st.nextWait
}

// backoff returns the wait before retry number attempt (1-based): the
// Retry-After of resp if present, else MinWait*2^(attempt-1) capped at MaxWait,
// with full jitter in [d/2, d].
func (p RetryPolicy) backoff(attempt int, resp *http.Response, now time.Time) time.Duration {
	if resp != nil {
		if d := parseRetryAfter(resp.Header.Get("Retry-After"), now); d > 0 {
			return d
		}
	}
	d := float64(p.MinWait) * math.Pow(2, float64(attempt-1))
	if d > float64(p.MaxWait) {
		d = float64(p.MaxWait)
	}
	return jitter(time.Duration(d))
}

// errKind names a transport error without its text, which can hold URLs.
func errKind(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	}
	s := err.Error()
	for _, k := range []string{"timeout", "connection refused", "connection reset", "EOF", "no such host", "tls"} {
		if strings.Contains(s, k) {
			return k
		}
	}
	return "transport"
}

// Package backend holds what the session store implementations
// (redisstore, s3blob, fsblob) share in reporting their backends' failures.
package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/clinicpro/clinicalimages/session"
)

// Wrap names pkg and op in err. When the caller's context is done (see
// [CallerDone]) its error is put in the chain, since that is what the
// caller asked for; otherwise a failure of the backend itself (outage
// reports which) also wraps [session.ErrUnavailable].
func Wrap(ctx context.Context, pkg, op string, err error, outage func(error) bool) error {
	if cerr := CallerDone(ctx); cerr != nil {
		if errors.Is(err, cerr) {
			return fmt.Errorf("%s: %s: %w", pkg, op, err)
		}
		return fmt.Errorf("%s: %s: %w: %w", pkg, op, cerr, err)
	}
	if outage(err) {
		return fmt.Errorf("%s: %s: %w: %w", pkg, op, session.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %s: %w", pkg, op, err)
}

// CallerDone returns the context's error, or DeadlineExceeded once its
// deadline has passed even if the context has not noticed yet: a client
// that sets the deadline on its connection (go-redis with
// ContextTimeoutEnabled, net/http) can return an i/o timeout a moment
// before, and that timeout is the caller's, not the backend's.
func CallerDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// ErrReader remembers the first error its reader returned other than EOF,
// so that a store can tell the caller's reader failing (a phone's upload
// cut off) from its backend failing.
type ErrReader struct {
	R   io.Reader
	Err error
}

func (e *ErrReader) Read(p []byte) (int, error) {
	n, err := e.R.Read(p)
	if err != nil && err != io.EOF && e.Err == nil {
		e.Err = err
	}
	return n, err
}

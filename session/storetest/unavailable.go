package storetest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
)

// downBound caps each call on a store whose backend is down. A store must
// give up by itself (its client's dial or read timeout) well before this; a
// call that runs into it fails the suite, since it returns the context's
// error instead of session.ErrUnavailable.
const downBound = 2 * time.Minute

// requireUnavailable checks err says "backend down, retry later": it wraps
// session.ErrUnavailable, keeps the backend's own error (the message says
// more than the sentinel) and holds none of the forbidden strings.
func requireUnavailable(t *testing.T, err error, forbidden ...string) {
	t.Helper()
	require.ErrorIs(t, err, session.ErrUnavailable)
	msg := err.Error()
	assert.Greater(t, len(strings.Replace(msg, session.ErrUnavailable.Error(), "", 1)), 0,
		"the backend's error is kept: %q", msg)
	for _, f := range forbidden {
		assert.NotContains(t, msg, f, "no patient data in messages")
	}
}

// TestStoreUnavailable checks a Store whose backend cannot be reached or
// fails. newDown makes such a store (a client on a closed port, a stopped
// server): every method must fail with an error wrapping
// session.ErrUnavailable, by itself and well within a couple of minutes,
// with no patient data in the message; Update must not call fn; a
// malformed id and a cancelled context keep their own errors. A Limiter,
// SingleUse, Roster, Idempotency or Purger is checked too.
func TestStoreUnavailable(t *testing.T, newDown NewStore) {
	t.Helper()
	clk := NewClock(start())
	st := newDown(t, clk.Now)
	s := sampleSession(clk.Now())
	patient := []string{s.NHI, s.PatientID, s.Images[0].Clinical.Title}
	bounded := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), downBound)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("Create", func(t *testing.T) {
		c := s.Clone()
		requireUnavailable(t, st.Create(bounded(t), c), patient...)
	})
	t.Run("Get", func(t *testing.T) {
		_, err := st.Get(bounded(t), s.ID)
		requireUnavailable(t, err, patient...)
	})
	t.Run("Update", func(t *testing.T) {
		called := false
		_, err := st.Update(bounded(t), s.ID, func(s *session.Session) error { called = true; return nil })
		requireUnavailable(t, err, patient...)
		assert.False(t, called, "Update must not call fn when it cannot read the session")
	})
	t.Run("Delete", func(t *testing.T) {
		requireUnavailable(t, st.Delete(bounded(t), s.ID), patient...)
	})
	if l, ok := st.(session.Limiter); ok {
		t.Run("Failures", func(t *testing.T) {
			_, err := l.Failures(bounded(t), "k"+session.NewID())
			requireUnavailable(t, err)
		})
		t.Run("Fail", func(t *testing.T) {
			_, err := l.Fail(bounded(t), "k"+session.NewID(), time.Minute)
			requireUnavailable(t, err)
		})
	}
	if su, ok := st.(session.SingleUse); ok {
		t.Run("FirstUse", func(t *testing.T) {
			first, err := su.FirstUse(bounded(t), "k"+session.NewID(), time.Minute)
			requireUnavailable(t, err)
			assert.False(t, first, "an outage is never a first use")
		})
	}
	if r, ok := st.(session.Roster); ok {
		t.Run("Join", func(t *testing.T) {
			joined, err := r.Join(bounded(t), "g"+session.NewID(), s.ID, clk.Now().Add(time.Minute), 5)
			requireUnavailable(t, err, patient...)
			assert.False(t, joined)
		})
		t.Run("Lapsed", func(t *testing.T) {
			_, err := r.Lapsed(bounded(t), "g"+session.NewID())
			requireUnavailable(t, err)
		})
		t.Run("Leave", func(t *testing.T) {
			requireUnavailable(t, r.Leave(bounded(t), "g"+session.NewID(), s.ID), patient...)
		})
	}
	if idem, ok := st.(session.Idempotency); ok {
		testIdempotencyUnavailable(t, idem, s.ID, clk.Now(), bounded)
	}
	if p, ok := st.(session.Purger); ok {
		t.Run("Purge", func(t *testing.T) {
			_, err := p.Purge(bounded(t))
			requireUnavailable(t, err)
		})
	}
	t.Run("MalformedID", func(t *testing.T) {
		_, err := st.Get(bounded(t), "../../etc/passwd")
		require.ErrorIs(t, err, session.ErrNotFound, "checked before any I/O")
		assert.NotErrorIs(t, err, session.ErrUnavailable)
	})
	t.Run("CancelledContext", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		calls := map[string]func() error{
			"Create": func() error { return st.Create(ctx, s.Clone()) },
			"Get":    func() error { _, err := st.Get(ctx, s.ID); return err },
			"Update": func() error {
				_, err := st.Update(ctx, s.ID, func(*session.Session) error { return nil })
				return err
			},
			"Delete": func() error { return st.Delete(ctx, s.ID) },
		}
		for name, call := range calls {
			err := call()
			require.ErrorIs(t, err, context.Canceled, name)
			assert.NotErrorIs(t, err, session.ErrUnavailable, "%s: the caller gave up; that is no outage", name)
		}
	})
}

// TestBlobStoreUnavailable checks a BlobStore whose backend cannot be
// reached or fails. newDown makes such a store (a client on a closed port,
// a server answering 503, a removed directory): Put (of known and unknown
// size), Open, Stat, Delete and List must fail with an error wrapping
// session.ErrUnavailable, by themselves and well within a couple of
// minutes; List must not call fn; keys that escape the namespace and a
// cancelled context keep their own errors.
func TestBlobStoreUnavailable(t *testing.T, newDown NewBlobStore) {
	t.Helper()
	b := newDown(t)
	bounded := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), downBound)
		t.Cleanup(cancel)
		return ctx
	}
	for _, size := range []int64{5, 0} {
		t.Run(fmt.Sprintf("Put/size=%d", size), func(t *testing.T) {
			_, err := b.Put(bounded(t), newKey(), bytes.NewReader([]byte("bytes")), size, "image/jpeg")
			requireUnavailable(t, err)
		})
	}
	t.Run("Open", func(t *testing.T) {
		rc, err := b.Open(bounded(t), newKey())
		if err == nil {
			_ = rc.Close()
		}
		requireUnavailable(t, err)
	})
	t.Run("Stat", func(t *testing.T) {
		_, err := b.Stat(bounded(t), newKey())
		requireUnavailable(t, err)
	})
	t.Run("Delete", func(t *testing.T) {
		requireUnavailable(t, b.Delete(bounded(t), newKey()))
	})
	if l, ok := b.(session.BlobLister); ok {
		t.Run("List", func(t *testing.T) {
			called := false
			err := l.List(bounded(t), func(session.BlobInfo) error { called = true; return nil })
			requireUnavailable(t, err)
			assert.False(t, called)
		})
	}
	t.Run("EscapeKeys", func(t *testing.T) {
		for _, key := range EscapeKeys() {
			_, err := b.Put(bounded(t), key, bytes.NewReader([]byte("evil")), 4, "image/jpeg")
			require.ErrorIs(t, err, session.ErrInvalidKey, "%q is refused before any I/O", key)
			assert.NotErrorIs(t, err, session.ErrUnavailable)
			_, err = b.Stat(bounded(t), key)
			require.ErrorIs(t, err, session.ErrInvalidKey)
			assert.NotErrorIs(t, err, session.ErrUnavailable)
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		key := newKey()
		calls := map[string]func() error{
			"Put": func() error {
				_, err := b.Put(ctx, key, bytes.NewReader([]byte("x")), 1, "image/jpeg")
				return err
			},
			"Open": func() error {
				rc, err := b.Open(ctx, key)
				if err == nil {
					_ = rc.Close()
				}
				return err
			},
			"Stat": func() error { _, err := b.Stat(ctx, key); return err },
		}
		for name, call := range calls {
			err := call()
			require.ErrorIs(t, err, context.Canceled, name)
			assert.NotErrorIs(t, err, session.ErrUnavailable, "%s: the caller gave up; that is no outage", name)
		}
	})
}

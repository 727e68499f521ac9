package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
)

// NewStore makes a fresh, empty Store for one subtest, reading time from
// now. Stores that share a server must isolate each call (a key prefix).
// The store must keep expired records for a grace period of at least a
// minute and at most a day.
type NewStore func(t *testing.T, now func() time.Time) session.Store

// start is a realistic, fixed-zone time for the manual clocks: stores that
// turn expiry into a server-side TTL compute it relative to the clock.
func start() time.Time { return time.Now().UTC().Truncate(time.Second) }

// TestStore runs the Store conformance suite. Subtests run in parallel.
func TestStore(t *testing.T, newStore NewStore) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, newStore NewStore)
	}{
		{"NotFound", testNotFound},
		{"RoundTrip", testRoundTrip},
		{"CreateExisting", testCreateExisting},
		{"Overwrite", testOverwrite},
		{"UpdateAborted", testUpdateAborted},
		{"SnapshotsIsolated", testSnapshotsIsolated},
		{"Expiry", testExpiry},
		{"CancelledContext", testCancelled},
		{"DeleteIdempotent", testDeleteIdempotent},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"ConcurrentAddImage", testConcurrentAddImage},
		{"RacingCommitClaims", testRacingClaims},
		{"CommitLifecycle", testCommitLifecycle},
		{"ManagerExpiry", testManagerExpiry},
		{"Handoff", testHandoff},
		{"HandoffRateLimit", testHandoffRateLimit},
		{"SweepLeavesNothing", testSweepLeavesNothing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore)
		})
	}
}

// requireNamed checks err wraps target, a condition with a name of its own,
// and is therefore not reported as the backend being unavailable.
func requireNamed(t *testing.T, err, target error, msgAndArgs ...any) {
	t.Helper()
	require.ErrorIs(t, err, target, msgAndArgs...)
	assert.NotErrorIs(t, err, session.ErrUnavailable, "%v is not an outage", target)
}

func sampleSession(now time.Time) *session.Session {
	sid := session.NewID()
	iid := session.NewID()
	key, _ := session.NewBlobKey(sid, iid)
	return &session.Session{
		ID: sid,
		Launch: session.Launch{
			Facility: "F2N060-D", PatientID: "14e52e16edb7a435bfa05e307afd008b",
			NHI: "ZZZ0016", Practitioner: "practitioner-1", Encounter: "enc-9",
		},
		CreatedAt: now, LastActivity: now, ExpiresAt: now.Add(10 * time.Minute),
		Phone: session.Phone{State: session.PhonePaired, Device: "iPhone", PairedAt: now, TokenHash: "ab12", Uploads: 1},
		Images: []session.Image{{
			ID: iid, BlobKey: key, ContentType: "image/jpeg", Size: 1234,
			SHA1: "da39a3ee5e6b4b0d3255bfef95601890afd80709", SHA256: "e3b0c442",
			Width: 2048, Height: 1536, Source: session.SourcePhone,
			Clinical: session.Clinical{BodySite: "368209003", Laterality: "7771000", View: "260521003", Title: "Left forearm", Note: "lesion"},
			Consent:  session.Consent{Given: true, Method: "verbal", RecordedBy: "practitioner-1", RecordedAt: now},
			State:    session.StateFailed, FailReason: "ALEX 503", Attempts: 2, Version: 4,
			CreatedAt: now, UpdatedAt: now.Add(time.Second),
		}},
	}
}

func testNotFound(t *testing.T, newStore NewStore) {
	st := newStore(t, NewClock(start()).Now)
	ctx := t.Context()
	_, err := st.Get(ctx, session.NewID())
	requireNamed(t, err, session.ErrNotFound)
	called := false
	_, err = st.Update(ctx, session.NewID(), func(*session.Session) error { called = true; return nil })
	requireNamed(t, err, session.ErrNotFound)
	assert.False(t, called, "Update must not call fn for a missing session")
	_, err = st.Get(ctx, "../../etc/passwd")
	requireNamed(t, err, session.ErrNotFound, "a malformed id is never found")
}

func testRoundTrip(t *testing.T, newStore NewStore) {
	clk := NewClock(start())
	st := newStore(t, clk.Now)
	want := sampleSession(clk.Now())
	require.NoError(t, st.Create(t.Context(), want))
	assert.Equal(t, int64(1), want.Version, "Create sets Version to 1")
	got, err := st.Get(t.Context(), want.ID)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func testCreateExisting(t *testing.T, newStore NewStore) {
	clk := NewClock(start())
	st := newStore(t, clk.Now)
	s := sampleSession(clk.Now())
	require.NoError(t, st.Create(t.Context(), s))
	again := sampleSession(clk.Now())
	again.ID = s.ID
	again.NHI = "ZZZ0024"
	requireNamed(t, st.Create(t.Context(), again), session.ErrConflict)
	got, err := st.Get(t.Context(), s.ID)
	require.NoError(t, err)
	assert.Equal(t, "ZZZ0016", got.NHI, "a refused Create must not overwrite")
}

func testOverwrite(t *testing.T, newStore NewStore) {
	clk := NewClock(start())
	st := newStore(t, clk.Now)
	s := sampleSession(clk.Now())
	require.NoError(t, st.Create(t.Context(), s))
	for i := range 3 {
		out, err := st.Update(t.Context(), s.ID, func(s *session.Session) error {
			s.Images[0].Clinical.Title = fmt.Sprintf("title %d", i)
			s.Phone.Device = "Pixel"
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, int64(i+2), out.Version)
		got, err := st.Get(t.Context(), s.ID)
		require.NoError(t, err)
		assert.Equal(t, out, got, "Update returns what is stored")
		assert.Equal(t, fmt.Sprintf("title %d", i), got.Images[0].Clinical.Title)
	}
}

func testUpdateAborted(t *testing.T, newStore NewStore) {
	clk := NewClock(start())
	st := newStore(t, clk.Now)
	s := sampleSession(clk.Now())
	require.NoError(t, st.Create(t.Context(), s))
	boom := errors.New("boom")
	_, err := st.Update(t.Context(), s.ID, func(s *session.Session) error {
		s.NHI = "changed"
		return boom
	})
	requireNamed(t, err, boom, "fn's error is returned as is")
	got, err := st.Get(t.Context(), s.ID)
	require.NoError(t, err)
	assert.Equal(t, "ZZZ0016", got.NHI)
	assert.Equal(t, int64(1), got.Version)
}

func testSnapshotsIsolated(t *testing.T, newStore NewStore) {
	clk := NewClock(start())
	st := newStore(t, clk.Now)
	s := sampleSession(clk.Now())
	require.NoError(t, st.Create(t.Context(), s))
	s.Images[0].State = session.StateCommitted // the caller's copy
	got, err := st.Get(t.Context(), s.ID)
	require.NoError(t, err)
	got.Images[0].Clinical.Title = "mutated"
	again, err := st.Get(t.Context(), s.ID)
	require.NoError(t, err)
	assert.Equal(t, session.StateFailed, again.Images[0].State)
	assert.Equal(t, "Left forearm", again.Images[0].Clinical.Title)
}

func testExpiry(t *testing.T, newStore NewStore) {
	clk := NewClock(start())
	st := newStore(t, clk.Now)
	s := sampleSession(clk.Now()) // expires in 10 minutes
	require.NoError(t, st.Create(t.Context(), s))

	clk.Advance(10*time.Minute - time.Second)
	_, err := st.Get(t.Context(), s.ID)
	require.NoError(t, err, "not yet expired")

	clk.Advance(time.Second)
	_, err = st.Get(t.Context(), s.ID)
	requireNamed(t, err, session.ErrExpired, "expired at ExpiresAt, kept for the grace period")
	called := false
	_, err = st.Update(t.Context(), s.ID, func(*session.Session) error { called = true; return nil })
	requireNamed(t, err, session.ErrExpired)
	assert.False(t, called, "Update must not call fn for an expired session")

	clk.Advance(25 * time.Hour)
	_, err = st.Get(t.Context(), s.ID)
	requireNamed(t, err, session.ErrNotFound, "discarded after the grace period")
}

func testCancelled(t *testing.T, newStore NewStore) {
	clk := NewClock(start())
	st := newStore(t, clk.Now)
	s := sampleSession(clk.Now())
	require.NoError(t, st.Create(t.Context(), s))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		call func() error
	}{
		{"Create", func() error { return st.Create(ctx, sampleSession(clk.Now())) }},
		{"Get", func() error { _, err := st.Get(ctx, s.ID); return err }},
		{"Update", func() error {
			_, err := st.Update(ctx, s.ID, func(s *session.Session) error { s.NHI = "x"; return nil })
			return err
		}},
		{"Delete", func() error { return st.Delete(ctx, s.ID) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireNamed(t, tc.call(), context.Canceled)
		})
	}
	got, err := st.Get(t.Context(), s.ID)
	require.NoError(t, err, "a cancelled Delete must not delete")
	assert.Equal(t, "ZZZ0016", got.NHI, "a cancelled Update must not write")
}

func testDeleteIdempotent(t *testing.T, newStore NewStore) {
	clk := NewClock(start())
	st := newStore(t, clk.Now)
	s := sampleSession(clk.Now())
	require.NoError(t, st.Create(t.Context(), s))
	require.NoError(t, st.Delete(t.Context(), s.ID))
	require.NoError(t, st.Delete(t.Context(), s.ID))
	require.NoError(t, st.Delete(t.Context(), session.NewID()))
	_, err := st.Get(t.Context(), s.ID)
	require.ErrorIs(t, err, session.ErrNotFound)
}

func testConcurrentUpdates(t *testing.T, newStore NewStore) {
	clk := NewClock(start())
	st := newStore(t, clk.Now)
	s := sampleSession(clk.Now())
	s.Images = nil
	require.NoError(t, st.Create(t.Context(), s))
	const writers = 100
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			id := session.NewID()
			_, err := st.Update(t.Context(), s.ID, func(s *session.Session) error {
				s.Images = append(s.Images, session.Image{ID: id, State: session.StateUploaded})
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := st.Get(t.Context(), s.ID)
	require.NoError(t, err)
	assert.Len(t, got.Images, writers, "no update lost")
	assert.Equal(t, int64(writers+1), got.Version)
	ids := map[string]bool{}
	for _, img := range got.Images {
		ids[img.ID] = true
	}
	assert.Len(t, ids, writers, "every image distinct")
}

// newManager runs a Manager on the store under test, with memory blobs.
func newManager(t *testing.T, newStore NewStore, opts ...session.Option) (*session.Manager, *Clock, session.Store, *memory.BlobStore) {
	t.Helper()
	clk := NewClock(start())
	st := newStore(t, clk.Now)
	blobs, err := memory.NewBlobStore(memory.WithClock(clk.Now))
	require.NoError(t, err)
	opts = append([]session.Option{session.WithClock(clk.Now)}, opts...)
	if _, ok := st.(session.Limiter); !ok {
		lim, err := memory.NewStore(memory.WithClock(clk.Now))
		require.NoError(t, err)
		opts = append(opts, session.WithLimiter(lim))
	}
	m, err := session.New(st, blobs, opts...)
	require.NoError(t, err)
	return m, clk, st, blobs
}

var launch = session.Launch{Facility: "F2N060-D", PatientID: "14e52e16", NHI: "ZZZ0016", Practitioner: "p1"}

func jpeg(b string) session.Upload {
	return session.Upload{Body: bytes.NewReader([]byte(b)), Size: int64(len(b)), ContentType: "image/jpeg", Width: 2, Height: 1}
}

func testConcurrentAddImage(t *testing.T, newStore NewStore) {
	m, _, _, blobs := newManager(t, newStore)
	s, err := m.Start(t.Context(), launch)
	require.NoError(t, err)
	const writers = 100
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			_, err := m.AddImage(t.Context(), s.ID, jpeg(fmt.Sprintf("image %d", i)))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := m.Get(t.Context(), s.ID)
	require.NoError(t, err)
	require.Len(t, got.Images, writers, "no image lost")
	seen := map[string]bool{}
	for _, img := range got.Images {
		rc, err := blobs.Open(t.Context(), img.BlobKey)
		require.NoError(t, err)
		var buf bytes.Buffer
		_, err = buf.ReadFrom(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		seen[buf.String()] = true
		assert.Equal(t, int64(buf.Len()), img.Size)
	}
	assert.Len(t, seen, writers, "every image's bytes kept")
}

func testRacingClaims(t *testing.T, newStore NewStore) {
	m, _, _, _ := newManager(t, newStore)
	s, err := m.Start(t.Context(), launch)
	require.NoError(t, err)
	img, err := m.AddImage(t.Context(), s.ID, jpeg("x"))
	require.NoError(t, err)
	const racers = 20
	var wg sync.WaitGroup
	results := make(chan error, racers)
	for range racers {
		wg.Go(func() {
			_, err := m.ClaimCommit(t.Context(), s.ID, img.ID)
			results <- err
		})
	}
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		if err == nil {
			won++
			continue
		}
		require.ErrorIs(t, err, session.ErrAlreadyCommitting)
	}
	assert.Equal(t, 1, won, "exactly one claim wins")
	got, err := m.Get(t.Context(), s.ID)
	require.NoError(t, err)
	assert.Equal(t, session.StateCommitting, got.Images[0].State)
	assert.Equal(t, 1, got.Images[0].Attempts)
}

func testCommitLifecycle(t *testing.T, newStore NewStore) {
	m, clk, _, blobs := newManager(t, newStore, session.WithCommitLease(2*time.Minute))
	ctx := t.Context()
	s, err := m.Start(ctx, launch)
	require.NoError(t, err)
	img, err := m.AddImage(ctx, s.ID, jpeg("bytes"))
	require.NoError(t, err)
	assert.Equal(t, session.StateUploaded, img.State)
	assert.Equal(t, session.SourceDesktop, img.Source)

	img, err = m.SetMetadata(ctx, s.ID, img.ID, session.Clinical{BodySite: "368209003", Title: "Arm"}, session.Consent{Given: true})
	require.NoError(t, err)
	assert.Equal(t, "Arm", img.Clinical.Title)

	c1, err := m.ClaimCommit(ctx, s.ID, img.ID)
	require.NoError(t, err)
	assert.Equal(t, "ZZZ0016", c1.Session.NHI, "the claim carries the patient for the Media")
	_, err = m.SetMetadata(ctx, s.ID, img.ID, session.Clinical{}, session.Consent{})
	require.ErrorIs(t, err, session.ErrAlreadyCommitting)
	require.ErrorIs(t, m.RemoveImage(ctx, s.ID, img.ID), session.ErrAlreadyCommitting)

	failed, err := m.MarkFailed(ctx, c1, "alex_busy", "ALEX unavailable")
	require.NoError(t, err)
	assert.Equal(t, session.StateFailed, failed.State)
	assert.Equal(t, "ALEX unavailable", failed.FailReason)
	assert.Equal(t, "alex_busy", failed.FailCode)
	_, err = m.MarkCommitted(ctx, c1, "media-1")
	require.ErrorIs(t, err, session.ErrStaleClaim, "a settled claim cannot settle again")

	c2, err := m.ClaimCommit(ctx, s.ID, img.ID)
	require.NoError(t, err)
	assert.Equal(t, 2, c2.Image.Attempts)

	// A claim whose lease passed is taken over; the old holder is stale.
	clk.Advance(3 * time.Minute)
	c3, err := m.ClaimCommit(ctx, s.ID, img.ID)
	require.NoError(t, err)
	_, err = m.MarkCommitted(ctx, c2, "media-2")
	require.ErrorIs(t, err, session.ErrStaleClaim)

	done, err := m.MarkCommitted(ctx, c3, "media-3")
	require.NoError(t, err)
	assert.Equal(t, session.StateCommitted, done.State)
	assert.Equal(t, "media-3", done.MediaID)
	_, err = blobs.Stat(ctx, img.BlobKey)
	require.ErrorIs(t, err, session.ErrNotFound, "bytes deleted after commit")

	_, err = m.ClaimCommit(ctx, s.ID, img.ID)
	require.ErrorIs(t, err, session.ErrAlreadyCommitted)
	_, err = m.SetMetadata(ctx, s.ID, img.ID, session.Clinical{}, session.Consent{})
	require.ErrorIs(t, err, session.ErrAlreadyCommitted)
	_, err = m.ClaimCommit(ctx, s.ID, session.NewID())
	require.ErrorIs(t, err, session.ErrNotFound)

	other, err := m.AddImage(ctx, s.ID, jpeg("other"))
	require.NoError(t, err)
	require.NoError(t, m.RemoveImage(ctx, s.ID, other.ID))
	require.ErrorIs(t, m.RemoveImage(ctx, s.ID, other.ID), session.ErrNotFound)
	_, err = blobs.Stat(ctx, other.BlobKey)
	require.ErrorIs(t, err, session.ErrNotFound, "bytes deleted with the image")
}

func testManagerExpiry(t *testing.T, newStore NewStore) {
	m, clk, _, blobs := newManager(t, newStore, session.WithIdleTimeout(10*time.Minute), session.WithMaxLifetime(30*time.Minute))
	ctx := t.Context()
	s, err := m.Start(ctx, launch)
	require.NoError(t, err)
	assert.Equal(t, s.CreatedAt.Add(10*time.Minute), s.ExpiresAt)

	// Activity keeps it alive past the idle timeout...
	for range 2 {
		clk.Advance(9 * time.Minute)
		_, err = m.Touch(ctx, s.ID)
		require.NoError(t, err)
	}
	// ...but not past the absolute cap.
	clk.Advance(9 * time.Minute)
	got, err := m.Touch(ctx, s.ID)
	require.NoError(t, err)
	assert.Equal(t, s.CreatedAt.Add(30*time.Minute), got.ExpiresAt)
	clk.Advance(3 * time.Minute)
	_, err = m.Get(ctx, s.ID)
	require.ErrorIs(t, err, session.ErrExpired)
	_, err = m.AddImage(ctx, s.ID, jpeg("late"))
	require.ErrorIs(t, err, session.ErrExpired)
	n := 0
	require.NoError(t, blobs.List(ctx, func(session.BlobInfo) error { n++; return nil }))
	assert.Zero(t, n, "no bytes stored for an expired session")
}

func testHandoff(t *testing.T, newStore NewStore) {
	m, clk, _, _ := newManager(t, newStore, session.WithHandoffTTL(5*time.Minute))
	ctx := t.Context()
	s, err := m.Start(ctx, launch)
	require.NoError(t, err)

	code, exp, err := m.IssueHandoff(ctx, s.ID)
	require.NoError(t, err)
	assert.Equal(t, clk.Now().Add(5*time.Minute), exp)
	assert.GreaterOrEqual(t, len(code)-len(s.ID)-1, 26, "at least 128 random bits")
	assert.NotContains(t, code, launch.NHI)
	stored, err := m.Get(ctx, s.ID)
	require.NoError(t, err)
	assert.NotContains(t, fmt.Sprintf("%+v", stored), code[len(s.ID)+1:], "only a hash of the code is stored")

	_, _, err = m.ClaimHandoff(ctx, s.ID+"."+session.NewID(), "ua", "192.0.2.1")
	require.ErrorIs(t, err, session.ErrInvalidCode, "wrong code")

	token, view, err := m.ClaimHandoff(ctx, code, "iPhone Safari", "192.0.2.1")
	require.NoError(t, err)
	assert.Equal(t, session.PhoneView{SessionID: s.ID, ExpiresAt: clk.Now().Add(10 * time.Minute)}, view)
	_, _, err = m.ClaimHandoff(ctx, code, "another phone", "192.0.2.2")
	require.ErrorIs(t, err, session.ErrInvalidCode, "single use")

	stored, err = m.Get(ctx, s.ID)
	require.NoError(t, err)
	assert.Equal(t, session.PhonePaired, stored.Phone.State)
	assert.Equal(t, "iPhone Safari", stored.Phone.Device)
	assert.NotContains(t, fmt.Sprintf("%+v", stored), token[len(s.ID)+1:], "only a hash of the token is stored")

	v, err := m.AuthenticatePhone(ctx, token)
	require.NoError(t, err)
	assert.Equal(t, s.ID, v.SessionID)
	img, err := m.AddPhoneImage(ctx, token, jpeg("from phone"))
	require.NoError(t, err)
	assert.Equal(t, session.SourcePhone, img.Source)
	v, err = m.AuthenticatePhone(ctx, token)
	require.NoError(t, err)
	assert.Equal(t, 1, v.Uploads)

	for _, bad := range []string{"", "x", s.ID, s.ID + ".", s.ID + "." + session.NewID(), s.ID + ".." + session.NewID(), code} {
		_, err := m.AuthenticatePhone(ctx, bad)
		require.ErrorIs(t, err, session.ErrInvalidToken, "token %q", bad)
	}
	_, err = m.AuthenticatePhone(ctx, session.NewID()+"."+session.NewID())
	require.ErrorIs(t, err, session.ErrNotFound, "a token for no session")

	require.NoError(t, m.RevokePhone(ctx, s.ID))
	_, err = m.AuthenticatePhone(ctx, token)
	require.ErrorIs(t, err, session.ErrRevoked)
	_, err = m.AddPhoneImage(ctx, token, jpeg("after revoke"))
	require.ErrorIs(t, err, session.ErrRevoked)

	// An unclaimed code expires.
	code2, _, err := m.IssueHandoff(ctx, s.ID)
	require.NoError(t, err)
	clk.Advance(5 * time.Minute)
	_, _, err = m.ClaimHandoff(ctx, code2, "ua", "192.0.2.3")
	require.ErrorIs(t, err, session.ErrInvalidCode, "expired code")

	// A new code replaces the old one; the token dies with the session.
	code3, _, err := m.IssueHandoff(ctx, s.ID)
	require.NoError(t, err)
	code4, _, err := m.IssueHandoff(ctx, s.ID)
	require.NoError(t, err)
	_, _, err = m.ClaimHandoff(ctx, code3, "ua", "192.0.2.3")
	require.ErrorIs(t, err, session.ErrInvalidCode, "replaced code")
	token4, _, err := m.ClaimHandoff(ctx, code4, "ua", "192.0.2.3")
	require.NoError(t, err)
	clk.Advance(11 * time.Minute)
	_, err = m.AuthenticatePhone(ctx, token4)
	require.ErrorIs(t, err, session.ErrExpired)
	_, _, err = m.IssueHandoff(ctx, s.ID)
	require.ErrorIs(t, err, session.ErrExpired)
}

// testHandoffRateLimit runs the attacks on pairing: wrong guesses, from one
// address or at one session, never lock the right code out; the budgets
// still brake a scanner, with a typed error saying which and for how long.
func testHandoffRateLimit(t *testing.T, newStore NewStore) {
	const perSession, perAddress, window = 3, 5, time.Minute
	m, clk, _, _ := newManager(t, newStore, session.WithClaimLimits(perSession, perAddress, window))
	ctx := t.Context()
	issue := func(t *testing.T) (sid, code string) {
		t.Helper()
		s, err := m.Start(ctx, launch)
		require.NoError(t, err)
		code, _, err = m.IssueHandoff(ctx, s.ID)
		require.NoError(t, err)
		return s.ID, code
	}
	requireLimited := func(t *testing.T, err error, scope session.LimitScope) {
		t.Helper()
		requireNamed(t, err, session.ErrRateLimited)
		var rl *session.RateLimitError
		require.ErrorAs(t, err, &rl)
		assert.Equal(t, scope, rl.Scope)
		assert.Equal(t, window, rl.RetryAfter)
	}
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"RightCodeAfterWrongFromSameAddress", func(t *testing.T) {
			// A practice behind NAT: someone there guesses, a GP pairs.
			const addr = "198.51.100.1"
			_, code := issue(t)
			for i := range 4 * perAddress {
				bad := session.NewID() + "." + session.NewID()
				if i%2 == 0 {
					bad = "garbage"
				}
				_, _, err := m.ClaimHandoff(ctx, bad, "ua", addr)
				require.Error(t, err)
			}
			_, _, err := m.ClaimHandoff(ctx, "garbage", "ua", addr)
			requireLimited(t, err, session.LimitAddress)
			_, _, err = m.ClaimHandoff(ctx, code, "ua", addr)
			require.NoError(t, err, "the right code from an address past its budget")
		}},
		{"RightSecretAfterWrongSecrets", func(t *testing.T) {
			// The session id is the QR code's prefix: guesses at its secret,
			// from one address and from many, never lock the GP out.
			sid, code := issue(t)
			for i := range 4 * perSession {
				_, _, err := m.ClaimHandoff(ctx, sid+"."+session.NewID(), "ua", fmt.Sprintf("203.0.113.%d", i%3))
				if i < perSession {
					requireNamed(t, err, session.ErrInvalidCode)
				} else {
					requireLimited(t, err, session.LimitSession)
				}
			}
			_, view, err := m.ClaimHandoff(ctx, code, "ua", "203.0.113.1")
			require.NoError(t, err, "the right secret after %d wrong ones", 4*perSession)
			assert.Equal(t, sid, view.SessionID)
		}},
		{"AddressBrakesScanner", func(t *testing.T) {
			const addr = "192.0.2.200"
			for i := range 2 * perAddress {
				_, _, err := m.ClaimHandoff(ctx, session.NewID()+"."+session.NewID(), "ua", addr)
				if i < perAddress {
					requireNamed(t, err, session.ErrInvalidCode)
				} else {
					requireLimited(t, err, session.LimitAddress)
				}
			}
			_, _, err := m.ClaimHandoff(ctx, session.NewID()+"."+session.NewID(), "ua", "192.0.2.201")
			requireNamed(t, err, session.ErrInvalidCode, "another address has its own budget")
		}},
		{"IPv6SharesItsSlash64", func(t *testing.T) {
			for i := range perAddress {
				_, _, err := m.ClaimHandoff(ctx, "garbage", "ua", fmt.Sprintf("2001:db8:1:2::%x", i+1))
				requireNamed(t, err, session.ErrInvalidCode)
			}
			_, _, err := m.ClaimHandoff(ctx, "garbage", "ua", "2001:db8:1:2:ffff::9")
			requireLimited(t, err, session.LimitAddress)
			_, _, err = m.ClaimHandoff(ctx, "garbage", "ua", "2001:db8:1:3::1")
			requireNamed(t, err, session.ErrInvalidCode, "the next /64 is another budget")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
	// Windows close: the budgets reset.
	clk.Advance(window + time.Second)
	_, _, err := m.ClaimHandoff(ctx, "garbage", "ua", "192.0.2.200")
	requireNamed(t, err, session.ErrInvalidCode, "the address window has closed")
}

func testSweepLeavesNothing(t *testing.T, newStore NewStore) {
	m, clk, st, blobs := newManager(t, newStore, session.WithRetention(time.Hour), session.WithOrphanGrace(time.Minute))
	ctx := t.Context()
	count := func() int {
		n := 0
		require.NoError(t, blobs.List(ctx, func(session.BlobInfo) error { n++; return nil }))
		return n
	}

	live, err := m.Start(ctx, launch)
	require.NoError(t, err)
	kept, err := m.AddImage(ctx, live.ID, jpeg("kept"))
	require.NoError(t, err)
	committed, err := m.AddImage(ctx, live.ID, jpeg("committed"))
	require.NoError(t, err)
	c, err := m.ClaimCommit(ctx, live.ID, committed.ID)
	require.NoError(t, err)
	_, err = m.MarkCommitted(ctx, c, "media-1")
	require.NoError(t, err)
	// Bytes left behind by a commit whose delete failed, and an orphan.
	_, err = blobs.Put(ctx, committed.BlobKey, bytes.NewReader([]byte("x")), 1, "image/jpeg")
	require.NoError(t, err)
	orphan, _ := session.NewBlobKey(live.ID, session.NewID())
	_, err = blobs.Put(ctx, orphan, bytes.NewReader([]byte("x")), 1, "image/jpeg")
	require.NoError(t, err)

	dying, err := m.Start(ctx, launch)
	require.NoError(t, err)
	_, err = m.AddImage(ctx, dying.ID, jpeg("expires"))
	require.NoError(t, err)
	_, _, err = m.IssueHandoff(ctx, dying.ID)
	require.NoError(t, err)

	rep, err := m.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.BlobsDeleted, "only the committed image's bytes go at once")
	assert.Equal(t, 3, count())

	// Keep live alive; let dying expire; let the orphan's grace pass.
	clk.Advance(9 * time.Minute)
	_, err = m.Touch(ctx, live.ID)
	require.NoError(t, err)
	clk.Advance(2 * time.Minute)
	rep, err = m.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, rep.BlobsDeleted, "the orphan and the expired session's bytes")
	assert.Equal(t, 1, count())
	_, err = blobs.Stat(ctx, kept.BlobKey)
	require.NoError(t, err, "a live image's bytes stay within retention")

	// The retention window removes even a live, uncommitted image's bytes.
	for range 7 {
		clk.Advance(7 * time.Minute)
		_, err = m.Touch(ctx, live.ID)
		require.NoError(t, err)
	}
	_, err = m.Sweep(ctx)
	require.NoError(t, err)
	assert.Zero(t, count(), "no bytes remain")
	got, err := m.Get(ctx, live.ID)
	require.NoError(t, err)
	purged := got.Image(kept.ID)
	require.NotNil(t, purged, "the image stays listed")
	assert.True(t, purged.Purged)
	assert.Equal(t, session.StateFailed, purged.State)
	assert.Equal(t, session.PurgedReason, purged.FailReason)
	assert.Equal(t, session.PurgedCode, purged.FailCode)
	_, err = m.ClaimCommit(ctx, live.ID, kept.ID)
	require.ErrorIs(t, err, session.ErrExpired, "purged bytes cannot be committed")
	rep, err = m.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, session.SweepReport{}, rep, "a second sweep finds nothing")

	// Ending removes the session; expiry plus grace removes the other.
	require.NoError(t, m.End(ctx, live.ID))
	clk.Advance(25 * time.Hour)
	_, err = m.Sweep(ctx)
	require.NoError(t, err)
	for _, id := range []string{live.ID, dying.ID} {
		_, err = st.Get(ctx, id)
		require.ErrorIs(t, err, session.ErrNotFound, "no session record remains")
	}
	if l, ok := st.(interface{ Len() int }); ok {
		assert.Zero(t, l.Len(), "nothing remains in the store, handoff codes and counters included")
	}
}

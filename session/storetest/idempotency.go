package storetest

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
)

// TestIdempotency runs the session.Idempotency conformance suite on the
// store newStore makes (which must implement it): a key is claimed by
// exactly one of many racing callers, a pending claim reads back with its
// digest and token, it is filled only by its own token and released only by
// it, a done record is never released or re-claimed, a lapsed lease is taken
// over (and the old holder can then neither fill nor release it), records
// vanish at their expiry, keys and sessions are independent, odd key
// characters are kept apart, and a cancelled context is the caller's error.
// Subtests run in parallel.
func TestIdempotency(t *testing.T, newStore NewStore) {
	t.Helper()
	get := func(t *testing.T) (session.Idempotency, *Clock) {
		clk := NewClock(start())
		st := newStore(t, clk.Now)
		idem, ok := st.(session.Idempotency)
		require.True(t, ok, "%T does not implement session.Idempotency", st)
		return idem, clk
	}
	const sumA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	const sumB = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
	pending := func(clk *Clock, sum string) session.UploadRecord {
		now := clk.Now()
		return session.UploadRecord{SHA256: sum, Token: session.NewID(), Lease: now.Add(time.Minute), Expires: now.Add(time.Hour)}
	}
	claim := func(t *testing.T, idem session.Idempotency, sid, key string, rec session.UploadRecord) (session.UploadRecord, bool) {
		t.Helper()
		cur, ok, err := idem.ClaimUpload(t.Context(), sid, key, rec)
		require.NoError(t, err)
		return cur, ok
	}

	t.Run("ClaimOnce", func(t *testing.T) {
		t.Parallel()
		idem, clk := get(t)
		sid, key := session.NewID(), "k-"+session.NewID()
		first := pending(clk, sumA)
		cur, ok := claim(t, idem, sid, key, first)
		require.True(t, ok)
		assert.Equal(t, first.Token, cur.Token)
		assert.False(t, cur.Done())

		cur, ok = claim(t, idem, sid, key, pending(clk, sumA))
		assert.False(t, ok, "a pending claim within its lease is not claimed again")
		assert.Equal(t, first.Token, cur.Token, "the loser reads the holder's claim")
		assert.Equal(t, sumA, cur.SHA256)
		assert.False(t, cur.Done())

		got, err := idem.LookupUpload(t.Context(), sid, key)
		require.NoError(t, err)
		assert.Equal(t, first.Token, got.Token)
		assert.Equal(t, sumA, got.SHA256)
		assert.WithinDuration(t, first.Expires, got.Expires, time.Millisecond)
		assert.WithinDuration(t, first.Lease, got.Lease, time.Millisecond)

		_, ok = claim(t, idem, sid, "k-"+session.NewID(), pending(clk, sumA))
		assert.True(t, ok, "keys are independent")
		_, ok = claim(t, idem, session.NewID(), key, pending(clk, sumA))
		assert.True(t, ok, "sessions are independent")
	})
	t.Run("Racing", func(t *testing.T) {
		t.Parallel()
		idem, clk := get(t)
		sid, key := session.NewID(), "k-"+session.NewID()
		wins, seen := race(t, 50, func(int) (string, bool, error) {
			cur, ok, err := idem.ClaimUpload(t.Context(), sid, key, pending(clk, sumA))
			return cur.Token, ok, err
		})
		assert.Equal(t, 1, wins, "exactly one of 50 racing claims wins")
		assert.Len(t, seen, 1, "every caller reads the one winning claim")
	})
	t.Run("CompleteThenReplay", func(t *testing.T) {
		t.Parallel()
		idem, clk := get(t)
		sid, key := session.NewID(), "k-"+session.NewID()
		first := pending(clk, sumA)
		_, ok := claim(t, idem, sid, key, first)
		require.True(t, ok)
		img := session.NewID()
		require.NoError(t, idem.CompleteUpload(t.Context(), sid, key, first.Token, img))

		got, err := idem.LookupUpload(t.Context(), sid, key)
		require.NoError(t, err)
		assert.True(t, got.Done())
		assert.Equal(t, img, got.ImageID)
		assert.Equal(t, sumA, got.SHA256)

		clk.Advance(10 * time.Minute) // far past the lease: done records stay
		cur, ok := claim(t, idem, sid, key, pending(clk, sumB))
		assert.False(t, ok, "a done record is never claimed again")
		assert.Equal(t, img, cur.ImageID)
		assert.Equal(t, sumA, cur.SHA256, "the record keeps the first bytes' digest")

		require.NoError(t, idem.ReleaseUpload(t.Context(), sid, key, first.Token))
		got, err = idem.LookupUpload(t.Context(), sid, key)
		require.NoError(t, err, "a done record is never released")
		assert.Equal(t, img, got.ImageID)

		err = idem.CompleteUpload(t.Context(), sid, key, first.Token, session.NewID())
		require.ErrorIs(t, err, session.ErrUploadClaimLost, "a done record is filled once")
		require.ErrorIs(t, err, session.ErrConflict)
		got, err = idem.LookupUpload(t.Context(), sid, key)
		require.NoError(t, err)
		assert.Equal(t, img, got.ImageID, "the first image stays")
	})
	t.Run("Release", func(t *testing.T) {
		t.Parallel()
		idem, clk := get(t)
		sid, key := session.NewID(), "k-"+session.NewID()
		first := pending(clk, sumA)
		_, ok := claim(t, idem, sid, key, first)
		require.True(t, ok)
		require.NoError(t, idem.ReleaseUpload(t.Context(), sid, key, session.NewID()))
		_, ok = claim(t, idem, sid, key, pending(clk, sumA))
		assert.False(t, ok, "another token cannot release the claim")

		require.NoError(t, idem.ReleaseUpload(t.Context(), sid, key, first.Token))
		_, err := idem.LookupUpload(t.Context(), sid, key)
		require.ErrorIs(t, err, session.ErrNotFound)
		second := pending(clk, sumB)
		cur, ok := claim(t, idem, sid, key, second)
		assert.True(t, ok, "a released key is free again")
		assert.Equal(t, sumB, cur.SHA256)
		require.NoError(t, idem.ReleaseUpload(t.Context(), session.NewID(), "k-missing", "t"), "releasing nothing is no error")
	})
	t.Run("WrongToken", func(t *testing.T) {
		t.Parallel()
		idem, clk := get(t)
		sid, key := session.NewID(), "k-"+session.NewID()
		first := pending(clk, sumA)
		_, ok := claim(t, idem, sid, key, first)
		require.True(t, ok)
		err := idem.CompleteUpload(t.Context(), sid, key, session.NewID(), session.NewID())
		require.ErrorIs(t, err, session.ErrUploadClaimLost)
		err = idem.CompleteUpload(t.Context(), sid, "k-"+session.NewID(), first.Token, session.NewID())
		require.ErrorIs(t, err, session.ErrUploadClaimLost, "no record, nothing to fill")
		got, err := idem.LookupUpload(t.Context(), sid, key)
		require.NoError(t, err)
		assert.False(t, got.Done(), "a wrong token filled nothing")
	})
	t.Run("LeaseTakeover", func(t *testing.T) {
		t.Parallel()
		idem, clk := get(t)
		sid, key := session.NewID(), "k-"+session.NewID()
		first := pending(clk, sumA)
		_, ok := claim(t, idem, sid, key, first)
		require.True(t, ok)
		clk.Advance(59 * time.Second)
		_, ok = claim(t, idem, sid, key, pending(clk, sumA))
		assert.False(t, ok, "within the lease")
		clk.Advance(2 * time.Second)
		second := pending(clk, sumA)
		cur, ok := claim(t, idem, sid, key, second)
		require.True(t, ok, "a lapsed lease is taken over")
		assert.Equal(t, second.Token, cur.Token)

		require.ErrorIs(t, idem.CompleteUpload(t.Context(), sid, key, first.Token, session.NewID()), session.ErrUploadClaimLost,
			"the old holder cannot fill the new claim")
		require.NoError(t, idem.ReleaseUpload(t.Context(), sid, key, first.Token))
		img := session.NewID()
		require.NoError(t, idem.CompleteUpload(t.Context(), sid, key, second.Token, img), "the old holder released nothing")
		got, err := idem.LookupUpload(t.Context(), sid, key)
		require.NoError(t, err)
		assert.Equal(t, img, got.ImageID)
	})
	t.Run("Expires", func(t *testing.T) {
		t.Parallel()
		idem, clk := get(t)
		sid, key := session.NewID(), "k-"+session.NewID()
		first := pending(clk, sumA)
		_, ok := claim(t, idem, sid, key, first)
		require.True(t, ok)
		require.NoError(t, idem.CompleteUpload(t.Context(), sid, key, first.Token, session.NewID()))
		clk.Advance(59 * time.Minute)
		_, err := idem.LookupUpload(t.Context(), sid, key)
		require.NoError(t, err, "kept until its expiry")
		clk.Advance(time.Minute)
		_, err = idem.LookupUpload(t.Context(), sid, key)
		require.ErrorIs(t, err, session.ErrNotFound, "gone at its expiry")
		_, ok = claim(t, idem, sid, key, pending(clk, sumB))
		assert.True(t, ok, "an expired record frees its key")
	})
	t.Run("LookupMissing", func(t *testing.T) {
		t.Parallel()
		idem, _ := get(t)
		_, err := idem.LookupUpload(t.Context(), session.NewID(), "k-"+session.NewID())
		require.ErrorIs(t, err, session.ErrNotFound)
		assert.NotErrorIs(t, err, session.ErrUnavailable)
	})
	t.Run("OddKeys", func(t *testing.T) {
		t.Parallel()
		idem, clk := get(t)
		sid := session.NewID()
		keys := []string{"a:b", "a", "a*", "*", "a:b:c", "{tag}", "ü-not-ascii", "x y"}
		for _, k := range keys {
			_, ok := claim(t, idem, sid, k, pending(clk, sumA))
			assert.True(t, ok, "%q is its own key", k)
		}
	})
	t.Run("BadClaim", func(t *testing.T) {
		t.Parallel()
		idem, clk := get(t)
		rec := pending(clk, sumA)
		rec.Token = ""
		_, ok, err := idem.ClaimUpload(t.Context(), session.NewID(), "k", rec)
		require.Error(t, err, "a claim needs a token")
		assert.False(t, ok)
		rec = pending(clk, sumA)
		rec.ImageID = session.NewID()
		_, ok, err = idem.ClaimUpload(t.Context(), session.NewID(), "k", rec)
		require.Error(t, err, "a claim is pending, not done")
		assert.False(t, ok)
	})
	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		idem, clk := get(t)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		sid, key := session.NewID(), "k-"+session.NewID()
		rec := pending(clk, sumA)
		calls := map[string]func() error{
			"ClaimUpload":    func() error { _, _, err := idem.ClaimUpload(ctx, sid, key, rec); return err },
			"CompleteUpload": func() error { return idem.CompleteUpload(ctx, sid, key, rec.Token, session.NewID()) },
			"ReleaseUpload":  func() error { return idem.ReleaseUpload(ctx, sid, key, rec.Token) },
			"LookupUpload":   func() error { _, err := idem.LookupUpload(ctx, sid, key); return err },
		}
		for name, call := range calls {
			err := call()
			require.ErrorIs(t, err, context.Canceled, name)
			assert.NotErrorIs(t, err, session.ErrUnavailable, "%s: the caller gave up; that is no outage", name)
		}
		_, ok := claim(t, idem, sid, key, rec)
		assert.True(t, ok, "a cancelled claim recorded nothing")
	})
}

// testIdempotencyUnavailable checks every Idempotency method of a store
// whose backend is down.
func testIdempotencyUnavailable(t *testing.T, idem session.Idempotency, sid string, now time.Time, bounded func(*testing.T) context.Context) {
	t.Helper()
	rec := session.UploadRecord{SHA256: "00", Token: session.NewID(), Lease: now.Add(time.Minute), Expires: now.Add(time.Hour)}
	t.Run("ClaimUpload", func(t *testing.T) {
		_, claimed, err := idem.ClaimUpload(bounded(t), sid, "k", rec)
		requireUnavailable(t, err)
		assert.False(t, claimed, "an outage is never a claim")
	})
	t.Run("CompleteUpload", func(t *testing.T) {
		err := idem.CompleteUpload(bounded(t), sid, "k", rec.Token, session.NewID())
		requireUnavailable(t, err)
		assert.NotErrorIs(t, err, session.ErrUploadClaimLost, "an outage says nothing about the claim")
	})
	t.Run("ReleaseUpload", func(t *testing.T) {
		requireUnavailable(t, idem.ReleaseUpload(bounded(t), sid, "k", rec.Token))
	})
	t.Run("LookupUpload", func(t *testing.T) {
		_, err := idem.LookupUpload(bounded(t), sid, "k")
		requireUnavailable(t, err)
		assert.NotErrorIs(t, err, session.ErrNotFound)
	})
}

// NewManagers makes two session.Managers that share one deployment's
// stores (for Redis: two Store values on one server and prefix, as two
// instances would hold them) and one blob store, which it also returns.
type NewManagers func(t *testing.T) (a, b *session.Manager, blobs session.BlobStore)

// TestIdempotentUploads runs the idempotent-upload flow of
// session.Manager.AddImageOnce and AddPhoneImageOnce over two Managers
// sharing stores: a replay on either Manager returns the first image and
// stores nothing (one image listed, one blob), racing uploads with one key
// on both Managers make one image, the same key with other bytes is
// refused with ErrKeyReused, a failed upload frees its key, a replay
// checks the phone's token again, and malformed keys are refused.
func TestIdempotentUploads(t *testing.T, newManagers NewManagers) {
	t.Helper()
	const sumA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	const sumB = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
	body := func() session.Upload {
		return session.Upload{Body: strings.NewReader("normalised jpeg bytes"), Size: 21, ContentType: "image/jpeg", Width: 4, Height: 3}
	}
	launch := session.Launch{Facility: "f", PatientID: "p", NHI: "ZZZ0016", Practitioner: "d"}
	start := func(t *testing.T, m *session.Manager) string {
		t.Helper()
		s, err := m.Start(t.Context(), launch)
		require.NoError(t, err)
		return s.ID
	}
	images := func(t *testing.T, m *session.Manager, sid string) int {
		t.Helper()
		s, err := m.Get(t.Context(), sid)
		require.NoError(t, err)
		return len(s.Images)
	}
	blobCount := func(t *testing.T, blobs session.BlobStore) int {
		t.Helper()
		l, ok := blobs.(session.BlobLister)
		require.True(t, ok, "the blob store must list its blobs")
		n := 0
		require.NoError(t, l.List(t.Context(), func(session.BlobInfo) error { n++; return nil }))
		return n
	}

	t.Run("ReplayOnEitherInstance", func(t *testing.T) {
		t.Parallel()
		a, b, blobs := newManagers(t)
		sid := start(t, a)
		key := "key-" + session.NewID()
		_, found, err := b.UploadDone(t.Context(), sid, key)
		require.NoError(t, err)
		assert.False(t, found)

		img, replay, err := a.AddImageOnce(t.Context(), sid, key, sumA, body())
		require.NoError(t, err)
		assert.False(t, replay)
		rec, found, err := b.UploadDone(t.Context(), sid, key)
		require.NoError(t, err)
		require.True(t, found, "the other instance sees the finished upload")
		assert.Equal(t, img.ID, rec.ImageID)
		assert.Equal(t, sumA, rec.SHA256)

		for _, m := range []*session.Manager{a, b, a} {
			got, replay, err := m.AddImageOnce(t.Context(), sid, key, sumA, body())
			require.NoError(t, err)
			assert.True(t, replay)
			assert.Equal(t, img.ID, got.ID)
			assert.Equal(t, img.SHA256, got.SHA256, "the replay returns the stored image")
		}
		assert.Equal(t, 1, images(t, b, sid), "one image listed")
		assert.Equal(t, 1, blobCount(t, blobs), "one blob stored")

		_, _, err = b.AddImageOnce(t.Context(), sid, key, sumB, body())
		require.ErrorIs(t, err, session.ErrKeyReused)
		require.ErrorIs(t, err, session.ErrConflict)
		assert.Equal(t, 1, images(t, a, sid))

		other, replay, err := b.AddImageOnce(t.Context(), sid, "key-"+session.NewID(), sumA, body())
		require.NoError(t, err)
		assert.False(t, replay, "a new key is a new photo, even with the same bytes")
		assert.NotEqual(t, img.ID, other.ID)
		assert.Equal(t, 2, images(t, a, sid))
	})
	t.Run("RacingInstances", func(t *testing.T) {
		t.Parallel()
		a, b, blobs := newManagers(t)
		sid := start(t, a)
		key := "key-" + session.NewID()
		made, ids := race(t, 12, func(i int) (string, bool, error) {
			m := a
			if i%2 == 1 {
				m = b
			}
			img, replay, err := m.AddImageOnce(t.Context(), sid, key, sumA, body())
			return img.ID, !replay, err
		})
		assert.Equal(t, 1, made, "one of 12 racing uploads makes the image")
		assert.Len(t, ids, 1, "all 12 get the same image")
		assert.Equal(t, 1, images(t, a, sid))
		assert.Equal(t, 1, blobCount(t, blobs))
	})
	t.Run("ReusedWhilePending", func(t *testing.T) {
		t.Parallel()
		a, b, _ := newManagers(t)
		sid := start(t, a)
		key := "key-" + session.NewID()
		// The first upload's body blocks until the second has been refused:
		// its claim is pending throughout.
		release, first := gatedUpload(t, a, sid, key, sumA, body())
		_, _, err := b.AddImageOnce(t.Context(), sid, key, sumB, body())
		require.ErrorIs(t, err, session.ErrKeyReused, "other bytes are refused without waiting")
		release()
		require.NoError(t, (<-first).err)
		assert.Equal(t, 1, images(t, a, sid))
	})
	t.Run("WaitsForPending", func(t *testing.T) {
		t.Parallel()
		a, b, _ := newManagers(t)
		sid := start(t, a)
		key := "key-" + session.NewID()
		release, first := gatedUpload(t, a, sid, key, sumA, body())
		second := make(chan uploadResult, 1)
		go func() {
			img, replay, err := b.AddImageOnce(t.Context(), sid, key, sumA, body())
			second <- uploadResult{img, replay, err}
		}()
		// The second finds the claim pending and waits; it cannot finish
		// before the first is let go. Several poll rounds give a broken
		// implementation time to return early (a slow machine only makes
		// this check weaker, never wrong).
		select {
		case r := <-second:
			t.Fatalf("the second upload returned before the first finished: %+v", r)
		case <-time.After(300 * time.Millisecond):
		}
		release()
		r1, r2 := <-first, <-second
		require.NoError(t, r1.err)
		require.NoError(t, r2.err)
		assert.False(t, r1.replay)
		assert.True(t, r2.replay, "the second reads the first's outcome")
		assert.Equal(t, r1.img.ID, r2.img.ID)
		assert.Equal(t, 1, images(t, a, sid))
	})
	t.Run("InProgressWhenWaitEnds", func(t *testing.T) {
		t.Parallel()
		a, b, _ := newManagers(t)
		sid := start(t, a)
		key := "key-" + session.NewID()
		release, first := gatedUpload(t, a, sid, key, sumA, body())
		// A request deadline shorter than UploadWait ends the wait with the
		// retryable error, never a second image. The deadline leaves room
		// for the store's round trips on a loaded machine: spent before the
		// wait, it would end the call with the deadline's own error.
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, _, err := b.AddImageOnce(ctx, sid, key, sumA, body())
		require.ErrorIs(t, err, session.ErrUploadInProgress)
		release()
		require.NoError(t, (<-first).err)
		assert.Equal(t, 1, images(t, a, sid))
	})
	t.Run("FailureFreesKey", func(t *testing.T) {
		t.Parallel()
		a, b, blobs := newManagers(t)
		sid := start(t, a)
		key := "key-" + session.NewID()
		bad := body()
		bad.Size = 999 // does not match the body: nothing is stored
		_, _, err := a.AddImageOnce(t.Context(), sid, key, sumA, bad)
		require.Error(t, err)
		_, found, err := b.UploadDone(t.Context(), sid, key)
		require.NoError(t, err)
		assert.False(t, found)
		img, replay, err := b.AddImageOnce(t.Context(), sid, key, sumA, body())
		require.NoError(t, err, "the retry after a failure lands")
		assert.False(t, replay)
		assert.NotEmpty(t, img.ID)
		assert.Equal(t, 1, images(t, a, sid))
		assert.Equal(t, 1, blobCount(t, blobs))
	})
	t.Run("Phone", func(t *testing.T) {
		t.Parallel()
		a, b, _ := newManagers(t)
		sid := start(t, a)
		code, _, err := a.IssueHandoff(t.Context(), sid)
		require.NoError(t, err)
		tok, _, err := b.ClaimHandoff(t.Context(), code, "phone", "192.0.2.1")
		require.NoError(t, err)
		key := "key-" + session.NewID()
		img, replay, err := a.AddPhoneImageOnce(t.Context(), tok, key, sumA, body())
		require.NoError(t, err)
		assert.False(t, replay)
		assert.Equal(t, session.SourcePhone, img.Source)
		got, replay, err := b.AddPhoneImageOnce(t.Context(), tok, key, sumA, body())
		require.NoError(t, err)
		assert.True(t, replay)
		assert.Equal(t, img.ID, got.ID)
		s, err := a.Get(t.Context(), sid)
		require.NoError(t, err)
		assert.Equal(t, 1, s.Phone.Uploads, "a replay is not counted as another upload")

		require.NoError(t, a.RevokePhone(t.Context(), sid))
		_, _, err = b.AddPhoneImageOnce(t.Context(), tok, key, sumA, body())
		require.ErrorIs(t, err, session.ErrRevoked, "a revoked phone learns nothing, even on a replay")
	})
	t.Run("BadKeys", func(t *testing.T) {
		t.Parallel()
		a, _, _ := newManagers(t)
		sid := start(t, a)
		for _, k := range []string{"", "with space", "quote\"", "back\\slash", "é", strings.Repeat("k", session.MaxIdempotencyKeyLen+1)} {
			_, _, err := a.AddImageOnce(t.Context(), sid, k, sumA, body())
			require.ErrorIs(t, err, session.ErrInvalidID, "%q", k)
		}
		_, _, err := a.AddImageOnce(t.Context(), sid, "key", "", body())
		require.Error(t, err, "the digest is required")
		assert.Equal(t, 0, images(t, a, sid))
	})
}

// uploadResult is what AddImageOnce returned.
type uploadResult struct {
	img    session.Image
	replay bool
	err    error
}

// gatedUpload starts m.AddImageOnce with u on its own goroutine and returns
// once its body is being read, so its claim on key is pending; the upload
// finishes only after release is called, and its result arrives on the
// channel.
func gatedUpload(t *testing.T, m *session.Manager, sid, key, sum string, u session.Upload) (release func(), result <-chan uploadResult) {
	t.Helper()
	gate, reading := make(chan struct{}), make(chan struct{})
	out := make(chan uploadResult, 1)
	u.Body = &gateReader{r: u.Body, reading: reading, release: gate}
	go func() {
		img, replay, err := m.AddImageOnce(t.Context(), sid, key, sum, u)
		out <- uploadResult{img, replay, err}
	}()
	<-reading
	return func() { close(gate) }, out
}

// gateReader signals when its first Read begins and blocks it until
// release is closed.
type gateReader struct {
	r        io.Reader
	reading  chan struct{}
	release  chan struct{}
	signaled bool
}

func (g *gateReader) Read(p []byte) (int, error) {
	if !g.signaled {
		g.signaled = true
		close(g.reading)
		<-g.release
	}
	return g.r.Read(p)
}

// race runs do n times at once (with the index of each call) and returns
// how many calls reported winning and how many times each id was
// returned; a call's error fails t.
func race(t *testing.T, n int, do func(i int) (id string, won bool, err error)) (wins int, ids map[string]int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids = map[string]int{}
	for i := range n {
		wg.Go(func() {
			id, won, err := do(i)
			if !assert.NoError(t, err) {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if won {
				wins++
			}
			ids[id]++
		})
	}
	wg.Wait()
	return wins, ids
}

package session_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
	"github.com/clinicpro/clinicalimages/session/storetest"
)

func TestNewID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 1000 {
		id := session.NewID()
		require.True(t, session.ValidID(id), id)
		require.False(t, seen[id], "ids repeat")
		seen[id] = true
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		id   string
		want bool
	}{
		{"Made", session.NewID(), true},
		{"Empty", "", false},
		{"Short", "abc", false},
		{"Upper", strings.ToUpper(session.NewID()), false},
		{"Digit1", "1" + session.NewID()[1:], false},
		{"Dot", "." + session.NewID()[1:], false},
		{"Slash", "/" + session.NewID()[1:], false},
		{"Long", session.NewID() + "a", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.want, session.ValidID(tc.id))
		})
	}
}

func TestBlobKey(t *testing.T) {
	t.Parallel()
	sid, iid := session.NewID(), session.NewID()
	key, err := session.NewBlobKey(sid, iid)
	require.NoError(t, err)
	assert.Equal(t, session.BlobKey(sid+"/"+iid), key)
	s, i, err := key.Parts()
	require.NoError(t, err)
	assert.Equal(t, []string{sid, iid}, []string{s, i})

	tests := []struct {
		name     string
		sid, iid string
	}{
		{"DotDotSession", "..", iid},
		{"SlashImage", sid, "a/b"},
		{"EmptySession", "", iid},
		{"UpperImage", sid, strings.ToUpper(iid)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := session.NewBlobKey(tc.sid, tc.iid)
			require.ErrorIs(t, err, session.ErrInvalidID)
		})
	}
	for _, k := range storetest.EscapeKeys() {
		require.ErrorIs(t, k.Validate(), session.ErrInvalidKey, "%q", k)
		_, _, err := k.Parts()
		require.ErrorIs(t, err, session.ErrInvalidKey)
	}
}

// FuzzBlobKey: whatever the string, a key that validates names exactly one
// file two levels down, with nothing a path could use to climb.
func FuzzBlobKey(f *testing.F) {
	f.Add(session.NewID() + "/" + session.NewID())
	for _, k := range storetest.EscapeKeys() {
		f.Add(string(k))
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := session.BlobKey(s)
		if k.Validate() != nil {
			return
		}
		sid, iid, err := k.Parts()
		require.NoError(t, err)
		again, err := session.NewBlobKey(sid, iid)
		require.NoError(t, err)
		require.Equal(t, k, again)
		require.Equal(t, 1, strings.Count(s, "/"))
		require.NotContains(t, s, "..")
		require.NotContains(t, s, "\\")
	})
}

func TestDigestReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		size    int64
		wantErr error
	}{
		{"Exact", "hello", 5, nil},
		{"Unknown", "hello", 0, nil},
		{"EmptyUnknown", "", 0, nil},
		{"Longer", "hello world", 5, session.ErrSizeMismatch},
		{"Shorter", "hi", 5, session.ErrSizeMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := session.NewDigestReader(strings.NewReader(tc.body), tc.size)
			_, err := io.Copy(io.Discard, d)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.False(t, d.Done())
				return
			}
			require.NoError(t, err)
			assert.True(t, d.Done())
			info := d.Info("k", "image/jpeg")
			assert.Equal(t, int64(len(tc.body)), info.Size)
			if tc.body == "hello" {
				assert.Equal(t, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", info.SHA256)
				assert.Equal(t, "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", info.SHA1)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	st, err := memory.NewStore()
	require.NoError(t, err)
	blobs, err := memory.NewBlobStore()
	require.NoError(t, err)
	tests := []struct {
		name string
		opt  session.Option
	}{
		{"NilOption", nil},
		{"NilClock", session.WithClock(nil)},
		{"ZeroIdle", session.WithIdleTimeout(0)},
		{"NegativeLifetime", session.WithMaxLifetime(-time.Hour)},
		{"ZeroHandoff", session.WithHandoffTTL(0)},
		{"ZeroRetention", session.WithRetention(0)},
		{"ZeroLease", session.WithCommitLease(0)},
		{"ZeroOrphanGrace", session.WithOrphanGrace(0)},
		{"NilLimiter", session.WithLimiter(nil)},
		{"ZeroSessionLimit", session.WithClaimLimits(0, 1, time.Minute)},
		{"ZeroWindow", session.WithClaimLimits(1, 1, 0)},
		{"NilLogger", session.WithLogger(nil)},
		{"ZeroMaxImageSize", session.WithMaxImageSize(0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := session.New(st, blobs, tc.opt)
			require.Error(t, err)
		})
	}
	_, err = session.New(nil, blobs)
	require.Error(t, err)
	_, err = session.New(noLimiter{st}, blobs)
	require.Error(t, err, "a store that is no Limiter needs WithLimiter")
	_, err = session.New(noLimiter{st}, blobs, session.WithLimiter(st))
	require.NoError(t, err)
}

type noLimiter struct{ session.Store }

func newManager(t *testing.T, opts ...session.Option) (*session.Manager, *storetest.Clock) {
	t.Helper()
	clk := storetest.NewClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	st, err := memory.NewStore(memory.WithClock(clk.Now))
	require.NoError(t, err)
	blobs, err := memory.NewBlobStore(memory.WithClock(clk.Now))
	require.NoError(t, err)
	m, err := session.New(st, blobs, append([]session.Option{session.WithClock(clk.Now)}, opts...)...)
	require.NoError(t, err)
	return m, clk
}

func TestStartValidates(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t)
	full := session.Launch{Facility: "f", PatientID: "p", NHI: "ZZZ0016", Practitioner: "d"}
	tests := []struct {
		name string
		edit func(*session.Launch)
	}{
		{"NoFacility", func(l *session.Launch) { l.Facility = "" }},
		{"NoPatient", func(l *session.Launch) { l.PatientID = "" }},
		{"NoNHI", func(l *session.Launch) { l.NHI = "" }},
		{"NoPractitioner", func(l *session.Launch) { l.Practitioner = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := full
			tc.edit(&l)
			_, err := m.Start(t.Context(), l)
			require.Error(t, err)
			assert.NotContains(t, err.Error(), "ZZZ0016", "no NHI in errors")
		})
	}
	s, err := m.Start(t.Context(), full)
	require.NoError(t, err)
	assert.Empty(t, s.Encounter, "encounter is optional")
}

func TestAddImageValidates(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t)
	s, err := m.Start(t.Context(), session.Launch{Facility: "f", PatientID: "p", NHI: "ZZZ0016", Practitioner: "d"})
	require.NoError(t, err)
	tests := []struct {
		name string
		u    session.Upload
	}{
		{"NoBody", session.Upload{ContentType: "image/jpeg"}},
		{"NoContentType", session.Upload{Body: strings.NewReader("x")}},
		{"NegativeSize", session.Upload{Body: strings.NewReader("x"), ContentType: "image/jpeg", Size: -1}},
		{"WrongSize", session.Upload{Body: strings.NewReader("x"), ContentType: "image/jpeg", Size: 9}},
		{"DeclaredTooLarge", session.Upload{Body: strings.NewReader("x"), ContentType: "image/jpeg", Size: 1 << 40}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := m.AddImage(t.Context(), s.ID, tc.u)
			require.Error(t, err)
		})
	}
	got, err := m.Get(t.Context(), s.ID)
	require.NoError(t, err)
	assert.Empty(t, got.Images)
	_, err = m.AddImage(t.Context(), session.NewID(), session.Upload{Body: strings.NewReader("x"), ContentType: "image/jpeg"})
	require.ErrorIs(t, err, session.ErrNotFound)
}

func TestAddImageTooLarge(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t, session.WithMaxImageSize(10))
	s, err := m.Start(t.Context(), session.Launch{Facility: "f", PatientID: "p", NHI: "ZZZ0016", Practitioner: "d"})
	require.NoError(t, err)
	tests := []struct {
		name string
		body string
		size int64
		want error
	}{
		{"AtLimit", "0123456789", 0, nil},
		{"OverUnknownSize", "0123456789a", 0, session.ErrTooLarge},
		{"OverDeclared", "0123456789a", 11, session.ErrTooLarge},
		{"LyingDeclared", "0123456789abcdef", 5, session.ErrSizeMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.AddImage(t.Context(), s.ID, session.Upload{Body: strings.NewReader(tc.body), Size: tc.size, ContentType: "image/jpeg"})
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
		})
	}
	got, err := m.Get(t.Context(), s.ID)
	require.NoError(t, err)
	assert.Len(t, got.Images, 1, "only the image within the limit")
}

// TestAddImageSessionGoneMidUpload: if the session ends while the bytes
// stream, they are deleted and the caller learns why.
func TestAddImageSessionGoneMidUpload(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t)
	ctx := t.Context()
	s, err := m.Start(ctx, session.Launch{Facility: "f", PatientID: "p", NHI: "ZZZ0016", Practitioner: "d"})
	require.NoError(t, err)
	body := &endingReader{r: strings.NewReader("bytes"), end: func() { require.NoError(t, m.End(ctx, s.ID)) }}
	_, err = m.AddImage(ctx, s.ID, session.Upload{Body: body, ContentType: "image/jpeg"})
	require.ErrorIs(t, err, session.ErrNotFound)
	rep, err := m.Sweep(ctx)
	require.NoError(t, err)
	assert.Zero(t, rep.BlobsDeleted+rep.BlobsKept, "the bytes were already deleted")
}

type endingReader struct {
	r   io.Reader
	end func()
}

func (e *endingReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF && e.end != nil {
		e.end()
		e.end = nil
	}
	return n, err
}

func TestRunSweeperStops(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t)
	require.Error(t, m.RunSweeper(t.Context(), 0))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.RunSweeper(ctx, time.Millisecond) }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("RunSweeper did not stop")
	}
}

// TestSweepWithoutLister: a BlobStore that cannot list still lets Sweep
// purge sessions.
func TestSweepWithoutLister(t *testing.T) {
	t.Parallel()
	clk := storetest.NewClock(time.Now())
	st, err := memory.NewStore(memory.WithClock(clk.Now))
	require.NoError(t, err)
	blobs, err := memory.NewBlobStore()
	require.NoError(t, err)
	m, err := session.New(st, struct{ session.BlobStore }{blobs}, session.WithClock(clk.Now))
	require.NoError(t, err)
	_, err = m.Start(t.Context(), session.Launch{Facility: "f", PatientID: "p", NHI: "ZZZ0016", Practitioner: "d"})
	require.NoError(t, err)
	clk.Advance(48 * time.Hour)
	rep, err := m.Sweep(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, rep.SessionsPurged)
}

// TestMarkCommittedNeedsClaim: settling without a claim is refused.
func TestMarkCommittedNeedsClaim(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t)
	_, err := m.MarkCommitted(t.Context(), session.Claim{}, "media-1")
	require.ErrorIs(t, err, session.ErrStaleClaim)
	_, err = m.MarkCommitted(t.Context(), session.Claim{}, "")
	require.Error(t, err)
	_, err = m.MarkFailed(t.Context(), session.Claim{}, "alex_error", "x")
	require.ErrorIs(t, err, session.ErrStaleClaim)
}

func TestErrorsWrapConflict(t *testing.T) {
	t.Parallel()
	for _, err := range []error{session.ErrAlreadyCommitting, session.ErrAlreadyCommitted, session.ErrStaleClaim} {
		assert.True(t, errors.Is(err, session.ErrConflict), "%v", err)
	}
}

func Example() {
	ctx := context.Background()
	store, _ := memory.NewStore()
	blobs, _ := memory.NewBlobStore()
	m, _ := session.New(store, blobs)

	s, _ := m.Start(ctx, session.Launch{Facility: "F2N060-D", PatientID: "p-1", NHI: "ZZZ0016", Practitioner: "d-1"})
	img, _ := m.AddImage(ctx, s.ID, session.Upload{Body: bytes.NewReader([]byte("jpeg bytes")), ContentType: "image/jpeg"})
	_, _ = m.SetMetadata(ctx, s.ID, img.ID, session.Clinical{BodySite: "368209003", Title: "Right arm"}, session.Consent{Given: true})

	claim, _ := m.ClaimCommit(ctx, s.ID, img.ID)
	_, err := m.ClaimCommit(ctx, s.ID, img.ID)
	fmt.Println("second claim:", errors.Is(err, session.ErrAlreadyCommitting))
	// ... build the FHIR Media from claim.Session and claim.Image, POST it ...
	done, _ := m.MarkCommitted(ctx, claim, "media-123")
	fmt.Println(done.State, done.MediaID)
	_, err = blobs.Stat(ctx, img.BlobKey)
	fmt.Println("bytes kept after commit:", !errors.Is(err, session.ErrNotFound))
	// Output:
	// second claim: true
	// committed media-123
	// bytes kept after commit: false
}

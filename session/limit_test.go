package session_test

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	gosync "sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/memory"
)

// gatedReader holds its first Read until every upload of the test has
// reached its own first Read, so all of them have passed AddImage's early
// count check before any is listed: only the check inside the session
// update can then keep the session at its limit.
type gatedReader struct {
	r       io.Reader
	arrived *gosync.WaitGroup
	open    <-chan struct{}
	once    gosync.Once
}

func (g *gatedReader) Read(p []byte) (int, error) {
	g.once.Do(func() {
		g.arrived.Done()
		<-g.open
	})
	return g.r.Read(p)
}

func TestMaxImagesHoldsUnderConcurrentUploads(t *testing.T) {
	t.Parallel()
	const limit, uploads = 3, 12
	st, err := memory.NewStore()
	require.NoError(t, err)
	blobs, err := memory.NewBlobStore()
	require.NoError(t, err)
	m, err := session.New(st, blobs, session.WithMaxImages(limit))
	require.NoError(t, err)
	s, err := m.Start(t.Context(), session.Launch{Facility: "f", PatientID: "p", NHI: "ZZZ0016", Practitioner: "d"})
	require.NoError(t, err)

	var arrived gosync.WaitGroup
	arrived.Add(uploads)
	open := make(chan struct{})
	go func() { arrived.Wait(); close(open) }()

	errs := make(chan error, uploads)
	var wg gosync.WaitGroup
	for i := range uploads {
		wg.Go(func() {
			body := &gatedReader{r: strings.NewReader(fmt.Sprintf("image %d", i)), arrived: &arrived, open: open}
			_, err := m.AddImage(t.Context(), s.ID, session.Upload{Body: body, ContentType: "image/jpeg"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok, refused := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case assert.ErrorIs(t, err, session.ErrTooManyImages):
			refused++
		}
	}
	assert.Equal(t, limit, ok)
	assert.Equal(t, uploads-limit, refused)

	got, err := m.Get(t.Context(), s.ID)
	require.NoError(t, err)
	require.Len(t, got.Images, limit, "exactly the limit is listed")
	listed := map[session.BlobKey]bool{}
	for _, img := range got.Images {
		listed[img.BlobKey] = true
	}
	stored := 0
	require.NoError(t, blobs.List(t.Context(), func(bi session.BlobInfo) error {
		stored++
		assert.True(t, listed[bi.Key], "blob %s is not listed in the session: orphaned", bi.Key)
		return nil
	}))
	assert.Equal(t, limit, stored, "no refused upload left bytes behind")

	// The early check refuses a full session before reading any byte.
	body := &countingReader{}
	_, err = m.AddImage(t.Context(), s.ID, session.Upload{Body: body, ContentType: "image/jpeg"})
	require.ErrorIs(t, err, session.ErrTooManyImages)
	assert.Zero(t, body.n, "no byte read for a full session")
}

type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) { c.n++; return 0, io.EOF }

func TestWithMaxImagesValidates(t *testing.T) {
	t.Parallel()
	st, err := memory.NewStore()
	require.NoError(t, err)
	blobs, err := memory.NewBlobStore()
	require.NoError(t, err)
	for _, n := range []int{0, -1} {
		_, err := session.New(st, blobs, session.WithMaxImages(n))
		require.Error(t, err, n)
	}
}

func TestMarkFailedKeepsCodeAndReasonApart(t *testing.T) {
	t.Parallel()
	m, _ := newManager(t)
	ctx := t.Context()
	s, err := m.Start(ctx, session.Launch{Facility: "f", PatientID: "p", NHI: "ZZZ0016", Practitioner: "d"})
	require.NoError(t, err)
	img, err := m.AddImage(ctx, s.ID, session.Upload{Body: strings.NewReader("x"), ContentType: "image/jpeg"})
	require.NoError(t, err)
	c, err := m.ClaimCommit(ctx, s.ID, img.ID)
	require.NoError(t, err)
	failed, err := m.MarkFailed(ctx, c, "alex_busy", "Medtech is busy: try again.")
	require.NoError(t, err)
	assert.Equal(t, session.StateFailed, failed.State)
	assert.Equal(t, "alex_busy", failed.FailCode)
	assert.Equal(t, "Medtech is busy: try again.", failed.FailReason, "a colon in the message stays in the message")

	c, err = m.ClaimCommit(ctx, s.ID, img.ID)
	require.NoError(t, err)
	assert.Empty(t, c.Image.FailCode, "a new claim clears the failure")
	assert.Empty(t, c.Image.FailReason)
}

// TestImageReadsOldFailureRecords: records written before FailCode held
// "code: message" in failReason; they still load, split.
func TestImageReadsOldFailureRecords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, json, code, reason string
	}{
		{"Old", `{"state":"failed","failReason":"outcome_unknown: Medtech did not answer"}`, "outcome_unknown", "Medtech did not answer"},
		{"OldNoCode", `{"state":"failed","failReason":"ALEX 503"}`, "", "ALEX 503"},
		{"OldColonInText", `{"state":"failed","failReason":"Check: the Inbox"}`, "", "Check: the Inbox"},
		{"Purged", `{"state":"failed","failReason":"` + session.PurgedReason + `"}`, "", session.PurgedReason},
		{"New", `{"state":"failed","failCode":"invalid","failReason":"needs: body site"}`, "invalid", "needs: body site"},
		{"None", `{"state":"uploaded"}`, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var img session.Image
			require.NoError(t, json.Unmarshal([]byte(tc.json), &img))
			assert.Equal(t, tc.code, img.FailCode)
			assert.Equal(t, tc.reason, img.FailReason)
		})
	}
	// A whole session record round-trips.
	in := session.Session{ID: "s", Images: []session.Image{{ID: "i", State: session.StateFailed, FailCode: "alex_busy", FailReason: "busy"}}}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	var out session.Session
	require.NoError(t, json.Unmarshal(b, &out))
	assert.Equal(t, in.Images, out.Images)
}

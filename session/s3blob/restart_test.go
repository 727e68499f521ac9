package s3blob_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/redisstore"
	"github.com/clinicpro/clinicalimages/session/s3blob"
)

// The restart test runs its first half in a child process: the child
// starts a session with images on Redis and S3 and exits; the parent, with
// nothing of the child's memory, opens new stores on the same servers and
// must find the session and read every image back byte-identical.
const (
	envPhase  = "CLINICALIMAGES_RESTART_PHASE"
	envDir    = "CLINICALIMAGES_RESTART_DIR"
	envPrefix = "CLINICALIMAGES_RESTART_PREFIX"
	envBucket = "CLINICALIMAGES_RESTART_BUCKET"
)

type handover struct {
	SessionID string
	Images    map[string]string // image id -> file with the original bytes
}

func redisClient(t *testing.T) redis.UniversalClient {
	t.Helper()
	opt, err := redis.ParseURL(testenv.RedisURL(t))
	require.NoError(t, err)
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func stores(t *testing.T, bucket, prefix string) *session.Manager {
	t.Helper()
	c, _ := serverClient(t)
	st, err := redisstore.New(redisClient(t), redisstore.WithPrefix(prefix))
	require.NoError(t, err)
	blobs, err := s3blob.New(c, bucket, s3blob.WithPrefix(prefix+"/"))
	require.NoError(t, err)
	m, err := session.New(st, blobs)
	require.NoError(t, err)
	return m
}

func TestRestart(t *testing.T) {
	if os.Getenv(envPhase) == "write" {
		restartWrite(t)
		return
	}
	t.Parallel()
	_, bucket, _ := server(t)
	prefix := "clinicalimages-test:" + testenv.Prefix(t)
	rc := redisClient(t)
	t.Cleanup(func() {
		// t.Context() is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := rc.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			rc.Del(ctx, iter.Val())
		}
	})
	dir := t.TempDir()

	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestRestart$", "-test.count=1")
	cmd.Env = append(os.Environ(), envPhase+"=write", envDir+"="+dir, envPrefix+"="+prefix, envBucket+"="+bucket)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child process:\n%s", out)

	raw, err := os.ReadFile(filepath.Join(dir, "handover.json"))
	require.NoError(t, err)
	var h handover
	require.NoError(t, json.Unmarshal(raw, &h))
	require.Len(t, h.Images, 3)

	m := stores(t, bucket, prefix)
	s, err := m.Get(t.Context(), h.SessionID)
	require.NoError(t, err, "a new Store finds the session")
	assert.Equal(t, "ZZZ0016", s.NHI)
	assert.Equal(t, session.PhonePaired, s.Phone.State)
	require.Len(t, s.Images, 3)
	for _, img := range s.Images {
		want, err := os.ReadFile(h.Images[img.ID])
		require.NoError(t, err)
		r, err := m.OpenImage(t.Context(), img)
		require.NoError(t, err)
		got, err := io.ReadAll(r)
		require.NoError(t, err)
		require.NoError(t, r.Close())
		assert.True(t, bytes.Equal(want, got), "image %s byte-identical", img.ID)
		assert.Equal(t, int64(len(want)), img.Size)
	}
	assert.Equal(t, "Left forearm", s.Images[0].Clinical.Title, "metadata survived")

	// And the flow carries on in the new process.
	c, err := m.ClaimCommit(t.Context(), s.ID, s.Images[0].ID)
	require.NoError(t, err)
	_, err = m.MarkCommitted(t.Context(), c, "media-1")
	require.NoError(t, err)
	require.NoError(t, m.End(t.Context(), s.ID))
}

func restartWrite(t *testing.T) {
	dir, prefix, bucket := os.Getenv(envDir), os.Getenv(envPrefix), os.Getenv(envBucket)
	m := stores(t, bucket, prefix)
	ctx := t.Context()
	s, err := m.Start(ctx, session.Launch{Facility: "F2N060-D", PatientID: "p-1", NHI: "ZZZ0016", Practitioner: "d-1"})
	require.NoError(t, err)
	code, _, err := m.IssueHandoff(ctx, s.ID)
	require.NoError(t, err)
	token, _, err := m.ClaimHandoff(ctx, code, "phone", "192.0.2.1")
	require.NoError(t, err)

	h := handover{SessionID: s.ID, Images: map[string]string{}}
	for i, size := range []int{1 << 20, 300_000, 12_345} {
		body := make([]byte, size)
		_, _ = rand.Read(body)
		u := session.Upload{Body: bytes.NewReader(body), ContentType: "image/jpeg", Width: 2048, Height: 1536}
		var img session.Image
		if i == 2 {
			img, err = m.AddPhoneImage(ctx, token, u)
		} else {
			u.Size = int64(size)
			img, err = m.AddImage(ctx, s.ID, u)
		}
		require.NoError(t, err)
		if i == 0 {
			_, err = m.SetMetadata(ctx, s.ID, img.ID, session.Clinical{BodySite: "368209003", Title: "Left forearm"}, session.Consent{Given: true})
			require.NoError(t, err)
		}
		path := filepath.Join(dir, img.ID)
		require.NoError(t, os.WriteFile(path, body, 0o600))
		h.Images[img.ID] = path
	}
	raw, err := json.Marshal(h)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "handover.json"), raw, 0o600))
}

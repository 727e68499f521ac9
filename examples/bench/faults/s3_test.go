package faults_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/session/s3blob"
)

// versitygw is a private S3 server this scenario may stop and start,
// on its own port and data directory (never the shared one).
type versitygw struct {
	bin, addr, data, meta string
	cmd                   *exec.Cmd
}

const s3Key, s3Secret = "faults", "faults-secret-key-0123456789"

func versitygwBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VERSITYGW"); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	p, err := filepath.Abs("../../.tools/bin/versitygw")
	require.NoError(t, err)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("versitygw not found: run bash -c '. scripts/lib.sh; ensure_s3' first, or set VERSITYGW")
	}
	return p
}

func newVersitygw(t *testing.T) *versitygw {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	dir := t.TempDir()
	g := &versitygw{bin: versitygwBinary(t), addr: addr, data: filepath.Join(dir, "data"), meta: filepath.Join(dir, "meta")}
	require.NoError(t, os.MkdirAll(g.data, 0o700))
	require.NoError(t, os.MkdirAll(g.meta, 0o700))
	g.start(t)
	t.Cleanup(g.stop)
	return g
}

func (g *versitygw) start(t *testing.T) {
	t.Helper()
	g.cmd = exec.Command(g.bin, "--port", g.addr, "posix", "--sidecar", g.meta, g.data)
	g.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s3Key, "ROOT_SECRET_KEY="+s3Secret)
	require.NoError(t, g.cmd.Start())
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", g.addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "versitygw did not start")
}

func (g *versitygw) stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = g.cmd.Process.Kill()
		<-done
	}
	g.cmd = nil
}

// TestS3StoppedDuringUploads: the S3 server stops between two uploads.
// Verdict: the phone gets an error it may retry (a 5xx with a machine code),
// nothing is listed or half stored, and the same upload succeeds once S3 is
// back; both photos then commit.
func TestS3StoppedDuringUploads(t *testing.T) {
	gate(t)
	t.Parallel()
	g := newVersitygw(t)
	mc, err := minio.New(g.addr, &minio.Options{Creds: credentials.NewStaticV4(s3Key, s3Secret, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	require.NoError(t, err)
	blobs, err := s3blob.New(mc, "faults")
	require.NoError(t, err)
	require.NoError(t, blobs.EnsureBucket(t.Context(), "us-east-1"))

	sim := alextest.NewTestServer(t)
	svc, err := ci.New(alexClient(t, sim), ci.WithBlobStore(blobs))
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Close() })
	api, err := svc.Handler(ci.HTTPOptions{})
	require.NoError(t, err)
	srv := httptest.NewServer(http.StripPrefix("/api", api))
	t.Cleanup(srv.Close)
	st := startSession(t, svc, sim)
	code, _, err := svc.IssueHandoff(t.Context(), st.Session.ID)
	require.NoError(t, err)
	tok, _, err := svc.ClaimHandoff(t.Context(), code, "fault phone", "127.0.0.1")
	require.NoError(t, err)

	upload := func(body []byte) (int, string, time.Duration) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/api/phone/images", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "image/jpeg")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return resp.StatusCode, e.Error.Code, time.Since(start)
	}
	objects := func() int {
		n := 0
		for o := range mc.ListObjects(t.Context(), "faults", minio.ListObjectsOptions{Recursive: true}) {
			require.NoError(t, o.Err)
			n++
		}
		return n
	}

	status, _, _ := upload(smallPhoto(t, 0))
	require.Equal(t, http.StatusCreated, status)

	g.stop()
	second := smallPhoto(t, 1)
	status, errCode, took := upload(second)
	t.Logf("verdict: upload with S3 stopped answered %d %q after %s", status, errCode, took.Round(time.Millisecond))
	assert.Equal(t, 503, status, "a storage outage the phone may retry")
	assert.Equal(t, "storage_unavailable", errCode)
	assert.NotEmpty(t, errCode, "with a machine code")
	sess, err := svc.Session(t.Context(), st.Session.ID)
	require.NoError(t, err)
	assert.Len(t, sess.Images, 1, "the failed upload is not listed")

	g.start(t)
	assert.Equal(t, 1, objects(), "nothing half stored while S3 was down")
	status, _, _ = upload(second)
	assert.Equal(t, http.StatusCreated, status, "the retry succeeds once S3 is back")
	sess, err = svc.Session(t.Context(), st.Session.ID)
	require.NoError(t, err)
	assert.Len(t, sess.Images, 2)
	assert.Equal(t, 2, objects())

	res, err := svc.Commit(t.Context(), st.Session.ID, nil)
	require.NoError(t, err)
	assert.Equal(t, 2, res.Committed(), "both photos commit from the restarted S3")
	assert.Len(t, sim.Media(), 2)
}

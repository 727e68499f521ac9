package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/internal/testenv"
)

// The server binary, built once per test binary for the tests that start
// the real process (and removed by TestMain).
var (
	binOnce gosync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func serverBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "clinicalimages-server-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "server")
		// A bound, not a budget: on a 2-core CI machine this build shares
		// the cores with every other package's test build.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, binErr)
	return binPath
}

// process is one running server binary.
type process struct {
	cmd    *exec.Cmd
	base   string
	stderr *testenv.SyncBuffer
}

// startBinary starts the server binary with env (added to a minimal
// environment) on a loopback port and waits until it says it is listening,
// which it does only after its startup sweep. The test's cleanup kills it.
func startBinary(t *testing.T, env map[string]string) *process {
	t.Helper()
	cmd := exec.Command(serverBinary(t), "-listen", "127.0.0.1:0")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p := &process{cmd: cmd, stderr: &testenv.SyncBuffer{}}
	cmd.Stderr = p.stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "clinical images server listening on "); ok {
				addr <- a
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addr:
		p.base = "http://" + a
	case <-time.After(2 * time.Minute): // a bound; a ready server answers in well under a second
		t.Fatalf("the server did not start: %s", p.stderr.String())
	}
	return p
}

// kill9 ends the process with SIGKILL: no deferred cleanup runs.
func (p *process) kill9(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	_ = p.cmd.Wait()
}

func uploadPhotos(t *testing.T, base string, n int) {
	t.Helper()
	cookies, csrf := launchVia(t, base)
	for i := range n {
		var pic bytes.Buffer
		require.NoError(t, png.Encode(&pic, image.NewRGBA(image.Rect(0, 0, 100+i, 80))))
		req, _ := http.NewRequestWithContext(t.Context(), "POST", base+"/api/images", &pic)
		req.Header.Set("Content-Type", "image/png")
		req.Header.Set("X-CSRF-Token", csrf)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		require.Equal(t, http.StatusCreated, res.StatusCode, string(b))
	}
}

// blobFiles counts the photo files under dir (temporary files aside).
func blobFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), ".") && !strings.HasSuffix(d.Name(), ".lock") {
			n++
		}
		return nil
	})
	if os.IsNotExist(err) {
		return 0
	}
	require.NoError(t, err)
	return n
}

// TestKill9LeavesNoPhotos: photos a server held when it was killed with
// SIGKILL are deleted by the next server on the same machine before it
// reports ready. Default blob folder (under the user's cache directory,
// here a test folder through XDG_CACHE_HOME), sessions in memory: the dead
// process's sessions are gone, so its photos must go.
func TestKill9LeavesNoPhotos(t *testing.T) {
	t.Parallel()
	cache := t.TempDir()
	env := map[string]string{"XDG_CACHE_HOME": cache, "HOME": cache}
	blobs := filepath.Join(cache, "clinicalimages", "blobs-1")

	first := startBinary(t, env)
	uploadPhotos(t, first.base, 3)
	require.Equal(t, 3, blobFiles(t, blobs), "the photos are in the default folder")
	first.kill9(t)
	require.Equal(t, 3, blobFiles(t, blobs), "SIGKILL left the photos on disk (what the next start must clean)")

	second := startBinary(t, env)
	left := blobFiles(t, blobs)
	t.Logf("kill -9: 3 photos on disk after SIGKILL; %d left once the restarted server reported ready", left)
	assert.Equal(t, 0, left, "the restarted server swept them before reporting ready")
	// stderr reaches us through a copying goroutine: wait for the line.
	assert.Eventually(t, func() bool { return strings.Contains(second.stderr.String(), "blobs_deleted=3") }, time.Minute, 10*time.Millisecond,
		"the startup sweep reports what it deleted")

	// A second live instance takes a folder of its own, so it never sweeps
	// the first one's photos (whose sessions it cannot see).
	uploadPhotos(t, second.base, 1)
	third := startBinary(t, env)
	assert.Equal(t, 1, blobFiles(t, blobs), "the live instance's photo stays")
	assert.DirExists(t, filepath.Join(cache, "clinicalimages", "blobs-2"))
	_ = third
}

// TestKill9S3PastRetention: with Redis and S3 (sessions outlive the
// process), objects a killed server left are deleted by the next server's
// startup sweep once past RETENTION.
func TestKill9S3PastRetention(t *testing.T) {
	t.Parallel()
	redisURL := testenv.RedisURL(t)
	s3 := testenv.S3(t)
	prefix := testenv.Prefix(t)
	bucket := testenv.Prefix(t)
	cleanupShared(t, redisURL, prefix, s3, bucket)
	env := map[string]string{
		"REDIS_URL": redisURL, "REDIS_PREFIX": prefix + ":", "SESSION_SECRET": "kill-nine-share-this-secret-0123456789abcdef",
		"S3_ENDPOINT": s3.Endpoint, "S3_BUCKET": bucket, "S3_ACCESS_KEY": s3.AccessKey, "S3_SECRET_KEY": s3.SecretKey, "S3_REGION": s3.Region,
	}
	u, err := url.Parse(s3.Endpoint)
	require.NoError(t, err)
	mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""),
		Secure: u.Scheme == "https", Region: s3.Region, BucketLookup: minio.BucketLookupPath})
	require.NoError(t, err)
	objects := func() int {
		n := 0
		for oi := range mc.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Recursive: true}) {
			require.NoError(t, oi.Err)
			n++
		}
		return n
	}

	first := startBinary(t, env)
	uploadPhotos(t, first.base, 2)
	require.Equal(t, 2, objects())
	first.kill9(t)
	require.Equal(t, 2, objects(), "SIGKILL left the objects")

	// Within retention the sessions (in Redis) still list the photos: kept.
	startBinary(t, env).kill9(t)
	require.Equal(t, 2, objects(), "within retention the photos stay for their GP")

	// Past retention (a short one here) the startup sweep deletes them.
	env["RETENTION"] = "1ms"
	startBinary(t, env)
	assert.Equal(t, 0, objects(), "past retention the restarted server deleted them before reporting ready")
}

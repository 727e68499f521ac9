package faults_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/internal/testenv"
)

// lease is the server's commit lease and stuck-commit age (COMMIT_LEASE),
// short so recovery can be watched within seconds.
const lease = 2 * time.Second

// killable runs the reference server (examples/server) as a child process
// that the test can SIGKILL and start again.
type killable struct {
	bin string
	env []string
	cmd *exec.Cmd
	url string
}

func newKillable(t *testing.T, sim *alextest.Server) *killable {
	t.Helper()
	redisURL := testenv.RedisURL(t)
	s3 := testenv.S3(t)
	prefix := testenv.Prefix(t)
	bin := filepath.Join(t.TempDir(), "server")
	build := exec.Command("go", "build", "-o", bin, "github.com/clinicpro/clinicalimages/examples/server")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	id, sec, scope := sim.Credentials()
	k := &killable{bin: bin, env: append(os.Environ(),
		"REDIS_URL="+redisURL, "REDIS_PREFIX="+prefix+":",
		"S3_ENDPOINT="+s3.Endpoint, "S3_ACCESS_KEY="+s3.AccessKey, "S3_SECRET_KEY="+s3.SecretKey, "S3_REGION="+s3.Region, "S3_BUCKET="+prefix,
		"ALEX_BASE_URL="+sim.BaseURL(), "ALEX_TOKEN_URL="+sim.TokenURL(), "ALEX_CLIENT_ID="+id, "ALEX_CLIENT_SECRET="+sec,
		"ALEX_SCOPE="+scope, "ALEX_FACILITY_ID="+sim.Facility(), "SESSION_SECRET="+hex.EncodeToString(secret),
		"COMMIT_LEASE="+lease.String(), "SWEEP_INTERVAL="+(lease/4).String(), "LOG_LEVEL=warn",
	)}
	t.Cleanup(func() {
		k.kill()
		ro, err := redis.ParseURL(redisURL)
		if err != nil {
			return
		}
		rdb := redis.NewClient(ro)
		defer rdb.Close()
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		if u, err := url.Parse(s3.Endpoint); err == nil {
			if mc, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""),
				Region: s3.Region, BucketLookup: minio.BucketLookupPath}); err == nil {
				for range mc.RemoveObjects(ctx, prefix, mc.ListObjects(ctx, prefix, minio.ListObjectsOptions{Recursive: true}), minio.RemoveObjectsOptions{}) {
				}
				_ = mc.RemoveBucket(ctx, prefix)
			}
		}
	})
	return k
}

func (k *killable) start(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	k.cmd = exec.Command(k.bin)
	k.cmd.Env = append(k.env, "LISTEN_ADDR="+addr)
	k.cmd.Stderr = os.Stderr
	require.NoError(t, k.cmd.Start())
	k.url = "http://" + addr + "/api"
	require.Eventually(t, func() bool {
		resp, err := http.Get(k.url + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "the server did not start")
}

// kill sends SIGKILL: no shutdown, no cleanup, as a crash or an OOM kill.
func (k *killable) kill() {
	if k.cmd == nil || k.cmd.Process == nil {
		return
	}
	_ = k.cmd.Process.Kill()
	_ = k.cmd.Wait()
	k.cmd = nil
}

// call sends a desktop request and decodes the answer.
func (k *killable) call(ctx context.Context, method, path, cred, ct string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, k.url+path, body)
	if err != nil {
		return 0, err
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode/100 == 2 {
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// TestServerKilledMidCommit: the server is killed with SIGKILL while a
// commit of three photos is in flight (the first Media stored in ALEX, its
// reply not yet read; the others not sent). A new process on the same
// Redis and S3 recovers. Verdict: every photo ends committed, exactly one
// Media each, none lost, none sent twice.
func TestServerKilledMidCommit(t *testing.T) {
	gate(t)
	t.Parallel()
	sim := alextest.NewTestServer(t)
	k := newKillable(t, sim)
	k.start(t)
	ctx := t.Context()

	p := sim.Patients()[0]
	lc, sig := sim.IssueLaunch(p.ID, "", alextest.DefaultPractitioners()[0].ID)
	var launched struct {
		Credential string `json:"credential"`
	}
	status, err := k.call(ctx, http.MethodPost, "/launch", "", "application/json", jsonBody(map[string]string{"context": lc, "signature": sig}), &launched)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, status)
	cred := launched.Credential

	var ids []string
	for i := range 3 {
		var img struct {
			ID string `json:"id"`
		}
		status, err := k.call(ctx, http.MethodPost, "/images", cred, "image/jpeg", bytes.NewReader(smallPhoto(t, i)), &img)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, status)
		status, err = k.call(ctx, http.MethodPatch, "/images/"+img.ID, cred, "application/json",
			jsonBody(map[string]any{"clinical": map[string]string{"bodySite": "367577003", "laterality": "7771000", "title": fmt.Sprint("kill ", i)}}), nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		ids = append(ids, img.ID)
	}

	// ALEX stores at once but replies late: the POSTs are in flight (the
	// server sends up to four photos of a commit at once).
	sim.SetReplyLatency(time.Minute)
	go func() {
		_, _ = k.call(context.WithoutCancel(ctx), http.MethodPost, "/commit", cred, "application/json", jsonBody(map[string]any{}), nil)
	}()
	require.Eventually(t, func() bool { return len(sim.Media()) >= 1 }, 20*time.Second, 20*time.Millisecond, "a Media reaches ALEX")
	k.kill()
	sim.SetReplyLatency(0)
	t.Logf("killed with %d Media in ALEX, %d photos not yet sent", len(sim.Media()), len(ids)-len(sim.Media()))

	k.start(t)
	// The GP commits again (the page would, on its error); recovery on the
	// new process may get there first. Either way each photo lands once.
	deadline := time.Now().Add(30 * time.Second)
	var states map[string]string
	for time.Now().Before(deadline) {
		_, _ = k.call(ctx, http.MethodPost, "/commit", cred, "application/json", jsonBody(map[string]any{}), nil)
		var sess struct {
			Images []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			} `json:"images"`
		}
		_, err := k.call(ctx, http.MethodGet, "/session", cred, "", nil, &sess)
		require.NoError(t, err)
		states = map[string]string{}
		done := 0
		for _, img := range sess.Images {
			states[img.ID] = img.State
			if img.State == "committed" {
				done++
			}
		}
		if done == len(ids) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("verdict: states after restart %v; Media in ALEX %d", states, len(sim.Media()))
	for _, id := range ids {
		assert.Equal(t, "committed", states[id], "photo %s", id)
		assert.Equal(t, 1, mediaFor(sim, id), "exactly one Media for photo %s", id)
	}
	assert.Len(t, sim.Media(), len(ids), "no Media beyond one per photo")
}

package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/fsblob"
	"github.com/clinicpro/clinicalimages/session/redisstore"
	"github.com/clinicpro/clinicalimages/sync"
	"github.com/clinicpro/clinicalimages/sync/redisnotify"
)

// privateRedis is a redis-server of this scenario's own (never the shared
// one, which other tests use), with an append-only file so a restart keeps
// the data, as a production Redis would.
type privateRedis struct {
	addr, dir string
	cmd       *exec.Cmd
}

func newPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server not installed: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	r := &privateRedis{addr: addr, dir: t.TempDir()}
	r.start(t)
	t.Cleanup(r.stop)
	return r
}

func (r *privateRedis) start(t *testing.T) {
	t.Helper()
	_, port, _ := net.SplitHostPort(r.addr)
	r.cmd = exec.Command("redis-server", "--bind", "127.0.0.1", "--port", port, "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--logfile", filepath.Join(r.dir, "redis.log"))
	require.NoError(t, r.cmd.Start())
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", r.addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, 10*time.Second, 50*time.Millisecond, "redis-server did not start")
}

func (r *privateRedis) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// TestRedisRestartedMidSession: Redis is killed and restarted (from its
// append-only file) between two uploads of one session. Verdict: the session
// survives, the next upload is accepted and listed, and the desktop's event
// stream (reopened after its last event id when it ends, as EventSource does)
// receives its image.added; both photos commit.
func TestRedisRestartedMidSession(t *testing.T) {
	gate(t)
	t.Parallel()
	pr := newPrivateRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: pr.addr, MaxRetries: 5, MinRetryBackoff: 100 * time.Millisecond, MaxRetryBackoff: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	store, err := redisstore.New(rdb)
	require.NoError(t, err)
	hub, err := redisnotify.New(t.Context(), rdb)
	require.NoError(t, err)
	t.Cleanup(func() { _ = hub.Close() })
	blobs, err := fsblob.New(t.TempDir())
	require.NoError(t, err)
	sim := alextest.NewTestServer(t)
	svc, err := ci.New(alexClient(t, sim), ci.WithStore(store), ci.WithEvents(hub), ci.WithBlobStore(blobs))
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Close() })

	st := startSession(t, svc, sim)
	code, _, err := svc.IssueHandoff(t.Context(), st.Session.ID)
	require.NoError(t, err)
	tok, _, err := svc.ClaimHandoff(t.Context(), code, "fault phone", "127.0.0.1")
	require.NoError(t, err)
	// The desktop's stream: a subscription that ends on a backend error is
	// reopened after the last event seen, as the page's EventSource does
	// with Last-Event-ID through the SSE handler.
	var lastID uint64
	resubscribed := 0
	sub, err := hub.Subscribe(t.Context(), st.Session.ID, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	waitAdded := func(id string) error {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		for {
			select {
			case ev, ok := <-sub.Events():
				if !ok {
					t.Logf("subscription ended (%v); reopening after event %d", sub.Err(), lastID)
					time.Sleep(200 * time.Millisecond)
					next, err := hub.Subscribe(ctx, st.Session.ID, lastID)
					if err != nil {
						return fmt.Errorf("resubscribe: %w", err)
					}
					sub = next
					t.Cleanup(func() { _ = next.Close() })
					resubscribed++
					continue
				}
				lastID = ev.ID
				if ev.Type == sync.ImageAdded && ev.Image == id {
					return nil
				}
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}

	first, err := svc.AcceptUpload(t.Context(), ci.Uploader{PhoneToken: tok}, bytes.NewReader(smallPhoto(t, 0)))
	require.NoError(t, err)
	require.NoError(t, waitAdded(first.ID))

	pr.stop()
	pr.start(t)

	// The phone retries as it would after an error while Redis came back.
	var second session.Image
	var attempts int
	require.Eventually(t, func() bool {
		attempts++
		img, err := svc.AcceptUpload(t.Context(), ci.Uploader{PhoneToken: tok}, bytes.NewReader(smallPhoto(t, 1)))
		second = img
		return err == nil
	}, 20*time.Second, 250*time.Millisecond, "an upload is accepted after the restart")
	sess, err := svc.Session(t.Context(), st.Session.ID)
	require.NoError(t, err)
	assert.Len(t, sess.Images, 2, "the session kept its first image and lists the second")
	err = waitAdded(second.ID)
	t.Logf("verdict: upload accepted after Redis restart on attempt %d; session lists %d images; desktop event: %v after %d resubscriptions", attempts, len(sess.Images), err, resubscribed)
	assert.NoError(t, err, "the desktop's stream delivers the image.added after the restart")
	res, err := svc.Commit(t.Context(), st.Session.ID, nil)
	require.NoError(t, err)
	assert.Equal(t, 2, res.Committed())
	assert.Len(t, sim.Media(), 2)
}

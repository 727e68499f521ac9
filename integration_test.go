package clinicalimages_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ci "github.com/clinicpro/clinicalimages"
	"github.com/clinicpro/clinicalimages/alex"
	"github.com/clinicpro/clinicalimages/alex/alextest"
	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/media"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/redisstore"
	"github.com/clinicpro/clinicalimages/session/s3blob"
	"github.com/clinicpro/clinicalimages/sync/redisnotify"
)

// shared is one Redis and one S3 bucket that several Service instances
// use, as a multi-instance deployment does.
type shared struct {
	rdb    redis.UniversalClient
	s3     *minio.Client
	bucket string
	prefix string
}

func sharedServices(t *testing.T) *shared {
	t.Helper()
	opt, err := redis.ParseURL(testenv.RedisURL(t))
	require.NoError(t, err)
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	cfg := testenv.S3(t)
	u, err := url.Parse(cfg.Endpoint)
	require.NoError(t, err)
	c, err := minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: u.Scheme == "https", Region: cfg.Region, BucketLookup: minio.BucketLookupPath})
	require.NoError(t, err)
	sh := &shared{rdb: rdb, s3: c, bucket: testenv.Prefix(t), prefix: testenv.Prefix(t) + ":"}
	bs, err := s3blob.New(c, sh.bucket)
	require.NoError(t, err)
	require.NoError(t, bs.EnsureBucket(t.Context(), cfg.Region))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for oi := range c.ListObjects(ctx, sh.bucket, minio.ListObjectsOptions{Recursive: true}) {
			if oi.Err == nil {
				_ = c.RemoveObject(ctx, sh.bucket, oi.Key, minio.RemoveObjectOptions{})
			}
		}
		_ = c.RemoveBucket(ctx, sh.bucket)
		keys, _ := rdb.Keys(ctx, sh.prefix+"*").Result()
		if len(keys) > 0 {
			_ = rdb.Del(ctx, keys...).Err()
		}
	})
	return sh
}

// instance is one server process: its own Service and HTTP server over the
// shared stores.
func (sh *shared) instance(t *testing.T, sim *alextest.Server, secret []byte, opts ...ci.Option) (*ci.Service, *httptest.Server, *s3blob.Store) {
	t.Helper()
	store, err := redisstore.New(sh.rdb, redisstore.WithPrefix(sh.prefix+"s:"))
	require.NoError(t, err)
	blobs, err := s3blob.New(sh.s3, sh.bucket)
	require.NoError(t, err)
	hub, err := redisnotify.New(t.Context(), sh.rdb, redisnotify.WithPrefix(sh.prefix+"e:"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = hub.Close() })
	all := append([]ci.Option{ci.WithStore(store), ci.WithBlobStore(blobs), ci.WithEvents(hub), ci.WithSecret(secret)}, opts...)
	svc, err := ci.New(alexClient(t, sim, slog.New(slog.DiscardHandler)), all...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = svc.Close() })
	h, err := svc.Handler(ci.HTTPOptions{InsecureCookies: true})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return svc, srv, blobs
}

// TestTwoInstancesOnRedisAndS3 runs the whole flow with the desktop on one
// instance and the phone on another, sharing a real Redis and S3 server.
func TestTwoInstancesOnRedisAndS3(t *testing.T) {
	t.Parallel()
	sh := sharedServices(t)
	sim := alextest.NewTestServer(t)
	secret := []byte("0123456789abcdef0123456789abcdef-shared")
	_, srvA, blobs := sh.instance(t, sim, secret)
	_, srvB, _ := sh.instance(t, sim, secret)

	a := &world{t: t, alex: sim, srv: srvA}
	b := &world{t: t, alex: sim, srv: srvB}
	desktop, _ := a.launch()
	phone := b.pairVia(a, desktop)
	for i := range 2 {
		st, body := b.call("POST", "/phone/images", phone, photo(t, 1600, 1200, uint8(i)))
		require.Equal(t, http.StatusCreated, st, body)
	}
	// The desktop's instance sees the phone's uploads made on the other.
	events := a.events(desktop)
	assert.Contains(t, events, "phone.connected")
	assert.Contains(t, events, "image.added")
	st, res := a.call("POST", "/commit", desktop, map[string]any{})
	require.Equal(t, 200, st, res)
	for _, o := range res["images"].([]any) {
		assert.Equal(t, "committed", o.(map[string]any)["state"], o)
	}
	assert.Len(t, sim.Media(), 2)
	n := 0
	require.NoError(t, blobs.List(t.Context(), func(session.BlobInfo) error { n++; return nil }))
	assert.Zero(t, n, "no blob left in S3 after commit")
}

// pairVia issues the code on one instance and claims it on this one.
func (w *world) pairVia(desktopSide *world, desktop string) string {
	w.t.Helper()
	st, h := desktopSide.call("POST", "/handoff", desktop, nil)
	require.Equal(w.t, http.StatusCreated, st, h)
	st, c := w.call("POST", "/phone/claim", "", map[string]string{"code": h["code"].(string)})
	require.Equal(w.t, http.StatusCreated, st, c)
	return "Bearer " + c["token"].(string)
}

// TestDiscardedMidCommitRecoversOnRedis: an instance claims an image and
// sends it, then vanishes; a new instance on the same Redis and S3
// reconciles it: exactly one Media.
func TestDiscardedMidCommitRecoversOnRedis(t *testing.T) {
	t.Parallel()
	sh := sharedServices(t)
	sim := alextest.NewTestServer(t)
	secret := []byte("0123456789abcdef0123456789abcdef-shared")
	svc1, srv1, _ := sh.instance(t, sim, secret)
	w := &world{t: t, alex: sim, srv: srv1}
	desktop, sid := w.launch()
	_, img := w.call("POST", "/images", desktop, photo(t, 900, 700, 3))
	id := img["id"].(string)

	claim, err := svc1.Sessions().ClaimCommit(t.Context(), sid, id)
	require.NoError(t, err)
	b, err := media.New()
	require.NoError(t, err)
	m, err := b.Build(media.Input{Image: media.ImageFacts{ID: id, ContentType: "image/jpeg", Size: claim.Image.Size},
		Patient: media.Patient{ID: claim.Session.PatientID, NHI: claim.Session.NHI}, Operator: claim.Session.Practitioner, Facility: claim.Session.Facility})
	require.NoError(t, err)
	rc, err := svc1.Sessions().OpenImage(t.Context(), claim.Image)
	require.NoError(t, err)
	data, _ := io.ReadAll(rc)
	_ = rc.Close()
	_, err = alexClient(t, sim, slog.New(slog.DiscardHandler)).CreateMedia(alex.WithFacilityID(t.Context(), claim.Session.Facility), m, alex.BytesContent(data))
	require.NoError(t, err)
	srv1.Close()
	_ = svc1.Close() // the first instance is gone

	later := func() time.Time { return time.Now().Add(6 * time.Minute) }
	svc2, _, _ := sh.instance(t, sim, secret, ci.WithClock(later), ci.WithLimits(ci.Limits{StuckCommit: time.Minute}))
	n, err := svc2.Recover(t.Context())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	sess, err := svc2.Sessions().Get(t.Context(), sid)
	require.NoError(t, err)
	assert.Equal(t, session.StateCommitted, sess.Image(id).State)
	assert.Len(t, sim.Media(), 1, "exactly one Media")
}

package uploadpath_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
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
	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/examples/bench/internal/photo"
	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/session/redisstore"
	"github.com/clinicpro/clinicalimages/session/s3blob"
	"github.com/clinicpro/clinicalimages/sync"
	"github.com/clinicpro/clinicalimages/sync/redisnotify"
)

// photoSize is the upload: a photo as the phone page sends it (at most
// 2048 px, baseline JPEG, no rotation), about 900 KiB so that it is within
// the default 1 MiB byte budget and takes compress's lossless passthrough,
// as real phone uploads now do. TestUploadPaths checks that it does.
const photoSize = 900 << 10

// imagesPerSession stays under the Service's default per-session limit; the
// benchmark starts a fresh session (timer stopped) when it is reached.
const imagesPerSession = 25

// rig is the real Redis, the real S3 server and the ALEX simulator, under a
// prefix and a bucket of the test's own, removed at cleanup.
type rig struct {
	rdb      *redis.Client
	mc       *minio.Client
	prefix   string
	bucket   string
	region   string
	sim      *alextest.Server
	photo    []byte
	redisOps *opCounter // every Redis command the rig's client sends
	s3Ops    *opCounter // every S3 request, by HTTP method
	alexOps  *opCounter // every request to the ALEX simulator, by method
}

func newRig(tb testing.TB) *rig {
	tb.Helper()
	ropt, err := redis.ParseURL(testenv.RedisURL(tb))
	require.NoError(tb, err)
	s3 := testenv.S3(tb)
	u, err := url.Parse(s3.Endpoint)
	require.NoError(tb, err)
	r := &rig{rdb: redis.NewClient(ropt), prefix: testenv.Prefix(tb), region: s3.Region, sim: alextest.NewTestServer(tb),
		redisOps: newOpCounter(), s3Ops: newOpCounter(), alexOps: newOpCounter()}
	r.rdb.AddHook(redisCounter{r.redisOps})
	r.bucket = r.prefix
	r.mc, err = minio.New(u.Host, &minio.Options{Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""),
		Secure: u.Scheme == "https", Region: s3.Region, BucketLookup: minio.BucketLookupPath,
		Transport: httpCounter{r.s3Ops, http.DefaultTransport}})
	require.NoError(tb, err)
	require.NoError(tb, r.mc.MakeBucket(tb.Context(), r.bucket, minio.MakeBucketOptions{Region: s3.Region}))
	photos, err := photo.Make(1, photoSize)
	require.NoError(tb, err)
	r.photo = photos[0]
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := r.rdb.Scan(ctx, 0, r.prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			r.rdb.Del(ctx, iter.Val())
		}
		for range r.mc.RemoveObjects(ctx, r.bucket, r.mc.ListObjects(ctx, r.bucket, minio.ListObjectsOptions{Recursive: true}), minio.RemoveObjectsOptions{}) {
		}
		_ = r.mc.RemoveBucket(ctx, r.bucket)
		_ = r.rdb.Close()
	})
	return r
}

// service is the upload path as the reference server wires it.
type service struct {
	svc *ci.Service
	hub *redisnotify.Hub
	r   *rig
}

func (r *rig) service(tb testing.TB) *service {
	tb.Helper()
	store, err := redisstore.New(r.rdb, redisstore.WithPrefix(r.prefix+":s:"))
	require.NoError(tb, err)
	hub, err := redisnotify.New(tb.Context(), r.rdb, redisnotify.WithPrefix(r.prefix+":e:"))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = hub.Close() })
	blobs, err := s3blob.New(r.mc, r.bucket)
	require.NoError(tb, err)
	id, secret, scope := r.sim.Credentials()
	ac, err := alex.New(r.sim.BaseURL(), alex.WithClientCredentials(alex.Credentials{TokenURL: r.sim.TokenURL(), ClientID: id, ClientSecret: secret, Scope: scope}), alex.WithFacility(r.sim.Facility()),
		alex.WithTransport(httpCounter{r.alexOps, http.DefaultTransport}))
	require.NoError(tb, err)
	svc, err := ci.New(ac, ci.WithStore(store), ci.WithEvents(hub), ci.WithBlobStore(blobs))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = svc.Close() })
	return &service{svc: svc, hub: hub, r: r}
}

// phone is a session with a claimed phone and the desktop's subscription.
type phone struct {
	session string
	token   string
	sub     sync.Subscription
}

func (s *service) phone(tb testing.TB) *phone {
	tb.Helper()
	ctx := tb.Context()
	p := s.r.sim.Patients()[0]
	st, err := s.svc.StartSession(ctx, ci.VerifiedLaunch{Facility: s.r.sim.Facility(), PatientID: p.ID, NHI: p.NHI,
		Practitioner: alextest.DefaultPractitioners()[0].ID, Source: "token"})
	require.NoError(tb, err)
	code, _, err := s.svc.IssueHandoff(ctx, st.Session.ID)
	require.NoError(tb, err)
	tok, _, err := s.svc.ClaimHandoff(ctx, code, "bench phone", "127.0.0.1")
	require.NoError(tb, err)
	sub, err := s.hub.Subscribe(ctx, st.Session.ID, 0)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = sub.Close() })
	return &phone{session: st.Session.ID, token: tok, sub: sub}
}

// upload sends one photo from the phone and waits for the desktop's
// image.added event for it.
func (s *service) upload(ctx context.Context, ph *phone, body []byte) (string, error) {
	img, err := s.svc.AcceptUpload(ctx, ci.Uploader{PhoneToken: ph.token}, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	for {
		select {
		case ev, ok := <-ph.sub.Events():
			if !ok {
				return "", fmt.Errorf("subscription ended: %w", ph.sub.Err())
			}
			if ev.Type == sync.ImageAdded && ev.Image == img.ID {
				return img.ID, nil
			}
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// raw is the baseline: the same bytes moved by the clients directly.
type raw struct {
	r       *rig
	sub     *redis.PubSub
	channel string
	record  []byte
}

func (r *rig) raw(tb testing.TB) *raw {
	tb.Helper()
	ch := r.prefix + ":raw"
	sub := r.rdb.Subscribe(tb.Context(), ch)
	_, err := sub.Receive(tb.Context()) // the subscription confirmation
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = sub.Close() })
	// A session record of the size redisstore writes for a session with a
	// handful of images: about 2 KiB of JSON.
	return &raw{r: r, sub: sub, channel: ch, record: []byte(`{"images":[` + strings.Repeat(`{"id":"0123456789abcdef0123","state":"pending","size":1048576},`, 30) + `{}]}`)}
}

func (w *raw) upload(ctx context.Context, i int, body []byte) error {
	key := fmt.Sprintf("%s/raw/%d", w.r.prefix, i)
	if _, err := w.r.mc.PutObject(ctx, w.r.bucket, key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{ContentType: "image/jpeg"}); err != nil {
		return err
	}
	if err := w.r.rdb.Set(ctx, w.r.prefix+":raw:session", w.record, time.Hour).Err(); err != nil {
		return err
	}
	msg := fmt.Sprintf(`{"type":"image.added","image":"%d"}`, i)
	if err := w.r.rdb.Publish(ctx, w.channel, msg).Err(); err != nil {
		return err
	}
	for {
		m, err := w.sub.ReceiveMessage(ctx)
		if err != nil {
			return err
		}
		if m.Payload == msg {
			return nil
		}
	}
}

// TestUploadPaths proves both benchmarked paths do what they claim: the
// Service stores a blob and lists the image before the event arrives; the
// raw path stores the object and the event arrives.
func TestUploadPaths(t *testing.T) {
	r := newRig(t)
	t.Run("service", func(t *testing.T) {
		s := r.service(t)
		ph := s.phone(t)
		id, err := s.upload(t.Context(), ph, r.photo)
		require.NoError(t, err)
		sess, err := s.svc.Session(t.Context(), ph.session)
		require.NoError(t, err)
		require.NotNil(t, sess.Image(id), "the session lists the image")
		rc, img, err := s.svc.OpenImage(t.Context(), ph.session, id)
		require.NoError(t, err)
		defer rc.Close()
		n, err := io.Copy(io.Discard, rc)
		require.NoError(t, err)
		assert.Equal(t, img.Size, n)
		assert.LessOrEqual(t, n, int64(1<<20), "normalised under the byte budget")
		pass, err := storedPassthrough(t.Context(), s, ph.session, id, r.photo)
		require.NoError(t, err)
		assert.True(t, pass, "a compliant phone JPEG keeps its coded data (compress passthrough)")
	})
	t.Run("raw", func(t *testing.T) {
		w := r.raw(t)
		require.NoError(t, w.upload(t.Context(), 1, r.photo))
		st, err := r.mc.StatObject(t.Context(), r.bucket, r.prefix+"/raw/1", minio.StatObjectOptions{})
		require.NoError(t, err)
		assert.Equal(t, int64(len(r.photo)), st.Size)
	})
}

func BenchmarkServiceUpload(b *testing.B) {
	r := newRig(b)
	s := r.service(b)
	b.SetBytes(int64(len(r.photo)))
	b.ReportAllocs()
	var ph *phone
	i := 0
	for b.Loop() {
		if i%imagesPerSession == 0 {
			b.StopTimer()
			if ph != nil {
				_ = ph.sub.Close()
			}
			ph = s.phone(b)
			b.StartTimer()
		}
		i++
		if _, err := s.upload(b.Context(), ph, r.photo); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawUpload(b *testing.B) {
	r := newRig(b)
	w := r.raw(b)
	b.SetBytes(int64(len(r.photo)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if err := w.upload(b.Context(), i, r.photo); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUploadPath interleaves the three measurements in every
// iteration (raw path, normalising alone, Service upload), so machine load
// affects them alike, and reports the median of each and the ratios:
// Service / raw, and (Service - normalising) / raw, the plumbing's cost.
func BenchmarkUploadPath(b *testing.B) {
	r := newRig(b)
	s := r.service(b)
	w := r.raw(b)
	n, err := compress.New(compress.WithMaxInputBytes(30 << 20))
	require.NoError(b, err)
	var svcT, rawT, normT []time.Duration
	var ph *phone
	i := 0
	for b.Loop() {
		if i%imagesPerSession == 0 {
			b.StopTimer()
			if ph != nil {
				_ = ph.sub.Close()
			}
			ph = s.phone(b)
			b.StartTimer()
		}
		i++
		start := time.Now()
		if err := w.upload(b.Context(), i, r.photo); err != nil {
			b.Fatal(err)
		}
		rawT = append(rawT, time.Since(start))
		start = time.Now()
		if _, err := n.Normalize(b.Context(), bytes.NewReader(r.photo), io.Discard); err != nil {
			b.Fatal(err)
		}
		normT = append(normT, time.Since(start))
		start = time.Now()
		if _, err := s.upload(b.Context(), ph, r.photo); err != nil {
			b.Fatal(err)
		}
		svcT = append(svcT, time.Since(start))
	}
	b.StopTimer()
	res, err := n.Normalize(b.Context(), bytes.NewReader(r.photo), io.Discard)
	require.NoError(b, err)
	id, err := s.upload(b.Context(), ph, r.photo)
	require.NoError(b, err)
	stored, err := storedPassthrough(b.Context(), s, ph.session, id, r.photo)
	require.NoError(b, err)
	b.ReportMetric(b2f(res.Passthrough && stored), "passthrough")
	svc, raw, norm := median(svcT), median(rawT), median(normT)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(svc), "svc-p50-ms")
	b.ReportMetric(ms(raw), "raw-p50-ms")
	b.ReportMetric(ms(norm), "normalize-p50-ms")
	b.ReportMetric(float64(svc)/float64(raw), "svc/raw")
	b.ReportMetric(float64(svc-norm)/float64(raw), "plumbing/raw")
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func BenchmarkNormalize(b *testing.B) {
	photos, err := photo.Make(1, photoSize)
	require.NoError(b, err)
	n, err := compress.New(compress.WithMaxInputBytes(30 << 20))
	require.NoError(b, err)
	b.SetBytes(int64(len(photos[0])))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := n.Normalize(b.Context(), bytes.NewReader(photos[0]), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

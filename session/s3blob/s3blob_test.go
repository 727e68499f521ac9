package s3blob_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/internal/testenv"
	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/s3blob"
	"github.com/clinicpro/clinicalimages/session/storetest"
)

// server connects to the test S3 server (or skips/fails through testenv)
// and makes a bucket of the test's own, removed with its objects afterwards.
func server(t testing.TB) (*minio.Client, string, string) {
	t.Helper()
	c, region := serverClient(t)
	bucket := testenv.Prefix(t)
	st, err := s3blob.New(c, bucket)
	require.NoError(t, err)
	require.NoError(t, st.EnsureBucket(t.Context(), region))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for oi := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
			if oi.Err == nil {
				_ = c.RemoveObject(ctx, bucket, oi.Key, minio.RemoveObjectOptions{})
			}
		}
		_ = c.RemoveBucket(ctx, bucket)
	})
	return c, bucket, region
}

// serverClient connects to the test S3 server without making a bucket.
func serverClient(t testing.TB) (*minio.Client, string) {
	t.Helper()
	cfg := testenv.S3(t)
	u, err := url.Parse(cfg.Endpoint)
	require.NoError(t, err)
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	require.NoError(t, err)
	return c, cfg.Region
}

func TestConformance(t *testing.T) {
	t.Parallel()
	c, bucket, _ := server(t)
	storetest.TestBlobStore(t, func(t *testing.T) session.BlobStore {
		st, err := s3blob.New(c, bucket, s3blob.WithPrefix(testenv.Prefix(t)+"/"))
		require.NoError(t, err)
		return st
	})
}

// TestPrefixIsolation: two stores on one bucket with different prefixes do
// not see each other's blobs, and objects outside the prefix are left alone.
func TestPrefixIsolation(t *testing.T) {
	t.Parallel()
	c, bucket, _ := server(t)
	a, err := s3blob.New(c, bucket, s3blob.WithPrefix("a/"))
	require.NoError(t, err)
	b, err := s3blob.New(c, bucket, s3blob.WithPrefix("b/"))
	require.NoError(t, err)
	key, err := session.NewBlobKey(session.NewID(), session.NewID())
	require.NoError(t, err)
	_, err = a.Put(t.Context(), key, stringsReader("in a"), 4, "image/jpeg")
	require.NoError(t, err)
	_, err = b.Stat(t.Context(), key)
	require.ErrorIs(t, err, session.ErrNotFound)
	n := 0
	require.NoError(t, b.List(t.Context(), func(session.BlobInfo) error { n++; return nil }))
	assert.Zero(t, n)
	_, err = c.StatObject(t.Context(), bucket, "a/"+key.String(), minio.StatObjectOptions{})
	require.NoError(t, err, "object named prefix + key")
}

// TestLifecycleOptional: versitygw has no lifecycle rules; SetLifecycle says
// so with an error, and nothing else depends on it.
func TestLifecycleOptional(t *testing.T) {
	t.Parallel()
	c, bucket, _ := server(t)
	st, err := s3blob.New(c, bucket)
	require.NoError(t, err)
	require.Error(t, st.SetLifecycle(t.Context(), 0), "zero retention refused")
	err = st.SetLifecycle(t.Context(), time.Hour)
	if err != nil {
		t.Logf("server has no lifecycle rules (expected for versitygw): %v", err)
		return
	}
	cfg, err := c.GetBucketLifecycle(t.Context(), bucket)
	require.NoError(t, err)
	require.Len(t, cfg.Rules, 1)
	assert.Equal(t, 1, int(cfg.Rules[0].Expiration.Days))
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	c, err := minio.New("127.0.0.1:1", &minio.Options{Creds: credentials.NewStaticV4("k", "s", "")})
	require.NoError(t, err)
	tests := []struct {
		name string
		opt  s3blob.Option
	}{
		{"PrefixWithoutSlash", s3blob.WithPrefix("abc")},
		{"PrefixDotDot", s3blob.WithPrefix("../x/")},
		{"PrefixAbsolute", s3blob.WithPrefix("/x/")},
		{"PrefixDoubleSlash", s3blob.WithPrefix("x//")},
		{"SmallParts", s3blob.WithPartSize(1 << 20)},
		{"NilOption", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := s3blob.New(c, "bucket", tc.opt)
			require.Error(t, err)
		})
	}
	_, err = s3blob.New(nil, "bucket")
	require.Error(t, err)
	_, err = s3blob.New(c, "")
	require.Error(t, err)
}

func TestSweep(t *testing.T) {
	t.Parallel()
	c, bucket, _ := server(t)
	storetest.TestBlobSweep(t, func(t *testing.T) session.BlobStore {
		st, err := s3blob.New(c, bucket, s3blob.WithPrefix(testenv.Prefix(t)+"/"))
		require.NoError(t, err)
		return st
	})
}

// TestStaleUploadsAborted: List aborts a multipart upload that a crashed
// Put left behind, once it is old, and leaves a recent one (it may be a Put
// in progress).
func TestStaleUploadsAborted(t *testing.T) {
	t.Parallel()
	c, bucket, _ := server(t)
	clk := storetest.NewClock(time.Now())
	p := testenv.Prefix(t) + "/"
	st, err := s3blob.New(c, bucket, s3blob.WithPrefix(p), s3blob.WithClock(clk.Now))
	require.NoError(t, err)
	key, err := session.NewBlobKey(session.NewID(), session.NewID())
	require.NoError(t, err)
	_, err = minio.Core{Client: c}.NewMultipartUpload(t.Context(), bucket, p+key.String(), minio.PutObjectOptions{})
	require.NoError(t, err)
	uploads := func() int {
		n := 0
		for u := range c.ListIncompleteUploads(t.Context(), bucket, p, true) {
			require.NoError(t, u.Err)
			n++
		}
		return n
	}
	require.Equal(t, 1, uploads())
	list := func() {
		require.NoError(t, st.List(t.Context(), func(session.BlobInfo) error { return nil }))
	}
	list()
	assert.Equal(t, 1, uploads(), "a recent upload may be a Put in progress")
	clk.Advance(2 * time.Hour)
	list()
	assert.Zero(t, uploads(), "a stale upload is aborted")
}

package s3blob_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
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

const (
	fakeKey    = "AKIAFAKEACCESSKEY"
	fakeSecret = "fake-secret-never-printed"
)

// fastClient talks to host without retries, so that a down server is
// reported at once.
func fastClient(t *testing.T, host string) *minio.Client {
	t.Helper()
	c, err := minio.New(host, &minio.Options{
		Creds: credentials.NewStaticV4(fakeKey, fakeSecret, ""), Region: "us-east-1",
		BucketLookup: minio.BucketLookupPath, MaxRetries: 1,
	})
	require.NoError(t, err)
	return c
}

// checked wraps a store so that every error it returns is checked for the
// bucket, the object names and the credentials.
type checked struct {
	*s3blob.Store
	t *testing.T
}

func (c checked) clean(err error) {
	c.t.Helper()
	if err == nil {
		return
	}
	for _, f := range []string{fakeKey, fakeSecret, "secret-bucket", "prefix-x/"} {
		assert.NotContains(c.t, err.Error(), f, "messages hold no credentials, bucket or object names")
	}
}

func (c checked) Put(ctx context.Context, key session.BlobKey, r io.Reader, size int64, ct string) (session.BlobInfo, error) {
	info, err := c.Store.Put(ctx, key, r, size, ct)
	c.clean(err)
	return info, err
}

func (c checked) Open(ctx context.Context, key session.BlobKey) (io.ReadCloser, error) {
	rc, err := c.Store.Open(ctx, key)
	c.clean(err)
	return rc, err
}

func (c checked) Stat(ctx context.Context, key session.BlobKey) (session.BlobInfo, error) {
	info, err := c.Store.Stat(ctx, key)
	c.clean(err)
	return info, err
}

func (c checked) Delete(ctx context.Context, key session.BlobKey) error {
	err := c.Store.Delete(ctx, key)
	c.clean(err)
	return err
}

func (c checked) List(ctx context.Context, fn func(session.BlobInfo) error) error {
	err := c.Store.List(ctx, fn)
	c.clean(err)
	return err
}

func TestUnavailableClosedPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	host := l.Addr().String()
	require.NoError(t, l.Close())
	storetest.TestBlobStoreUnavailable(t, func(t *testing.T) session.BlobStore {
		st, err := s3blob.New(fastClient(t, host), "secret-bucket", s3blob.WithPrefix("prefix-x/"))
		require.NoError(t, err)
		return checked{st, t}
	})
}

// unavailableS3 answers every request with 503 SlowDown, as S3 does when
// throttling, or a load balancer with no healthy server behind it.
func unavailableS3(t *testing.T) (host string, requests *atomic.Int64) {
	t.Helper()
	requests = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		if r.Method != http.MethodHead {
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
				`<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>`+
				`<Resource>`+r.URL.Path+`</Resource><RequestId>R1</RequestId></Error>`)
		}
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	return u.Host, requests
}

func TestUnavailable503(t *testing.T) {
	t.Parallel()
	host, requests := unavailableS3(t)
	storetest.TestBlobStoreUnavailable(t, func(t *testing.T) session.BlobStore {
		st, err := s3blob.New(fastClient(t, host), "secret-bucket", s3blob.WithPrefix("prefix-x/"))
		require.NoError(t, err)
		return checked{st, t}
	})
	assert.Positive(t, requests.Load(), "the requests reached the server")

	st, err := s3blob.New(fastClient(t, host), "secret-bucket", s3blob.WithPrefix("prefix-x/"))
	require.NoError(t, err)
	key, err := session.NewBlobKey(session.NewID(), session.NewID())
	require.NoError(t, err)
	_, err = st.Put(t.Context(), key, stringsReader("body"), 4, "image/jpeg")
	require.ErrorIs(t, err, session.ErrUnavailable)
	var resp minio.ErrorResponse
	require.ErrorAs(t, err, &resp, "the service's reply is kept")
	assert.Equal(t, "SlowDown", resp.Code)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

// TestTruncatedDownload: a connection that breaks while a blob streams is
// an outage too, reported by the reader.
func TestTruncatedDownload(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, strings.Repeat("x", 100))
		// Returning with 900 bytes missing makes the server drop the
		// connection.
	}))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	st, err := s3blob.New(fastClient(t, u.Host), "secret-bucket")
	require.NoError(t, err)
	key, err := session.NewBlobKey(session.NewID(), session.NewID())
	require.NoError(t, err)
	rc, err := st.Open(t.Context(), key)
	require.NoError(t, err)
	defer func() { _ = rc.Close() }()
	_, err = io.ReadAll(rc)
	require.ErrorIs(t, err, session.ErrUnavailable)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

// TestBadCredentialsAreNotAnOutage: a real server refusing our signature is
// a configuration mistake, not something to retry; the secret is in no
// message.
func TestBadCredentialsAreNotAnOutage(t *testing.T) {
	t.Parallel()
	cfg := testenv.S3(t)
	u, err := url.Parse(cfg.Endpoint)
	require.NoError(t, err)
	_, bucket, _ := server(t)
	c, err := minio.New(u.Host, &minio.Options{
		Creds: credentials.NewStaticV4(cfg.AccessKey, fakeSecret, ""), Secure: u.Scheme == "https",
		Region: cfg.Region, BucketLookup: minio.BucketLookupPath, MaxRetries: 1,
	})
	require.NoError(t, err)
	st, err := s3blob.New(c, bucket)
	require.NoError(t, err)
	key, err := session.NewBlobKey(session.NewID(), session.NewID())
	require.NoError(t, err)
	_, err = st.Put(t.Context(), key, stringsReader("body"), 4, "image/jpeg")
	require.Error(t, err)
	assert.NotErrorIs(t, err, session.ErrUnavailable, "%v", err)
	assert.NotContains(t, err.Error(), fakeSecret)
	_, err = st.Stat(t.Context(), key)
	require.Error(t, err)
	assert.NotErrorIs(t, err, session.ErrUnavailable, "%v", err)
	err = st.List(t.Context(), func(session.BlobInfo) error { return nil })
	require.Error(t, err)
	assert.NotErrorIs(t, err, session.ErrUnavailable, "%v", err)
}

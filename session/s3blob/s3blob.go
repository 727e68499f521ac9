// Package s3blob is a [session.BlobStore] on Amazon S3 or an S3-compatible
// service (MinIO, Supabase Storage, versitygw, Ceph), for instances that
// share image bytes behind a load balancer.
//
// It is built on minio-go v7 rather than aws-sdk-go-v2: minio-go streams a
// body of unknown length as a multipart upload from a single reused part
// buffer (aws-sdk-go-v2 needs its separate transfer manager module for
// that), speaks to AWS and to every S3-compatible server we tried with one
// option (path-style lookup), and adds one module to our build instead of a
// dozen.
//
// Objects are named "<prefix><session id>/<image id>" inside one bucket.
// Retention does not depend on lifecycle rules (versitygw has none, and S3
// rules count in whole days): session.Manager.Sweep deletes what must go.
// [Store.SetLifecycle] adds a rule as a backstop where the service has them.
//
// Errors: when the service cannot be reached or asks to retry later
// (connection refused or reset, a timeout, any 5xx, 429, SlowDown or
// another throttling code), methods and the reader from Open return an
// error wrapping session.ErrUnavailable and minio-go's error, with request
// URLs cut to the endpoint. Other replies (AccessDenied, NoSuchBucket, a bad
// signature) are configuration mistakes, not outages. minio-go retries
// failed requests itself (Options.MaxRetries, ten by default) before any of
// this is reported.
//
// Image bytes are health information: use a private bucket with
// server-side encryption, reached over TLS.
package s3blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/lifecycle"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/internal/backend"
)

// Defaults.
const (
	DefaultPrefix   = "clinicalimages/"
	DefaultPartSize = 8 << 20 // bytes buffered per multipart part when the size is unknown
	minPartSize     = 5 << 20 // S3's minimum part size
	lifecycleRuleID = "clinicalimages-retention"
	// DefaultStaleUpload is how old an unfinished multipart upload (left by
	// a crashed Put) must be before List aborts it.
	DefaultStaleUpload = time.Hour
)

// Store is a session.BlobStore and session.BlobLister on one S3 bucket. It
// is safe for concurrent use by goroutines and processes. It does not own
// the client.
type Store struct {
	c        *minio.Client
	bucket   string
	prefix   string
	partSize uint64
	now      func() time.Time
}

var (
	_ session.BlobStore  = (*Store)(nil)
	_ session.BlobLister = (*Store)(nil)
)

// Option configures a Store.
type Option func(*Store) error

// WithPrefix sets the prefix of every object name (default DefaultPrefix).
// It must be empty or end in "/", and may not contain "..", "//" or start
// with "/".
func WithPrefix(p string) Option {
	return func(s *Store) error {
		if p != "" && (!strings.HasSuffix(p, "/") || strings.HasPrefix(p, "/") || strings.Contains(p, "..") || strings.Contains(p, "//")) {
			return fmt.Errorf("s3blob: WithPrefix: %q must end in one \"/\" and hold no \"..\"", p)
		}
		s.prefix = p
		return nil
	}
}

// WithPartSize sets the multipart part size (default DefaultPartSize, at
// least 5 MiB). A Put of unknown size holds one part buffer; the heap peak
// measured by storetest for a 100 MiB body with 8 MiB parts was 17 MiB.
func WithPartSize(n uint64) Option {
	return func(s *Store) error {
		if n < minPartSize {
			return fmt.Errorf("s3blob: WithPartSize: %d is below S3's 5 MiB minimum", n)
		}
		s.partSize = n
		return nil
	}
}

// WithClock sets the clock used to age unfinished uploads (default
// time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *Store) error {
		if now == nil {
			return errors.New("s3blob: WithClock: nil clock")
		}
		s.now = now
		return nil
	}
}

// New returns a Store on bucket through c. Build c with minio.New; for
// S3-compatible servers set Options.BucketLookup to minio.BucketLookupPath
// and Options.Region. New makes no request; see EnsureBucket.
func New(c *minio.Client, bucket string, opts ...Option) (*Store, error) {
	if c == nil || bucket == "" {
		return nil, errors.New("s3blob: a client and a bucket are required")
	}
	s := &Store{c: c, bucket: bucket, prefix: DefaultPrefix, partSize: DefaultPartSize, now: time.Now}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("s3blob: nil option")
		}
		if err := o(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// EnsureBucket creates the bucket in region if it does not exist.
func (s *Store) EnsureBucket(ctx context.Context, region string) error {
	ok, err := s.c.BucketExists(ctx, s.bucket)
	if err != nil {
		return wrap(ctx, "ensure bucket", err)
	}
	if ok {
		return nil
	}
	err = s.c.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	if code := minio.ToErrorResponse(err).Code; code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" {
		return nil
	}
	return wrap(ctx, "ensure bucket", err)
}

// SetLifecycle adds (or replaces) a bucket lifecycle rule that expires this
// store's objects after the retention window, rounded up to whole days as
// S3 requires, and aborts abandoned multipart uploads after a day. Other
// rules on the bucket are kept. It is a backstop for Sweep, not a
// replacement; services without lifecycle support (versitygw) return an
// error here and need nothing else.
func (s *Store) SetLifecycle(ctx context.Context, retention time.Duration) error {
	if retention <= 0 {
		return fmt.Errorf("s3blob: SetLifecycle: %v is not positive", retention)
	}
	days := int((retention + 24*time.Hour - 1) / (24 * time.Hour))
	cfg, err := s.c.GetBucketLifecycle(ctx, s.bucket)
	if err != nil {
		if code := minio.ToErrorResponse(err).Code; code != "NoSuchLifecycleConfiguration" {
			return wrap(ctx, "get lifecycle", err)
		}
		cfg = lifecycle.NewConfiguration()
	}
	rules := cfg.Rules[:0]
	for _, r := range cfg.Rules {
		if r.ID != lifecycleRuleID {
			rules = append(rules, r)
		}
	}
	cfg.Rules = append(rules, lifecycle.Rule{
		ID:                             lifecycleRuleID,
		Status:                         "Enabled",
		RuleFilter:                     lifecycle.Filter{Prefix: s.prefix},
		Expiration:                     lifecycle.Expiration{Days: lifecycle.ExpirationDays(days)},
		AbortIncompleteMultipartUpload: lifecycle.AbortIncompleteMultipartUpload{DaysAfterInitiation: 1},
	})
	return wrap(ctx, "set lifecycle", s.c.SetBucketLifecycle(ctx, s.bucket, cfg))
}

func (s *Store) object(key session.BlobKey) (string, error) {
	if err := key.Validate(); err != nil {
		return "", err
	}
	return s.prefix + string(key), nil
}

func notFound(err error) bool {
	r := minio.ToErrorResponse(err)
	return r.Code == minio.NoSuchKey || r.StatusCode == http.StatusNotFound && r.Code != minio.NoSuchBucket
}

// wrap turns a client error into ours: not-found into session.ErrNotFound,
// a failure of the service (see unavailable) into one wrapping
// session.ErrUnavailable and the client's error, everything else wrapped
// with the operation. When the caller's context is done, its error is in
// the chain instead of ErrUnavailable. Request URLs are cut to the
// endpoint, so no object name reaches a message. nil stays nil.
func wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if notFound(err) {
		return fmt.Errorf("%w: blob", session.ErrNotFound)
	}
	return backend.Wrap(ctx, "s3blob", op, redactURL(err), unavailable)
}

// unavailable reports whether err says the service could not be reached or
// could not serve the request for now: a network error (refused, reset,
// closed early, timed out) or a reply asking to retry later (any 5xx, 429,
// 408, SlowDown, ServiceUnavailable, throttling codes).
// Other replies (AccessDenied, NoSuchBucket, a bad signature) are
// configuration mistakes, not outages.
func unavailable(err error) bool {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.Code {
		case "SlowDown", "SlowDownRead", "SlowDownWrite", "ServiceUnavailable", "RequestTimeout",
			"Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestThrottled":
			return true
		}
		// The client's own ErrorResponses (a reply it could not parse) have
		// no status and are not outages.
		return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout
	}
	var opErr *net.OpError
	var netErr net.Error
	return errors.As(err, &opErr) ||
		errors.As(err, &netErr) && netErr.Timeout() ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// redactURL cuts the URL of a transport error to scheme and host: its path
// names the bucket and the object.
func redactURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	c := *ue
	c.URL = "(endpoint)"
	if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
		c.URL = u.Scheme + "://" + u.Host
	}
	if err == error(ue) {
		return &c
	}
	return redacted{err: err, msg: strings.Replace(err.Error(), ue.Error(), c.Error(), 1)}
}

// redacted keeps err in the chain with a message that has been cleaned.
type redacted struct {
	err error
	msg string
}

func (r redacted) Error() string { return r.msg }
func (r redacted) Unwrap() error { return r.err }

// Put implements session.BlobStore. A body of unknown size goes up as a
// multipart upload, one part buffer at a time; a failed upload is aborted.
// A known-size body that proves longer than declared is deleted again.
func (s *Store) Put(ctx context.Context, key session.BlobKey, r io.Reader, size int64, contentType string) (session.BlobInfo, error) {
	name, err := s.object(key)
	if err != nil {
		return session.BlobInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return session.BlobInfo{}, wrap(ctx, "put", err)
	}
	d := session.NewDigestReader(r, size)
	body := &backend.ErrReader{R: d}
	n := size
	if n == 0 {
		n = -1
	}
	up, err := s.c.PutObject(ctx, s.bucket, name, body, n, minio.PutObjectOptions{
		ContentType: contentType,
		PartSize:    s.partSize,
	})
	if err != nil {
		if body.Err != nil {
			// The reader's own error, which the client may have flattened:
			// the caller's (a phone's dropped connection is no S3 outage).
			return session.BlobInfo{}, fmt.Errorf("s3blob: put: %w", body.Err)
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return session.BlobInfo{}, wrap(ctx, "put", err)
	}
	if size > 0 && !d.Done() {
		// The client read exactly size bytes; make sure there are no more.
		var one [1]byte
		if _, rerr := io.ReadFull(d, one[:]); !errors.Is(rerr, io.EOF) {
			_ = s.c.RemoveObject(context.WithoutCancel(ctx), s.bucket, name, minio.RemoveObjectOptions{})
			if rerr == nil || errors.Is(rerr, session.ErrSizeMismatch) {
				return session.BlobInfo{}, fmt.Errorf("%w: body is longer than the declared %d bytes", session.ErrSizeMismatch, size)
			}
			return session.BlobInfo{}, fmt.Errorf("s3blob: put: %w", rerr)
		}
	}
	info := d.Info(key, contentType)
	info.ModTime = up.LastModified
	if info.ModTime.IsZero() {
		info.ModTime = time.Now()
	}
	return info, nil
}

// Open implements session.BlobStore with one GET; the body streams from the
// response. Closing the reader releases the connection. A read that fails
// because the connection broke gives an error wrapping
// session.ErrUnavailable.
func (s *Store) Open(ctx context.Context, key session.BlobKey) (io.ReadCloser, error) {
	name, err := s.object(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap(ctx, "open", err)
	}
	// Core's GetObject sends the GET now, so a missing object is reported
	// here, in one request (the high-level Object would HEAD first).
	body, _, _, err := minio.Core{Client: s.c}.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, wrap(ctx, "open", err)
	}
	return &objectReader{ctx: ctx, rc: body}, nil
}

// objectReader classifies the errors of a streaming response body like
// those of a request.
type objectReader struct {
	ctx context.Context
	rc  io.ReadCloser
}

func (o *objectReader) Read(p []byte) (int, error) {
	n, err := o.rc.Read(p)
	if err != nil && err != io.EOF {
		err = wrap(o.ctx, "read", err)
	}
	return n, err
}

func (o *objectReader) Close() error { return o.rc.Close() }

// Stat implements session.BlobStore with a HEAD request. SHA256 and SHA1
// are left empty: S3 does not keep them.
func (s *Store) Stat(ctx context.Context, key session.BlobKey) (session.BlobInfo, error) {
	name, err := s.object(key)
	if err != nil {
		return session.BlobInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return session.BlobInfo{}, wrap(ctx, "stat", err)
	}
	oi, err := s.c.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
	if err != nil {
		return session.BlobInfo{}, wrap(ctx, "stat", err)
	}
	return session.BlobInfo{Key: key, Size: oi.Size, ContentType: oi.ContentType, ModTime: oi.LastModified}, nil
}

// Delete implements session.BlobStore.
func (s *Store) Delete(ctx context.Context, key session.BlobKey) error {
	name, err := s.object(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return wrap(ctx, "delete", err)
	}
	err = s.c.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{})
	if err != nil && notFound(err) {
		return nil
	}
	return wrap(ctx, "delete", err)
}

// List implements session.BlobLister, listing the prefix page by page.
// Objects under the prefix that are not blobs are skipped. ContentType is
// left empty (a listing does not carry it). After a complete listing it
// also aborts multipart uploads under the prefix older than
// DefaultStaleUpload, which only a crashed Put leaves behind (their parts
// are invisible to listings but still stored); services that cannot list
// uploads are left alone.
func (s *Store) List(ctx context.Context, fn func(session.BlobInfo) error) error {
	lctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the client's listing goroutine if fn stops early
	for oi := range s.c.ListObjects(lctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, Recursive: true}) {
		if oi.Err != nil {
			return wrap(ctx, "list", oi.Err)
		}
		key := session.BlobKey(strings.TrimPrefix(oi.Key, s.prefix))
		if key.Validate() != nil {
			continue
		}
		if err := fn(session.BlobInfo{Key: key, Size: oi.Size, ModTime: oi.LastModified}); err != nil {
			return err
		}
	}
	return s.abortStaleUploads(ctx)
}

func (s *Store) abortStaleUploads(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	core := minio.Core{Client: s.c}
	for u := range s.c.ListIncompleteUploads(ctx, s.bucket, s.prefix, true) {
		if u.Err != nil {
			if code := minio.ToErrorResponse(u.Err).Code; code == "NotImplemented" {
				return nil
			}
			return wrap(ctx, "list uploads", u.Err)
		}
		if s.now().Sub(u.Initiated) <= DefaultStaleUpload {
			continue
		}
		if err := core.AbortMultipartUpload(ctx, s.bucket, u.Key, u.UploadID); err != nil && minio.ToErrorResponse(err).Code != "NoSuchUpload" {
			return wrap(ctx, "abort upload", err)
		}
	}
	return nil
}

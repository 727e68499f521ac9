package storetest

import (
	"bytes"
	"context"
	"crypto/sha1" //nolint:gosec // checking the SHA-1 the store reports
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/session"
)

// NewBlobStore makes a BlobStore for one subtest. Stores sharing a server
// must isolate each call (a bucket or key prefix).
type NewBlobStore func(t *testing.T) session.BlobStore

// BlobOption adjusts TestBlobStore.
type BlobOption func(*blobConfig)

type blobConfig struct {
	largeSize   int64
	memoryBound bool
}

// WithLargeSize sets the size of the large streamed body (default 100 MB).
func WithLargeSize(n int64) BlobOption { return func(c *blobConfig) { c.largeSize = n } }

// WithoutMemoryBound skips the check that a large Put allocates far less
// than the body: for stores that keep bodies in memory by design.
func WithoutMemoryBound() BlobOption { return func(c *blobConfig) { c.memoryBound = false } }

// TestBlobStore runs the BlobStore conformance suite. The large-body subtest
// runs alone (not in parallel) so that its allocation count is its own.
func TestBlobStore(t *testing.T, newBlobs NewBlobStore, opts ...BlobOption) {
	t.Helper()
	cfg := blobConfig{largeSize: 100 << 20, memoryBound: true}
	for _, o := range opts {
		o(&cfg)
	}
	t.Run("LargeStream", func(t *testing.T) { testLarge(t, newBlobs, cfg) })
	tests := []struct {
		name string
		fn   func(t *testing.T, b session.BlobStore)
	}{
		{"RoundTrip", testBlobRoundTrip},
		{"SizeMismatch", testSizeMismatch},
		{"FailingReader", testFailingReader},
		{"Overwrite", testBlobOverwrite},
		{"NotFound", testBlobNotFound},
		{"DeleteIdempotent", testBlobDelete},
		{"KeyEscape", testKeyEscape},
		{"CancelledContext", testBlobCancelled},
		{"Concurrent", testBlobConcurrent},
		{"List", testList},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newBlobs(t))
		})
	}
}

func newKey() session.BlobKey {
	k, _ := session.NewBlobKey(session.NewID(), session.NewID())
	return k
}

func digests(b []byte) (string, string) {
	s256 := sha256.Sum256(b)
	s1 := sha1.Sum(b) //nolint:gosec // see import
	return hex.EncodeToString(s256[:]), hex.EncodeToString(s1[:])
}

func readAll(t *testing.T, b session.BlobStore, key session.BlobKey) []byte {
	t.Helper()
	rc, err := b.Open(t.Context(), key)
	require.NoError(t, err)
	defer func() { require.NoError(t, rc.Close()) }()
	data, err := io.ReadAll(rc)
	require.NoError(t, err)
	return data
}

func testBlobRoundTrip(t *testing.T, b session.BlobStore) {
	tests := []struct {
		name string
		body []byte
		size func(n int) int64
	}{
		{"KnownSize", bytes.Repeat([]byte("jpeg"), 10_000), func(n int) int64 { return int64(n) }},
		{"UnknownSize", bytes.Repeat([]byte("png!"), 10_000), func(int) int64 { return 0 }},
		{"Empty", nil, func(int) int64 { return 0 }},
		{"OneByte", []byte{0xff}, func(int) int64 { return 1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := newKey()
			s256, s1 := digests(tc.body)
			// A plain io.Reader (no Len, Seek or ReadAt) as an upload gives.
			info, err := b.Put(t.Context(), key, struct{ io.Reader }{bytes.NewReader(tc.body)}, tc.size(len(tc.body)), "image/jpeg")
			require.NoError(t, err)
			assert.Equal(t, key, info.Key)
			assert.Equal(t, int64(len(tc.body)), info.Size)
			assert.Equal(t, s256, info.SHA256)
			assert.Equal(t, s1, info.SHA1)
			assert.Equal(t, "image/jpeg", info.ContentType)

			assert.True(t, bytes.Equal(tc.body, readAll(t, b, key)), "read back byte-identical")
			st, err := b.Stat(t.Context(), key)
			require.NoError(t, err)
			assert.Equal(t, int64(len(tc.body)), st.Size)
			assert.Equal(t, "image/jpeg", st.ContentType)
			assert.False(t, st.ModTime.IsZero(), "ModTime set")
			if st.SHA256 != "" {
				assert.Equal(t, s256, st.SHA256)
				assert.Equal(t, s1, st.SHA1)
			}
		})
	}
}

func testSizeMismatch(t *testing.T, b session.BlobStore) {
	tests := []struct {
		name string
		body string
		size int64
	}{
		{"Longer", "0123456789", 5},
		{"Shorter", "01234", 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := newKey()
			_, err := b.Put(t.Context(), key, bytes.NewReader([]byte(tc.body)), tc.size, "image/jpeg")
			requireNamed(t, err, session.ErrSizeMismatch)
			_, err = b.Stat(t.Context(), key)
			requireNamed(t, err, session.ErrNotFound, "nothing stored")
		})
	}
}

type failingReader struct {
	n   int
	err error // errRead if nil
}

var errRead = errors.New("client went away")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		if f.err != nil {
			return 0, f.err
		}
		return 0, errRead
	}
	n := min(len(p), f.n)
	clear(p[:n])
	f.n -= n
	return n, nil
}

// testFailingReader: a Put whose reader fails stores nothing and returns
// the reader's error, which is the caller's trouble and not the backend's,
// even when it looks like a network or disk failure (a phone's connection
// reset, a source file's I/O error).
func testFailingReader(t *testing.T, b session.BlobStore) {
	readerErrs := map[string]error{
		"plain": errRead,
		"reset": &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)},
		"eio":   &fs.PathError{Op: "read", Path: "upload", Err: syscall.EIO},
	}
	for name, readErr := range readerErrs {
		for _, size := range []int64{0, 1 << 20} {
			t.Run(fmt.Sprintf("%s/size=%d", name, size), func(t *testing.T) {
				key := newKey()
				_, err := b.Put(t.Context(), key, &failingReader{n: 100_000, err: readErr}, size, "image/jpeg")
				requireNamed(t, err, readErr)
				_, err = b.Stat(t.Context(), key)
				requireNamed(t, err, session.ErrNotFound, "a failed upload leaves nothing")
			})
		}
	}
}

func testBlobOverwrite(t *testing.T, b session.BlobStore) {
	key := newKey()
	_, err := b.Put(t.Context(), key, bytes.NewReader([]byte("first version")), 0, "image/png")
	require.NoError(t, err)
	_, err = b.Put(t.Context(), key, bytes.NewReader([]byte("second")), 6, "image/jpeg")
	require.NoError(t, err)
	assert.Equal(t, "second", string(readAll(t, b, key)))
	st, err := b.Stat(t.Context(), key)
	require.NoError(t, err)
	assert.Equal(t, int64(6), st.Size)
	assert.Equal(t, "image/jpeg", st.ContentType)
}

func testBlobNotFound(t *testing.T, b session.BlobStore) {
	key := newKey()
	_, err := b.Open(t.Context(), key)
	requireNamed(t, err, session.ErrNotFound)
	_, err = b.Stat(t.Context(), key)
	requireNamed(t, err, session.ErrNotFound)
}

func testBlobDelete(t *testing.T, b session.BlobStore) {
	key := newKey()
	_, err := b.Put(t.Context(), key, bytes.NewReader([]byte("x")), 1, "image/jpeg")
	require.NoError(t, err)
	require.NoError(t, b.Delete(t.Context(), key))
	require.NoError(t, b.Delete(t.Context(), key), "second delete")
	require.NoError(t, b.Delete(t.Context(), newKey()), "never existed")
	_, err = b.Stat(t.Context(), key)
	require.ErrorIs(t, err, session.ErrNotFound)
}

// EscapeKeys are keys that try to leave a store's namespace; every
// BlobStore method must refuse them with session.ErrInvalidKey. Exported so
// that implementations can also check their backend was left untouched.
func EscapeKeys() []session.BlobKey {
	sid, iid := session.NewID(), session.NewID()
	return []session.BlobKey{
		"", "/", "..", "../" + session.BlobKey(iid), session.BlobKey(sid + "/../" + iid),
		session.BlobKey("/" + sid + "/" + iid), session.BlobKey(sid + "/" + iid + "/x"),
		session.BlobKey("../" + sid + "/" + iid), session.BlobKey(sid + "/../../etc/passwd"),
		session.BlobKey(sid + "\\" + iid), session.BlobKey(sid + "/" + iid + "\x00"),
		session.BlobKey("%2e%2e/" + iid), session.BlobKey(sid + "/" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
		session.BlobKey(sid + "//" + iid), session.BlobKey(sid + "/" + iid + "/"),
		session.BlobKey(sid + "/.." + iid[2:]), session.BlobKey(sid + "/" + iid + " "),
	}
}

func testKeyEscape(t *testing.T, b session.BlobStore) {
	for _, key := range EscapeKeys() {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			_, err := b.Put(t.Context(), key, bytes.NewReader([]byte("evil")), 4, "image/jpeg")
			requireNamed(t, err, session.ErrInvalidKey)
			_, err = b.Open(t.Context(), key)
			requireNamed(t, err, session.ErrInvalidKey)
			_, err = b.Stat(t.Context(), key)
			requireNamed(t, err, session.ErrInvalidKey)
			requireNamed(t, b.Delete(t.Context(), key), session.ErrInvalidKey)
		})
	}
}

func testBlobCancelled(t *testing.T, b session.BlobStore) {
	key := newKey()
	_, err := b.Put(t.Context(), key, bytes.NewReader([]byte("x")), 1, "image/jpeg")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	other := newKey()
	tests := []struct {
		name string
		call func() error
	}{
		{"Put", func() error {
			_, err := b.Put(ctx, other, bytes.NewReader([]byte("y")), 1, "image/jpeg")
			return err
		}},
		{"Open", func() error {
			rc, err := b.Open(ctx, key)
			if err == nil {
				_, err = io.ReadAll(rc)
				_ = rc.Close()
			}
			return err
		}},
		{"Stat", func() error { _, err := b.Stat(ctx, key); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requireNamed(t, tc.call(), context.Canceled)
		})
	}
	_, err = b.Stat(t.Context(), other)
	require.ErrorIs(t, err, session.ErrNotFound, "a cancelled Put stores nothing")
}

func testBlobConcurrent(t *testing.T, b session.BlobStore) {
	const n = 10
	keys := make([]session.BlobKey, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		keys[i] = newKey()
		wg.Go(func() {
			body := bytes.Repeat([]byte{byte(i)}, 64<<10)
			_, err := b.Put(t.Context(), keys[i], bytes.NewReader(body), 0, "image/jpeg")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for i, k := range keys {
		assert.Equal(t, bytes.Repeat([]byte{byte(i)}, 64<<10), readAll(t, b, k))
	}
}

func testList(t *testing.T, b session.BlobStore) {
	l, ok := b.(session.BlobLister)
	if !ok {
		t.Skip("store does not implement session.BlobLister")
	}
	want := map[session.BlobKey]bool{}
	for range 3 {
		k := newKey()
		want[k] = true
		_, err := b.Put(t.Context(), k, bytes.NewReader([]byte("abc")), 3, "image/jpeg")
		require.NoError(t, err)
	}
	got := map[session.BlobKey]session.BlobInfo{}
	require.NoError(t, l.List(t.Context(), func(info session.BlobInfo) error {
		require.NoError(t, info.Key.Validate(), "List yields only valid keys")
		got[info.Key] = info
		return nil
	}))
	for k := range want {
		require.Contains(t, got, k)
		assert.Equal(t, int64(3), got[k].Size)
		assert.False(t, got[k].ModTime.IsZero())
	}
	stop := errors.New("stop")
	calls := 0
	err := l.List(t.Context(), func(session.BlobInfo) error { calls++; return stop })
	require.ErrorIs(t, err, stop)
	assert.Equal(t, 1, calls, "List stops at fn's first error")
}

// pattern is a deterministic, incompressible-enough body of any length that
// is generated as it is read, so the test itself holds almost nothing.
type pattern struct {
	left  int64
	block [64 << 10]byte
	seq   uint64
	off   int
}

func newPattern(n int64) *pattern {
	p := &pattern{left: n, off: len(pattern{}.block)}
	return p
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	if p.off == len(p.block) {
		p.seq++
		x := p.seq * 0x9e3779b97f4a7c15
		for i := range p.block {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			p.block[i] = byte(x)
		}
		p.off = 0
	}
	n := copy(b, p.block[p.off:])
	n = int(min(int64(n), p.left))
	p.off += n
	p.left -= int64(n)
	return n, nil
}

// heapPeak samples the heap (live and not yet collected objects) every
// millisecond without stopping the world, and reports the peak above the
// level when it started.
type heapPeak struct {
	base, peak uint64
	stop       chan struct{}
	done       chan struct{}
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func startHeapPeak() *heapPeak {
	runtime.GC()
	h := &heapPeak{base: heapObjects(), stop: make(chan struct{}), done: make(chan struct{})}
	h.peak = h.base
	go func() {
		defer close(h.done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				h.peak = max(h.peak, heapObjects())
			}
		}
	}()
	return h
}

// Stop ends sampling and returns the peak growth in bytes.
func (h *heapPeak) Stop() uint64 {
	close(h.stop)
	<-h.done
	h.peak = max(h.peak, heapObjects())
	return h.peak - h.base
}

func testLarge(t *testing.T, newBlobs NewBlobStore, cfg blobConfig) {
	b := newBlobs(t)
	key := newKey()
	want := sha256.New()
	body := io.TeeReader(newPattern(cfg.largeSize), want)
	mib := func(n uint64) float64 { return float64(n) / (1 << 20) }

	peak := startHeapPeak()
	info, err := b.Put(t.Context(), key, body, 0, "image/jpeg")
	grew := peak.Stop()
	require.NoError(t, err)
	require.Equal(t, cfg.largeSize, info.Size)
	require.Equal(t, hex.EncodeToString(want.Sum(nil)), info.SHA256)
	t.Logf("Put of %d MiB (size unknown): heap peak +%.1f MiB", cfg.largeSize>>20, mib(grew))
	if cfg.memoryBound {
		assert.Less(t, grew, uint64(cfg.largeSize/4), "Put must stream, not buffer the body")
	}

	rc, err := b.Open(t.Context(), key)
	require.NoError(t, err)
	got := sha256.New()
	peak = startHeapPeak()
	n, err := io.Copy(got, rc)
	grew = peak.Stop()
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.Equal(t, cfg.largeSize, n)
	assert.Equal(t, info.SHA256, hex.EncodeToString(got.Sum(nil)), "read back byte-identical")
	t.Logf("Open and read of %d MiB: heap peak +%.1f MiB", cfg.largeSize>>20, mib(grew))
	if cfg.memoryBound {
		assert.Less(t, grew, uint64(cfg.largeSize/4), "Open must stream")
	}
	require.NoError(t, b.Delete(t.Context(), key))
}

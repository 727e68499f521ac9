// Package fsblob is a [session.BlobStore] on a local directory, for a single
// instance that should not hold image bytes in memory, or several instances
// sharing a POSIX file system.
//
// Layout: <dir>/<session id>/<image id>, files 0600 in directories 0700.
// Each file starts with a fixed 512-byte header (format tag, size, content
// type, SHA-256, SHA-1) followed by the body, so one rename publishes body
// and metadata together. Put writes a temporary file beside the target,
// fsyncs it, renames it into place and fsyncs the directory: a reader sees
// the old blob or the new one, never a part, even across a crash. All file
// access goes through an [os.Root], so neither a key nor a planted symlink
// can reach outside the directory.
//
// Errors: a file system that fails (EIO, a full disk or quota, a read-only
// or stale mount, permission denied, too many open files) and a directory
// that was removed or replaced after New give errors wrapping
// session.ErrUnavailable and the file system's error. A corrupt blob file
// and a symlink escape attempt are not outages.
package fsblob

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/clinicpro/clinicalimages/session"
	"github.com/clinicpro/clinicalimages/session/internal/backend"
)

const (
	headerSize = 512
	magic      = "clinicalimages-blob-v1\n"
	tmpPrefix  = ".tmp-"
	// maxContentType keeps the header within its fixed size.
	maxContentType = 200
	// DefaultTempMaxAge is how old a temporary file left by a crashed Put
	// must be before List removes it.
	DefaultTempMaxAge = time.Hour
)

// Store is a session.BlobStore and session.BlobLister on a directory. It is
// safe for concurrent use by goroutines and by processes sharing the
// directory. Close releases the directory handle.
type Store struct {
	root *os.Root
	dir  string // absolute path of the directory root was opened on
	now  func() time.Time
}

var (
	_ session.BlobStore  = (*Store)(nil)
	_ session.BlobLister = (*Store)(nil)
)

// Option configures a Store.
type Option func(*Store) error

// WithClock sets the clock used to age temporary files (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *Store) error {
		if now == nil {
			return errors.New("fsblob: WithClock: nil clock")
		}
		s.now = now
		return nil
	}
}

// New returns a Store on dir, creating it (0700) if needed.
func New(dir string, opts ...Option) (*Store, error) {
	if dir == "" {
		return nil, errors.New("fsblob: empty directory")
	}
	s := &Store{now: time.Now}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("fsblob: nil option")
		}
		if err := o(s); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("fsblob: %w", err)
	}
	s.root, s.dir = root, dir
	return s, nil
}

// Close releases the directory handle. The Store must not be used after.
func (s *Store) Close() error { return s.root.Close() }

type header struct {
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
	SHA256      string `json:"sha256"`
	SHA1        string `json:"sha1"`
}

func encodeHeader(h header) ([]byte, error) {
	js, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, headerSize)
	n := copy(buf, magic)
	if n+len(js)+1 > headerSize {
		return nil, errors.New("fsblob: header too large")
	}
	copy(buf[n:], js)
	for i := n + len(js); i < headerSize-1; i++ {
		buf[i] = ' '
	}
	buf[headerSize-1] = '\n'
	return buf, nil
}

func readHeader(r io.Reader) (header, error) {
	buf := make([]byte, headerSize)
	if _, err := io.ReadFull(r, buf); err != nil {
		return header{}, fmt.Errorf("fsblob: short header: %w", err)
	}
	if !bytes.HasPrefix(buf, []byte(magic)) {
		return header{}, errors.New("fsblob: not a blob file")
	}
	var h header
	if err := json.Unmarshal(bytes.TrimSpace(buf[len(magic):]), &h); err != nil {
		return header{}, fmt.Errorf("fsblob: corrupt header: %w", err)
	}
	return h, nil
}

// wrap turns a file system error into ours: a missing file into
// session.ErrNotFound, unless the store's directory itself is gone; a
// failure of the file system or the directory (see unavailable) into one
// wrapping session.ErrUnavailable and the error; anything else wrapped with
// the operation.
func (s *Store) wrap(op string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		if s.gone() {
			return fmt.Errorf("fsblob: %s: %w: the store's directory was removed or replaced: %w", op, session.ErrUnavailable, err)
		}
		return fmt.Errorf("%w: blob", session.ErrNotFound)
	}
	if unavailable(err) {
		return fmt.Errorf("fsblob: %s: %w: %w", op, session.ErrUnavailable, err)
	}
	return fmt.Errorf("fsblob: %s: %w", op, err)
}

// unavailable reports whether err is the file system failing rather than a
// mistake: an I/O error, a full disk or quota, a read-only or stale (NFS)
// mount, a directory the process may not write, too many open files, no
// memory.
func unavailable(err error) bool {
	if errors.Is(err, fs.ErrPermission) {
		return true
	}
	for _, errno := range []syscall.Errno{
		syscall.EIO, syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS, syscall.ESTALE, syscall.ETIMEDOUT,
		syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.ENODEV, syscall.ENXIO, syscall.EBUSY,
	} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// gone reports whether the store's directory no longer exists at its path,
// or another one took its place: the handle then points at a directory
// nobody will see again.
func (s *Store) gone() bool {
	at, err := os.Stat(s.dir)
	if err != nil {
		return true
	}
	held, err := s.root.Stat(".")
	return err != nil || !os.SameFile(at, held)
}

// Put implements session.BlobStore.
func (s *Store) Put(ctx context.Context, key session.BlobKey, r io.Reader, size int64, contentType string) (session.BlobInfo, error) {
	sid, iid, err := key.Parts()
	if err != nil {
		return session.BlobInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return session.BlobInfo{}, s.wrap("put", err)
	}
	if len(contentType) > maxContentType {
		return session.BlobInfo{}, errors.New("fsblob: put: content type too long")
	}
	f, tmp, err := s.createTemp(sid)
	if err != nil {
		return session.BlobInfo{}, s.wrap("put", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = f.Close()
			_ = s.root.Remove(tmp)
		}
	}()
	if _, err := f.Write(make([]byte, headerSize)); err != nil {
		return session.BlobInfo{}, s.wrap("put", err)
	}
	d := session.NewDigestReader(r, size)
	src := &backend.ErrReader{R: ctxReader{ctx, d}}
	if _, err := io.Copy(f, src); err != nil {
		if src.Err != nil {
			// The reader's error (or the context's, or a size mismatch): the
			// caller's, not the disk's.
			return session.BlobInfo{}, fmt.Errorf("fsblob: put: %w", src.Err)
		}
		return session.BlobInfo{}, s.wrap("put", err)
	}
	info := d.Info(key, contentType)
	h, err := encodeHeader(header{Size: info.Size, ContentType: contentType, SHA256: info.SHA256, SHA1: info.SHA1})
	if err != nil {
		return session.BlobInfo{}, err
	}
	if _, err := f.WriteAt(h, 0); err != nil {
		return session.BlobInfo{}, s.wrap("put", err)
	}
	if err := f.Sync(); err != nil {
		return session.BlobInfo{}, s.wrap("put", err)
	}
	st, err := f.Stat()
	if err != nil {
		return session.BlobInfo{}, s.wrap("put", err)
	}
	if err := f.Close(); err != nil {
		return session.BlobInfo{}, s.wrap("put", err)
	}
	if err := ctx.Err(); err != nil {
		return session.BlobInfo{}, s.wrap("put", err)
	}
	if err := s.root.Rename(tmp, path.Join(sid, iid)); err != nil {
		return session.BlobInfo{}, s.wrap("put", err)
	}
	committed = true
	if err := s.syncDir(sid); err != nil {
		return session.BlobInfo{}, s.wrap("put", err)
	}
	info.ModTime = st.ModTime()
	return info, nil
}

// createTemp makes the session's directory and an exclusive temporary file
// in it. A concurrent Delete may remove the empty directory in between, so
// it tries again.
func (s *Store) createTemp(sid string) (*os.File, string, error) {
	var err error
	for range 5 {
		_, statErr := s.root.Stat(sid)
		if err = s.root.MkdirAll(sid, 0o700); err != nil {
			continue
		}
		if errors.Is(statErr, fs.ErrNotExist) {
			// Make the new directory's entry durable, as the file's will be.
			if err = s.syncDir("."); err != nil {
				continue
			}
		}
		name := path.Join(sid, tmpPrefix+session.NewID())
		var f *os.File
		f, err = s.root.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f, name, nil
		}
	}
	return nil, "", err
}

func (s *Store) syncDir(name string) error {
	d, err := s.root.Open(name)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	return d.Sync()
}

// Open implements session.BlobStore. The returned reader is the file,
// positioned after its header; closing it closes the file.
func (s *Store) Open(ctx context.Context, key session.BlobKey) (io.ReadCloser, error) {
	f, h, err := s.open(ctx, key)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{blobReader{s, io.LimitReader(ctxReader{ctx, f}, h.Size)}, f}, nil
}

// blobReader classifies the read errors of an open blob like those of the
// calls.
type blobReader struct {
	s *Store
	r io.Reader
}

func (b blobReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF && unavailable(err) {
		err = b.s.wrap("read", err)
	}
	return n, err
}

func (s *Store) open(ctx context.Context, key session.BlobKey) (*os.File, header, error) {
	sid, iid, err := key.Parts()
	if err != nil {
		return nil, header{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, header{}, s.wrap("open", err)
	}
	f, err := s.root.Open(path.Join(sid, iid))
	if err != nil {
		return nil, header{}, s.wrap("open", err)
	}
	h, err := readHeader(f)
	if err != nil {
		_ = f.Close()
		if unavailable(err) {
			return nil, header{}, s.wrap("open", err)
		}
		return nil, header{}, err
	}
	return f, h, nil
}

// Stat implements session.BlobStore.
func (s *Store) Stat(ctx context.Context, key session.BlobKey) (session.BlobInfo, error) {
	f, h, err := s.open(ctx, key)
	if err != nil {
		return session.BlobInfo{}, err
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return session.BlobInfo{}, s.wrap("stat", err)
	}
	return session.BlobInfo{Key: key, Size: h.Size, ContentType: h.ContentType, SHA256: h.SHA256, SHA1: h.SHA1, ModTime: st.ModTime()}, nil
}

// Delete implements session.BlobStore. It also removes the session's
// directory once empty.
func (s *Store) Delete(ctx context.Context, key session.BlobKey) error {
	sid, iid, err := key.Parts()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return s.wrap("delete", err)
	}
	if err := s.root.Remove(path.Join(sid, iid)); err != nil && (!errors.Is(err, fs.ErrNotExist) || s.gone()) {
		return s.wrap("delete", err)
	}
	_ = s.root.Remove(sid) // fails harmlessly while other blobs or temp files remain
	return nil
}

// List implements session.BlobLister. It skips anything that is not a blob
// and removes temporary files older than DefaultTempMaxAge, which only a
// crashed Put leaves behind.
func (s *Store) List(ctx context.Context, fn func(session.BlobInfo) error) error {
	if s.gone() {
		// A removed directory reads as empty: say so rather than list nothing.
		return s.wrap("list", fs.ErrNotExist)
	}
	dirs, err := fs.ReadDir(s.root.FS(), ".")
	if err != nil {
		return s.wrap("list", err)
	}
	for _, d := range dirs {
		if !d.IsDir() || !session.ValidID(d.Name()) {
			continue
		}
		files, err := fs.ReadDir(s.root.FS(), d.Name())
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return s.wrap("list", err)
		}
		for _, f := range files {
			if err := ctx.Err(); err != nil {
				return s.wrap("list", err)
			}
			name := f.Name()
			if strings.HasPrefix(name, tmpPrefix) {
				s.removeStaleTemp(path.Join(d.Name(), name), f)
				continue
			}
			key := session.BlobKey(d.Name() + "/" + name)
			if key.Validate() != nil {
				continue
			}
			info, err := s.Stat(ctx, key)
			if errors.Is(err, session.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Store) removeStaleTemp(name string, d fs.DirEntry) {
	info, err := d.Info()
	if err == nil && s.now().Sub(info.ModTime()) > DefaultTempMaxAge {
		_ = s.root.Remove(name)
	}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

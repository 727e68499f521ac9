package memory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/clinicpro/clinicalimages/session"
)

// BlobStore is an in-memory session.BlobStore and session.BlobLister. It
// holds every body in memory, so it suits one instance with small images
// and tests. It is safe for concurrent use. The zero value is not usable;
// call NewBlobStore.
type BlobStore struct {
	cfg config

	mu    sync.RWMutex
	blobs map[session.BlobKey]blob
}

type blob struct {
	info session.BlobInfo
	data []byte
}

var (
	_ session.BlobStore  = (*BlobStore)(nil)
	_ session.BlobLister = (*BlobStore)(nil)
)

// NewBlobStore returns an empty BlobStore. Option: WithClock (for ModTime).
func NewBlobStore(opts ...Option) (*BlobStore, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return &BlobStore{cfg: c, blobs: map[session.BlobKey]blob{}}, nil
}

// Put implements session.BlobStore. The body is read fully before it
// replaces the previous blob, so a failed Put leaves the old one.
func (b *BlobStore) Put(ctx context.Context, key session.BlobKey, r io.Reader, size int64, contentType string) (session.BlobInfo, error) {
	if err := key.Validate(); err != nil {
		return session.BlobInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return session.BlobInfo{}, fmt.Errorf("memory: put: %w", err)
	}
	d := session.NewDigestReader(r, size)
	var buf bytes.Buffer
	if size > 0 {
		buf.Grow(int(min(size, 32<<20))) // a declared size is a hint, not a promise
	}
	if _, err := io.Copy(&buf, ctxReader{ctx, d}); err != nil {
		return session.BlobInfo{}, fmt.Errorf("memory: put: %w", err)
	}
	info := d.Info(key, contentType)
	info.ModTime = b.cfg.now()
	b.mu.Lock()
	b.blobs[key] = blob{info: info, data: buf.Bytes()}
	b.mu.Unlock()
	return info, nil
}

// Open implements session.BlobStore.
func (b *BlobStore) Open(ctx context.Context, key session.BlobKey) (io.ReadCloser, error) {
	bl, err := b.get(ctx, key)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(bl.data)), nil
}

// Stat implements session.BlobStore.
func (b *BlobStore) Stat(ctx context.Context, key session.BlobKey) (session.BlobInfo, error) {
	bl, err := b.get(ctx, key)
	return bl.info, err
}

func (b *BlobStore) get(ctx context.Context, key session.BlobKey) (blob, error) {
	if err := key.Validate(); err != nil {
		return blob{}, err
	}
	if err := ctx.Err(); err != nil {
		return blob{}, fmt.Errorf("memory: %w", err)
	}
	b.mu.RLock()
	bl, ok := b.blobs[key]
	b.mu.RUnlock()
	if !ok {
		return blob{}, fmt.Errorf("%w: blob", session.ErrNotFound)
	}
	return bl, nil
}

// Delete implements session.BlobStore.
func (b *BlobStore) Delete(ctx context.Context, key session.BlobKey) error {
	if err := key.Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: delete: %w", err)
	}
	b.mu.Lock()
	delete(b.blobs, key)
	b.mu.Unlock()
	return nil
}

// List implements session.BlobLister. fn is called without the store's
// lock held, so it may call Delete.
func (b *BlobStore) List(ctx context.Context, fn func(session.BlobInfo) error) error {
	b.mu.RLock()
	infos := make([]session.BlobInfo, 0, len(b.blobs))
	for _, bl := range b.blobs {
		infos = append(infos, bl.info)
	}
	b.mu.RUnlock()
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memory: list: %w", err)
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// ctxReader stops a copy when ctx is done.
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

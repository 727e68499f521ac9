package session

import (
	"crypto/sha1" //nolint:gosec // SHA-1 is what FHIR Attachment.hash carries; it is not used for security.
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
)

// DigestReader passes a blob body through while computing its SHA-256 and
// SHA-1 digests and counting its bytes. When a size was declared it fails
// the read with ErrSizeMismatch as soon as the body proves longer, or at EOF
// when it proves shorter, so a BlobStore never commits a wrong body.
// BlobStore implementations (ours and users') wrap the Put reader in one.
// A DigestReader is not safe for concurrent use.
type DigestReader struct {
	r      io.Reader
	size   int64
	n      int64
	sha256 hash.Hash
	sha1   hash.Hash
	done   bool
}

// NewDigestReader wraps r; size is the declared length, or 0 if unknown.
func NewDigestReader(r io.Reader, size int64) *DigestReader {
	return &DigestReader{r: r, size: size, sha256: sha256.New(), sha1: sha1.New()} //nolint:gosec // see import
}

// Read implements io.Reader.
func (d *DigestReader) Read(p []byte) (int, error) {
	if d.size > 0 && int64(len(p)) > d.size-d.n+1 {
		// Read at most one byte past the declared size: enough to detect a
		// longer body without buffering it.
		p = p[:d.size-d.n+1]
	}
	n, err := d.r.Read(p)
	d.n += int64(n)
	if d.size > 0 && d.n > d.size {
		return 0, fmt.Errorf("%w: body is longer than the declared %d bytes", ErrSizeMismatch, d.size)
	}
	d.sha256.Write(p[:n])
	d.sha1.Write(p[:n])
	if err == io.EOF {
		if d.size > 0 && d.n != d.size {
			return n, fmt.Errorf("%w: body has %d bytes, declared %d", ErrSizeMismatch, d.n, d.size)
		}
		d.done = true
	}
	return n, err
}

// Size returns the number of bytes read so far.
func (d *DigestReader) Size() int64 { return d.n }

// Done reports whether the body was read to EOF with the declared size.
func (d *DigestReader) Done() bool { return d.done }

// Info returns a BlobInfo with key, content type, size and digests of the
// bytes read so far. Call it after the body has been read to EOF.
func (d *DigestReader) Info(key BlobKey, contentType string) BlobInfo {
	return BlobInfo{
		Key:         key,
		Size:        d.n,
		ContentType: contentType,
		SHA256:      hex.EncodeToString(d.sha256.Sum(nil)),
		SHA1:        hex.EncodeToString(d.sha1.Sum(nil)),
	}
}

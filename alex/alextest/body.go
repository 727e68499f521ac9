package alextest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"strconv"

	"github.com/clinicpro/clinicalimages/internal/fhirjson"
)

// Request bodies carry images as base64 strings. Decoding a 10 MB image with
// encoding/json would hold the JSON (13 MB), the Go string (13 MB) and the
// decoded bytes at once. captureReader avoids both base64 copies: it passes the
// JSON through, but streams the value of every "data" member holding a string
// through a base64 decoder into a buffer of its own and leaves a short
// placeholder in the JSON instead. The decoded bytes, which the simulator keeps
// anyway, are the only full copy.

// blobPrefix starts every placeholder. It contains '@' and ':', which base64
// never produces, so a placeholder cannot be mistaken for real content.
const blobPrefix = "@@alextest:blob:"

func placeholder(key string) string { return blobPrefix + key + "@@" }

// blob is one captured "data" value.
type blob struct {
	buf     bytes.Buffer // decoded bytes
	pending []byte       // base64 characters not yet decoded (fewer than a chunk)
	padded  bool         // a '=' has been seen: only more '=' may follow
	invalid bool         // not valid standard base64, or an unsupported escape
	empty   bool         // the JSON string was ""
}

// flush decodes the pending characters. final is set at the closing quote:
// then the pending length must be a multiple of 4.
func (b *blob) flush(final bool) {
	if b.invalid {
		b.pending = b.pending[:0]
		return
	}
	n := len(b.pending)
	if !final {
		n -= n % 4
	} else if n%4 != 0 {
		b.invalid = true
		return
	}
	if n == 0 {
		return
	}
	// Decode straight into the buffer's spare capacity: no scratch copy.
	need := base64.StdEncoding.DecodedLen(n)
	b.buf.Grow(need)
	dst := b.buf.AvailableBuffer()[:need]
	m, err := base64.StdEncoding.Decode(dst, b.pending[:n])
	if err != nil {
		b.invalid = true
		b.pending = b.pending[:0]
		return
	}
	b.buf.Write(dst[:m])
	b.pending = append(b.pending[:0], b.pending[n:]...)
}

// addRun adds base64 characters that contain no padding or line breaks.
func (b *blob) addRun(run []byte) {
	for len(run) > 0 && !b.invalid {
		k := min(len(run), 32<<10-len(b.pending))
		b.pending = append(b.pending, run[:k]...)
		run = run[k:]
		if len(b.pending) >= 32<<10 {
			b.flush(false)
		}
	}
}

func (b *blob) add(c byte) {
	if b.invalid {
		return
	}
	switch {
	case c == '\n' || c == '\r':
		return // tolerated by every base64 decoder, and by encoding/base64
	case c == '=':
		b.padded = true
	case b.padded:
		b.invalid = true // data after padding
		return
	}
	b.pending = append(b.pending, c)
	if len(b.pending) >= 32<<10 {
		b.flush(false)
	}
}

// captureReader is the filter described above: internal/fhirjson's data
// filter with a sink that decodes each "data" value into a blob and leaves a
// placeholder. Placeholders are numbered in the order the values appear ("0",
// "1", ...); blobs holds them in that order. A member name spelt with escapes
// is not recognised as "data".
type captureReader struct {
	io.Reader
	blobs    []*blob
	sizeHint int64 // request body length, to size the first blob's buffer
}

// newCaptureReader filters r. sizeHint is the body's length if known (else
// 0 or -1): the first captured value, usually the only one, is given a
// buffer of about its decoded size up front instead of growing by doubling.
func newCaptureReader(r io.Reader, sizeHint int64) *captureReader {
	c := &captureReader{sizeHint: sizeHint}
	c.Reader = fhirjson.NewDataFilter(r, c)
	return c
}

// Start implements fhirjson.DataSink.
func (c *captureReader) Start(int) {
	b := &blob{empty: true}
	if len(c.blobs) == 0 && c.sizeHint > 0 && c.sizeHint <= MaxBodyBytes {
		b.buf.Grow(int(c.sizeHint / 4 * 3))
	}
	c.blobs = append(c.blobs, b)
}

// Data implements fhirjson.DataSink.
func (c *captureReader) Data(p []byte) {
	b := c.blobs[len(c.blobs)-1]
	b.empty = false
	if !b.padded && !bytes.ContainsAny(p, "=\r\n") {
		b.addRun(p)
		return
	}
	for _, ch := range p {
		b.add(ch)
	}
}

// Unicode implements fhirjson.DataSink: base64 never needs \uXXXX.
func (c *captureReader) Unicode() {
	b := c.blobs[len(c.blobs)-1]
	b.empty, b.invalid = false, true
}

// End implements fhirjson.DataSink.
func (c *captureReader) End(n int) string {
	c.blobs[n].flush(true)
	return placeholder(strconv.Itoa(n))
}

// capturedData resolves a decoded Attachment.data value: the placeholder left
// by the captureReader gives the captured blob. ok is false when data is
// absent; valid is false when it was not valid base64 (or empty).
func (c *captureReader) capturedData(data *string) (b []byte, present, valid bool) {
	if data == nil {
		return nil, false, false
	}
	s := *data
	if len(s) < len(blobPrefix)+2 || s[:len(blobPrefix)] != blobPrefix {
		return nil, true, false
	}
	i, err := strconv.Atoi(s[len(blobPrefix) : len(s)-2])
	if err != nil || i < 0 || i >= len(c.blobs) {
		return nil, true, false
	}
	bl := c.blobs[i]
	if bl.empty {
		return nil, false, false
	}
	if bl.invalid {
		return nil, true, false
	}
	return bl.buf.Bytes(), true, true
}

// writeWithBlobs writes body to w, replacing every quoted placeholder whose key
// is in blobs with the standard base64 of those bytes, streamed in chunks so
// that no base64 copy of a stored image is ever held whole.
func writeWithBlobs(w io.Writer, body []byte, blobs map[string][]byte) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	for {
		i := bytes.Index(body, []byte(blobPrefix))
		if i < 0 {
			break
		}
		rest := body[i+len(blobPrefix):]
		j := bytes.Index(rest, []byte("@@"))
		if j < 0 {
			break
		}
		data, ok := blobs[string(rest[:j])]
		if !ok {
			if _, err := bw.Write(body[:i+len(blobPrefix)]); err != nil {
				return err
			}
			body = rest
			continue
		}
		if _, err := bw.Write(body[:i]); err != nil {
			return err
		}
		enc := base64.NewEncoder(base64.StdEncoding, bw)
		if _, err := enc.Write(data); err != nil {
			return err
		}
		if err := enc.Close(); err != nil {
			return err
		}
		body = rest[j+2:]
	}
	if _, err := bw.Write(body); err != nil {
		return err
	}
	return bw.Flush()
}

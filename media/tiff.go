package media

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// The TIFF is written by hand, as libtiff writes JPEG-compressed TIFF
// ("new-style" JPEG, TIFF Technical Note 2, Compression = 7): one IFD per
// page, each with a single strip that holds the page's whole JPEG
// interchange stream (SOI to EOI, tables included, so no JPEGTables tag),
// byte for byte as it came in. Nothing is decoded or re-encoded. The IFD is
// written before its strip, so it must know the strip's length: a page with
// a Size streams through; a page without one is held in memory (the JPEG
// only, up to the builder's size limit) until its length is known.

// DocumentFormat is how [Builder.BuildDocument] wraps the photos of an
// Inbox Scan, the only two formats ALEX's Inbox Scan accepts.
type DocumentFormat int

const (
	// DocumentPDF wraps each photo in an A4 page with a caption (title,
	// site with its side, view, time taken, note): application/pdf. It is
	// the zero value, so a DocumentInput that names no format keeps the PDF
	// this package has always written, and because the caption makes each
	// photo's site and side readable on the page itself in any viewer, for
	// one photo or many.
	DocumentPDF DocumentFormat = iota
	// DocumentTIFF wraps the photos' JPEG bytes unchanged in a TIFF (JPEG
	// compression, one page per photo): image/tiff. This is what ClinicPro's
	// production path commits to ALEX (JPEG inside TIFF, author = the
	// launching GP), which Evolution shows inline in that GP's Inbox and
	// offers to HealthLink/ERMS referrals; choose it for ALEX unless the
	// printed caption matters more. The TIFF carries no drawn caption: the
	// attachment title names site and side for a single photo, and each
	// page's caption is kept in its ImageDescription tag.
	DocumentTIFF
)

// ContentType returns the attachment content type of the format:
// application/pdf or image/tiff.
func (f DocumentFormat) ContentType() string {
	if f == DocumentTIFF {
		return "image/tiff"
	}
	return "application/pdf"
}

// String names the format ("pdf", "tiff").
func (f DocumentFormat) String() string {
	switch f {
	case DocumentPDF:
		return "pdf"
	case DocumentTIFF:
		return "tiff"
	}
	return fmt.Sprintf("DocumentFormat(%d)", int(f))
}

func (f DocumentFormat) valid() bool { return f == DocumentPDF || f == DocumentTIFF }

// ErrJPEGNotWrappable is returned when a page is a JPEG that a TIFF cannot
// carry unchanged: progressive, lossless, arithmetic-coded or hierarchical
// coding, more than 8 bits a sample, four components (CMYK), or chroma
// sampling TIFF cannot describe (vertical finer than horizontal). Nothing
// is wrong with the photo: build the document as [DocumentPDF] instead, or
// re-encode the photo (the compress package writes baseline JPEGs that
// always fit).
var ErrJPEGNotWrappable = errors.New("media: JPEG cannot be wrapped in a TIFF unchanged")

// errTIFFTooBig reports a page without a Size whose JPEG alone exceeds the
// builder's size limit; BuildDocument turns it into a size problem.
var errTIFFTooBig = errors.New("media: JPEG larger than the size limit")

// maxJPEGHeader bounds the markers read before the frame header (APPn,
// DQT, DHT...); normalised photos carry a few hundred bytes.
const maxJPEGHeader = 1 << 20

// tiffPage is one JPEG to put on its own TIFF page.
type tiffPage struct {
	jpeg        io.Reader
	size        int64 // the JPEG's length in bytes; 0 when unknown
	orientation int   // EXIF/TIFF 1-8, 0 meaning 1
	description string
	created     time.Time // zero leaves DateTime out
}

// jpegFrame is what a TIFF needs to know about a JPEG: its frame header and
// its colour transform.
type jpegFrame struct {
	marker         byte // SOFn
	precision      int
	width, height  int
	ids            []byte
	h, v           []int // sampling factors per component
	adobeTransform int   // APP14 Adobe transform; -1 when absent
}

// readJPEGFrame reads r up to the end of the JPEG's frame header (SOFn) and
// returns the frame and every byte read. It fails with ErrNotJPEG when r
// does not start like a JPEG.
func readJPEGFrame(r *bufio.Reader) (jpegFrame, []byte, error) {
	f := jpegFrame{adobeTransform: -1}
	var head bytes.Buffer
	read := func(n int) ([]byte, error) {
		if head.Len()+n > maxJPEGHeader {
			return nil, fmt.Errorf("%w: more than %d bytes before the frame header", ErrNotJPEG, maxJPEGHeader)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: ends before its frame header", ErrNotJPEG)
			}
			return nil, err
		}
		head.Write(b)
		return b, nil
	}
	soi, err := read(2)
	if err != nil {
		return f, nil, err
	}
	if soi[0] != 0xFF || soi[1] != 0xD8 {
		return f, nil, fmt.Errorf("%w: no start-of-image marker", ErrNotJPEG)
	}
	for {
		b, err := read(1)
		if err != nil {
			return f, nil, err
		}
		if b[0] != 0xFF {
			return f, nil, fmt.Errorf("%w: bytes between markers", ErrNotJPEG)
		}
		m := byte(0xFF)
		for m == 0xFF { // fill bytes
			b, err = read(1)
			if err != nil {
				return f, nil, err
			}
			m = b[0]
		}
		switch {
		case m == 0x01 || (m >= 0xD0 && m <= 0xD7): // standalone markers
			continue
		case m == 0x00 || m == 0xD8 || m == 0xD9 || m == 0xDA:
			return f, nil, fmt.Errorf("%w: marker 0x%02X before the frame header", ErrNotJPEG, m)
		}
		lb, err := read(2)
		if err != nil {
			return f, nil, err
		}
		n := int(binary.BigEndian.Uint16(lb))
		if n < 2 {
			return f, nil, fmt.Errorf("%w: bad segment length", ErrNotJPEG)
		}
		p, err := read(n - 2)
		if err != nil {
			return f, nil, err
		}
		if m == 0xEE && len(p) >= 12 && string(p[:5]) == "Adobe" {
			f.adobeTransform = int(p[11])
		}
		if m < 0xC0 || m > 0xCF || m == 0xC4 || m == 0xC8 || m == 0xCC {
			continue // not a frame header
		}
		if len(p) < 6 || len(p) < 6+3*int(p[5]) || p[5] == 0 {
			return f, nil, fmt.Errorf("%w: short frame header", ErrNotJPEG)
		}
		f.marker = m
		f.precision = int(p[0])
		f.height = int(binary.BigEndian.Uint16(p[1:3]))
		f.width = int(binary.BigEndian.Uint16(p[3:5]))
		for i := range int(p[5]) {
			c := p[6+3*i:]
			f.ids = append(f.ids, c[0])
			f.h = append(f.h, int(c[1]>>4))
			f.v = append(f.v, int(c[1]&0x0F))
		}
		return f, head.Bytes(), nil
	}
}

// tiffLayout is how a TIFF describes the JPEG's pixels.
type tiffLayout struct {
	photometric uint16
	samples     int
	subH, subV  int // YCbCrSubsampling; 0 when not YCbCr
}

// layout checks that a TIFF can carry the frame unchanged and says how.
func (f jpegFrame) layout() (tiffLayout, error) {
	switch f.marker {
	case 0xC0, 0xC1: // baseline, extended sequential (Huffman)
	default:
		return tiffLayout{}, fmt.Errorf("%w: coding process SOF%d (only sequential Huffman JPEG)", ErrJPEGNotWrappable, f.marker-0xC0)
	}
	if f.precision != 8 {
		return tiffLayout{}, fmt.Errorf("%w: %d-bit samples", ErrJPEGNotWrappable, f.precision)
	}
	if f.width == 0 || f.height == 0 {
		return tiffLayout{}, fmt.Errorf("%w: size not in the frame header", ErrJPEGNotWrappable)
	}
	for i := range f.h {
		if f.h[i] < 1 || f.h[i] > 4 || f.v[i] < 1 || f.v[i] > 4 {
			return tiffLayout{}, fmt.Errorf("%w: bad sampling factors", ErrNotJPEG)
		}
	}
	switch len(f.ids) {
	case 1:
		return tiffLayout{photometric: 1, samples: 1}, nil
	case 3:
	default:
		return tiffLayout{}, fmt.Errorf("%w: %d colour components", ErrJPEGNotWrappable, len(f.ids))
	}
	rgb := f.adobeTransform == 0 || (f.adobeTransform < 0 && string(f.ids) == "RGB")
	if f.h[1] != f.h[2] || f.v[1] != f.v[2] || f.h[0]%f.h[1] != 0 || f.v[0]%f.v[1] != 0 {
		return tiffLayout{}, fmt.Errorf("%w: chroma sampling", ErrJPEGNotWrappable)
	}
	sh, sv := f.h[0]/f.h[1], f.v[0]/f.v[1]
	if rgb {
		if sh != 1 || sv != 1 {
			return tiffLayout{}, fmt.Errorf("%w: subsampled RGB", ErrJPEGNotWrappable)
		}
		return tiffLayout{photometric: 2, samples: 3}, nil
	}
	if sh == 3 || sv == 3 || sv > sh {
		return tiffLayout{}, fmt.Errorf("%w: chroma sampling %dx%d", ErrJPEGNotWrappable, sh, sv)
	}
	return tiffLayout{photometric: 6, samples: 3, subH: sh, subV: sv}, nil
}

// TIFF field types.
const (
	tiffASCII    = 2
	tiffShort    = 3
	tiffLong     = 4
	tiffRational = 5
)

type tiffEntry struct {
	tag, typ uint16
	count    uint32
	data     []byte // little-endian value bytes
}

func shorts(v ...int) tiffEntry {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(x))
	}
	return tiffEntry{typ: tiffShort, count: uint32(len(v)), data: b}
}

func long(v uint32) tiffEntry {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, v)
	return tiffEntry{typ: tiffLong, count: 1, data: b}
}

func rationals(v ...uint32) tiffEntry { // numerator/denominator pairs
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return tiffEntry{typ: tiffRational, count: uint32(len(v) / 2), data: b}
}

func ascii(s string) tiffEntry {
	b := append([]byte(s), 0)
	return tiffEntry{typ: tiffASCII, count: uint32(len(b)), data: b}
}

func tagged(tag uint16, e tiffEntry) tiffEntry { e.tag = tag; return e }

// tiffWriter counts what it writes.
type tiffWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (t *tiffWriter) write(b []byte) {
	if t.err != nil {
		return
	}
	n, err := t.w.Write(b)
	t.n += int64(n)
	t.err = err
}

// writeTIFF writes a little-endian TIFF with one page per JPEG to w and
// returns the bytes written. A page without a size is read into memory, up
// to maxBuffer bytes (errTIFFTooBig beyond).
func writeTIFF(w io.Writer, pages []tiffPage, maxBuffer int64) (int64, error) {
	t := &tiffWriter{w: w}
	t.write([]byte{'I', 'I', 42, 0, 8, 0, 0, 0}) // first IFD at offset 8
	for i, pg := range pages {
		if err := t.page(pg, i, len(pages), maxBuffer); err != nil {
			return t.n, fmt.Errorf("page %d: %w", i+1, err)
		}
	}
	return t.n, t.err
}

func (t *tiffWriter) page(pg tiffPage, index, count int, maxBuffer int64) error {
	br := bufio.NewReader(pg.jpeg)
	frame, head, err := readJPEGFrame(br)
	if err != nil {
		return err
	}
	lay, err := frame.layout()
	if err != nil {
		return err
	}
	var body io.Reader = br
	length := pg.size
	if length <= 0 {
		rest, err := io.ReadAll(io.LimitReader(br, maxBuffer-int64(len(head))+1))
		if err != nil {
			return err
		}
		length = int64(len(head)) + int64(len(rest))
		if length > maxBuffer {
			return errTIFFTooBig
		}
		body = bytes.NewReader(rest)
	} else if length < int64(len(head))+2 {
		return fmt.Errorf("%w: Size %d is shorter than the JPEG's headers", ErrNotJPEG, length)
	}

	bps := make([]int, lay.samples)
	for i := range bps {
		bps[i] = 8
	}
	entries := []tiffEntry{}
	if count > 1 {
		entries = append(entries, tagged(254, long(2))) // NewSubfileType: a page of a multi-page document
	}
	entries = append(entries,
		tagged(256, long(uint32(frame.width))),
		tagged(257, long(uint32(frame.height))),
		tagged(258, shorts(bps...)),
		tagged(259, shorts(7)), // Compression: JPEG (Technical Note 2)
		tagged(262, shorts(int(lay.photometric))),
	)
	if d := asciiText(pg.description); d != "" {
		entries = append(entries, tagged(270, ascii(d)))
	}
	entries = append(entries, tagged(273, long(0))) // StripOffsets, set below
	if pg.orientation > 1 {
		entries = append(entries, tagged(274, shorts(pg.orientation)))
	}
	entries = append(entries,
		tagged(277, shorts(lay.samples)),
		tagged(278, long(uint32(frame.height))), // RowsPerStrip: one strip
		tagged(279, long(0)),                    // StripByteCounts, set below
		tagged(282, rationals(72, 1)),
		tagged(283, rationals(72, 1)),
		tagged(284, shorts(1)), // PlanarConfiguration: chunky
		tagged(296, shorts(2)), // ResolutionUnit: inch
		tagged(297, shorts(index, count)),
		tagged(305, ascii("clinicalimages")),
	)
	if !pg.created.IsZero() {
		entries = append(entries, tagged(306, ascii(pg.created.Format("2006:01:02 15:04:05"))))
	}
	if lay.photometric == 6 {
		entries = append(entries,
			tagged(530, shorts(lay.subH, lay.subV)),
			tagged(531, shorts(1)), // YCbCrPositioning: centred, as JFIF
			tagged(532, rationals(0, 1, 255, 1, 128, 1, 255, 1, 128, 1, 255, 1)),
		)
	}

	// Layout: IFD, its out-of-line values, the JPEG, a pad byte to keep the
	// next IFD on a word boundary.
	ifdAt := t.n
	pos := ifdAt + 2 + 12*int64(len(entries)) + 4
	offsets := make([]int64, len(entries))
	for i, e := range entries {
		if len(e.data) > 4 {
			offsets[i] = pos
			pos += int64(len(e.data)) + int64(len(e.data)%2)
		}
	}
	jpegAt := pos
	end := jpegAt + length + length%2
	if end > math.MaxUint32 {
		return errors.New("TIFF would pass 4 GiB")
	}
	for i := range entries {
		switch entries[i].tag {
		case 273:
			entries[i].data = long(uint32(jpegAt)).data
		case 279:
			entries[i].data = long(uint32(length)).data
		}
	}
	next := uint32(0)
	if index < count-1 {
		next = uint32(end)
	}

	ifd := make([]byte, 0, pos-ifdAt)
	ifd = binary.LittleEndian.AppendUint16(ifd, uint16(len(entries)))
	for i, e := range entries {
		ifd = binary.LittleEndian.AppendUint16(ifd, e.tag)
		ifd = binary.LittleEndian.AppendUint16(ifd, e.typ)
		ifd = binary.LittleEndian.AppendUint32(ifd, e.count)
		if len(e.data) > 4 {
			ifd = binary.LittleEndian.AppendUint32(ifd, uint32(offsets[i]))
		} else {
			var v [4]byte
			copy(v[:], e.data)
			ifd = append(ifd, v[:]...)
		}
	}
	ifd = binary.LittleEndian.AppendUint32(ifd, next)
	for _, e := range entries {
		if len(e.data) > 4 {
			ifd = append(ifd, e.data...)
			if len(e.data)%2 == 1 {
				ifd = append(ifd, 0)
			}
		}
	}
	t.write(ifd)

	// The JPEG, unchanged; its last two bytes must be EOI.
	t.write(head)
	tail := &lastTwo{}
	tail.Write(head)
	if t.err == nil {
		n, err := io.Copy(io.MultiWriter(t.w, tail), io.LimitReader(body, length-int64(len(head))))
		t.n += n
		t.err = err
		if err == nil && int64(len(head))+n != length {
			return fmt.Errorf("%w: %d bytes, not the %d its Size said", ErrNotJPEG, int64(len(head))+n, length)
		}
	}
	if t.err != nil {
		return t.err
	}
	if pg.size > 0 {
		var one [1]byte
		if n, _ := body.Read(one[:]); n > 0 {
			return fmt.Errorf("%w: longer than its Size of %d bytes", ErrNotJPEG, length)
		}
	}
	if tail.b != [2]byte{0xFF, 0xD9} {
		return fmt.Errorf("%w: does not end with an end-of-image marker", ErrNotJPEG)
	}
	if length%2 == 1 {
		t.write([]byte{0})
	}
	return t.err
}

// lastTwo remembers the last two bytes written to it.
type lastTwo struct{ b [2]byte }

func (l *lastTwo) Write(p []byte) (int, error) {
	switch len(p) {
	case 0:
	case 1:
		l.b = [2]byte{l.b[1], p[0]}
	default:
		l.b = [2]byte{p[len(p)-2], p[len(p)-1]}
	}
	return len(p), nil
}

// asciiText makes s fit a TIFF ASCII field (7-bit): Māori macron vowels
// lose the macron, dashes, quotes and ellipses become their ASCII
// counterparts, line breaks stay, other characters become '?'.
func asciiText(s string) string {
	var b strings.Builder
	for _, r := range s {
		r = unMacron(r)
		switch {
		case r == '\n' || (r >= 0x20 && r < 0x7f):
			b.WriteRune(r)
		case r == '–' || r == '—':
			b.WriteByte('-')
		case r == '‘' || r == '’':
			b.WriteByte('\'')
		case r == '“' || r == '”':
			b.WriteByte('"')
		case r == '…':
			b.WriteString("...")
		case r == '\t' || r == '\r':
			b.WriteByte(' ')
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

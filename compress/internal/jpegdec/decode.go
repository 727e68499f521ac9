// Package jpegdec decodes baseline JPEGs straight to their Y, Cb and Cr
// planes, optionally at 1/2, 1/4 or 1/8 scale in the DCT domain: each 8x8
// block of coefficients becomes a 4x4, 2x2 or 1x1 block of pixels through a
// reduced inverse DCT of its low-frequency corner, so a 12 MP photo headed
// for a 2048 px limit never has its full resolution reconstructed.
//
// It covers what cameras and phones write: 8-bit sequential Huffman JPEGs
// (SOF0, SOF1) with one or three components in a single interleaved scan,
// any sampling factors, restart intervals. Everything else (progressive,
// arithmetic coding, 12-bit, CMYK, RGB-coded, multi-scan sequential) is
// reported as [ErrUnsupported] so that the caller falls back to
// image/jpeg, which handles it at full scale.
//
// Like image/jpeg it never panics on hostile input and refuses truncated
// entropy data rather than filling it with grey.
package jpegdec

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrUnsupported reports a valid JPEG this decoder does not handle; decode
// it with image/jpeg instead.
var ErrUnsupported = errors.New("jpegdec: unsupported JPEG variant")

// FormatError reports malformed or truncated data.
type FormatError string

func (e FormatError) Error() string { return "jpegdec: invalid JPEG: " + string(e) }

// Plane is one decoded component. Pix holds Stride*padded-height bytes;
// only the first W columns of the first H rows are image.
type Plane struct {
	W, H, Stride int
	Pix          []byte
}

// Image is a decoded JPEG: one plane (grey) or three (Y, Cb, Cr), each at
// its own sampled resolution divided by the scale.
type Image struct {
	Width, Height int // full-scale image size, from the frame header
	Scale         int // 1, 2, 4 or 8
	Planes        []Plane
}

// Alloc returns a buffer of exactly w*h bytes; its contents may be dirty,
// the decoder writes every byte.
type Alloc func(w, h int) []byte

type component struct {
	id     byte
	h, v   int // sampling factors
	tq     int // quantisation table
	td, ta int // DC and AC Huffman tables (from the scan)
	pred   int32
	plane  Plane
}

type decoder struct {
	data          []byte
	width, height int
	comps         []component
	quant         [4][64]int32 // zigzag order
	haveQuant     [4]bool
	dc, ac        [4]*huffman
	restart       int
	adobe         bool
	adobeXform    byte
	jfif          bool
	frame         bool
	hmax, vmax    int
}

// Options tune [Decode].
type Options struct {
	// Scale divides the image's size: 1, 2, 4 or 8.
	Scale int
	// Alloc provides the planes' memory (nil: make).
	Alloc Alloc
	// Concurrent runs the inverse DCTs on a second goroutine while the
	// entropy decoding, which is serial, goes on.
	Concurrent bool
}

// Layout is what a [Decode] at one scale allocates, known from the headers
// alone: a caller can budget the memory before decoding.
type Layout struct {
	Width, Height int // full-scale image size, from the frame header
	// Planes describe the planes in component order: W x H of image in
	// a buffer of Stride x Rows bytes, the size asked of Options.Alloc.
	Planes []PlaneLayout
	// CoefBytes is the size of the coefficient buffers Decode holds while
	// decoding (recycled between decodes).
	CoefBytes int

	mcuCols, mcuRows, rowLen, bands int
}

// PlaneLayout is one plane's size in a [Layout].
type PlaneLayout struct{ W, H, Stride, Rows int }

// Probe reads data's headers up to the first scan and returns what Decode
// with opts.Scale and opts.Concurrent would allocate. It returns
// ErrUnsupported (or a FormatError) exactly when Decode would before
// decoding any entropy-coded data.
func Probe(data []byte, opts Options) (Layout, error) {
	switch opts.Scale {
	case 1, 2, 4, 8:
	default:
		return Layout{}, fmt.Errorf("jpegdec: scale %d is not 1, 2, 4 or 8", opts.Scale)
	}
	d, _, err := parseHeaders(data)
	if err != nil {
		return Layout{}, err
	}
	return d.layout(opts.Scale, opts.Concurrent), nil
}

// Decode decodes data as opts say.
func Decode(data []byte, opts Options) (*Image, error) {
	scale, alloc := opts.Scale, opts.Alloc
	switch scale {
	case 1, 2, 4, 8:
	default:
		return nil, fmt.Errorf("jpegdec: scale %d is not 1, 2, 4 or 8", scale)
	}
	if alloc == nil {
		alloc = func(w, h int) []byte { return make([]byte, w*h) }
	}
	d, pos, err := parseHeaders(data)
	if err != nil {
		return nil, err
	}
	if err := d.scan(pos, scale, alloc, opts.Concurrent); err != nil {
		return nil, err
	}
	img := &Image{Width: d.width, Height: d.height, Scale: scale}
	for _, c := range d.comps {
		img.Planes = append(img.Planes, c.plane)
	}
	return img, nil
}

// parseHeaders reads the markers up to and including the first scan header
// and returns the decoder ready to scan and the entropy data's offset. It
// returns ErrUnsupported for exactly the inputs Decode refuses as such.
func parseHeaders(data []byte) (*decoder, int, error) {
	d := &decoder{data: data}
	if len(data) < 2 || data[0] != 0xFF || data[1] != 0xD8 {
		return nil, 0, FormatError("missing SOI marker")
	}
	pos := 2
	for {
		// Find the next marker, skipping fill bytes.
		if pos >= len(data) {
			return nil, 0, FormatError("no image data")
		}
		if data[pos] != 0xFF {
			return nil, 0, FormatError("expected a marker")
		}
		for pos < len(data) && data[pos] == 0xFF {
			pos++
		}
		if pos >= len(data) {
			return nil, 0, FormatError("no image data")
		}
		marker := data[pos]
		pos++
		switch {
		case marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7):
			continue // no length
		case marker == 0xD9:
			return nil, 0, FormatError("no image data before EOI")
		}
		if pos+2 > len(data) {
			return nil, 0, FormatError("truncated segment")
		}
		n := int(binary.BigEndian.Uint16(data[pos:]))
		if n < 2 || pos+n > len(data) {
			return nil, 0, FormatError("truncated segment")
		}
		seg := data[pos+2 : pos+n]
		pos += n
		var err error
		switch marker {
		case 0xC0, 0xC1:
			err = d.parseSOF(seg)
		case 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF:
			return nil, 0, ErrUnsupported
		case 0xC4:
			err = d.parseDHT(seg)
		case 0xDB:
			err = d.parseDQT(seg)
		case 0xDD:
			if len(seg) != 2 {
				return nil, 0, FormatError("bad DRI length")
			}
			d.restart = int(binary.BigEndian.Uint16(seg))
		case 0xE0:
			if len(seg) >= 5 && string(seg[:5]) == "JFIF\x00" {
				d.jfif = true
			}
		case 0xEE:
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				d.adobe, d.adobeXform = true, seg[11]
			}
		case 0xDA:
			if err := d.parseSOS(seg); err != nil {
				return nil, 0, err
			}
			return d, pos, nil
		}
		if err != nil {
			return nil, 0, err
		}
	}
}

func (d *decoder) parseSOF(seg []byte) error {
	if d.frame {
		return FormatError("two frame headers")
	}
	d.frame = true
	if len(seg) < 6 {
		return FormatError("short SOF")
	}
	if seg[0] != 8 {
		return ErrUnsupported // 12-bit
	}
	d.height = int(binary.BigEndian.Uint16(seg[1:]))
	d.width = int(binary.BigEndian.Uint16(seg[3:]))
	nf := int(seg[5])
	if d.height == 0 {
		return ErrUnsupported // height from a DNL marker
	}
	if d.width == 0 {
		return FormatError("zero width")
	}
	if nf != 1 && nf != 3 {
		return ErrUnsupported // CMYK, YCCK, two components
	}
	if len(seg) != 6+3*nf {
		return FormatError("bad SOF length")
	}
	d.comps = make([]component, nf)
	for i := range d.comps {
		c := &d.comps[i]
		b := seg[6+3*i:]
		c.id, c.h, c.v, c.tq = b[0], int(b[1]>>4), int(b[1]&15), int(b[2])
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3 {
			return FormatError("bad component parameters")
		}
		for j := range i {
			if d.comps[j].id == c.id {
				return FormatError("repeated component id")
			}
		}
	}
	if nf == 1 {
		d.comps[0].h, d.comps[0].v = 1, 1 // a lone component is never subsampled
	} else {
		y, cb, cr := d.comps[0], d.comps[1], d.comps[2]
		if cb.h != cr.h || cb.v != cr.v || y.h < cb.h || y.v < cb.v {
			return ErrUnsupported // chroma sampled unlike the usual layouts
		}
	}
	for _, c := range d.comps {
		d.hmax, d.vmax = max(d.hmax, c.h), max(d.vmax, c.v)
	}
	return nil
}

func (d *decoder) parseDQT(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, int(seg[0]&15)
		if pq > 1 || tq > 3 {
			return FormatError("bad DQT")
		}
		seg = seg[1:]
		q := &d.quant[tq]
		if pq == 0 {
			if len(seg) < 64 {
				return FormatError("short DQT")
			}
			for k := range 64 {
				q[k] = int32(seg[k])
			}
			seg = seg[64:]
		} else {
			if len(seg) < 128 {
				return FormatError("short DQT")
			}
			for k := range 64 {
				q[k] = int32(binary.BigEndian.Uint16(seg[2*k:]))
			}
			seg = seg[128:]
		}
		d.haveQuant[tq] = true
	}
	return nil
}

func (d *decoder) parseDHT(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return FormatError("short DHT")
		}
		tc, th := seg[0]>>4, int(seg[0]&15)
		if tc > 1 || th > 3 {
			return FormatError("bad DHT class or index")
		}
		var counts [16]int
		total := 0
		for i := range 16 {
			counts[i] = int(seg[1+i])
			total += counts[i]
		}
		if total == 0 || total > 256 || len(seg) < 17+total {
			return FormatError("bad DHT length")
		}
		h, err := newHuffman(counts, seg[17:17+total], tc == 1)
		if err != nil {
			return err
		}
		if tc == 0 {
			d.dc[th] = h
		} else {
			d.ac[th] = h
		}
		seg = seg[17+total:]
	}
	return nil
}

func (d *decoder) parseSOS(seg []byte) error {
	if !d.frame {
		return FormatError("scan before frame header")
	}
	if len(seg) < 1 {
		return FormatError("short SOS")
	}
	ns := int(seg[0])
	if len(seg) != 4+2*ns {
		return FormatError("bad SOS length")
	}
	if ns != len(d.comps) {
		return ErrUnsupported // components in separate scans
	}
	if c := d.comps; len(c) == 3 && (d.adobe && d.adobeXform == 0 || !d.jfif && !d.adobe && c[0].id == 'R' && c[1].id == 'G' && c[2].id == 'B') {
		return ErrUnsupported // RGB-coded (the Adobe segment may follow the frame header)
	}
	for i := range ns {
		id, t := seg[1+2*i], seg[2+2*i]
		c := &d.comps[i]
		if c.id != id {
			return ErrUnsupported // scan order differs from the frame's
		}
		c.td, c.ta = int(t>>4), int(t&15)
		if c.td > 3 || c.ta > 3 || d.dc[c.td] == nil || d.ac[c.ta] == nil {
			return FormatError("scan uses a missing Huffman table")
		}
		if !d.haveQuant[c.tq] {
			return FormatError("component uses a missing quantisation table")
		}
	}
	ss, se, a := seg[1+2*ns], seg[2+2*ns], seg[3+2*ns]
	if ss != 0 || se != 63 || a != 0 {
		return FormatError("bad spectral selection for a sequential scan")
	}
	return nil
}

// zigzag maps a zigzag index to its natural (row-major) position; entries
// past 63 catch a run that overshoots the block.
var zigzag = [80]uint8{
	0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
	63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63,
}

// keepTable returns, for each zigzag index, the coefficient's position in
// an n x n low-frequency block, or -1 when a 1/(8/n) decode ignores it.
func keepTable(n int) [80]int8 {
	var t [80]int8
	for k := range t {
		t[k] = -1
		if k < 64 {
			z := int(zigzag[k])
			if r, c := z/8, z%8; r < n && c < n {
				t[k] = int8(r*n + c)
			}
		}
	}
	return t
}

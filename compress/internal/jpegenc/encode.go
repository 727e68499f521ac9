// Package jpegenc writes baseline JPEGs straight from Y, Cb and Cr planes,
// coding horizontal strips in parallel and joining them with restart
// markers.
//
// It writes what image/jpeg writes for the same quality: the same
// quantisation and Huffman tables (taken from image/jpeg's own output at
// first use, so they cannot drift from it), 4:2:0 colour or grey, no
// metadata segments. It differs in the forward DCT (the floating-point
// Arai-Agui-Nakajima transform, rounding each coefficient once, where
// image/jpeg uses a scaled integer one), in reading the planes directly
// rather than through the image.Image interface, and in quantising by
// multiplication rather than division; together these make it several times
// faster. The output bytes depend only on the planes and the quality, never
// on the number of workers.
package jpegenc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"sync"
)

// Plane is one 8-bit channel: W x H samples, row y at Pix[y*Stride:].
type Plane struct {
	W, H, Stride int
	Pix          []byte
}

func (p Plane) valid() bool {
	return p.W > 0 && p.H > 0 && p.Stride >= p.W && len(p.Pix) >= (p.H-1)*p.Stride+p.W
}

// Image is what Encode writes: Y alone (grey), or Y with Cb and Cr either
// at half resolution in both directions (4:2:0, sizes (W+1)/2 x (H+1)/2) or
// at full resolution (4:4:4, averaged to 4:2:0 on the way, as image/jpeg
// does).
type Image struct {
	Y, Cb, Cr Plane
	Gray      bool
}

// Strips is how many horizontal strips an image is cut into at most. It is
// fixed, not derived from the CPU count, so that every machine writes the
// same bytes.
const Strips = 4

// Encode writes img as a baseline JPEG at quality (1..100), coding up to
// workers strips at once. w receives the file in several writes (headers,
// then each strip); the strips' buffers are recycled between calls.
func Encode(w io.Writer, img Image, quality, workers int) error {
	quality = min(max(quality, 1), 100)
	if !img.Y.valid() || img.Y.W > 0xFFFF || img.Y.H > 0xFFFF {
		return errors.New("jpegenc: invalid Y plane")
	}
	full := false
	if !img.Gray {
		if !img.Cb.valid() || !img.Cr.valid() || img.Cb.W != img.Cr.W || img.Cb.H != img.Cr.H {
			return errors.New("jpegenc: invalid chroma planes")
		}
		switch {
		case img.Cb.W == img.Y.W && img.Cb.H == img.Y.H:
			full = true
		case img.Cb.W == (img.Y.W+1)/2 && img.Cb.H == (img.Y.H+1)/2:
		default:
			return fmt.Errorf("jpegenc: chroma %dx%d fits neither 4:2:0 nor 4:4:4 of %dx%d", img.Cb.W, img.Cb.H, img.Y.W, img.Y.H)
		}
	}
	t, err := tablesFor(quality)
	if err != nil {
		return err
	}
	mcu := 16
	if img.Gray {
		mcu = 8
	}
	mcuCols, mcuRows := (img.Y.W+mcu-1)/mcu, (img.Y.H+mcu-1)/mcu
	lay := StripLayout(mcuCols, mcuRows)
	strips, perStrip, interval := lay.Strips, lay.PerStrip, lay.Interval
	parts := make([]*[]byte, strips)
	defer func() {
		for _, p := range parts {
			if p != nil {
				stripBufs.Put(p)
			}
		}
	}()
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(workers, 1))
	for i := range parts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			buf := stripBufs.Get().(*[]byte)
			e := stripEncoder{img: img, full: full, t: t, mcuCols: mcuCols, buf: (*buf)[:0]}
			e.encode(i*perStrip, min((i+1)*perStrip, mcuRows))
			*buf = e.buf
			parts[i] = buf
		})
	}
	wg.Wait()

	var head bytes.Buffer
	head.Grow(len(t.dqt) + len(t.dht) + 64)
	head.Write([]byte{0xFF, 0xD8})
	head.Write(t.dqt)
	writeSOF(&head, img)
	head.Write(t.dht)
	if interval > 0 {
		head.Write([]byte{0xFF, 0xDD, 0, 4, byte(interval >> 8), byte(interval)})
	}
	writeSOS(&head, img.Gray)
	if _, err := w.Write(head.Bytes()); err != nil {
		return err
	}
	for i, p := range parts {
		if i > 0 {
			if _, err := w.Write([]byte{0xFF, 0xD0 + byte((i-1)%8)}); err != nil {
				return err
			}
		}
		if _, err := w.Write(*p); err != nil {
			return err
		}
	}
	_, err = w.Write([]byte{0xFF, 0xD9})
	return err
}

// stripBufs recycles the strips' coded bytes between encodes.
var stripBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 256<<10)
	return &b
}}

// Layout is how a picture of MCU rows is cut into strips coded apart.
type Layout struct {
	PerStrip int // MCU rows in each strip (the last may have fewer)
	Strips   int // how many strips
	Interval int // MCUs between restart markers: one strip's; 0 for one strip
}

// StripLayout cuts mcuRows rows of mcuCols MCUs into at most [Strips]
// strips whose restart interval fits the 16 bits JPEG gives it.
func StripLayout(mcuCols, mcuRows int) Layout {
	perStrip := max((mcuRows+Strips-1)/Strips, 1)
	for perStrip*mcuCols > 0xFFFF && perStrip > 1 {
		perStrip--
	}
	l := Layout{PerStrip: perStrip, Strips: (mcuRows + perStrip - 1) / perStrip, Interval: perStrip * mcuCols}
	if l.Strips > 1 && l.Interval > 0xFFFF {
		l = Layout{PerStrip: mcuRows, Strips: 1} // one row of MCUs is too long for a restart interval
	}
	if l.Strips <= 1 {
		l.Interval = 0
	}
	return l
}

func writeSOF(out *bytes.Buffer, img Image) {
	if img.Gray {
		out.Write([]byte{0xFF, 0xC0, 0, 11, 8, byte(img.Y.H >> 8), byte(img.Y.H), byte(img.Y.W >> 8), byte(img.Y.W), 1, 1, 0x11, 0})
		return
	}
	out.Write([]byte{0xFF, 0xC0, 0, 17, 8, byte(img.Y.H >> 8), byte(img.Y.H), byte(img.Y.W >> 8), byte(img.Y.W), 3,
		1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1})
}

func writeSOS(out *bytes.Buffer, gray bool) {
	if gray {
		out.Write([]byte{0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0})
		return
	}
	out.Write([]byte{0xFF, 0xDA, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0})
}

// tables are the segments and coding tables for one quality.
type tables struct {
	dqt  []byte         // the DQT segment, both tables
	dht  []byte         // the DHT segment, all four tables
	div  [2][64]float32 // 1 / (quantiser * AAN scale), natural order
	huff [4]huffEnc     // DC luma, AC luma, DC chroma, AC chroma
}

// huffEnc maps a symbol to its code (low len bits) and length.
type huffEnc struct {
	code [256]uint32
	size [256]uint8
}

var (
	tablesMu    sync.Mutex
	tablesCache [101]*tables
)

// tablesFor returns the tables image/jpeg uses at quality, read from its
// own output for a tiny picture and cached.
func tablesFor(quality int) (*tables, error) {
	tablesMu.Lock()
	defer tablesMu.Unlock()
	if t := tablesCache[quality]; t != nil {
		return t, nil
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, image.NewYCbCr(image.Rect(0, 0, 16, 16), image.YCbCrSubsampleRatio420), &jpeg.Options{Quality: quality}); err != nil {
		return nil, err
	}
	t := &tables{}
	d := buf.Bytes()
	for i := 2; i+4 <= len(d) && d[i] == 0xFF; {
		m := d[i+1]
		l := int(binary.BigEndian.Uint16(d[i+2:]))
		if i+2+l > len(d) {
			break
		}
		seg := d[i : i+2+l]
		switch m {
		case 0xDB:
			t.dqt = append(t.dqt, seg...)
			if err := t.parseDQT(seg[4:]); err != nil {
				return nil, err
			}
		case 0xC4:
			t.dht = append(t.dht, seg...)
			if err := t.parseDHT(seg[4:]); err != nil {
				return nil, err
			}
		}
		if m == 0xDA {
			break
		}
		i += 2 + l
	}
	if t.dqt == nil || t.dht == nil {
		return nil, errors.New("jpegenc: image/jpeg wrote no tables")
	}
	for _, h := range t.huff {
		if h.size[0] == 0 { // every table codes symbol 0 (DC size 0, AC EOB)
			return nil, errors.New("jpegenc: image/jpeg wrote too few Huffman tables")
		}
	}
	tablesCache[quality] = t
	return t, nil
}

// aan are the Arai-Agui-Nakajima output scale factors: cos(kπ/16)·√2, 1 at 0.
var aan = [8]float64{1.0, 1.387039845, 1.306562965, 1.175875602, 1.0, 0.785694958, 0.541196100, 0.275899379}

// zigzag maps a zigzag index to its natural (row-major) position.
var zigzag = [64]uint8{
	0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
}

func (t *tables) parseDQT(b []byte) error {
	for len(b) >= 65 {
		if b[0]>>4 != 0 || b[0]&15 > 1 {
			return errors.New("jpegenc: unexpected DQT from image/jpeg")
		}
		id := b[0] & 15
		for k := range 64 {
			z := zigzag[k]
			t.div[id][z] = float32(1 / (float64(b[1+k]) * aan[z/8] * aan[z%8] * 8))
		}
		b = b[65:]
	}
	if len(b) != 0 {
		return errors.New("jpegenc: unexpected DQT from image/jpeg")
	}
	return nil
}

func (t *tables) parseDHT(b []byte) error {
	for len(b) >= 17 {
		class, id := b[0]>>4, b[0]&15
		if class > 1 || id > 1 {
			return errors.New("jpegenc: unexpected DHT from image/jpeg")
		}
		n := 0
		for _, c := range b[1:17] {
			n += int(c)
		}
		if len(b) < 17+n {
			return errors.New("jpegenc: short DHT from image/jpeg")
		}
		h := &t.huff[int(id)*2+int(class)]
		code, k := uint32(0), 0
		for l := 1; l <= 16; l++ {
			for range int(b[l]) {
				sym := b[17+k]
				h.code[sym], h.size[sym] = code, uint8(l)
				code++
				k++
			}
			code <<= 1
		}
		b = b[17+n:]
	}
	if len(b) != 0 {
		return errors.New("jpegenc: unexpected DHT from image/jpeg")
	}
	return nil
}

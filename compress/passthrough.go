package compress

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/clinicpro/clinicalimages/compress/internal/jpegdec"
)

// errNoPassthrough reports a JPEG the lossless path does not take: not
// baseline, or laid out in a way the rebuild does not keep (a second
// frame, a DNL or arithmetic-coding segment, data after the scan other
// than EOI). The normal path then decodes and encodes it.
var errNoPassthrough = errors.New("compress: not a single-scan baseline JPEG")

// jfifAPP0 is the header every passed-through JPEG gets: JFIF 1.01, no
// density units, 1:1 pixels, no thumbnail.
var jfifAPP0 = []byte{0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00}

// rebuildJPEG writes a baseline JPEG again, appended to out[:0], from its
// coding segments alone:
// SOI, a fresh JFIF APP0, then DQT, SOF0, DHT and DRI in their order, the
// SOS header and its entropy-coded data byte for byte, and EOI. Every other
// APPn (EXIF, XMP, ICC, MPF, vendor data) and every COM is dropped, and
// nothing after EOI is kept. It returns errNoPassthrough, wrapped, for a
// file it will not rebuild: anything but one baseline (SOF0) frame coded
// in one scan that ends at EOI. It checks structure only; the caller
// decodes the result to check its entropy-coded data.
func rebuildJPEG(out, d []byte) ([]byte, error) {
	fail := func(why string) ([]byte, error) { return nil, fmt.Errorf("%w: %s", errNoPassthrough, why) }
	if len(d) < 4 || d[0] != 0xFF || d[1] != 0xD8 {
		return fail("no SOI")
	}
	out = append(out[:0], 0xFF, 0xD8)
	out = append(out, jfifAPP0...)
	frame := false
	pos := 2
	for {
		if pos >= len(d) || d[pos] != 0xFF {
			return fail("expected a marker")
		}
		for pos < len(d) && d[pos] == 0xFF { // fill bytes
			pos++
		}
		if pos >= len(d) {
			return fail("truncated")
		}
		m := d[pos]
		pos++
		if m == 0xD8 || m == 0xD9 || m == 0x01 || m == 0x00 || (m >= 0xD0 && m <= 0xD7) {
			return fail("unexpected marker before the scan")
		}
		if pos+2 > len(d) {
			return fail("truncated segment")
		}
		n := int(binary.BigEndian.Uint16(d[pos:]))
		if n < 2 || pos+n > len(d) {
			return fail("truncated segment")
		}
		seg := d[pos-2 : pos+n] // marker and all
		pos += n
		switch {
		case m == 0xC0:
			if frame {
				return fail("two frames")
			}
			frame = true
			out = append(out, seg...)
		case m == 0xDB, m == 0xC4, m == 0xDD:
			out = append(out, seg...)
		case m >= 0xE0 && m <= 0xEF, m == 0xFE:
			// metadata: dropped
		case m == 0xDA:
			if !frame {
				return fail("scan before the frame")
			}
			out = append(out, seg...)
			end, err := scanEnd(d, pos)
			if err != nil {
				return nil, err
			}
			out = append(out, d[pos:end]...)
			return append(out, 0xFF, 0xD9), nil
		default:
			// Another frame type (progressive, extended, lossless,
			// arithmetic), DNL, DAC, DHP, EXP or a reserved marker.
			return fail(fmt.Sprintf("marker 0x%02X", m))
		}
	}
}

// scanEnd returns where the entropy-coded data starting at pos ends: at a
// marker that is neither a stuffed zero nor a restart, which must be EOI.
func scanEnd(d []byte, pos int) (int, error) {
	for i := pos; ; i++ {
		k := bytes.IndexByte(d[i:], 0xFF)
		if k < 0 || i+k+1 >= len(d) {
			break
		}
		i += k
		switch m := d[i+1]; {
		case m == 0x00, m >= 0xD0 && m <= 0xD7, m == 0xFF:
			continue
		case m == 0xD9:
			return i, nil
		default:
			return 0, fmt.Errorf("%w: marker 0x%02X after the scan", errNoPassthrough, m)
		}
	}
	return 0, fmt.Errorf("%w: no EOI", errNoPassthrough)
}

// passthroughCandidate reports whether src already meets every output
// rule that does not need its data decoded: a JPEG decoded natively, within
// the long edge (so within the pixel limits, already checked), upright, and
// sRGB (no profile, or one equivalent to sRGB). Metadata alone does not
// disqualify it: the rebuild drops it losslessly. The byte budget and a
// complete decode are checked on the rebuilt file.
func (n *Normalizer) passthroughCandidate(src Source, info sourceInfo) bool {
	if n.cfg.noPassthrough || src.Format != JPEG || src.Decoder != nil {
		return false
	}
	if src.Orientation != 1 || max(src.Width, src.Height) > n.cfg.longEdge {
		return false
	}
	if info.meta.Has(MetaICC) && (src.ICC == nil || !isSRGBProfile(src.ICC)) {
		return false // a profile we cannot read, or another space
	}
	return true
}

// passthrough rebuilds a candidate and prepares the check that it decodes
// completely. It returns the bytes to store (in a pooled buffer) and
// verify, which runs the check and reports whether they may be kept;
// verify nil means the normal path. The check is internal/jpegdec's
// Verify: the entropy decoding of every block, with every Huffman code,
// restart marker and the end of the data checked as by a decode at any
// scale (and the baseline coefficient range that a lossless edit needs),
// storing nothing; with twoCores, on two (VerifyConcurrent, same verdict)
// when another concurrency slot is free. It needs a concurrency slot and
// its (small) share of the decode budget, like any other decode:
// passthrough takes them, verify gives them back.
func (n *Normalizer) passthrough(ctx context.Context, src Source, twoCores bool) (_ *bytes.Buffer, quality int, verify func() bool, err error) {
	buf := n.getBuf()
	defer func() {
		if verify == nil {
			n.putBuf(buf)
		}
	}()
	buf.Grow(len(src.Data) + len(jfifAPP0))
	out, rerr := rebuildJPEG(buf.AvailableBuffer(), src.Data)
	if rerr != nil || int64(len(out)) > n.cfg.budget {
		return nil, 0, nil, nil
	}
	buf.Write(out) // in place: out is buf's own free space
	lay, perr := jpegdec.Probe(out, jpegdec.Options{Scale: 8})
	if perr != nil || lay.Width != src.Width || lay.Height != src.Height {
		return nil, 0, nil, nil
	}
	cost := int64(cap(src.Data)) + int64(len(out)) + fixedOverhead
	if cost > n.cfg.decodeBudget {
		// Never wait for more than the whole budget (it would wait
		// forever); the normal path refuses such an input.
		return nil, 0, nil, nil
	}
	release, err := n.slot(ctx, cost)
	if err != nil {
		return nil, 0, nil, err
	}
	return buf, estimateQuality(out), func() bool {
		defer release()
		return verifyQuietly(out, twoCores && n.idle()) == nil
	}, nil
}

// idle reports whether a concurrency slot is free: a check may then use a
// second core (jpegdec.VerifyConcurrent) without taking one from another
// image.
func (n *Normalizer) idle() bool { return len(n.sem) < cap(n.sem) }

// verifyQuietly runs jpegdec.Verify, or VerifyConcurrent, turning a panic
// (none is known) into an error.
func verifyQuietly(d []byte, concurrent bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("jpeg verify panic: %v", r)
		}
	}()
	if concurrent {
		return jpegdec.VerifyConcurrent(d)
	}
	return jpegdec.Verify(d)
}

// ijgLuma is the IJG (libjpeg, image/jpeg) luminance table at quality 50,
// in zigzag order, the order DQT stores.
var ijgLuma = [64]int{
	16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40,
	26, 24, 22, 22, 24, 49, 35, 37, 29, 40, 58, 51, 61, 60, 57, 51,
	56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109, 81, 87,
	95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99,
}

// estimateQuality returns the IJG quality (1..100) whose luminance table is
// closest to the first 8-bit table of d's first DQT, or 0 when there is
// none. Phones and browsers scale the IJG tables, so this is what they were
// asked for; for other tables it is an approximation.
func estimateQuality(d []byte) int {
	for pos := 2; pos+4 <= len(d) && d[pos] == 0xFF; {
		m := d[pos+1]
		n := int(binary.BigEndian.Uint16(d[pos+2:]))
		if m == 0xDA || n < 2 || pos+2+n > len(d) {
			return 0
		}
		seg := d[pos+4 : pos+2+n]
		if m == 0xDB && len(seg) >= 65 && seg[0]>>4 == 0 {
			best, bestErr := 0, -1
			for q := 1; q <= 100; q++ {
				scale := 200 - 2*q
				if q < 50 {
					scale = 5000 / q
				}
				e := 0
				for k, v := range ijgLuma {
					t := min(max((v*scale+50)/100, 1), 255)
					e += abs(t - int(seg[1+k]))
				}
				if bestErr < 0 || e < bestErr {
					best, bestErr = q, e
				}
			}
			return best
		}
		pos += 2 + n
	}
	return 0
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

package compress

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"io"
	"strings"
)

// Metadata is a set of metadata kinds found in an input. Normalize never
// copies any of them to its output; [Result.Stripped] says which were there.
type Metadata uint16

// The metadata kinds recognised in inputs.
const (
	MetaEXIF      Metadata = 1 << iota // EXIF block (camera, time, orientation)
	MetaGPS                            // EXIF GPS IFD (location)
	MetaMakerNote                      // EXIF maker note (vendor data, often serials)
	MetaXMP                            // XMP packet
	MetaIPTC                           // IPTC / Photoshop IRB
	MetaICC                            // ICC colour profile (converted to sRGB, then dropped)
	MetaComment                        // JPEG COM, PNG/GIF text chunks
	MetaOther                          // other application segments (MPF previews, vendor APPn)
)

var metaNames = []string{"exif", "gps", "makernote", "xmp", "iptc", "icc", "comment", "other"}

// Has reports whether every kind in x is in m.
func (m Metadata) Has(x Metadata) bool { return m&x == x }

// String lists the kinds, comma separated, or "none".
func (m Metadata) String() string {
	var parts []string
	for i, n := range metaNames {
		if m&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// sourceInfo is what a header scan learns without decoding pixels.
type sourceInfo struct {
	meta        Metadata
	orientation int         // EXIF orientation 1..8 to apply; 1 when absent or for HEIC
	icc         []byte      // embedded ICC profile, nil when none or incomplete
	ycbcr       YCbCrCoding // HEIF colr nclx: how the decoder's YCbCr is coded
	// width and height, filled by the HEIF scan (others use DecodeConfig).
	width, height int
}

const maxICC = 4 << 20 // larger "profiles" are ignored

func scanMeta(f Format, data []byte) sourceInfo {
	switch f {
	case JPEG:
		return scanJPEG(data)
	case PNG:
		return scanPNG(data)
	case WebP:
		return scanWebP(data)
	case GIF:
		return scanGIF(data)
	case HEIC:
		return scanHEIF(data)
	}
	return sourceInfo{orientation: 1}
}

func (s *sourceInfo) exif(tiff []byte) {
	s.meta |= MetaEXIF
	o, gps, maker := parseTIFF(tiff)
	if s.orientation == 1 && o >= 1 && o <= 8 {
		s.orientation = o
	}
	if gps {
		s.meta |= MetaGPS
	}
	if maker {
		s.meta |= MetaMakerNote
	}
}

func scanJPEG(d []byte) sourceInfo {
	s := sourceInfo{orientation: 1}
	var icc [][]byte
	seenExif := false
	i := 2
	for i+4 <= len(d) {
		if d[i] != 0xFF {
			break
		}
		m := d[i+1]
		if m == 0xFF { // fill byte
			i++
			continue
		}
		if m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7) {
			i += 2
			continue
		}
		if m == 0xDA || m == 0xD9 {
			break
		}
		l := int(binary.BigEndian.Uint16(d[i+2:]))
		if l < 2 || i+2+l > len(d) {
			break
		}
		seg := d[i+4 : i+2+l]
		switch {
		case m == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")):
			if !seenExif { // the first EXIF block is the one viewers use
				s.exif(seg[6:])
				seenExif = true
			}
		case m == 0xE1 && bytes.HasPrefix(seg, []byte("http://ns.adobe.com/")):
			s.meta |= MetaXMP
		case m == 0xE2 && bytes.HasPrefix(seg, []byte("ICC_PROFILE\x00")) && len(seg) >= 14:
			s.meta |= MetaICC
			seq, n := int(seg[12]), int(seg[13])
			if n > 0 && seq >= 1 && seq <= n {
				if icc == nil {
					icc = make([][]byte, n)
				}
				if len(icc) == n {
					icc[seq-1] = seg[14:]
				}
			}
		case m == 0xED:
			s.meta |= MetaIPTC
		case m == 0xFE:
			s.meta |= MetaComment
		case m == 0xE0 && (bytes.HasPrefix(seg, []byte("JFIF\x00")) || bytes.HasPrefix(seg, []byte("JFXX\x00"))):
		case m == 0xEE && bytes.HasPrefix(seg, []byte("Adobe")):
			// JFIF and Adobe segments describe the coding, not the photo.
		case m >= 0xE0 && m <= 0xEF:
			s.meta |= MetaOther
		}
		i += 2 + l
	}
	if icc != nil {
		var full []byte
		for _, c := range icc {
			if c == nil {
				full = nil
				break
			}
			full = append(full, c...)
		}
		if len(full) <= maxICC {
			s.icc = full
		}
	}
	return s
}

func scanPNG(d []byte) sourceInfo {
	s := sourceInfo{orientation: 1}
	for i := 8; i+12 <= len(d); {
		n := int(binary.BigEndian.Uint32(d[i:]))
		if n < 0 || n > len(d)-i-12 {
			break
		}
		typ := string(d[i+4 : i+8])
		body := d[i+8 : i+8+n]
		switch typ {
		case "eXIf":
			s.exif(body)
		case "iCCP":
			s.meta |= MetaICC
			if z := bytes.IndexByte(body, 0); z >= 0 && z+2 <= len(body) {
				if zr, err := zlib.NewReader(bytes.NewReader(body[z+2:])); err == nil {
					p, err := io.ReadAll(io.LimitReader(zr, maxICC+1))
					if err == nil && len(p) <= maxICC {
						s.icc = p
					}
				}
			}
		case "iTXt":
			if bytes.HasPrefix(body, []byte("XML:com.adobe.xmp\x00")) {
				s.meta |= MetaXMP
			} else {
				s.meta |= MetaComment
			}
		case "tEXt", "zTXt":
			s.meta |= MetaComment
		case "IEND":
			return s
		}
		i += 12 + n
	}
	return s
}

func scanWebP(d []byte) sourceInfo {
	s := sourceInfo{orientation: 1}
	for i := 12; i+8 <= len(d); {
		n := int(binary.LittleEndian.Uint32(d[i+4:]))
		if n < 0 || n > len(d)-i-8 {
			break
		}
		body := d[i+8 : i+8+n]
		switch string(d[i : i+4]) {
		case "EXIF":
			s.exif(bytes.TrimPrefix(body, []byte("Exif\x00\x00")))
		case "XMP ":
			s.meta |= MetaXMP
		case "ICCP":
			s.meta |= MetaICC
			if n <= maxICC {
				s.icc = body
			}
		}
		i += 8 + n + n&1
	}
	return s
}

func scanGIF(d []byte) sourceInfo {
	s := sourceInfo{orientation: 1}
	// Comment and application extensions (XMP lives in one) before the
	// first image are reported; a full walk is not worth it.
	if bytes.Contains(d[:min(len(d), 64<<10)], []byte("XMP DataXMP")) {
		s.meta |= MetaXMP
	}
	return s
}

// parseTIFF reads the orientation (IFD0 tag 0x0112) and whether a GPS IFD
// (0x8825) and a maker note (0x927C in the EXIF IFD) are present. It never
// reads out of bounds; malformed data yields zero values.
func parseTIFF(b []byte) (orientation int, gps, maker bool) {
	if len(b) < 8 {
		return 0, false, false
	}
	var bo binary.ByteOrder
	switch string(b[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0, false, false
	}
	if bo.Uint16(b[2:]) != 42 {
		return 0, false, false
	}
	type entry struct {
		tag, typ uint16
		val      []byte // the 4-byte value/offset field
	}
	ifd := func(off uint32) []entry {
		if off < 8 || int64(off)+2 > int64(len(b)) {
			return nil
		}
		n := int(bo.Uint16(b[off:]))
		p := int(off) + 2
		if n > (len(b)-p)/12 {
			n = (len(b) - p) / 12
		}
		out := make([]entry, 0, n)
		for k := 0; k < n; k++ {
			e := b[p+12*k : p+12*k+12]
			out = append(out, entry{bo.Uint16(e), bo.Uint16(e[2:]), e[8:12]})
		}
		return out
	}
	for _, e := range ifd(bo.Uint32(b[4:])) {
		switch e.tag {
		case 0x0112:
			if e.typ == 3 { // SHORT
				orientation = int(bo.Uint16(e.val))
			}
		case 0x8825:
			gps = len(ifd(bo.Uint32(e.val))) > 0
		case 0x8769:
			for _, x := range ifd(bo.Uint32(e.val)) {
				if x.tag == 0x927C {
					maker = true
				}
			}
		}
	}
	return orientation, gps, maker
}

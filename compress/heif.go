package compress

import (
	"encoding/binary"
)

// box is one ISO-BMFF box: its type and payload (after the header).
type box struct {
	typ  string
	body []byte
}

// boxes splits d into boxes, stopping at the first malformed header.
func boxes(d []byte) []box {
	var out []box
	for len(d) >= 8 {
		size := uint64(binary.BigEndian.Uint32(d))
		typ := string(d[4:8])
		hdr := uint64(8)
		switch size {
		case 0:
			size = uint64(len(d))
		case 1:
			if len(d) < 16 {
				return out
			}
			size, hdr = binary.BigEndian.Uint64(d[8:]), 16
		}
		if size < hdr || size > uint64(len(d)) {
			return out
		}
		out = append(out, box{typ, d[hdr:size]})
		d = d[size:]
	}
	return out
}

// scanHEIF reads the primary item's declared size (ispe), its ICC profile
// (colr prof/rICC) and which metadata items exist, from the meta box. Rotation
// and mirroring (irot/imir) are applied by libheif when decoding, so the
// orientation reported is always 1: applying the EXIF tag again would turn
// an iPhone photo twice.
func scanHEIF(d []byte) sourceInfo {
	s := sourceInfo{orientation: 1}
	var meta []byte
	for _, b := range boxes(d) {
		if b.typ == "meta" && len(b.body) >= 4 {
			meta = b.body[4:]
			break
		}
	}
	if meta == nil {
		return s
	}
	var primary uint32
	var props []box
	assoc := map[uint32][]int{}
	for _, b := range boxes(meta) {
		switch b.typ {
		case "pitm":
			if len(b.body) >= 6 && b.body[0] == 0 {
				primary = uint32(binary.BigEndian.Uint16(b.body[4:]))
			} else if len(b.body) >= 8 {
				primary = binary.BigEndian.Uint32(b.body[4:])
			}
		case "iinf":
			if len(b.body) < 6 {
				continue
			}
			off := 6
			if b.body[0] != 0 {
				off = 8
			}
			if off > len(b.body) {
				continue
			}
			for _, e := range boxes(b.body[off:]) {
				if e.typ != "infe" || len(e.body) < 4 || e.body[0] < 2 {
					continue
				}
				p := 4 + 2 + 2 // version/flags, item_ID (v2), protection index
				if e.body[0] >= 3 {
					p += 2
				}
				if p+4 > len(e.body) {
					continue
				}
				switch string(e.body[p : p+4]) {
				case "Exif":
					s.meta |= MetaEXIF
				case "mime":
					s.meta |= MetaXMP
				}
			}
		case "iprp":
			for _, c := range boxes(b.body) {
				switch c.typ {
				case "ipco":
					props = boxes(c.body)
				case "ipma":
					parseIPMA(c.body, assoc)
				}
			}
		}
	}
	use := func(p box) {
		switch p.typ {
		case "ispe":
			if len(p.body) >= 12 {
				s.width = int(binary.BigEndian.Uint32(p.body[4:]))
				s.height = int(binary.BigEndian.Uint32(p.body[8:]))
			}
		case "colr":
			if len(p.body) >= 11 && string(p.body[:4]) == "nclx" {
				// colour_primaries, transfer_characteristics,
				// matrix_coefficients (u16 each), full_range_flag (top bit).
				s.ycbcr = YCbCrCoding{
					Matrix:  matrixFromH273(binary.BigEndian.Uint16(p.body[8:])),
					Limited: p.body[10]&0x80 == 0,
				}
			}
			if len(p.body) >= 4 && (string(p.body[:4]) == "prof" || string(p.body[:4]) == "rICC") {
				s.meta |= MetaICC
				if len(p.body)-4 <= maxICC {
					s.icc = p.body[4:]
				}
			}
		}
	}
	if idx, ok := assoc[primary]; ok {
		for _, i := range idx {
			if i >= 1 && i <= len(props) {
				use(props[i-1])
			}
		}
	}
	if s.width == 0 || s.height == 0 {
		// No association found: fall back to the largest declared size,
		// which over-estimates and so keeps the pixel limit safe.
		for _, p := range props {
			if p.typ == "ispe" && len(p.body) >= 12 {
				w := int(binary.BigEndian.Uint32(p.body[4:]))
				h := int(binary.BigEndian.Uint32(p.body[8:]))
				if int64(w)*int64(h) > int64(s.width)*int64(s.height) {
					s.width, s.height = w, h
				}
			}
		}
	}
	return s
}

func parseIPMA(b []byte, out map[uint32][]int) {
	if len(b) < 8 {
		return
	}
	version, flags := b[0], b[3]
	n := binary.BigEndian.Uint32(b[4:])
	p := 8
	for k := uint32(0); k < n; k++ {
		var id uint32
		if version < 1 {
			if p+2 > len(b) {
				return
			}
			id = uint32(binary.BigEndian.Uint16(b[p:]))
			p += 2
		} else {
			if p+4 > len(b) {
				return
			}
			id = binary.BigEndian.Uint32(b[p:])
			p += 4
		}
		if p+1 > len(b) {
			return
		}
		cnt := int(b[p])
		p++
		for j := 0; j < cnt; j++ {
			var idx int
			if flags&1 != 0 {
				if p+2 > len(b) {
					return
				}
				idx = int(binary.BigEndian.Uint16(b[p:]) & 0x7fff)
				p += 2
			} else {
				if p+1 > len(b) {
					return
				}
				idx = int(b[p] & 0x7f)
				p++
			}
			if len(out[id]) < 64 {
				out[id] = append(out[id], idx)
			}
		}
	}
}

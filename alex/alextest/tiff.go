package alextest

import (
	"encoding/binary"
	"fmt"
)

// maxTIFFPages bounds the IFD chain the simulator follows.
const maxTIFFPages = 1000

// tiffProblem reports why data is not a TIFF that ALEX's Inbox Scan could
// show, or "" if it is one. It reads the header, follows the IFD chain
// (refusing loops), and for every page checks the tags a baseline reader
// needs (ImageWidth, ImageLength, PhotometricInterpretation, StripOffsets,
// StripByteCounts), that each strip lies inside the file, and for JPEG
// compression (7, TIFF Technical Note 2, what libtiff and ClinicPro write)
// that each strip is a complete JPEG stream, SOI to EOI, whose frame is the
// page's size. Old-style JPEG (6) and compressions other than none, LZW,
// Deflate and PackBits are refused. The reason names structure only.
func tiffProblem(data []byte) string {
	if len(data) < 8 {
		return "shorter than a TIFF header"
	}
	var bo binary.ByteOrder
	switch string(data[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return "no TIFF byte-order mark"
	}
	switch bo.Uint16(data[2:4]) {
	case 42:
	case 43:
		return "BigTIFF is not baseline TIFF"
	default:
		return "no TIFF magic number"
	}
	seen := map[uint32]bool{}
	off := bo.Uint32(data[4:8])
	if off == 0 {
		return "no image directory"
	}
	for page := 1; off != 0; page++ {
		if page > maxTIFFPages || seen[off] {
			return "the image directories loop or are too many"
		}
		seen[off] = true
		next, why := tiffPage(data, bo, off)
		if why != "" {
			return fmt.Sprintf("page %d: %s", page, why)
		}
		off = next
	}
	return ""
}

// tiffPage checks the IFD at off and returns the next IFD's offset.
func tiffPage(data []byte, bo binary.ByteOrder, off uint32) (uint32, string) {
	if uint64(off)+2 > uint64(len(data)) {
		return 0, "image directory outside the file"
	}
	n := uint64(bo.Uint16(data[off:]))
	end := uint64(off) + 2 + 12*n
	if n == 0 || end+4 > uint64(len(data)) {
		return 0, "image directory empty or cut short"
	}
	tags := map[uint16][]uint64{}
	for i := range n {
		e := data[uint64(off)+2+12*i:]
		tag, typ, count := bo.Uint16(e), bo.Uint16(e[2:]), uint64(bo.Uint32(e[4:]))
		var size uint64
		switch typ {
		case 3: // SHORT
			size = 2
		case 4: // LONG
			size = 4
		default:
			continue // only SHORT and LONG values are needed here
		}
		at := uint64(off) + 2 + 12*i + 8
		if count*size > 4 {
			at = uint64(bo.Uint32(e[8:]))
		}
		if count > uint64(len(data)) || at+count*size > uint64(len(data)) {
			return 0, fmt.Sprintf("tag %d's values outside the file", tag)
		}
		vals := make([]uint64, count)
		for j := range count {
			if size == 2 {
				vals[j] = uint64(bo.Uint16(data[at+2*j:]))
			} else {
				vals[j] = uint64(bo.Uint32(data[at+4*j:]))
			}
		}
		tags[tag] = vals
	}
	next := bo.Uint32(data[end:])
	one := func(tag uint16, def uint64) (uint64, bool) {
		v, ok := tags[tag]
		if !ok {
			return def, def != 0
		}
		return v[0], len(v) > 0
	}
	width, okW := one(256, 0)
	height, okH := one(257, 0)
	if !okW || !okH || width == 0 || height == 0 {
		return 0, "no image size"
	}
	ph := tags[262]
	if len(ph) == 0 {
		return 0, "no PhotometricInterpretation"
	}
	photometric := ph[0]
	offsets, counts := tags[273], tags[279]
	if len(offsets) == 0 || len(offsets) != len(counts) {
		return 0, "no strips, or StripOffsets and StripByteCounts disagree"
	}
	for i := range offsets {
		if counts[i] == 0 || offsets[i]+counts[i] > uint64(len(data)) {
			return 0, "a strip lies outside the file"
		}
	}
	compression, _ := one(259, 1)
	switch compression {
	case 1, 5, 8, 32773: // none, LZW, Deflate, PackBits
		return next, ""
	case 6:
		return 0, "old-style JPEG compression (6) is not readable; use 7"
	case 7:
	default:
		return 0, fmt.Sprintf("compression %d is not supported", compression)
	}
	samples, _ := one(277, 1)
	switch {
	case photometric == 1 && samples == 1, photometric == 0 && samples == 1,
		photometric == 2 && samples == 3, photometric == 6 && samples == 3:
	default:
		return 0, fmt.Sprintf("photometric %d with %d samples cannot hold a JPEG", photometric, samples)
	}
	rows, _ := one(278, height)
	for i := range offsets {
		strip := data[offsets[i] : offsets[i]+counts[i]]
		if len(strip) < 4 || strip[0] != 0xFF || strip[1] != 0xD8 {
			return 0, "a JPEG strip does not start with SOI"
		}
		if strip[len(strip)-2] != 0xFF || strip[len(strip)-1] != 0xD9 {
			return 0, "a JPEG strip does not end with EOI"
		}
		w, h, comps, ok := jpegFrameSize(strip)
		if !ok {
			return 0, "a JPEG strip has no frame header"
		}
		if uint64(comps) != samples {
			return 0, "the JPEG's components do not match SamplesPerPixel"
		}
		if len(offsets) == 1 && rows >= height && (uint64(w) != width || uint64(h) != height) {
			return 0, "the JPEG's size is not the page's size"
		}
	}
	return next, ""
}

// jpegFrameSize walks a JPEG's marker segments to its frame header.
func jpegFrameSize(b []byte) (w, h, comps int, ok bool) {
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return 0, 0, 0, false
		}
		m := b[i+1]
		if m == 0xFF {
			i++
			continue
		}
		if m == 0x01 || (m >= 0xD0 && m <= 0xD7) {
			i += 2
			continue
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return 0, 0, 0, false
		}
		if m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC {
			if n < 8 {
				return 0, 0, 0, false
			}
			s := b[i+4:]
			return int(binary.BigEndian.Uint16(s[3:])), int(binary.BigEndian.Uint16(s[1:])), int(s[5]), true
		}
		if m == 0xDA || m == 0xD9 {
			return 0, 0, 0, false
		}
		i += 2 + n
	}
	return 0, 0, 0, false
}

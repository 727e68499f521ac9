package enginetest

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
)

// RawPNG encodes pix, w x h pixels of (depth/8) x channels bytes each, row
// by row with no filter bytes, as a PNG of the given bit depth (8 or 16) and
// colour type (0 grey, 2 RGB, 4 grey+alpha, 6 RGBA), Adam7-interlaced when
// asked. image/png's encoder writes neither grey+alpha, nor 16-bit RGB
// without alpha when given alpha, nor interlaced files; decoders must
// still meet them. Runs of equal bytes compress to almost nothing, so a
// 7000 x 7000 16-bit image of flat content is a few hundred kilobytes.
func RawPNG(w, h, depth int, colourType byte, interlaced bool, pix []byte) []byte {
	channels := map[byte]int{0: 1, 2: 3, 4: 2, 6: 4}[colourType]
	bpp := channels * depth / 8
	if channels == 0 || (depth != 8 && depth != 16) || len(pix) != w*h*bpp {
		panic("enginetest.RawPNG: bad arguments")
	}
	var raw bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&raw, zlib.BestCompression)
	passes := [][4]int{{0, 0, 1, 1}}
	if interlaced {
		passes = [][4]int{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}}
	}
	row := make([]byte, 0, 1+w*bpp)
	for _, p := range passes {
		for y := p[1]; y < h; y += p[3] {
			row = append(row[:0], 0) // filter: none
			for x := p[0]; x < w; x += p[2] {
				o := (y*w + x) * bpp
				row = append(row, pix[o:o+bpp]...)
			}
			if len(row) > 1 {
				_, _ = zw.Write(row)
			}
		}
	}
	_ = zw.Close()
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = byte(depth), colourType
	if interlaced {
		ihdr[12] = 1
	}
	return PNGFile(ihdr, raw.Bytes())
}

// PNGFile assembles a PNG from its 13-byte IHDR body and its zlib stream
// (the IDAT body), adding the signature, chunk lengths, CRCs and IEND. It
// lets a test build a huge image's file from a stream it made itself,
// without holding the pixels.
func PNGFile(ihdr, idat []byte) []byte {
	var out bytes.Buffer
	out.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, body []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(body)))
		out.Write(n[:])
		c := crc32.NewIEEE()
		c.Write([]byte(typ))
		c.Write(body)
		out.WriteString(typ)
		out.Write(body)
		binary.BigEndian.PutUint32(n[:], c.Sum32())
		out.Write(n[:])
	}
	chunk("IHDR", ihdr)
	chunk("IDAT", idat)
	chunk("IEND", nil)
	return out.Bytes()
}

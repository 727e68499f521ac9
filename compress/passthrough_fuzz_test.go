package compress

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
)

// FuzzRebuildJPEG holds the segment rebuilder to its promises on any input:
// no panic; when it rebuilds, the result starts with SOI and a JFIF header,
// ends with the one EOI, carries no metadata segment (nothing scanJPEG
// would report), keeps the scan's bytes, and rebuilding it again changes
// nothing. The seeds run as ordinary tests.
func FuzzRebuildJPEG(f *testing.F) {
	var buf bytes.Buffer
	m := image.NewYCbCr(image.Rect(0, 0, 24, 16), image.YCbCrSubsampleRatio420)
	for i := range m.Y {
		m.Y[i] = uint8(i * 7)
	}
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 80}); err != nil {
		f.Fatal(err)
	}
	base := buf.Bytes()
	g := image.NewGray(image.Rect(0, 0, 9, 9))
	g.Set(4, 4, color.Gray{Y: 200})
	buf.Reset()
	if err := jpeg.Encode(&buf, g, nil); err != nil {
		f.Fatal(err)
	}
	grey := bytes.Clone(buf.Bytes())
	withSeg := func(d []byte, marker byte, payload string) []byte {
		n := len(payload) + 2
		seg := append([]byte{0xFF, marker, byte(n >> 8), byte(n)}, payload...)
		return append(append(bytes.Clone(d[:2]), seg...), d[2:]...)
	}
	f.Add(base)
	f.Add(grey)
	f.Add(withSeg(base, 0xE1, "Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x00"))
	f.Add(withSeg(withSeg(base, 0xFE, "a comment"), 0xED, "Photoshop 3.0\x00"))
	f.Add(append(bytes.Clone(base), "\xFF\xD8\xFF\xE1trailing\xFF\xD9"...))
	f.Add(base[:len(base)/2])
	f.Add(withSeg(base, 0xC2, "\x08\x00\x10\x00\x18\x01\x01\x11\x00")) // a second (progressive) frame
	f.Add(withSeg(base, 0xDD, "\x00\x04"))
	f.Add([]byte("\xFF\xD8\xFF\xDA\x00\x02\xFF\xD9"))
	f.Add([]byte("\xFF\xD8\xFF\xFF\xFF"))
	f.Fuzz(func(t *testing.T, d []byte) {
		out, err := rebuildJPEG(nil, d)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(out, append([]byte{0xFF, 0xD8}, jfifAPP0...)) {
			t.Fatalf("no SOI and JFIF header: % x", out[:min(len(out), 20)])
		}
		if !bytes.HasSuffix(out, []byte{0xFF, 0xD9}) {
			t.Fatal("does not end at EOI")
		}
		if meta := scanJPEG(out).meta; meta != 0 {
			t.Fatalf("metadata survived: %v", meta)
		}
		sos := bytes.Index(out, []byte{0xFF, 0xDA})
		if sos < 0 || !bytes.Contains(d, out[sos:len(out)-2]) {
			t.Fatal("scan data not kept byte for byte")
		}
		again, err := rebuildJPEG(nil, out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("rebuilding the rebuilt file: err %v, same %v", err, bytes.Equal(again, out))
		}
	})
}

package compress

import (
	"testing"
)

// FuzzScanMeta runs every header and metadata parser (JPEG segments, PNG
// chunks, WebP chunks, ISO-BMFF boxes, TIFF/EXIF, ICC) over arbitrary bytes:
// none may panic or read out of bounds.
func FuzzScanMeta(f *testing.F) {
	f.Add([]byte("\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08"))
	f.Add([]byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic\x00\x00\x00\x10meta\x00\x00\x00\x00"))
	f.Add([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x04iCCPx\x00\x00\x00"))
	f.Add([]byte("RIFF\x10\x00\x00\x00WEBPEXIF\x04\x00\x00\x00MM\x00\x2a"))
	f.Fuzz(func(t *testing.T, d []byte) {
		for _, fm := range AllFormats() {
			s := scanMeta(fm, d)
			if s.orientation < 1 || s.orientation > 8 {
				t.Fatalf("%s: orientation %d out of range", fm, s.orientation)
			}
		}
		parseTIFF(d)
		parseICC(d)
		Sniff(d)
	})
}

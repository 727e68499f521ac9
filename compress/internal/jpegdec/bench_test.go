package jpegdec_test

import (
	"bytes"
	"image/jpeg"
	"testing"

	"github.com/clinicpro/clinicalimages/compress/enginetest"
	"github.com/clinicpro/clinicalimages/compress/internal/jpegdec"
)

// BenchmarkDecode12MP decodes the photo at 1/2 scale, as the pure-Go
// engine does for a 2048 px limit, on one goroutine and with the inverse
// DCTs on a second, and at full scale; image/jpeg's full decode of the
// same bytes, the path jpegdec replaces, is the baseline.
func BenchmarkDecode12MP(b *testing.B) {
	in := enginetest.Phone12MP()
	for _, c := range []struct {
		name string
		opts jpegdec.Options
	}{
		{"half", jpegdec.Options{Scale: 2}},
		{"half-concurrent", jpegdec.Options{Scale: 2, Concurrent: true}},
		{"full-concurrent", jpegdec.Options{Scale: 1, Concurrent: true}},
		{"image-jpeg", jpegdec.Options{}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if c.opts.Scale == 0 {
					_, err = jpeg.Decode(bytes.NewReader(in))
				} else {
					_, err = jpegdec.Decode(in, c.opts)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify12MP is the passthrough's check of a kept JPEG, on one
// goroutine and on two, against the 1/8-scale decode it replaces.
func BenchmarkVerify12MP(b *testing.B) {
	in := enginetest.Phone12MP()
	b.Run("verify", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if err := jpegdec.Verify(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify-concurrent", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if err := jpegdec.VerifyConcurrent(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode-eighth", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			if _, err := jpegdec.Decode(in, jpegdec.Options{Scale: 8}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

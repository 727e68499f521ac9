package jpegdec_test

import (
	"bytes"
	"image/jpeg"
	"sync"
	"testing"

	"github.com/clinicpro/clinicalimages/compress/enginetest"
	"github.com/clinicpro/clinicalimages/compress/internal/jpegdec"
)

// photo12MP is the 4032x3024 camera-like JPEG the compress benchmarks use.
var photo12MP = sync.OnceValue(func() []byte {
	return enginetest.EncodeJPEG(enginetest.Photo(4032, 3024, 42, true), 92)
})

// BenchmarkDecodeHalf12MP decodes the photo at 1/2 scale, as the pure-Go
// engine does for a 2048 px limit; BenchmarkImageJPEG12MP is image/jpeg's
// full decode of the same bytes, the path it replaces.
func BenchmarkDecodeHalf12MP(b *testing.B) {
	in := photo12MP()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jpegdec.Decode(in, jpegdec.Options{Scale: 2}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeHalf12MPConcurrent(b *testing.B) {
	in := photo12MP()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jpegdec.Decode(in, jpegdec.Options{Scale: 2, Concurrent: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeFull12MPConcurrent(b *testing.B) {
	in := photo12MP()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jpegdec.Decode(in, jpegdec.Options{Scale: 1, Concurrent: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkImageJPEG12MP(b *testing.B) {
	in := photo12MP()
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jpeg.Decode(bytes.NewReader(in)); err != nil {
			b.Fatal(err)
		}
	}
}

package compress_test

import (
	"bytes"
	"image/jpeg"
	"io"
	"testing"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
)

// BenchmarkNormalize12MP times the whole pipeline on one 12 MP phone photo
// to <= 2048 px under 1 MB. Compare with examples/bench/compress/run.sh for the
// side-by-side table against vipsthumbnail and ImageMagick.
func BenchmarkNormalize12MP(b *testing.B) {
	in := enginetest.Phone12MP()
	n, err := compress.New()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var res compress.Result
	for b.Loop() {
		res, err = n.Normalize(b.Context(), bytes.NewReader(in), io.Discard)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(res.OutBytes), "out-bytes")
	b.ReportMetric(float64(res.Quality), "quality")
}

// BenchmarkDecodeJPEG12MP is the floor set by image/jpeg alone.
func BenchmarkDecodeJPEG12MP(b *testing.B) {
	in := enginetest.Phone12MP()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jpeg.Decode(bytes.NewReader(in)); err != nil {
			b.Fatal(err)
		}
	}
}

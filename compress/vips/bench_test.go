//go:build vips && cgo

package vips_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
	"github.com/clinicpro/clinicalimages/compress/vips"
)

// BenchmarkNormalize12MP is compress's benchmark of the same name with the
// libvips engine: per image, after libvips' one-time start-up.
func BenchmarkNormalize12MP(b *testing.B) {
	in := enginetest.Phone12MP()
	e, err := vips.New()
	if err != nil {
		b.Fatal(err)
	}
	n, err := compress.New(compress.WithEngine(e))
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
	b.ReportMetric(float64(res.OutWidth), "out-width")
}

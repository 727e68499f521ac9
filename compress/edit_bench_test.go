package compress_test

import (
	"bytes"
	"context"
	"image"
	"testing"

	"github.com/clinicpro/clinicalimages/compress"
)

// BenchmarkEdit edits a 2048x1536 4:2:0 JPEG as Normalize stores it: a
// lossless quarter turn, a lossless crop, and a redaction (decode, fill,
// encode within the budget).
func BenchmarkEdit(b *testing.B) {
	in := storedJPEG(b, 2048, 1536)
	n, err := compress.New()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		e    compress.Edit
	}{
		{"rotate90-lossless", compress.Edit{Rotate: 90}},
		{"crop-lossless", compress.Edit{Crop: image.Rect(256, 128, 1800, 1400)}},
		{"rotate90-redact", compress.Edit{Rotate: 90, Redact: []image.Rectangle{image.Rect(400, 300, 900, 800)}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var out bytes.Buffer
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				out.Reset()
				res, err := n.Edit(context.Background(), bytes.NewReader(in), c.e, &out)
				if err != nil {
					b.Fatal(err)
				}
				if res.Lossless != (len(c.e.Redact) == 0) {
					b.Fatalf("lossless = %v", res.Lossless)
				}
			}
		})
	}
}

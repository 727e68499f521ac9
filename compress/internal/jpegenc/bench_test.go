package jpegenc

import (
	"image/jpeg"
	"io"
	"testing"
)

// BenchmarkEncode3MP codes a 2016x1512 picture (the pure-Go engine's output
// for a 12 MP photo) at quality 85 on two workers; BenchmarkImageJPEG3MP is
// image/jpeg on the same picture, one goroutine.
func BenchmarkEncode3MP(b *testing.B) {
	img := planes(picture(2016, 1512))
	b.ReportAllocs()
	for b.Loop() {
		if err := Encode(io.Discard, img, 85, 2); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkImageJPEG3MP(b *testing.B) {
	m := picture(2016, 1512)
	b.ReportAllocs()
	for b.Loop() {
		if err := jpeg.Encode(io.Discard, m, &jpeg.Options{Quality: 85}); err != nil {
			b.Fatal(err)
		}
	}
}

package compress

import "testing"

// BenchmarkResizePlane12MP times the Lanczos-3 resize of a 4032x3024 luma
// plane to 2048x1536, the largest step after decoding.
func BenchmarkResizePlane12MP(b *testing.B) {
	src := newPlane(4032, 3024)
	for i := range src.pix {
		src.pix[i] = uint8(i*7 + i/4032)
	}
	b.SetBytes(int64(len(src.pix)))
	for b.Loop() {
		resizePlane(src, 2048, 1536, false, false, 1, nil)
	}
}

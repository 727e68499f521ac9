// Package photo makes the deterministic test photos the benchmarks and the
// load generator upload, so every run compares like with like.
package photo

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
)

// Make returns n distinct JPEGs of roughly target bytes each. They are
// deterministic (the same n and target give the same bytes on every run), so
// runs compare like with like: a smooth colour field with grain seeded from
// the photo's index, which JPEG cannot squeeze much, like a phone photo of skin.
func Make(n, target int) ([][]byte, error) {
	if n < 1 || target < 8<<10 {
		return nil, fmt.Errorf("photos: need n >= 1 and target >= 8 KiB, got %d and %d", n, target)
	}
	out := make([][]byte, n)
	for i := range out {
		b, err := makeOne(i, target)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// makeOne calibrates the picture's size so its JPEG lands within 10% of
// target: grain compresses at a near constant rate per pixel, so two or
// three passes suffice.
func makeOne(seed, target int) ([]byte, error) {
	w, h := 800, 600
	var last []byte
	for range 6 {
		b, err := encodePhoto(seed, w, h)
		if err != nil {
			return nil, err
		}
		last = b
		ratio := float64(target) / float64(len(b))
		if ratio > 0.9 && ratio < 1.1 {
			return b, nil
		}
		scale := math.Sqrt(ratio)
		w, h = max(64, int(float64(w)*scale)), max(48, int(float64(h)*scale))
	}
	return last, nil
}

func encodePhoto(seed, w, h int) ([]byte, error) { return encodeQ(seed, w, h, 92) }

func encodeQ(seed, w, h, q int) ([]byte, error) {
	rng := rand.New(rand.NewPCG(uint64(seed)+1, 0x5eed))
	img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	base := float64(110 + 20*(seed%5))
	for y := range h {
		for x := range w {
			v := base + 40*math.Sin(float64(x)/97+float64(seed)) + 30*math.Cos(float64(y)/61) + float64(rng.IntN(48)) - 24
			img.Y[img.YOffset(x, y)] = clamp(v)
		}
	}
	for y := range (h + 1) / 2 {
		for x := range (w + 1) / 2 {
			o := img.COffset(2*x, 2*y)
			img.Cb[o] = clamp(118 + float64(rng.IntN(10)))
			img.Cr[o] = clamp(150 + float64(rng.IntN(10)))
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func clamp(v float64) uint8 {
	return uint8(min(255, max(0, v)))
}

// Camera returns a deterministic w x h JPEG at quality q, the picture Make
// draws (a colour field with grain): with 4032x3024 and q 90, a 12 MP
// desktop photo that the upload path must decode, shrink and re-encode.
func Camera(seed, w, h, q int) ([]byte, error) {
	if w < 16 || h < 16 || q < 1 || q > 100 {
		return nil, fmt.Errorf("photos: bad camera size %dx%d or quality %d", w, h, q)
	}
	return encodeQ(seed, w, h, q)
}

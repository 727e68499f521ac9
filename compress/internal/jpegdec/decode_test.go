package jpegdec

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// photo makes a w x h test picture with smooth gradients, edges and
// noise, so that every coefficient range is exercised.
func photo(w, h int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 1))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			o := img.PixOffset(x, y)
			n := uint8(rng.IntN(24))
			r := uint8(x*255/max(w-1, 1)) / 2
			g := uint8(128 + 100*math.Sin(float64(x*y)/float64(w*8)))
			b := uint8(0)
			if (x/13+y/17)%2 == 0 {
				b = 200
			}
			img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = r+n, g-n/2, b+n, 255
		}
	}
	return img
}

func encode(t testing.TB, img image.Image, q int) []byte {
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}))
	return buf.Bytes()
}

func TestDecodeTiming(t *testing.T) {
	path := os.Getenv("JPEGDEC_FILE")
	if path == "" {
		t.Skip()
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	for range 3 {
		start := testing.Benchmark(func(b *testing.B) {
			for b.Loop() {
				_, err := Decode(data, 2, nil)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		fmt.Println(start)
	}
	assert.True(t, true)
}

// fullYCbCr decodes data with image/jpeg.
func fullYCbCr(t testing.TB, data []byte) *image.YCbCr {
	img, err := jpeg.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	m, ok := img.(*image.YCbCr)
	require.True(t, ok, "%T", img)
	return m
}

// boxMean averages the s x s block of p at (x, y), clipped to w x h.
func boxMean(pix []byte, stride, w, h, x, y, s int) float64 {
	sum, n := 0, 0
	for j := y * s; j < min((y+1)*s, h); j++ {
		for i := x * s; i < min((x+1)*s, w); i++ {
			sum += int(pix[j*stride+i])
			n++
		}
	}
	return float64(sum) / float64(n)
}

// psnrVsBox compares plane p (decoded at 1/s) with the s x s box means of
// the full-scale plane.
func psnrVsBox(p Plane, full []byte, stride, w, h, s int) float64 {
	var se float64
	for y := range p.H {
		for x := range p.W {
			d := float64(p.Pix[y*p.Stride+x]) - boxMean(full, stride, w, h, x, y, s)
			se += d * d
		}
	}
	mse := se / float64(p.W*p.H)
	return 10 * math.Log10(255*255/math.Max(mse, 1e-9))
}

func TestDecodeMatchesImageJPEG(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		w, h  int
		sub   image.YCbCrSubsampleRatio
		q     int
		scale int
		min   float64 // dB against the box-filtered full decode
	}{
		{"420 half", 203, 131, image.YCbCrSubsampleRatio420, 90, 2, 40},
		{"420 quarter", 203, 131, image.YCbCrSubsampleRatio420, 90, 4, 44},
		{"420 eighth", 203, 131, image.YCbCrSubsampleRatio420, 90, 8, 42},
		{"420 q100 half", 64, 48, image.YCbCrSubsampleRatio420, 100, 2, 40},
		{"420 q20 eighth", 97, 61, image.YCbCrSubsampleRatio420, 20, 8, 42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := encode(t, photo(tc.w, tc.h, 7), tc.q)
			ref := fullYCbCr(t, data)
			got, err := Decode(data, tc.scale, nil)
			require.NoError(t, err)
			require.Len(t, got.Planes, 3)
			assert.Equal(t, tc.w, got.Width)
			assert.Equal(t, tc.h, got.Height)
			y := got.Planes[0]
			assert.Equal(t, (tc.w+tc.scale-1)/tc.scale, y.W)
			assert.Equal(t, (tc.h+tc.scale-1)/tc.scale, y.H)
			db := psnrVsBox(y, ref.Y, ref.YStride, tc.w, tc.h, tc.scale)
			t.Logf("Y %.1f dB", db)
			assert.GreaterOrEqual(t, db, tc.min, "Y")
			cw, ch := (tc.w+1)/2, (tc.h+1)/2
			for i, full := range [][]byte{ref.Cb, ref.Cr} {
				p := got.Planes[1+i]
				assert.Equal(t, (cw+tc.scale-1)/tc.scale, p.W)
				// The chroma of photo has hard edges, where the
				// in-block low-pass and a box filter differ most.
				assert.GreaterOrEqual(t, psnrVsBox(p, full, ref.CStride, cw, ch, tc.scale), 28.0, "chroma %d", i)
			}
		})
	}
}

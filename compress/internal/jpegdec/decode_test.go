package jpegdec

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
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
		q     int
		scale int
		min   float64 // dB against the box-filtered full decode
	}{
		{"420 full", 203, 131, 90, 1, 55},
		{"420 q100 full", 64, 48, 100, 1, 55},
		{"420 half", 203, 131, 90, 2, 40},
		{"420 quarter", 203, 131, 90, 4, 44},
		{"420 eighth", 203, 131, 90, 8, 42},
		{"420 q100 half", 64, 48, 100, 2, 40},
		{"420 q20 eighth", 97, 61, 20, 8, 42},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := encode(t, photo(tc.w, tc.h, 7), tc.q)
			ref := fullYCbCr(t, data)
			got, err := Decode(data, Options{Scale: tc.scale})
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

// TestDecodeConcurrent: the inverse DCTs on a second goroutine give the
// same planes as decoding on one, restart intervals included.
func TestDecodeConcurrent(t *testing.T) {
	t.Parallel()
	data := encode(t, photo(801, 611, 3), 85)
	for _, scale := range []int{1, 2, 4, 8} {
		one, err := Decode(data, Options{Scale: scale})
		require.NoError(t, err)
		two, err := Decode(data, Options{Scale: scale, Concurrent: true})
		require.NoError(t, err)
		require.Equal(t, one, two, "scale %d", scale)
	}
	// Cut inside the entropy-coded data: refused either way, no goroutine
	// left blocked (the race detector and goleak-free exit show it).
	_, err := Decode(data[:len(data)*2/3], Options{Scale: 2, Concurrent: true})
	var fe FormatError
	require.ErrorAs(t, err, &fe)
}

// chromaSize is the size of a chroma plane of a w x h image.
func chromaSize(w, h int, r image.YCbCrSubsampleRatio) (int, int) {
	switch r {
	case image.YCbCrSubsampleRatio422:
		return (w + 1) / 2, h
	case image.YCbCrSubsampleRatio420:
		return (w + 1) / 2, (h + 1) / 2
	case image.YCbCrSubsampleRatio440:
		return w, (h + 1) / 2
	case image.YCbCrSubsampleRatio411:
		return (w + 3) / 4, h
	}
	return w, h
}

// TestDecodeVariants decodes the files testdata/gen.sh made with libjpeg's
// cjpeg (every sampling layout, restart intervals by row and by block,
// optimised tables, grey) at each scale and compares them with image/jpeg's
// full decode, box-filtered; the variants left to image/jpeg must say
// ErrUnsupported.
func TestDecodeVariants(t *testing.T) {
	t.Parallel()
	unsupported := map[string]bool{"progressive.jpg": true, "arithmetic.jpg": true, "rgb.jpg": true, "cmyk.jpg": true}
	files, err := filepath.Glob("testdata/*.jpg")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 14)
	for _, f := range files {
		name := filepath.Base(f)
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, scale := range []int{1, 2, 4, 8} {
			t.Run(fmt.Sprintf("%s/%d", name, scale), func(t *testing.T) {
				got, err := Decode(data, Options{Scale: scale})
				if unsupported[name] {
					require.ErrorIs(t, err, ErrUnsupported)
					return
				}
				require.NoError(t, err)
				img, err := jpeg.Decode(bytes.NewReader(data))
				require.NoError(t, err)
				w, h := img.Bounds().Dx(), img.Bounds().Dy()
				assert.Equal(t, image.Pt(w, h), image.Pt(got.Width, got.Height))
				y := got.Planes[0]
				floor, cfloor := 30.0, 28.0
				if scale == 1 { // the same transform as image/jpeg's, to rounding
					floor, cfloor = 50, 50
				}
				assert.Equal(t, image.Pt((w+scale-1)/scale, (h+scale-1)/scale), image.Pt(y.W, y.H))
				switch m := img.(type) {
				case *image.Gray:
					require.Len(t, got.Planes, 1)
					assert.GreaterOrEqual(t, psnrVsBox(y, m.Pix, m.Stride, w, h, scale), floor)
				case *image.YCbCr:
					require.Len(t, got.Planes, 3)
					assert.GreaterOrEqual(t, psnrVsBox(y, m.Y, m.YStride, w, h, scale), floor, "Y")
					cw, ch := chromaSize(w, h, m.SubsampleRatio)
					for i, full := range [][]byte{m.Cb, m.Cr} {
						p := got.Planes[1+i]
						assert.Equal(t, image.Pt((cw+scale-1)/scale, (ch+scale-1)/scale), image.Pt(p.W, p.H))
						assert.GreaterOrEqual(t, psnrVsBox(p, full, m.CStride, cw, ch, scale), cfloor, "chroma %d", i)
					}
				default:
					t.Fatalf("image/jpeg gave %T", img)
				}
			})
		}
	}
}

// TestDecodeRefusesDamage cuts and corrupts a valid file: every damaged
// copy is refused with a FormatError (or decodes), never a panic, and a
// file cut inside its entropy-coded data is always refused.
func TestDecodeRefusesDamage(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/s420-rst1.jpg")
	require.NoError(t, err)
	sos := bytes.Index(data, []byte{0xFF, 0xDA})
	require.Positive(t, sos)
	for cut := 0; cut < len(data)-2; cut += 7 {
		_, err := Decode(data[:cut], Options{Scale: 2})
		require.Error(t, err, "cut at %d", cut)
		if cut > sos {
			var fe FormatError
			require.True(t, errors.As(err, &fe), "cut at %d: %v", cut, err)
		}
	}
	_, err = Decode(nil, Options{Scale: 2})
	assert.Error(t, err)
	_, err = Decode(data, Options{Scale: 3})
	assert.Error(t, err)
	_, err = Decode(data[:len(data)-300], Options{Scale: 1})
	assert.Error(t, err)
	// A restart marker out of sequence.
	bad := bytes.Clone(data)
	i := bytes.Index(bad[sos:], []byte{0xFF, 0xD1})
	require.Positive(t, i)
	bad[sos+i+1] = 0xD5
	_, err = Decode(bad, Options{Scale: 2})
	var fe FormatError
	assert.ErrorAs(t, err, &fe)
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"s420-rst1.jpg", "gray-rst.jpg", "s411.jpg", "progressive.jpg"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(data, uint8(2))
	}
	f.Fuzz(func(t *testing.T, data []byte, s uint8) {
		scale := 1 << (s % 4)
		// The caller (compress) bounds pixels before decoding; so does
		// this, keeping each run cheap enough for the fuzzer to minimise.
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		if err != nil || cfg.Width*cfg.Height > 1<<16 {
			return
		}
		img, err := Decode(data, Options{Scale: scale})
		if err != nil {
			return
		}
		require.Equal(t, image.Pt(cfg.Width, cfg.Height), image.Pt(img.Width, img.Height))
		for _, p := range img.Planes {
			require.LessOrEqual(t, p.W, p.Stride)
			require.LessOrEqual(t, p.W, (img.Width+scale-1)/scale)
			require.GreaterOrEqual(t, len(p.Pix), p.Stride*p.H)
		}
	})
}

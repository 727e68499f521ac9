package compress_test

import (
	"bytes"
	"cmp"
	"image"
	"image/jpeg"
	_ "image/png" // the references
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/heic"
)

// colourStats compares a picture with its reference decode, in 8-bit RGB.
type colourStats struct {
	rmse      float64 // over every R, G and B sample
	blockRMSE float64 // over the means of 4x4 blocks: colour, not chroma siting
	// rampMin and rampMax are the darkest and brightest luma along the
	// black-to-white ramp (the mean across its width, row by row).
	rampMin, rampMax   [2]float64 // [got, want]
	meanGot, meanWant  float64    // mean sample value
	worstChannelOffset float64    // largest |mean difference| of one channel
}

// The ramp in testdata/colour/source.png: columns 84..107, every row.
var rampCols = [2]int{88, 104}

func compareRGB(t *testing.T, got, want image.Image) colourStats {
	t.Helper()
	require.Equal(t, want.Bounds().Size(), got.Bounds().Size(), "output size")
	w, h := want.Bounds().Dx(), want.Bounds().Dy()
	px := func(m image.Image, x, y int) [3]float64 {
		r, g, b, _ := m.At(m.Bounds().Min.X+x, m.Bounds().Min.Y+y).RGBA()
		return [3]float64{float64(r >> 8), float64(g >> 8), float64(b >> 8)}
	}
	s := colourStats{rampMin: [2]float64{255, 255}}
	var sq, bsq float64
	var sum [2][3]float64
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			g, r := px(got, x, y), px(want, x, y)
			for c := range 3 {
				sq += (g[c] - r[c]) * (g[c] - r[c])
				sum[0][c] += g[c]
				sum[1][c] += r[c]
			}
		}
	}
	nb := 0
	for y := 0; y+4 <= h; y += 4 {
		for x := 0; x+4 <= w; x += 4 {
			var d [3]float64
			for j := range 4 {
				for i := range 4 {
					g, r := px(got, x+i, y+j), px(want, x+i, y+j)
					for c := range 3 {
						d[c] += (g[c] - r[c]) / 16
					}
				}
			}
			for c := range 3 {
				bsq += d[c] * d[c]
			}
			nb++
		}
	}
	for y := 0; y < h; y++ {
		for k, m := range []image.Image{got, want} {
			var l float64
			for x := rampCols[0]; x < rampCols[1]; x++ {
				p := px(m, x, y)
				l += 0.299*p[0] + 0.587*p[1] + 0.114*p[2]
			}
			l /= float64(rampCols[1] - rampCols[0])
			s.rampMin[k], s.rampMax[k] = min(s.rampMin[k], l), max(s.rampMax[k], l)
		}
	}
	n := float64(w * h)
	s.rmse = math.Sqrt(sq / (3 * n))
	s.blockRMSE = math.Sqrt(bsq / float64(3*nb))
	for c := range 3 {
		s.meanGot += sum[0][c] / (3 * n)
		s.meanWant += sum[1][c] / (3 * n)
		s.worstChannelOffset = max(s.worstChannelOffset, math.Abs(sum[0][c]-sum[1][c])/n)
	}
	return s
}

func readImage(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	m, _, err := image.Decode(f)
	require.NoError(t, err, path)
	return m
}

// Colour tolerances: what the JPEG path meets against djpeg, with a margin.
// Our output is a q95 re-encode (4:2:0) decoded by image/jpeg, which
// upsamples chroma by replication where the reference decoders interpolate,
// so a perfect pipeline still differs by a couple of levels on edges. A
// range error (limited-range YCbCr read as full range) costs about 13% of
// the contrast: the darkest and brightest samples move by 7 to 16 levels
// and the RMSE more than doubles.
// Measured on these files: JPEG RMSE 3.5, block RMSE 1.7, ramp within 0.1;
// WebP read as full range (before the fix) RMSE 8.2, block RMSE 7.2, ramp
// 15.7..233.3 against dwebp's 0..253.
const (
	colourRMSE      = 6.0 // levels of 255, sample by sample
	colourBlockRMSE = 2.0 // levels, 4x4 block means (JPEG: 1.7)
	colourExtreme   = 4   // levels, for the darkest and brightest sample
	colourOffset    = 1.5 // levels, mean difference of one channel
)

// TestColourMatchesReferenceDecoders normalises one picture stored in every
// input format and compares the output's pixels with what the format's
// reference decoder (djpeg, dwebp, heif-convert, ImageMagick for CMYK)
// makes of the same file. The references were made once by
// testdata/colour/make-references.sh and are committed, so the test needs
// none of those tools. Every input is smaller than the long-edge limit,
// so nothing is resized and the comparison is pixel for pixel.
func TestColourMatchesReferenceDecoders(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("testdata", "colour")
	cases := []struct {
		name, input, ref string
		format           compress.Format
		blockRMSE        float64 // 0: colourBlockRMSE
	}{
		{"jpeg", "jpeg.jpg", "jpeg.ref.png", compress.JPEG, 0},
		{"png", "source.png", "source.png", compress.PNG, 0},
		{"webp", "webp.webp", "webp.ref.png", compress.WebP, 0},
		{"webp-lossless", "webp-lossless.webp", "source.png", compress.WebP, 0},
		// HEIC sits at 2.8: libde265's 4:2:0 chroma is sited left
		// (MPEG-2 style) and heif-convert upsamples it so, where a JPEG's
		// is centred; the range and matrix checks below hold as tightly.
		{"heic", "heic.heic", "heic.ref.png", compress.HEIC, 3.0},
		{"cmyk-jpeg", "cmyk.jpg", "cmyk.ref.png", compress.JPEG, 0},
		{"grey-jpeg", "grey.jpg", "grey.ref.png", compress.JPEG, 0},
	}
	n, err := compress.New(heic.Option(), compress.WithQuality(95, 95), compress.WithPassthrough(false))
	require.NoError(t, err)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in, err := os.ReadFile(filepath.Join(dir, c.input))
			require.NoError(t, err)
			var out bytes.Buffer
			res, err := n.Normalize(t.Context(), bytes.NewReader(in), &out)
			require.NoError(t, err)
			require.Equal(t, c.format, res.Format)
			got, err := jpeg.Decode(&out)
			require.NoError(t, err)
			s := compareRGB(t, got, readImage(t, filepath.Join(dir, c.ref)))
			t.Logf("%s: RMSE %.2f (%.2f%%), 4x4-block RMSE %.2f, ramp min %.1f vs %.1f, max %.1f vs %.1f, mean %.1f vs %.1f, worst channel offset %.2f",
				c.name, s.rmse, 100*s.rmse/255, s.blockRMSE, s.rampMin[0], s.rampMin[1], s.rampMax[0], s.rampMax[1], s.meanGot, s.meanWant, s.worstChannelOffset)
			assert.LessOrEqual(t, s.rmse, colourRMSE, "RMSE against the reference decoder")
			assert.LessOrEqual(t, s.blockRMSE, cmp.Or(c.blockRMSE, colourBlockRMSE), "RMSE of 4x4 block means against the reference decoder")
			assert.InDelta(t, s.rampMin[1], s.rampMin[0], colourExtreme, "darkest end of the ramp")
			assert.InDelta(t, s.rampMax[1], s.rampMax[0], colourExtreme, "brightest end of the ramp")
			assert.LessOrEqual(t, s.worstChannelOffset, colourOffset, "mean shift of a channel")
		})
	}
}

// Package enginetest is the contract every compress.Engine must meet, run
// through a compress.Normalizer so that engines are judged by what callers
// get: upright pixels for all eight EXIF orientations, no metadata in the
// output, colour kept (Display P3 converted to sRGB), alpha on white, long
// edge within limits and never upscaled, budgets held, deterministic bytes,
// a picture close to a reference downscale, HEIC decoded upright with the
// decoder registered through compress.WithDecoder (package compress/heic,
// which this test kit links; compress itself does not), truncated data
// refused as corrupt. It also generates the test images
// (deterministically) that the tests and benchmarks use.
//
// Usage, in an engine's package tests:
//
//	func TestContract(t *testing.T) { enginetest.Run(t, myengine.New()) }
package enginetest

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"testing"

	"github.com/rwcarlsen/goexif/exif"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress"
)

// Run runs the contract against e. Subtests run in parallel.
func Run(t *testing.T, e compress.Engine) {
	t.Run("Orientation", func(t *testing.T) { t.Parallel(); testOrientation(t, e) })
	t.Run("MetadataStripped", func(t *testing.T) { t.Parallel(); testMetadata(t, e) })
	t.Run("DisplayP3", func(t *testing.T) { t.Parallel(); testP3(t, e) })
	t.Run("AlphaOnWhite", func(t *testing.T) { t.Parallel(); testAlpha(t, e) })
	t.Run("WebPAlphaOnWhite", func(t *testing.T) { t.Parallel(); testWebPAlpha(t, e) })
	t.Run("Formats", func(t *testing.T) { t.Parallel(); testFormats(t, e) })
	t.Run("Size", func(t *testing.T) { t.Parallel(); testSize(t, e) })
	t.Run("BudgetShrinks", func(t *testing.T) { t.Parallel(); testBudgetShrink(t, e) })
	t.Run("HEIC", func(t *testing.T) { t.Parallel(); testHEIC(t, e) })
	t.Run("Truncated", func(t *testing.T) { t.Parallel(); testTruncated(t, e) })
}

func encodePNG(w *bytes.Buffer, m image.Image) error { return png.Encode(w, m) }

func newNormalizer(t *testing.T, e compress.Engine, opts ...compress.Option) *compress.Normalizer {
	t.Helper()
	// Passthrough off: a compliant JPEG must reach the engine too.
	n, err := compress.New(append([]compress.Option{compress.WithEngine(e), compress.WithPassthrough(false)}, opts...)...)
	require.NoError(t, err)
	return n
}

func normalize(t *testing.T, n *compress.Normalizer, in []byte) (compress.Result, []byte, image.Image) {
	t.Helper()
	var out bytes.Buffer
	res, err := n.Normalize(t.Context(), bytes.NewReader(in), &out)
	require.NoError(t, err)
	require.Equal(t, int64(out.Len()), res.OutBytes)
	img, err := jpeg.Decode(bytes.NewReader(out.Bytes()))
	require.NoError(t, err, "output must be a JPEG")
	require.Equal(t, image.Pt(res.OutWidth, res.OutHeight), img.Bounds().Size())
	AssertNoMetadata(t, out.Bytes())
	return res, out.Bytes(), img
}

// MeanRGB averages the colour over r.
func MeanRGB(img image.Image, r image.Rectangle) (float64, float64, float64) {
	var sr, sg, sb, n float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			sr, sg, sb, n = sr+float64(cr>>8), sg+float64(cg>>8), sb+float64(cb>>8), n+1
		}
	}
	return sr / n, sg / n, sb / n
}

// AssertNoMetadata fails unless jpg's segments before the image data are
// only coding segments (DQT, SOF, DHT, DRI, JFIF APP0, Adobe APP14).
func AssertNoMetadata(t *testing.T, jpg []byte) {
	t.Helper()
	require.True(t, len(jpg) > 4 && jpg[0] == 0xFF && jpg[1] == 0xD8, "not a JPEG")
	for i := 2; i+4 <= len(jpg); {
		require.Equal(t, byte(0xFF), jpg[i], "bad marker at %d", i)
		m := jpg[i+1]
		if m == 0xDA {
			return
		}
		l := int(jpg[i+2])<<8 | int(jpg[i+3])
		seg := jpg[i+4 : i+2+l]
		switch {
		case m == 0xE0 && bytes.HasPrefix(seg, []byte("JFIF\x00")):
		case m == 0xEE && bytes.HasPrefix(seg, []byte("Adobe")):
		case m >= 0xE0 && m <= 0xEF, m == 0xFE:
			t.Errorf("output carries metadata segment 0x%X (%q...)", m, seg[:min(len(seg), 12)])
		}
		i += 2 + l
	}
}

func testOrientation(t *testing.T, e compress.Engine) {
	n := newNormalizer(t, e, compress.WithMaxLongEdge(160))
	upright := Photo(320, 240, 7, true) // markers 30 px, inset 15
	for o := 1; o <= 8; o++ {
		stored := Unorient(upright, o)
		in := InsertSegment(EncodeJPEG(stored, 95), 0xE1, append([]byte("Exif\x00\x00"), EXIF(o, false)...))
		res, _, img := normalize(t, n, in)
		assert.Equal(t, o, res.Orientation, "orientation %d", o)
		require.Equal(t, image.Pt(160, 120), img.Bounds().Size(), "orientation %d: output must be upright landscape", o)
		// Marker centres: inset 7.5 + half of 15 = 15 px from the edges.
		r, g, b := MeanRGB(img, image.Rect(12, 12, 18, 18))
		assert.True(t, r > 150 && g < 90 && b < 90, "orientation %d: top-left should be red, got %.0f,%.0f,%.0f", o, r, g, b)
		r, g, b = MeanRGB(img, image.Rect(160-18, 12, 160-12, 18))
		assert.True(t, b > 150 && r < 90 && g < 90, "orientation %d: top-right should be blue, got %.0f,%.0f,%.0f", o, r, g, b)
	}
}

func testMetadata(t *testing.T, e compress.Engine) {
	n := newNormalizer(t, e)
	in := EncodeJPEG(Photo(200, 150, 3, false), 90)
	in = InsertSegment(in, 0xFE, []byte("patient: Jane Doe NHI ZZZ0016"))
	in = InsertSegment(in, 0xED, []byte("Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x00"))
	in = InsertSegment(in, 0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta/>"))
	in = InsertSegment(in, 0xE1, append([]byte("Exif\x00\x00"), EXIF(1, true)...))

	before, err := exif.Decode(bytes.NewReader(in))
	require.NoError(t, err, "the input must carry readable EXIF")
	lat, long, err := before.LatLong()
	require.NoError(t, err, "the input must carry GPS")
	assert.InDelta(t, -41.28, lat, 0.01)
	assert.InDelta(t, 174.77, long, 0.01)

	res, out, _ := normalize(t, n, in)
	for _, m := range []compress.Metadata{compress.MetaEXIF, compress.MetaGPS, compress.MetaXMP, compress.MetaIPTC, compress.MetaComment} {
		assert.True(t, res.Stripped.Has(m), "Stripped should report %v, got %v", m, res.Stripped)
	}
	_, err = exif.Decode(bytes.NewReader(out))
	assert.Error(t, err, "the output must carry no EXIF at all")
	assert.NotContains(t, string(out), "Jane Doe")
	assert.NotContains(t, string(out), "Phone")
}

func testP3(t *testing.T, e compress.Engine) {
	n := newNormalizer(t, e, compress.WithQuality(95, 95))
	colours := []color.RGBA{{224, 172, 105, 255}, {60, 170, 80, 255}, {200, 60, 60, 255}}
	img := image.NewRGBA(image.Rect(0, 0, 96*len(colours), 96))
	for i, c := range colours {
		p3 := SRGBToP3(c)
		draw.Draw(img, image.Rect(96*i, 0, 96*(i+1), 96), image.NewUniform(p3), image.Point{}, draw.Src)
		d := math.Max(math.Abs(float64(p3.R)-float64(c.R)), math.Max(math.Abs(float64(p3.G)-float64(c.G)), math.Abs(float64(p3.B)-float64(c.B))))
		require.Greater(t, d, 8.0, "P3 and sRGB values must differ for the test to mean anything")
	}
	in := EncodeJPEG(img, 98)
	for _, seg := range ICCSegments(DisplayP3Profile()) {
		in = InsertSegment(in, 0xE2, seg)
	}
	res, _, out := normalize(t, n, in)
	assert.True(t, res.Stripped.Has(compress.MetaICC))
	assert.True(t, res.ColourConverted, "a Display P3 input must be converted")
	for i, c := range colours {
		r, g, b := MeanRGB(out, image.Rect(96*i+32, 32, 96*i+64, 64))
		assert.InDelta(t, float64(c.R), r, 4, "colour %d red", i)
		assert.InDelta(t, float64(c.G), g, 4, "colour %d green", i)
		assert.InDelta(t, float64(c.B), b, 4, "colour %d blue", i)
	}
}

func testAlpha(t *testing.T, e compress.Engine) {
	n := newNormalizer(t, e)
	img := image.NewNRGBA(image.Rect(0, 0, 120, 80)) // fully transparent
	draw.Draw(img, image.Rect(40, 20, 80, 60), image.NewUniform(color.NRGBA{200, 30, 30, 255}), image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(0, 60, 120, 80), image.NewUniform(color.NRGBA{0, 0, 0, 128}), image.Point{}, draw.Src)
	var in bytes.Buffer
	require.NoError(t, png.Encode(&in, img))
	_, _, out := normalize(t, n, in.Bytes())
	r, g, b := MeanRGB(out, image.Rect(4, 4, 30, 16))
	assert.True(t, r > 245 && g > 245 && b > 245, "transparent must become white, got %.0f,%.0f,%.0f", r, g, b)
	r, g, b = MeanRGB(out, image.Rect(50, 30, 70, 50))
	assert.True(t, r > 170 && g < 60 && b < 60, "opaque red must stay red, got %.0f,%.0f,%.0f", r, g, b)
	r, _, _ = MeanRGB(out, image.Rect(4, 66, 116, 76))
	assert.InDelta(t, 127, r, 8, "half-transparent black over white is mid grey")
}

// Inputs returns named, deterministic test inputs in every format that can
// be generated in Go, each paired with its upright reference image.
func Inputs() []struct {
	Name    string
	Data    []byte
	Upright image.Image
} {
	type in = struct {
		Name    string
		Data    []byte
		Upright image.Image
	}
	photo := Photo(480, 360, 11, true)
	var out []in
	out = append(out, in{"jpeg", EncodeJPEG(photo, 92), photo})
	rot := Unorient(photo, 6)
	out = append(out, in{"jpeg-orient6-gps", InsertSegment(EncodeJPEG(rot, 92), 0xE1, append([]byte("Exif\x00\x00"), EXIF(6, true)...)), photo})
	gray := image.NewGray(photo.Bounds())
	draw.Draw(gray, gray.Bounds(), photo, image.Point{}, draw.Src)
	out = append(out, in{"jpeg-gray", EncodeJPEG(gray, 92), gray})
	enc := func(m image.Image) []byte {
		var b bytes.Buffer
		if err := png.Encode(&b, m); err != nil {
			panic(err)
		}
		return b.Bytes()
	}
	out = append(out, in{"png-rgba", enc(photo), photo})
	deep := image.NewNRGBA64(photo.Bounds())
	draw.Draw(deep, deep.Bounds(), photo, image.Point{}, draw.Src)
	out = append(out, in{"png-16bit", enc(deep), photo})
	pal := image.NewPaletted(photo.Bounds(), palette())
	draw.FloydSteinberg.Draw(pal, pal.Bounds(), photo, image.Point{})
	out = append(out, in{"png-palette", enc(pal), pal})
	var g bytes.Buffer
	if err := gif.Encode(&g, photo, &gif.Options{NumColors: 256}); err != nil {
		panic(err)
	}
	gi, err := gif.Decode(bytes.NewReader(g.Bytes()))
	if err != nil {
		panic(err)
	}
	out = append(out, in{"gif", g.Bytes(), gi})
	cm, err := jpeg.Decode(bytes.NewReader(jpegCMYK))
	if err != nil {
		panic(err)
	}
	out = append(out, in{"jpeg-cmyk", CMYKJPEG(), cm})
	pj, err := jpeg.Decode(bytes.NewReader(jpegProgressive))
	if err != nil {
		panic(err)
	}
	out = append(out, in{"jpeg-progressive-422", bytes.Clone(jpegProgressive), pj})
	for _, name := range []string{"webp-lossy", "webp-lossless"} {
		d := WebPSamples()[name]
		out = append(out, in{name, d, mustWebP(d)})
	}
	return out
}

func palette() color.Palette {
	p := make(color.Palette, 0, 216)
	for r := 0; r < 6; r++ {
		for g := 0; g < 6; g++ {
			for b := 0; b < 6; b++ {
				p = append(p, color.RGBA{uint8(r * 51), uint8(g * 51), uint8(b * 51), 255})
			}
		}
	}
	return p
}

// PSNR compares a and b (same size) over RGB, in dB.
func PSNR(a, b image.Image) float64 {
	r := a.Bounds()
	var se, n float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			ar, ag, ab, _ := a.At(x, y).RGBA()
			br, bg, bb, _ := b.At(x-r.Min.X+b.Bounds().Min.X, y-r.Min.Y+b.Bounds().Min.Y).RGBA()
			for _, d := range []float64{float64(ar>>8) - float64(br>>8), float64(ag>>8) - float64(bg>>8), float64(ab>>8) - float64(bb>>8)} {
				se += d * d
			}
			n += 3
		}
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(se/n))
}

// BoxDownscale is a plain area-average reference resize to w x h.
func BoxDownscale(src image.Image, w, h int) *image.RGBA {
	b := src.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		y0, y1 := b.Min.Y+y*b.Dy()/h, b.Min.Y+max((y+1)*b.Dy()/h, y*b.Dy()/h+1)
		for x := 0; x < w; x++ {
			x0, x1 := b.Min.X+x*b.Dx()/w, b.Min.X+max((x+1)*b.Dx()/w, x*b.Dx()/w+1)
			r, g, bb := MeanRGB(src, image.Rect(x0, y0, x1, y1))
			out.SetRGBA(x, y, color.RGBA{uint8(r + 0.5), uint8(g + 0.5), uint8(bb + 0.5), 255})
		}
	}
	return out
}

func testFormats(t *testing.T, e compress.Engine) {
	const budget = 40 << 10
	n := newNormalizer(t, e, compress.WithMaxLongEdge(320), compress.WithByteBudget(budget))
	for _, in := range Inputs() {
		t.Run(in.Name, func(t *testing.T) {
			res, out, img := normalize(t, n, in.Data)
			assert.LessOrEqual(t, res.OutBytes, int64(budget), "budget")
			want := in.Upright.Bounds().Size()
			wantLong := min(320, max(want.X, want.Y))
			assert.InDelta(t, wantLong, max(res.OutWidth, res.OutHeight), float64(wantLong)/20, "long edge")
			assert.InDelta(t, float64(want.X)/float64(want.Y), float64(res.OutWidth)/float64(res.OutHeight), 0.02, "aspect ratio")
			ref := BoxDownscale(in.Upright, res.OutWidth, res.OutHeight)
			floor := 24.0
			if in.Name == "jpeg-cmyk" {
				// CMYK without a profile has no single right conversion:
				// a naive one (image/jpeg's) and a colour-managed one
				// (with a fallback CMYK profile) differ by a few dB.
				floor = 20
			}
			assert.Greater(t, PSNR(ref, img), floor, "output must look like the input")
			// Deterministic: the same input gives the same bytes.
			var again bytes.Buffer
			_, err := n.Normalize(t.Context(), bytes.NewReader(in.Data), &again)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(out, again.Bytes()), "output must be deterministic")
		})
	}
}

func testSize(t *testing.T, e compress.Engine) {
	n := newNormalizer(t, e, compress.WithMaxLongEdge(400))
	cases := []struct {
		name       string
		w, h       int
		wantW      int
		wantH      int
		exactRatio bool
	}{
		{"small is never upscaled", 100, 60, 100, 60, true},
		{"landscape to long edge", 800, 600, 400, 300, false},
		{"portrait to long edge", 600, 900, 267, 400, false},
		{"exactly the limit", 400, 100, 400, 100, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, _, _ := normalize(t, n, EncodeJPEG(Photo(c.w, c.h, 5, false), 90))
			if c.exactRatio {
				assert.Equal(t, image.Pt(c.wantW, c.wantH), image.Pt(res.OutWidth, res.OutHeight))
				return
			}
			long := max(res.OutWidth, res.OutHeight)
			assert.LessOrEqual(t, long, 400)
			assert.GreaterOrEqual(t, long, 380, "at least 95%% of the limit")
			assert.InDelta(t, float64(c.w)/float64(c.h), float64(res.OutWidth)/float64(res.OutHeight), 0.02)
		})
	}
}

func testBudgetShrink(t *testing.T, e compress.Engine) {
	// Pure noise does not fit 12 KB at 512 px even at the floor quality:
	// the engine must scale down further and still meet the budget.
	const budget = 12 << 10
	n := newNormalizer(t, e, compress.WithMaxLongEdge(512), compress.WithByteBudget(budget), compress.WithQuality(50, 90))
	img := image.NewGray(image.Rect(0, 0, 512, 512))
	s := uint32(1)
	for i := range img.Pix {
		s = s*1664525 + 1013904223
		img.Pix[i] = uint8(s >> 24)
	}
	res, _, _ := normalize(t, n, EncodeJPEG(img, 95))
	assert.LessOrEqual(t, res.OutBytes, int64(budget))
	assert.Less(t, res.OutWidth, 512, "must have scaled down to fit")
	assert.GreaterOrEqual(t, res.Quality, 50)
}

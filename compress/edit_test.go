package compress_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
	"github.com/clinicpro/clinicalimages/compress/internal/jpegdec"
	"github.com/clinicpro/clinicalimages/compress/internal/jpegenc"
)

// editVariants are 77x53 JPEGs from cjpeg in every sampling the decoder
// handles (compress/testdata/edit/gen.sh).
var editVariants = []string{"s420", "s422", "s444", "s440", "s411", "gray", "s420-rst1"}

func editFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "edit", name+".jpg"))
	require.NoError(t, err)
	return b
}

func editBytes(t testing.TB, n *compress.Normalizer, in []byte, e compress.Edit) (compress.EditResult, []byte, error) {
	t.Helper()
	var out bytes.Buffer
	res, err := n.Edit(context.Background(), bytes.NewReader(in), e, &out)
	if err == nil {
		require.Equal(t, int64(out.Len()), res.Bytes)
	}
	return res, out.Bytes(), err
}

// storedJPEG is what Normalize stores for a w x h photo: the package's own
// 4:2:0 encoder (passthrough off, so it is re-encoded).
func storedJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	n, err := compress.New(compress.WithPassthrough(false))
	require.NoError(t, err)
	var out bytes.Buffer
	res, err := n.Normalize(context.Background(), bytes.NewReader(encodePNG(t, enginetest.Photo(w, h, 5, true))), &out)
	require.NoError(t, err)
	require.Equal(t, w, res.OutWidth)
	require.False(t, res.Passthrough)
	return out.Bytes()
}

// rotated returns img turned clockwise by rot degrees, its samples kept
// as decoded (4:4:4, chroma repeated as image/jpeg's At does).
func rotated(img image.Image, rot int) *image.YCbCr {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	ow, oh := w, h
	if rot == 90 || rot == 270 {
		ow, oh = h, w
	}
	out := image.NewYCbCr(image.Rect(0, 0, ow, oh), image.YCbCrSubsampleRatio444)
	for y := range oh {
		for x := range ow {
			var sx, sy int
			switch rot {
			case 0:
				sx, sy = x, y
			case 90:
				sx, sy = y, h-1-x
			case 180:
				sx, sy = w-1-x, h-1-y
			case 270:
				sx, sy = w-1-y, x
			}
			c := color.YCbCrModel.Convert(img.At(b.Min.X+sx, b.Min.Y+sy)).(color.YCbCr)
			i := out.YOffset(x, y)
			out.Y[i], out.Cb[i], out.Cr[i] = c.Y, c.Cb, c.Cr
		}
	}
	return out
}

// maxDiff returns the largest Y, Cb or Cr difference between got and
// want's region r (got's origin at r.Min), failing on a size mismatch. It
// compares the decoded samples, before any conversion to RGB.
func maxDiff(t *testing.T, got image.Image, want image.Image, r image.Rectangle) int {
	t.Helper()
	require.Equal(t, r.Size(), got.Bounds().Size(), "output size")
	d := 0
	gb := got.Bounds()
	for y := range r.Dy() {
		for x := range r.Dx() {
			a := color.YCbCrModel.Convert(got.At(gb.Min.X+x, gb.Min.Y+y)).(color.YCbCr)
			b := color.YCbCrModel.Convert(want.At(r.Min.X+x, r.Min.Y+y)).(color.YCbCr)
			for _, p := range [][2]uint8{{a.Y, b.Y}, {a.Cb, b.Cb}, {a.Cr, b.Cr}} {
				d = max(d, absInt(int(p[0])-int(p[1])))
			}
		}
	}
	return d
}

func absInt(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// decodeAny decodes with image/jpeg, or with the package's own decoder for
// a sampling image/jpeg does not support (4:1:1 turned: Y sampled 1x4).
func decodeAny(t *testing.T, b []byte) image.Image {
	t.Helper()
	if img, err := jpeg.Decode(bytes.NewReader(b)); err == nil {
		return img
	}
	d, err := jpegdec.Decode(b, jpegdec.Options{Scale: 1})
	require.NoError(t, err)
	c, err := jpegdec.ProbeCoefficients(b)
	require.NoError(t, err)
	hmax, vmax := 1, 1
	for _, k := range c.Comps {
		hmax, vmax = max(hmax, k.H), max(vmax, k.V)
	}
	require.Len(t, d.Planes, 3)
	out := image.NewYCbCr(image.Rect(0, 0, d.Width, d.Height), image.YCbCrSubsampleRatio444)
	for y := range d.Height {
		for x := range d.Width {
			i := out.YOffset(x, y)
			out.Y[i] = d.Planes[0].Pix[y*d.Planes[0].Stride+x]
			cx, cy := x*c.Comps[1].H/hmax, y*c.Comps[1].V/vmax
			out.Cb[i] = d.Planes[1].Pix[cy*d.Planes[1].Stride+cx]
			out.Cr[i] = d.Planes[2].Pix[cy*d.Planes[2].Stride+cx]
		}
	}
	return out
}

// TestEditLosslessRotation: every rotation of every sampling, and of a
// picture Normalize stored with its own encoder, is lossless and gives the
// source's decoded samples turned over the region kept (decoded by
// image/jpeg, a decoder that is not ours): exactly with no turn, within 1
// otherwise. The coefficients are moved exactly (TestMatchesJPEGTran in
// internal/jpegtran holds them to libjpeg-turbo's jpegtran); the 1 is
// image/jpeg's integer inverse DCT, which rounds a transposed or mirrored
// block differently (measured: 1 in Y, Cb or Cr, never more).
func TestEditLosslessRotation(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	inputs := map[string][]byte{"stored-301x203": storedJPEG(t, 301, 203)}
	for _, v := range editVariants {
		inputs[v] = editFile(t, v)
	}
	for name, in := range inputs {
		src := decodeAny(t, in)
		for _, rot := range []int{0, 90, 180, 270} {
			t.Run(name, func(t *testing.T) {
				res, out, err := editBytes(t, n, in, compress.Edit{Rotate: rot})
				require.NoError(t, err)
				assert.True(t, res.Lossless, "rotation %d is lossless", rot)
				assert.Zero(t, res.Quality)
				assert.Equal(t, res.Region.Size(), image.Pt(res.Width, res.Height))
				full := rotated(src, rot)
				// At most one MCU less, along the flipped axes only.
				assert.LessOrEqual(t, full.Bounds().Dx()-res.Region.Dx(), 31)
				assert.LessOrEqual(t, full.Bounds().Dy()-res.Region.Dy(), 15)
				assert.Equal(t, full.Bounds().Max, res.Region.Max, "the trim is at the flipped (left/top) edges")
				tol := 1
				if rot == 0 {
					tol = 0
				}
				if d := maxDiff(t, decodeAny(t, out), full, res.Region); d > tol {
					t.Errorf("rotation %d: samples differ by up to %d", rot, d)
				}
				enginetest.AssertNoMetadata(t, out)
			})
		}
	}
}

// TestEditQuarterTurns: once trimmed, four quarter turns give the same
// bytes back, and so do 90 then 270 and 180 twice.
func TestEditQuarterTurns(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	for _, name := range []string{"s420", "s422", "gray", "stored"} {
		t.Run(name, func(t *testing.T) {
			var in []byte
			if name == "stored" {
				in = storedJPEG(t, 250, 170)
			} else {
				in = editFile(t, name)
			}
			turn := func(b []byte, rot int) []byte {
				res, out, err := editBytes(t, n, b, compress.Edit{Rotate: rot})
				require.NoError(t, err)
				require.True(t, res.Lossless)
				return out
			}
			base := turn(in, 180) // trimmed to whole MCUs on both axes
			cur := base
			for range 4 {
				cur = turn(cur, 90)
			}
			assert.True(t, bytes.Equal(base, cur), "four quarter turns")
			assert.True(t, bytes.Equal(base, turn(turn(base, 90), 270)), "90 then 270")
			assert.True(t, bytes.Equal(base, turn(turn(base, 180), 180)), "180 twice")
			assert.True(t, bytes.Equal(base, turn(base, 0)), "no turn")
			assert.False(t, bytes.Equal(base, turn(base, 90)), "a quarter turn changes the file")
		})
	}
}

// TestEditLosslessCrop: a crop whose edges are on the MCU grid (or at the
// picture's edge) is lossless, and its pixels are the source's, exactly.
func TestEditLosslessCrop(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	cases := []struct {
		name string
		in   []byte
		rot  int
		crop image.Rectangle
	}{
		{"s420", editFile(t, "s420"), 0, image.Rect(16, 16, 48, 32)},
		{"s422 to the edge", editFile(t, "s422"), 0, image.Rect(32, 8, 77, 53)},
		{"s444 one MCU wide", editFile(t, "s444"), 0, image.Rect(8, 40, 16, 53)},
		{"gray", editFile(t, "gray"), 0, image.Rect(72, 0, 77, 8)},
		{"s411", editFile(t, "s411"), 0, image.Rect(32, 8, 64, 48)},
		{"stored 90", storedJPEG(t, 301, 203), 90, image.Rect(11+32, 48, 11+96, 301)},
		{"stored 270", storedJPEG(t, 301, 203), 270, image.Rect(0, 13+16, 203, 13+32)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, out, err := editBytes(t, n, c.in, compress.Edit{Rotate: c.rot, Crop: c.crop})
			require.NoError(t, err)
			assert.True(t, res.Lossless)
			assert.Equal(t, c.crop, res.Region)
			assert.Equal(t, c.crop.Size(), image.Pt(res.Width, res.Height))
			tol := 1 // a turned block's inverse DCT rounds differently, see above
			if c.rot == 0 {
				tol = 0
			}
			if d := maxDiff(t, decodeAny(t, out), rotated(decodeAny(t, c.in), c.rot), c.crop); d > tol {
				t.Errorf("samples differ by up to %d", d)
			}
		})
	}
}

// TestEditOffGridCrop: a crop off the grid is re-encoded once, exactly the
// crop asked for, close to the source.
func TestEditOffGridCrop(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	in := storedJPEG(t, 301, 203)
	// 180° keeps (13, 11)-(301, 203); 20-13 and 15-11 are off the grid.
	crop := image.Rect(20, 15, 250, 190)
	res, out, err := editBytes(t, n, in, compress.Edit{Rotate: 180, Crop: crop})
	require.NoError(t, err)
	assert.False(t, res.Lossless)
	assert.Equal(t, crop, res.Region)
	assert.Equal(t, crop.Size(), image.Pt(res.Width, res.Height))
	assert.Equal(t, 85, res.Quality)
	got := decodeAny(t, out)
	want := rotated(decodeAny(t, in), 180).SubImage(crop)
	psnr := enginetest.PSNR(got, want)
	t.Logf("off-grid crop re-encoded at q%d: PSNR %.1f dB against the source", res.Quality, psnr)
	assert.Greater(t, psnr, 30.0)
	enginetest.AssertNoMetadata(t, out)
}

// TestEditPassthroughPhoneJPEG: a phone JPEG stored bit for bit by the
// passthrough path (here 4:2:2 from cjpeg, with EXIF, XMP and a comment on
// the way in) rotates losslessly like any other.
func TestEditPassthroughPhoneJPEG(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	phone := enginetest.InsertSegment(editFile(t, "s422"), 0xFE, []byte("patient: Jane Doe"))
	phone = enginetest.InsertSegment(phone, 0xE1, append([]byte("Exif\x00\x00"), enginetest.EXIF(1, true)...))
	var stored bytes.Buffer
	nres, err := n.Normalize(context.Background(), bytes.NewReader(phone), &stored)
	require.NoError(t, err)
	require.True(t, nres.Passthrough)
	res, out, err := editBytes(t, n, stored.Bytes(), compress.Edit{Rotate: 90, Crop: image.Rect(5, 16, 53, 77)})
	require.NoError(t, err)
	assert.True(t, res.Lossless)
	if d := maxDiff(t, decodeAny(t, out), rotated(decodeAny(t, stored.Bytes()), 90), res.Region); d > 1 {
		t.Errorf("samples differ by up to %d", d)
	}
	c, err := jpegdec.ProbeCoefficients(out)
	require.NoError(t, err)
	assert.Equal(t, [2]int{1, 2}, [2]int{c.Comps[0].H, c.Comps[0].V}, "4:2:2 turned is 4:4:0")
	enginetest.AssertNoMetadata(t, out)
	assert.NotContains(t, string(out), "Jane")
}

// planesJPEG encodes a 4:2:0 picture with the package's encoder from
// planes: a smooth photo-like background and, inside face (MCU-aligned),
// a pattern chosen by seed.
func planesJPEG(t testing.TB, w, h int, face image.Rectangle, seed int) []byte {
	t.Helper()
	y := jpegenc.Plane{W: w, H: h, Stride: w, Pix: make([]byte, w*h)}
	cw, ch := (w+1)/2, (h+1)/2
	cb := jpegenc.Plane{W: cw, H: ch, Stride: cw, Pix: make([]byte, cw*ch)}
	cr := jpegenc.Plane{W: cw, H: ch, Stride: cw, Pix: make([]byte, cw*ch)}
	for j := range h {
		for i := range w {
			v := 60 + (i*3+j*2)%150
			if image.Pt(i, j).In(face) {
				v = 40 + ((i*i*seed+j*7*seed)>>2)%200
			}
			y.Pix[j*w+i] = byte(v)
		}
	}
	for j := range ch {
		for i := range cw {
			u, v := 100+(i+j)%40, 150-(i*2)%30
			if image.Pt(2*i, 2*j).In(face) {
				u, v = 90+(i*seed)%80, 120+(j*seed)%60
			}
			cb.Pix[j*cw+i], cr.Pix[j*cw+i] = byte(u), byte(v)
		}
	}
	var b bytes.Buffer
	require.NoError(t, jpegenc.Encode(&b, jpegenc.Image{Y: y, Cb: cb, Cr: cr}, 85, 2))
	return b.Bytes()
}

// segments lists the markers before the scan.
func segments(t *testing.T, jpg []byte) []byte {
	t.Helper()
	var ms []byte
	for i := 2; i+4 <= len(jpg); {
		require.Equal(t, byte(0xFF), jpg[i])
		ms = append(ms, jpg[i+1])
		if jpg[i+1] == 0xDA {
			break
		}
		i += 2 + (int(jpg[i+2])<<8 | int(jpg[i+3]))
	}
	return ms
}

// TestEditRedaction: a redacted rectangle decodes to the fill (black)
// within JPEG's tolerance, the rest stays close to the source, the output
// has no APPn or COM segment at all, and, the proof that nothing of the
// region survives, two sources that differ only inside it give the same
// output bytes: the output is a function of the pixels outside alone.
func TestEditRedaction(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	const w, h = 160, 128
	face := image.Rect(32, 32, 96, 96) // MCU-aligned: the sources' other blocks are identical
	a, b := planesJPEG(t, w, h, face, 3), planesJPEG(t, w, h, face, 11)
	require.NotEqual(t, a, b)
	// Turned 90° clockwise, the face lies at x' = h-96..h-32, y' = 32..96.
	redact := image.Rect(h-96, 32, h-32, 96)
	crop := image.Rect(3, 5, 120, 150)
	e := compress.Edit{Rotate: 90, Crop: crop, Redact: []image.Rectangle{redact, image.Rect(0, 0, 10, 10)}}
	resA, outA, err := editBytes(t, n, a, e)
	require.NoError(t, err)
	_, outB, err := editBytes(t, n, b, e)
	require.NoError(t, err)
	assert.False(t, resA.Lossless)
	assert.Equal(t, crop, resA.Region)
	assert.Equal(t, crop.Size(), image.Pt(resA.Width, resA.Height))
	assert.Equal(t, outA, outB, "the output depends on nothing inside the redaction")
	for _, m := range segments(t, outA) {
		assert.False(t, m >= 0xE0 && m <= 0xEF || m == 0xFE, "segment 0x%X in a redacted output", m)
	}

	got := decodeAny(t, outA)
	inside := redact.Intersect(crop).Sub(crop.Min)
	worst, worstY, sum, count := 0, 0, 0, 0
	for y := inside.Min.Y; y < inside.Max.Y; y++ {
		for x := inside.Min.X; x < inside.Max.X; x++ {
			c := color.RGBAModel.Convert(got.At(x, y)).(color.RGBA)
			worst = max(worst, int(c.R), int(c.G), int(c.B))
			sum += int(c.R) + int(c.G) + int(c.B)
			count += 3
			worstY = max(worstY, int(color.YCbCrModel.Convert(got.At(x, y)).(color.YCbCr).Y))
		}
	}
	mean := float64(sum) / float64(count)
	t.Logf("redacted %v: luma at most %d, brightest RGB channel %d, mean %.2f (fill black); q%d, %d bytes",
		inside, worstY, worst, mean, resA.Quality, resA.Bytes)
	// Luma ringing at the rectangle's edge, and 4:2:0 chroma blocks that
	// straddle it (a black pixel with a slightly tinted chroma sample).
	assert.LessOrEqual(t, worstY, 24, "the redaction decodes to black")
	assert.LessOrEqual(t, worst, 40)
	assert.Less(t, mean, 2.0)

	// Outside the redactions the picture is the source's, one generation on.
	src := rotated(decodeAny(t, a), 90)
	masked := image.NewRGBA(src.Bounds())
	copyImg(masked, src)
	for _, r := range e.Redact {
		fillImg(masked, r, color.RGBA{A: 255})
	}
	psnr := enginetest.PSNR(got, masked.SubImage(crop))
	t.Logf("PSNR against the redacted source: %.1f dB", psnr)
	assert.Greater(t, psnr, 30.0)
}

// TestEditRedactionGrey: grey pictures are filled in their one plane.
func TestEditRedactionGrey(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	r := image.Rect(10, 10, 40, 30)
	res, out, err := editBytes(t, n, editFile(t, "gray"), compress.Edit{Redact: []image.Rectangle{r}})
	require.NoError(t, err)
	assert.False(t, res.Lossless)
	img, err := jpeg.Decode(bytes.NewReader(out))
	require.NoError(t, err)
	g, ok := img.(*image.Gray)
	require.True(t, ok, "a grey picture stays grey")
	worst := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			worst = max(worst, int(g.GrayAt(x, y).Y))
		}
	}
	t.Logf("grey redaction: brightest inside %d", worst)
	assert.LessOrEqual(t, worst, 16)
}

func copyImg(dst *image.RGBA, src image.Image) {
	b := src.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			dst.Set(x, y, src.At(x, y))
		}
	}
}

func fillImg(dst *image.RGBA, r image.Rectangle, c color.RGBA) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			dst.SetRGBA(x, y, c)
		}
	}
}

// TestEditErrors: every refusal is a typed *Error wrapping its sentinel,
// and nothing is written.
func TestEditErrors(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	s420 := editFile(t, "s420") // 77x53
	png := encodePNG(t, enginetest.Photo(40, 30, 1, false))
	progressive, err := os.ReadFile("internal/jpegdec/testdata/progressive.jpg")
	require.NoError(t, err)
	rotatedPhone := enginetest.InsertSegment(s420, 0xE1, append([]byte("Exif\x00\x00"), enginetest.EXIF(6, false)...))
	many := make([]image.Rectangle, compress.MaxRedactions+1)
	for i := range many {
		many[i] = image.Rect(0, 0, 1, 1)
	}
	cases := []struct {
		name string
		in   []byte
		e    compress.Edit
		want error
	}{
		{"rotate 45", s420, compress.Edit{Rotate: 45}, compress.ErrInvalidEdit},
		{"rotate -90", s420, compress.Edit{Rotate: -90}, compress.ErrInvalidEdit},
		{"rotate 360", s420, compress.Edit{Rotate: 360}, compress.ErrInvalidEdit},
		{"crop outside", s420, compress.Edit{Crop: image.Rect(60, 0, 78, 10)}, compress.ErrInvalidEdit},
		{"crop outside once turned", s420, compress.Edit{Rotate: 90, Crop: image.Rect(0, 0, 77, 53)}, compress.ErrInvalidEdit},
		{"crop negative", s420, compress.Edit{Crop: image.Rect(-16, 0, 10, 10)}, compress.ErrInvalidEdit},
		{"crop empty", s420, compress.Edit{Crop: image.Rect(10, 10, 10, 20)}, compress.ErrInvalidEdit},
		{"redact empty", s420, compress.Edit{Redact: []image.Rectangle{image.Rect(5, 5, 9, 5)}}, compress.ErrInvalidEdit},
		{"redact outside", s420, compress.Edit{Redact: []image.Rectangle{image.Rect(70, 50, 80, 54)}}, compress.ErrInvalidEdit},
		{"too many redactions", s420, compress.Edit{Redact: many}, compress.ErrInvalidEdit},
		{"png", png, compress.Edit{Rotate: 90}, compress.ErrUnsupportedFormat},
		{"not an image", []byte("%PDF-1.7 Jane Doe"), compress.Edit{Rotate: 90}, compress.ErrUnsupportedFormat},
		{"progressive", progressive, compress.Edit{Rotate: 90}, compress.ErrUnsupportedFormat},
		{"exif orientation", rotatedPhone, compress.Edit{Rotate: 90}, compress.ErrUnsupportedFormat},
		{"truncated", s420[:len(s420)-300], compress.Edit{Rotate: 90}, compress.ErrCorrupt},
		{"truncated redaction", s420[:len(s420)-300], compress.Edit{Redact: []image.Rectangle{image.Rect(0, 0, 5, 5)}}, compress.ErrCorrupt},
		{"empty", nil, compress.Edit{}, compress.ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := n.Edit(context.Background(), bytes.NewReader(c.in), c.e, &out)
			require.ErrorIs(t, err, c.want)
			var ce *compress.Error
			require.ErrorAs(t, err, &ce)
			assert.Zero(t, out.Len(), "nothing written")
			assert.NotContains(t, err.Error(), "Jane")
		})
	}
}

// TestEditLimits: the byte limit, the decode budget and the context hold
// for edits as for Normalize; nothing is written.
func TestEditLimits(t *testing.T) {
	t.Parallel()
	in := planesJPEG(t, 2048, 1536, image.Rectangle{}, 1)
	small, err := compress.New(compress.WithMaxInputBytes(int64(len(in) - 1)))
	require.NoError(t, err)
	var out bytes.Buffer
	_, err = small.Edit(context.Background(), bytes.NewReader(in), compress.Edit{Rotate: 90}, &out)
	require.ErrorIs(t, err, compress.ErrTooLarge)

	tight, err := compress.New(compress.WithDecodeBudget(16<<20), compress.WithMaxPixels(1<<30))
	require.NoError(t, err)
	huge := planesJPEG(t, 8000, 4000, image.Rectangle{}, 1)
	for _, e := range []compress.Edit{{Rotate: 90}, {Redact: []image.Rectangle{image.Rect(0, 0, 8, 8)}}} {
		_, err = tight.Edit(context.Background(), bytes.NewReader(huge), e, &out)
		require.ErrorIs(t, err, compress.ErrTooManyPixels)
		require.ErrorIs(t, err, compress.ErrDecodeBudget)
	}
	inUse, _ := tight.DecodeBudget()
	assert.Zero(t, inUse)

	n, err := compress.New()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, e := range []compress.Edit{{Rotate: 90}, {Redact: []image.Rectangle{image.Rect(0, 0, 8, 8)}}} {
		_, err = n.Edit(ctx, bytes.NewReader(in), e, &out)
		require.ErrorIs(t, err, context.Canceled)
	}
	assert.Zero(t, out.Len())
}

// TestEditWriteError: a failing writer's error is returned.
func TestEditWriteError(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	_, err = n.Edit(context.Background(), bytes.NewReader(editFile(t, "s420")), compress.Edit{Rotate: 90}, failingWriter{})
	require.Error(t, err)
	var ce *compress.Error
	assert.False(t, errors.As(err, &ce), "a write failure is not a refusal of the input")
}

// TestEditCropEdgeInsideMCUIsReencoded: a crop whose corner is on the grid
// but whose right or bottom edge ends inside an MCU is re-encoded, so the
// rest of that MCU (pixels the GP cropped away, which a lossless crop
// would keep as padding a decoder hides) is not in the file.
func TestEditCropEdgeInsideMCUIsReencoded(t *testing.T) {
	t.Parallel()
	n, err := compress.New()
	require.NoError(t, err)
	for _, crop := range []image.Rectangle{image.Rect(16, 16, 61, 48), image.Rect(16, 16, 48, 40), image.Rect(0, 0, 9, 9)} {
		res, out, err := editBytes(t, n, editFile(t, "s420"), compress.Edit{Crop: crop})
		require.NoError(t, err)
		assert.False(t, res.Lossless, "crop %v ends inside an MCU", crop)
		assert.Equal(t, crop.Size(), image.Pt(res.Width, res.Height))
		assert.Equal(t, crop.Size(), decodeAny(t, out).Bounds().Size())
	}
}

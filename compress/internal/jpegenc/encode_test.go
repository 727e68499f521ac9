package jpegenc

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// picture makes a YCbCr 4:2:0 image with gradients, edges and texture.
func picture(w, h int) *image.YCbCr {
	m := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
	for y := range h {
		for x := range w {
			v := 128 + 90*math.Sin(float64(x)/9)*math.Cos(float64(y)/13)
			if (x/11+y/7)%3 == 0 {
				v = 255 - v/2
			}
			m.Y[y*m.YStride+x] = uint8(v)
		}
	}
	for y := range (h + 1) / 2 {
		for x := range (w + 1) / 2 {
			m.Cb[y*m.CStride+x] = uint8(128 + 60*math.Sin(float64(x+y)/7))
			m.Cr[y*m.CStride+x] = uint8(128 - 50*math.Cos(float64(x)/5))
		}
	}
	return m
}

func planes(m *image.YCbCr) Image {
	b := m.Bounds()
	cw, ch := (b.Dx()+1)/2, (b.Dy()+1)/2
	return Image{
		Y:  Plane{W: b.Dx(), H: b.Dy(), Stride: m.YStride, Pix: m.Y},
		Cb: Plane{W: cw, H: ch, Stride: m.CStride, Pix: m.Cb},
		Cr: Plane{W: cw, H: ch, Stride: m.CStride, Pix: m.Cr},
	}
}

// psnr compares two same-sized planes.
func psnr(a []byte, as int, b []byte, bs, w, h int) float64 {
	var se float64
	for y := range h {
		for x := range w {
			d := float64(a[y*as+x]) - float64(b[y*bs+x])
			se += d * d
		}
	}
	return 10 * math.Log10(255*255/math.Max(se/float64(w*h), 1e-9))
}

// TestEncodeLikeImageJPEG: our file decodes (with image/jpeg) to within a
// hair of image/jpeg's own encoding of the same picture at the same
// quality, at about the same size, for ragged sizes, one MCU row, tall
// pictures and every quality band.
func TestEncodeLikeImageJPEG(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ w, h, q int }{
		{256, 192, 85}, {301, 167, 90}, {100, 16, 75}, {40, 900, 60}, {17, 9, 100}, {640, 480, 20}, {1, 1, 85},
	} {
		t.Run(fmt.Sprintf("%dx%d q%d", c.w, c.h, c.q), func(t *testing.T) {
			t.Parallel()
			m := picture(c.w, c.h)
			var ours, theirs bytes.Buffer
			require.NoError(t, Encode(&ours, planes(m), c.q, 3))
			require.NoError(t, jpeg.Encode(&theirs, m, &jpeg.Options{Quality: c.q}))
			a, err := jpeg.Decode(bytes.NewReader(ours.Bytes()))
			require.NoError(t, err)
			b, err := jpeg.Decode(bytes.NewReader(theirs.Bytes()))
			require.NoError(t, err)
			ay, by := a.(*image.YCbCr), b.(*image.YCbCr)
			require.Equal(t, m.Bounds(), ay.Bounds())
			pa := psnr(ay.Y, ay.YStride, m.Y, m.YStride, c.w, c.h)
			pb := psnr(by.Y, by.YStride, m.Y, m.YStride, c.w, c.h)
			t.Logf("Y PSNR ours %.2f image/jpeg %.2f; bytes %d vs %d", pa, pb, ours.Len(), theirs.Len())
			assert.Greater(t, pa, pb-0.3, "luma")
			cw, ch := (c.w+1)/2, (c.h+1)/2
			assert.Greater(t, psnr(ay.Cb, ay.CStride, m.Cb, m.CStride, cw, ch), psnr(by.Cb, by.CStride, m.Cb, m.CStride, cw, ch)-0.3, "Cb")
			assert.Greater(t, psnr(ay.Cr, ay.CStride, m.Cr, m.CStride, cw, ch), psnr(by.Cr, by.CStride, m.Cr, m.CStride, cw, ch)-0.3, "Cr")
			if theirs.Len() > 4000 {
				assert.InEpsilon(t, theirs.Len(), ours.Len(), 0.05, "size")
			}
		})
	}
}

func TestEncodeGrayAndFullChroma(t *testing.T) {
	t.Parallel()
	m := picture(203, 157)
	img := planes(m)
	// Grey: Y alone.
	var g bytes.Buffer
	require.NoError(t, Encode(&g, Image{Y: img.Y, Gray: true}, 90, 2))
	d, err := jpeg.Decode(bytes.NewReader(g.Bytes()))
	require.NoError(t, err)
	gd, ok := d.(*image.Gray)
	require.True(t, ok, "%T", d)
	assert.Greater(t, psnr(gd.Pix, gd.Stride, m.Y, m.YStride, 203, 157), 35.0)
	// 4:4:4 chroma is averaged to 4:2:0: upsample ours and compare.
	full := func(p Plane) Plane {
		out := Plane{W: 203, H: 157, Stride: 203, Pix: make([]byte, 203*157)}
		for y := range 157 {
			for x := range 203 {
				out.Pix[y*203+x] = p.Pix[(y/2)*p.Stride+x/2]
			}
		}
		return out
	}
	var f bytes.Buffer
	require.NoError(t, Encode(&f, Image{Y: img.Y, Cb: full(img.Cb), Cr: full(img.Cr)}, 90, 2))
	d, err = jpeg.Decode(bytes.NewReader(f.Bytes()))
	require.NoError(t, err)
	fd := d.(*image.YCbCr)
	assert.Equal(t, image.YCbCrSubsampleRatio420, fd.SubsampleRatio)
	assert.Greater(t, psnr(fd.Cb, fd.CStride, m.Cb, m.CStride, 102, 79), 35.0)
	// Mismatched chroma is refused.
	bad := img
	bad.Cb.W--
	assert.Error(t, Encode(&f, bad, 90, 1))
	assert.Error(t, Encode(&f, Image{}, 90, 1))
}

// TestEncodeDeterministic: the bytes do not depend on the worker count.
func TestEncodeDeterministic(t *testing.T) {
	t.Parallel()
	img := planes(picture(333, 250))
	var one bytes.Buffer
	require.NoError(t, Encode(&one, img, 80, 1))
	for _, w := range []int{2, 4, 16} {
		var other bytes.Buffer
		require.NoError(t, Encode(&other, img, 80, w))
		require.True(t, bytes.Equal(one.Bytes(), other.Bytes()), "workers %d", w)
	}
	assert.True(t, bytes.Contains(one.Bytes(), []byte{0xFF, 0xDD}), "restart interval between strips")
}

// FuzzEncode: any plane size and content and any quality give a JPEG that
// image/jpeg decodes to the same size.
func FuzzEncode(f *testing.F) {
	f.Add(uint16(17), uint16(9), uint8(85), false, []byte{1, 2, 3})
	f.Add(uint16(1), uint16(300), uint8(1), true, []byte{255})
	f.Fuzz(func(t *testing.T, w, h uint16, q uint8, gray bool, fill []byte) {
		w, h = w%600+1, h%600+1
		if len(fill) == 0 {
			fill = []byte{0}
		}
		mk := func(pw, ph int) Plane {
			p := Plane{W: pw, H: ph, Stride: pw + 3, Pix: make([]byte, (pw+3)*ph)}
			for i := range p.Pix {
				p.Pix[i] = fill[i%len(fill)] + byte(i)
			}
			return p
		}
		img := Image{Y: mk(int(w), int(h)), Gray: gray}
		if !gray {
			img.Cb, img.Cr = mk((int(w)+1)/2, (int(h)+1)/2), mk((int(w)+1)/2, (int(h)+1)/2)
		}
		var out bytes.Buffer
		require.NoError(t, Encode(&out, img, int(q), 2))
		m, err := jpeg.Decode(bytes.NewReader(out.Bytes()))
		require.NoError(t, err)
		require.Equal(t, image.Pt(int(w), int(h)), m.Bounds().Size())
	})
}

func TestStripLayout(t *testing.T) {
	for _, c := range []struct {
		cols, rows int
		want       Layout
	}{
		{126, 95, Layout{PerStrip: 24, Strips: 4, Interval: 24 * 126}}, // 2016x1512 at 4:2:0
		{10, 1, Layout{PerStrip: 1, Strips: 1}},                        // one MCU row: no restarts
		{10, 3, Layout{PerStrip: 1, Strips: 3, Interval: 10}},
		{40000, 8, Layout{PerStrip: 1, Strips: 8, Interval: 40000}}, // a strip's MCUs must fit 16 bits
		{70000, 8, Layout{PerStrip: 8, Strips: 1}},                  // even one row does not: no restarts
	} {
		got := StripLayout(c.cols, c.rows)
		assert.Equal(t, c.want, got, "%d x %d MCUs", c.cols, c.rows)
		assert.LessOrEqual(t, got.Interval, 0xFFFF)
		assert.GreaterOrEqual(t, got.PerStrip*got.Strips, c.rows, "every row in a strip")
	}
}

package compress

import (
	"bytes"
	"image"
	"testing"
)

// opaque hides an image's concrete type, so toPlanes takes its generic path
// through the colour model.
type opaque struct{ image.Image }

// TestToPlanesFastPathsMatchColourModel holds the direct 16-bit and CMYK
// conversions to the generic path's output, bit for bit.
func TestToPlanesFastPathsMatchColourModel(t *testing.T) {
	t.Parallel()
	r := image.Rect(0, 0, 37, 23)
	fill := func(pix []byte) {
		for i := range pix {
			pix[i] = uint8(i*2654435761>>11) ^ uint8(i)
		}
	}
	g16, rgba64, nrgba64, cmyk := image.NewGray16(r), image.NewRGBA64(r), image.NewNRGBA64(r), image.NewCMYK(r)
	for _, p := range [][]byte{g16.Pix, rgba64.Pix, nrgba64.Pix, cmyk.Pix} {
		fill(p)
	}
	// Premultiplied colours must not exceed their alpha.
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := rgba64.RGBA64At(x, y)
			c.R, c.G, c.B = min(c.R, c.A), min(c.G, c.A), min(c.B, c.A)
			rgba64.SetRGBA64(x, y, c)
		}
	}
	for _, img := range []image.Image{g16, rgba64, nrgba64, cmyk, g16.SubImage(image.Rect(3, 2, 30, 20))} {
		fy, fcb, fcr, fgray := toPlanes(img, 2, nil)
		gy, gcb, gcr, ggray := toPlanes(opaque{img}, 2, nil)
		if fgray != ggray {
			t.Fatalf("%T: grey %v, generic %v", img, fgray, ggray)
		}
		for k, pair := range [][2]plane{{fy, gy}, {fcb, gcb}, {fcr, gcr}} {
			if !bytes.Equal(pair[0].pix, pair[1].pix) {
				t.Errorf("%T plane %d differs from the colour model's", img, k)
			}
		}
	}
}

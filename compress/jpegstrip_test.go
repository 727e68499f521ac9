package compress

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEncodeStripsMatchesImageJPEG: the parallel strip encoder must decode
// to exactly the pixels of a plain image/jpeg encode, for colour and grey and
// sizes that do and do not fill their last MCU row.
func TestEncodeStripsMatchesImageJPEG(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		w, h int
		gray bool
	}{
		{"colour even", 256, 192, false},
		{"colour ragged", 301, 167, false},
		{"grey ragged", 133, 99, true},
		{"one MCU row", 100, 16, false},
		{"tall", 40, 900, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var img image.Image
			r := image.Rect(0, 0, c.w, c.h)
			if c.gray {
				g := image.NewGray(r)
				for i := range g.Pix {
					g.Pix[i] = uint8(i*31 + i/c.w*17)
				}
				img = g
			} else {
				m := image.NewYCbCr(r, image.YCbCrSubsampleRatio420)
				for i := range m.Y {
					m.Y[i] = uint8(i*13 + i/c.w*7)
				}
				for i := range m.Cb {
					m.Cb[i], m.Cr[i] = uint8(i*5), uint8(255-i*3)
				}
				img = m
			}
			var plain, strips bytes.Buffer
			require.NoError(t, jpeg.Encode(&plain, img, &jpeg.Options{Quality: 80}))
			require.NoError(t, encodeStrips(&strips, img, 80, 2))
			var serial bytes.Buffer
			require.NoError(t, encodeStrips(&serial, img, 80, 1))
			assert.Equal(t, strips.Bytes(), serial.Bytes(), "bytes must not depend on the worker count")
			a, err := jpeg.Decode(&plain)
			require.NoError(t, err)
			b, err := jpeg.Decode(&strips)
			require.NoError(t, err, "strip output must be a valid JPEG")
			require.Equal(t, a.Bounds(), b.Bounds())
			assert.Equal(t, pixels(a), pixels(b), "same decoded pixels")
		})
	}
}

func pixels(m image.Image) []uint32 {
	var out []uint32
	b := m.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := m.At(x, y).RGBA()
			out = append(out, r<<16|g<<8|bb)
		}
	}
	return out
}

//go:build vips && cgo

package vips

import (
	"bytes"
	"context"
	"fmt"
	stdimage "image"
	"image/draw"
	"image/jpeg"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
)

// TestStripsMatchJpegsave: the strip-parallel encode, joined with restart
// markers, decodes with image/jpeg to exactly the pixels of jpegsave's
// unsplit encode of the rotated picture, for every orientation, colour
// and grey, 4:2:0 and 4:4:4 qualities, and sizes that do and do not fill
// the last MCU row and column; with a single strip it writes jpegsave's
// bytes.
func TestStripsMatchJpegsave(t *testing.T) {
	t.Parallel()
	sizes := [][2]int{{8, 8}, {16, 16}, {64, 48}, {100, 77}, {37, 250}, {320, 128}, {300, 129}, {129, 300}, {1000, 17}}
	for _, sz := range sizes {
		colour := enginetest.Photo(sz[0], sz[1], 7, false)
		grey := stdimage.NewGray(colour.Bounds())
		draw.Draw(grey, grey.Bounds(), colour, stdimage.Point{}, draw.Src)
		for _, in := range []struct {
			name string
			img  stdimage.Image
		}{{"colour", colour}, {"grey", grey}} {
			data := enginetest.EncodeJPEG(in.img, 95)
			for o := 1; o <= 8; o++ {
				src := compress.Source{Data: data, Format: compress.JPEG, Width: sz[0], Height: sz[1], Orientation: o}
				pic, err := decode(context.Background(), src, 4096, true)
				require.NoError(t, err)
				p := pic.(*picture)
				w, h := p.Size()
				if o >= 5 {
					require.Equal(t, [2]int{sz[1], sz[0]}, [2]int{w, h})
				} else {
					require.Equal(t, sz, [2]int{w, h})
				}
				for _, q := range []int{85, 95, 40} {
					name := fmt.Sprintf("%s %dx%d orientation %d Q%d", in.name, sz[0], sz[1], o, q)
					var got, want bytes.Buffer
					require.NoError(t, p.EncodeJPEG(&got, q), name)
					require.NoError(t, p.jpegsave(&want, q), name)
					mcu := 16
					if in.name == "grey" || q >= 90 {
						mcu = 8
					}
					if (h+mcu-1)/mcu == 1 {
						assert.True(t, bytes.Equal(got.Bytes(), want.Bytes()), "%s: one strip differs from jpegsave", name)
					} else {
						assert.True(t, bytes.Contains(got.Bytes(), []byte{0xFF, 0xDD, 0, 4}), "%s: no DRI", name)
					}
					g, err := jpeg.Decode(bytes.NewReader(got.Bytes()))
					require.NoError(t, err, name)
					wnt, err := jpeg.Decode(bytes.NewReader(want.Bytes()))
					require.NoError(t, err, name)
					assert.Equal(t, wnt, g, "%s: pixels differ", name)
				}
				require.NoError(t, p.Close())
			}
		}
	}
}

// TestEncodeDeterministic: the same picture and quality give the same
// bytes every time.
func TestEncodeDeterministic(t *testing.T) {
	t.Parallel()
	data := enginetest.EncodeJPEG(enginetest.Photo(640, 480, 9, false), 92)
	src := compress.Source{Data: data, Format: compress.JPEG, Width: 640, Height: 480, Orientation: 6}
	p, err := decode(context.Background(), src, 4096, true)
	require.NoError(t, err)
	defer p.Close()
	var first bytes.Buffer
	require.NoError(t, p.EncodeJPEG(&first, 85))
	for range 20 {
		var b bytes.Buffer
		require.NoError(t, p.EncodeJPEG(&b, 85))
		require.True(t, bytes.Equal(first.Bytes(), b.Bytes()))
	}
}

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

// BenchmarkEncodeJPEG: EncodeJPEG of the 12 MP benchmark photo's picture
// (2016x1512 stored, EXIF orientation 6) at quality 85.
func BenchmarkEncodeJPEG(b *testing.B) {
	data := enginetest.Phone12MP()
	src := compress.Source{Data: data, Format: compress.JPEG, Width: 4032, Height: 3024, Orientation: 6}
	p, err := decode(context.Background(), src, 2048, true)
	require.NoError(b, err)
	defer p.Close()
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := p.EncodeJPEG(&buf, 85); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "out-bytes")
}

// TestShrinkFromLibjpeg: a picture libjpeg decoded without libvips shrinks
// (handing its pixels to libvips) exactly as the same picture from
// jpegload does, upright, and stays usable afterwards.
func TestShrinkFromLibjpeg(t *testing.T) {
	t.Parallel()
	data := enginetest.EncodeJPEG(enginetest.Photo(300, 200, 11, false), 92)
	for _, o := range []int{1, 6} {
		src := compress.Source{Data: data, Format: compress.JPEG, Width: 300, Height: 200, Orientation: o}
		var enc [2][2][]byte
		for i, libjpeg := range []bool{true, false} {
			p, err := decode(context.Background(), src, 4096, libjpeg)
			require.NoError(t, err)
			require.Equal(t, libjpeg, p.(*picture).pix != nil, "libjpeg %v: raw pixels", libjpeg)
			s, err := p.Shrink(context.Background(), 150)
			require.NoError(t, err)
			w, h := s.Size()
			if o == 6 {
				assert.Equal(t, [2]int{100, 150}, [2]int{w, h})
			} else {
				assert.Equal(t, [2]int{150, 100}, [2]int{w, h})
			}
			for j, q := range []compress.Picture{p, s} {
				var b bytes.Buffer
				require.NoError(t, q.EncodeJPEG(&b, 80))
				enc[i][j] = b.Bytes()
				require.NoError(t, q.Close())
				require.NoError(t, q.Close())
			}
		}
		assert.True(t, bytes.Equal(enc[0][0], enc[1][0]), "orientation %d: pictures differ", o)
		assert.True(t, bytes.Equal(enc[0][1], enc[1][1]), "orientation %d: shrunk pictures differ", o)
	}
}

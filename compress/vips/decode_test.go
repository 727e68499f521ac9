//go:build vips && cgo

package vips

import (
	"bytes"
	"context"
	"image/jpeg"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
)

// TestLibjpegMatchesJpegload: the JPEG decode that runs before libvips is
// ready gives the same pixels as libvips' jpegload, at every shrink, for
// colour, grey, progressive 4:2:2, rotated and ICC-tagged (Display P3, at
// a size libjpeg rounds up and jpegload down) inputs, and leaves CMYK to
// jpegload.
func TestLibjpegMatchesJpegload(t *testing.T) {
	t.Parallel()
	p3 := enginetest.EncodeJPEG(enginetest.Photo(402, 301, 5, false), 95) // not a multiple of 8
	for _, seg := range enginetest.ICCSegments(enginetest.DisplayP3Profile()) {
		p3 = enginetest.InsertSegment(p3, 0xE2, seg)
	}
	inputs := map[string][]byte{"p3": p3}
	for _, in := range enginetest.Inputs() {
		if bytes.HasPrefix(in.Data, []byte{0xFF, 0xD8}) {
			inputs[in.Name] = in.Data
		}
	}
	require.Contains(t, inputs, "jpeg-cmyk")
	for name, data := range inputs {
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		require.NoError(t, err, name)
		src := compress.Source{Data: data, Format: compress.JPEG, Width: cfg.Width, Height: cfg.Height, Orientation: 1}
		if name == "p3" {
			src.ICC = enginetest.DisplayP3Profile()
		}
		long := max(cfg.Width, cfg.Height)
		for _, limit := range []int{long, long / 2, long / 4, long / 8, long * 2 / 3} {
			var out [2][]byte
			for i, libjpeg := range []bool{true, false} {
				p, err := decode(context.Background(), src, limit, libjpeg)
				require.NoError(t, err, "%s at %d", name, limit)
				var b bytes.Buffer
				require.NoError(t, p.EncodeJPEG(&b, 95))
				require.NoError(t, p.Close())
				out[i] = b.Bytes()
			}
			assert.True(t, bytes.Equal(out[0], out[1]), "%s at %d: libjpeg and jpegload pictures differ", name, limit)
		}
	}
}

// TestLibjpegTruncated: truncated data is an error, as with jpegload's
// fail_on=truncated.
func TestLibjpegTruncated(t *testing.T) {
	t.Parallel()
	data := enginetest.EncodeJPEG(enginetest.Photo(160, 120, 3, false), 90)
	src := compress.Source{Data: data[:len(data)*2/3], Format: compress.JPEG, Width: 160, Height: 120, Orientation: 1}
	_, err := decode(context.Background(), src, 2048, true)
	require.Error(t, err)
}

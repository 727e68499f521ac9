package heic_test

import (
	"bytes"
	"image"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
	"github.com/clinicpro/clinicalimages/compress/heic"
)

func TestDecodeUpright(t *testing.T) {
	t.Parallel()
	img, err := heic.Decode(bytes.NewReader(enginetest.MarkerHEIC()))
	require.NoError(t, err)
	require.Equal(t, image.Pt(240, 320), img.Bounds().Size())
	b := img.Bounds()
	r, g, bl := enginetest.MeanRGB(img, image.Rect(b.Min.X+24, b.Min.Y+24, b.Min.X+36, b.Min.Y+36))
	assert.True(t, r > 150 && g < 90 && bl < 90, "top-left should be red, got %.0f,%.0f,%.0f", r, g, bl)
}

func TestDecodeCorrupt(t *testing.T) {
	t.Parallel()
	in := enginetest.MarkerHEIC()
	_, err := heic.Decode(bytes.NewReader(in[:len(in)/2]))
	require.Error(t, err)
}

func TestOptionIsAccepted(t *testing.T) {
	t.Parallel()
	n, err := compress.New(compress.WithFormats(compress.HEIC), heic.Option())
	require.NoError(t, err)
	assert.NotNil(t, n)
}

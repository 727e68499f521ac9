package enginetest

import (
	"bytes"
	_ "embed"
	"image"
	"io"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/heic"
)

//go:embed testdata/marker.heic
var markerHEIC []byte

// exif6.heic: heif-enc made from genphoto -w 320 -h 240's JPEG, which is
// stored landscape with EXIF orientation 6. heif-enc copies the EXIF block
// but writes no irot box, so by the HEIF rules the picture is 320x240
// landscape: the EXIF tag must be ignored.
//
//go:embed testdata/exif6.heic
var exif6HEIC []byte

// MarkerHEIC returns a copy of testdata/marker.heic, made by Debian's
// heif-enc (libheif-examples 1.15, quality 60) from
// examples/bench/compress/genphoto -w 320 -h 240 -upright: an upright 240x320
// camera-like picture with a red marker top-left and a blue one top-right
// (30 px squares inset 15 px).
func MarkerHEIC() []byte { return bytes.Clone(markerHEIC) }

func testHEIC(t *testing.T, e compress.Engine) {
	// The engine must decode with the registered decoder: count its calls.
	var calls atomic.Int32
	decode := func(r io.Reader) (image.Image, error) {
		calls.Add(1)
		return heic.Decode(r)
	}
	n := newNormalizer(t, e, compress.WithDecoder(compress.HEIC, decode))
	in := MarkerHEIC()
	require.Equal(t, compress.HEIC, compress.Sniff(in))
	res, _, img := normalize(t, n, in)
	assert.Equal(t, compress.HEIC, res.Format)
	assert.Equal(t, image.Pt(240, 320), image.Pt(res.InWidth, res.InHeight), "size from the ispe box")
	assert.Equal(t, 1, res.Orientation, "libheif rotates HEIC itself; never again by EXIF")
	require.Equal(t, image.Pt(240, 320), img.Bounds().Size())
	r, g, b := MeanRGB(img, image.Rect(24, 24, 36, 36))
	assert.True(t, r > 150 && g < 90 && b < 90, "top-left should be red, got %.0f,%.0f,%.0f", r, g, b)
	r, g, b = MeanRGB(img, image.Rect(240-36, 24, 240-24, 36))
	assert.True(t, b > 150 && r < 90 && g < 90, "top-right should be blue, got %.0f,%.0f,%.0f", r, g, b)
	assert.Equal(t, int32(1), calls.Load(), "decoded by the decoder given to compress.WithDecoder")

	_, err := n.Normalize(t.Context(), bytes.NewReader(in[:len(in)/2]), &bytes.Buffer{})
	require.ErrorIs(t, err, compress.ErrCorrupt, "truncated HEIC")

	// An EXIF orientation inside a HEIC is never applied (libheif applies
	// irot/imir; applying EXIF too turns real iPhone photos twice).
	res, _, img = normalize(t, n, bytes.Clone(exif6HEIC))
	assert.True(t, res.Stripped.Has(compress.MetaEXIF), "the EXIF item is seen, and dropped")
	assert.Equal(t, 1, res.Orientation)
	assert.Equal(t, image.Pt(320, 240), img.Bounds().Size(), "not rotated by the EXIF tag")
}

func testTruncated(t *testing.T, e compress.Engine) {
	n := newNormalizer(t, e)
	photo := Photo(160, 120, 9, false)
	jpg := EncodeJPEG(photo, 90)
	var p bytes.Buffer
	require.NoError(t, encodePNG(&p, photo))
	for name, in := range map[string][]byte{
		"jpeg": jpg[:len(jpg)*2/3],
		"png":  p.Bytes()[:p.Len()*2/3],
	} {
		_, err := n.Normalize(t.Context(), bytes.NewReader(in), &bytes.Buffer{})
		assert.ErrorIs(t, err, compress.ErrCorrupt, "truncated %s", name)
	}
}

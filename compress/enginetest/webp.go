package enginetest

import (
	"bytes"
	_ "embed"
	"image"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/image/webp"

	"github.com/clinicpro/clinicalimages/compress"
)

// WebP samples made by Debian's ImageMagick 6.9.11 (libwebp 1.2.4), since Go
// has no WebP encoder: photo.webp (lossy 150x200, from the genphoto picture),
// lossless.webp (VP8L 90x120) and alpha.webp (lossy with an alpha channel,
// 64x48: transparent, with an opaque red rectangle at 16,12-47,35).
var (
	//go:embed testdata/photo.webp
	webpPhoto []byte
	//go:embed testdata/lossless.webp
	webpLossless []byte
	//go:embed testdata/alpha.webp
	webpAlpha []byte
	// cmyk.jpg: the genphoto picture at 120x160 as an Adobe CMYK JPEG,
	// by ImageMagick's -colorspace CMYK (no ICC profile).
	//go:embed testdata/cmyk.jpg
	jpegCMYK []byte
	// prog422.jpg: the same picture as a progressive 4:2:2 JPEG
	// (ImageMagick -interlace JPEG -sampling-factor 2x1).
	//go:embed testdata/prog422.jpg
	jpegProgressive []byte
)

// CMYKJPEG returns a copy of the committed CMYK JPEG sample.
func CMYKJPEG() []byte { return bytes.Clone(jpegCMYK) }

// WebPSamples returns copies of the committed WebP samples by name.
func WebPSamples() map[string][]byte {
	return map[string][]byte{
		"webp-lossy":    bytes.Clone(webpPhoto),
		"webp-lossless": bytes.Clone(webpLossless),
		"webp-alpha":    bytes.Clone(webpAlpha),
	}
}

func mustWebP(d []byte) image.Image {
	m, err := webp.Decode(bytes.NewReader(d))
	if err != nil {
		panic(err)
	}
	return m
}

func testWebPAlpha(t *testing.T, e compress.Engine) {
	n := newNormalizer(t, e)
	res, _, out := normalize(t, n, WebPSamples()["webp-alpha"])
	assert.Equal(t, compress.WebP, res.Format)
	require.Equal(t, image.Pt(64, 48), out.Bounds().Size())
	r, g, b := MeanRGB(out, image.Rect(1, 1, 10, 8))
	assert.True(t, r > 240 && g > 240 && b > 240, "transparent must become white, got %.0f,%.0f,%.0f", r, g, b)
	r, g, b = MeanRGB(out, image.Rect(24, 18, 40, 30))
	assert.True(t, r > 170 && g < 70 && b < 70, "opaque red must stay red, got %.0f,%.0f,%.0f", r, g, b)
}

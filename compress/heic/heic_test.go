package heic_test

import (
	"bytes"
	"image"
	"os"
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

// TestActive says which decoder this process uses; with
// HEIC_REQUIRE_SYSTEM=1 (scripts/setup.d/heic.sh installs libheif1) it
// fails unless it is the system libheif.
func TestActive(t *testing.T) {
	t.Parallel()
	b := heic.Active()
	t.Logf("HEIC decoder: %s", b)
	if b.System {
		assert.NotEmpty(t, b.Library)
		assert.NotEmpty(t, b.Version)
		assert.Empty(t, b.Reason)
	} else {
		assert.NotEmpty(t, b.Reason)
	}
	if os.Getenv("HEIC_REQUIRE_SYSTEM") == "1" {
		assert.True(t, b.System, "HEIC_REQUIRE_SYSTEM=1 but: %s", b)
	}
}

func TestRequireSystem(t *testing.T) {
	t.Parallel()
	n, err := compress.New(heic.RequireSystem())
	if !heic.Active().System {
		require.ErrorIs(t, err, heic.ErrNoSystemLibrary)
		return
	}
	require.NoError(t, err)
	var out bytes.Buffer
	res, err := n.Normalize(t.Context(), bytes.NewReader(enginetest.MarkerHEIC()), &out)
	require.NoError(t, err)
	assert.Equal(t, compress.HEIC, res.Format)
	assert.Equal(t, 240, res.OutWidth)
}

// TestDecodeGarbage: bytes that are no HEIF fail cleanly on either decoder.
func TestDecodeGarbage(t *testing.T) {
	t.Parallel()
	for _, in := range [][]byte{nil, []byte("not a heif"), append([]byte("\x00\x00\x00\x18ftypheic"), make([]byte, 64)...)} {
		_, err := heic.Decode(bytes.NewReader(in))
		assert.Error(t, err, "%q", in)
	}
}

package compress_test

import (
	"bytes"
	"errors"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
)

// FuzzNormalize feeds arbitrary bytes to the decode entry point. Whatever
// the input, Normalize must not panic, must refuse with a typed error or
// produce a JPEG within the limits. Limits are small to keep each run cheap.
// No HEIC decoder is registered, so a HEIC is refused once sniffed; its
// header parsing is fuzzed by FuzzScanMeta. The decoder compress/heic adds
// is libheif (in WebAssembly, or native), not ours.
func FuzzNormalize(f *testing.F) {
	small := enginetest.Photo(24, 16, 1, true)
	jpg := enginetest.EncodeJPEG(small, 80)
	f.Add(jpg)
	f.Add(enginetest.InsertSegment(jpg, 0xE1, append([]byte("Exif\x00\x00"), enginetest.EXIF(6, true)...)))
	var p bytes.Buffer
	_ = png.Encode(&p, small)
	f.Add(p.Bytes())
	var g bytes.Buffer
	_ = gif.Encode(&g, small, nil)
	f.Add(g.Bytes())
	f.Add(jpg[:len(jpg)/2])
	for _, w := range enginetest.WebPSamples() {
		f.Add(w)
	}

	n, err := compress.New(
		compress.WithMaxPixels(1<<16), compress.WithMaxDimension(1024), compress.WithMaxLongEdge(64),
		compress.WithByteBudget(16<<10), compress.WithMaxInputBytes(1<<20))
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		res, err := n.Normalize(t.Context(), bytes.NewReader(in), &out)
		if err != nil {
			var e *compress.Error
			if !errors.As(err, &e) {
				t.Fatalf("untyped error: %v", err)
			}
			if out.Len() != 0 {
				t.Fatal("output written on error")
			}
			return
		}
		img, err := jpeg.Decode(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatalf("output is not a JPEG: %v", err)
		}
		if img.Bounds().Size() != image.Pt(res.OutWidth, res.OutHeight) || max(res.OutWidth, res.OutHeight) > 64 {
			t.Fatalf("bad output size %v (result %dx%d)", img.Bounds(), res.OutWidth, res.OutHeight)
		}
		if res.OutBytes > 16<<10 {
			t.Fatalf("over budget: %d", res.OutBytes)
		}
	})
}

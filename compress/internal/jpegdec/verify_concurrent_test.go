package jpegdec_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/clinicpro/clinicalimages/compress/enginetest"
	"github.com/clinicpro/clinicalimages/compress/internal/jpegdec"
)

// TestVerifyConcurrentAgrees: on large scans (a 12 MP photo, and photos of
// phone size in 4:2:0 and grey) VerifyConcurrent's verdict and error are
// Verify's, for the files and for damaged copies (a byte changed at a
// stride through the scan, cut short, closed early), and the guess is
// what finishes a sound file.
func TestVerifyConcurrentAgrees(t *testing.T) {
	t.Parallel()
	files := map[string][]byte{"12MP": enginetest.Phone12MP()}
	for name, img := range map[string]image.Image{
		"phone420": enginetest.Photo(2048, 1536, 7, false),
		"grey":     greyPhoto(1600, 1200),
	} {
		var buf bytes.Buffer
		require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 92}))
		files[name] = buf.Bytes()
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			before := jpegdec.TookGuess.Load()
			require.NoError(t, jpegdec.Verify(data))
			require.NoError(t, jpegdec.VerifyConcurrent(data))
			assert.Greater(t, jpegdec.TookGuess.Load(), before, "the guess fell into step and finished the check")
			sos := bytes.Index(data, []byte{0xFF, 0xDA})
			step := (len(data) - sos) / 23
			if len(data) > 2<<20 {
				step = (len(data) - sos) / 5 // the 12 MP photo: a few, for time under -race
			}
			for i := sos + 20; i < len(data)-2; i += step {
				for _, v := range []byte{0x00, 0x5A, 0xFF, data[i] ^ 0x10} {
					bad := bytes.Clone(data)
					bad[i] = v
					assert.Equal(t, errString(jpegdec.Verify(bad)), errString(jpegdec.VerifyConcurrent(bad)), "byte %d set to %#x", i, v)
				}
			}
			for _, cut := range []int{len(data) - 20, len(data) - 200, sos + (len(data)-sos)*3/4} {
				short := append(bytes.Clone(data[:cut]), 0xFF, 0xD9)
				assert.Error(t, jpegdec.Verify(short))
				assert.Equal(t, errString(jpegdec.Verify(short)), errString(jpegdec.VerifyConcurrent(short)), "cut at %d", cut)
				assert.Equal(t, errString(jpegdec.Verify(data[:cut])), errString(jpegdec.VerifyConcurrent(data[:cut])), "cut at %d, no EOI", cut)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func greyPhoto(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			g.Pix[y*w+x] = uint8((x*x/(y+1) + y*3 + (x*7^y*13)%29) & 0xFF)
		}
	}
	return g
}

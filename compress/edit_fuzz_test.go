package compress_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"testing"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/internal/jpegdec"
)

// FuzzEdit runs Edit on arbitrary bytes and edits: it never panics, a
// refusal is a typed *Error with nothing written, and a success is a JPEG
// of the size it reports that decodes completely. Its seeds run as tests.
func FuzzEdit(f *testing.F) {
	for i, v := range editVariants {
		in := editFile(f, v)
		f.Add(in, uint8(i%4), int16(0), int16(0), int16(0), int16(0), int16(0), int16(0), int16(0), int16(0))
		f.Add(in, uint8(1), int16(5), int16(16), int16(40), int16(60), int16(0), int16(0), int16(0), int16(0))
		f.Add(in, uint8(2), int16(3), int16(1), int16(70), int16(50), int16(10), int16(10), int16(30), int16(20))
		f.Add(in[:len(in)/2], uint8(3), int16(0), int16(0), int16(0), int16(0), int16(1), int16(1), int16(5), int16(5))
	}
	f.Add([]byte("\xFF\xD8\xFF\xDB"), uint8(1), int16(0), int16(0), int16(0), int16(0), int16(0), int16(0), int16(0), int16(0))
	f.Add(editFile(f, "s420"), uint8(4), int16(0), int16(0), int16(0), int16(0), int16(0), int16(0), int16(0), int16(0))
	n, err := compress.New(compress.WithMaxPixels(1 << 20))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, rot uint8, cx0, cy0, cx1, cy1, rx0, ry0, rx1, ry1 int16) {
		e := compress.Edit{Rotate: int(rot%5) * 90} // 360 is refused
		if c := image.Rect(int(cx0), int(cy0), int(cx1), int(cy1)); c != (image.Rectangle{}) {
			e.Crop = c
		}
		if r := image.Rect(int(rx0), int(ry0), int(rx1), int(ry1)); r != (image.Rectangle{}) {
			e.Redact = []image.Rectangle{r}
		}
		var out bytes.Buffer
		res, err := n.Edit(context.Background(), bytes.NewReader(data), e, &out)
		if err != nil {
			var ce *compress.Error
			if !errors.As(err, &ce) {
				t.Fatalf("untyped error %v", err)
			}
			if out.Len() != 0 {
				t.Fatal("wrote output on error")
			}
			return
		}
		if res.Bytes != int64(out.Len()) {
			t.Fatalf("Bytes %d, wrote %d", res.Bytes, out.Len())
		}
		img, err := jpegdec.Decode(out.Bytes(), jpegdec.Options{Scale: 8})
		if err != nil {
			t.Fatalf("output does not decode: %v", err)
		}
		if img.Width != res.Width || img.Height != res.Height {
			t.Fatalf("output %dx%d, result says %dx%d", img.Width, img.Height, res.Width, res.Height)
		}
		if res.Lossless == (len(e.Redact) > 0) && res.Lossless {
			t.Fatal("a redaction was made losslessly")
		}
		if e.Crop != (image.Rectangle{}) && !res.Region.In(e.Crop) {
			t.Fatalf("region %v outside the crop %v", res.Region, e.Crop)
		}
	})
}

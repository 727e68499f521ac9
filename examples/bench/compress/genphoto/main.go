// Command genphoto writes the benchmark's test photos, deterministically:
// a camera-like JPEG (default 4032x3024, quality 92) stored rotated with EXIF
// orientation 6 and a GPS position, as a phone held upright writes it, and
// optionally the upright PNG of the same picture (the input for heif-enc and
// the reference downscales).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image/png"
	"os"

	"github.com/clinicpro/clinicalimages/compress/enginetest"
)

func main() {
	w := flag.Int("w", 4032, "stored width in px (upright height)")
	h := flag.Int("h", 3024, "stored height in px (upright width)")
	q := flag.Int("q", 92, "JPEG quality")
	out := flag.String("o", "photo.jpg", "JPEG output path")
	upright := flag.String("upright", "", "also write the upright picture as PNG to this path")
	flag.Parse()
	if err := run(*w, *h, *q, *out, *upright); err != nil {
		fmt.Fprintln(os.Stderr, "genphoto:", err)
		os.Exit(1)
	}
}

func run(w, h, q int, out, upright string) error {
	// The upright picture is portrait; the sensor stores it landscape.
	up := enginetest.Photo(h, w, 42, true)
	stored := enginetest.Unorient(up, 6)
	jpg := enginetest.InsertSegment(enginetest.EncodeJPEG(stored, q), 0xE1,
		append([]byte("Exif\x00\x00"), enginetest.EXIF(6, true)...))
	if err := os.WriteFile(out, jpg, 0o644); err != nil {
		return err
	}
	if upright != "" {
		var b bytes.Buffer
		if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&b, up); err != nil {
			return err
		}
		return os.WriteFile(upright, b.Bytes(), 0o644)
	}
	return nil
}

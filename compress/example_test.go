package compress_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
)

// A phone photo stored sideways with EXIF orientation 6 and a GPS position
// comes out upright, at most 1024 px, with no metadata.
func ExampleNormalizer_Normalize() {
	photo := enginetest.InsertSegment(
		enginetest.EncodeJPEG(enginetest.Photo(1600, 1200, 1, false), 90), 0xE1,
		append([]byte("Exif\x00\x00"), enginetest.EXIF(6, true)...))

	n, err := compress.New(compress.WithMaxLongEdge(1024), compress.WithByteBudget(300<<10))
	if err != nil {
		panic(err)
	}
	var out bytes.Buffer
	res, err := n.Normalize(context.Background(), bytes.NewReader(photo), &out)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s %dx%d orientation %d -> %dx%d, stripped %s, fits: %v\n",
		res.Format, res.InWidth, res.InHeight, res.Orientation,
		res.OutWidth, res.OutHeight, res.Stripped, res.OutBytes <= 300<<10)
	// Output: jpeg 1600x1200 orientation 6 -> 768x1024, stripped exif,gps, fits: true
}

// Refusals are typed: branch on the sentinel, read details from *Error.
func ExampleError() {
	n, err := compress.New()
	if err != nil {
		panic(err)
	}
	_, err = n.Normalize(context.Background(), strings.NewReader("<svg xmlns='http://www.w3.org/2000/svg'/>"), &bytes.Buffer{})
	var e *compress.Error
	fmt.Println(errors.Is(err, compress.ErrUnsupportedFormat), errors.As(err, &e) && e.Op == "sniff")
	// Output: true true
}

// HEIC is recognised but decoded only with a registered decoder; without
// one it is refused before it is decoded, saying what to add. With
// heic.Option() from package compress/heic it is decoded (see that
// package's example).
func ExampleWithDecoder() {
	n, err := compress.New() // no HEIC decoder
	if err != nil {
		panic(err)
	}
	_, err = n.Normalize(context.Background(), bytes.NewReader(enginetest.MarkerHEIC()), &bytes.Buffer{})
	fmt.Println(errors.Is(err, compress.ErrUnsupportedFormat))
	fmt.Println(err)
	// Output:
	// true
	// compress: unsupported image format (sniff heic): HEIC decoding is not enabled: pass heic.Option() from package github.com/clinicpro/clinicalimages/compress/heic to compress.New
}

// A caller that stores the normalised photo (here in a map standing in
// for a blob store) starts storing before the check of a passed-through
// JPEG has finished, and makes the photo visible only once Check says the
// stored bytes stand; a failed check replaces them.
func ExampleNormalizer_Start() {
	photo := enginetest.EncodeJPEG(enginetest.Photo(1600, 1200, 1, false), 85) // as the phone page sends
	n, err := compress.New()
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	out, err := n.Start(ctx, bytes.NewReader(photo))
	if err != nil {
		panic(err)
	}
	defer out.Release()
	store := map[string][]byte{}
	store["photo"] = bytes.Clone(out.Bytes()) // meanwhile, the check runs
	replaced, err := out.Check(ctx)
	if err != nil {
		delete(store, "photo") // refused: corrupt
		panic(err)
	}
	if replaced {
		store["photo"] = bytes.Clone(out.Bytes())
	}
	fmt.Println("passthrough:", out.Result().Passthrough, "replaced:", replaced, "stored:", len(store["photo"]) == len(out.Bytes()))
	// Output: passthrough: true replaced: false stored: true
}

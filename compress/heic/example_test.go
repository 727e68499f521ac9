package heic_test

import (
	"bytes"
	"context"
	"fmt"

	"github.com/clinicpro/clinicalimages/compress"
	"github.com/clinicpro/clinicalimages/compress/enginetest"
	"github.com/clinicpro/clinicalimages/compress/heic"
)

// An iPhone-style HEIC, turned on with heic.Option(), comes out as an
// upright JPEG; its rotation comes from the container, never from EXIF.
func ExampleOption() {
	n, err := compress.New(heic.Option())
	if err != nil {
		panic(err)
	}
	var out bytes.Buffer
	res, err := n.Normalize(context.Background(), bytes.NewReader(enginetest.MarkerHEIC()), &out)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s %dx%d orientation %d -> %dx%d jpeg\n",
		res.Format, res.InWidth, res.InHeight, res.Orientation, res.OutWidth, res.OutHeight)
	// Output: heic 240x320 orientation 1 -> 240x320 jpeg
}

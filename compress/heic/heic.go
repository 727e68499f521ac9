// Package heic turns on HEIC/HEIF decoding for package compress, which
// recognises HEIC but does not decode it on its own:
//
//	n, err := compress.New(heic.Option())
//
// It is a separate package because of what it links. Decoding is done by
// github.com/gen2brain/heic: libheif and libde265 compiled to WebAssembly
// and run by the wazero runtime, in pure Go with no cgo. The module is
// compiled once per process, on the first decode. In addition, on Linux,
// macOS and Windows, gen2brain/heic looks for a system libheif (libheif.so,
// from libheif1/libheif-dev) when the program starts, through purego's
// dlopen, and uses it instead when found: about twice as fast, but native
// code then parses untrusted bytes outside the WebAssembly sandbox. Build
// with -tags nodynamic to keep HEIC decoding inside the sandbox. Importing
// this package also registers "heic" with the standard image package
// (gen2brain/heic's own init). Programs that never import it link none of
// this: compress and the SDK's root package stay free of wazero and purego.
//
// libheif applies the container's rotation and mirroring (irot, imir)
// itself, so the picture [Decode] returns is upright as displayed, and
// compress never applies a HEIC's EXIF orientation on top (its HEIF header
// scan reports orientation 1); applying both would turn an iPhone photo
// twice.
//
// The reference server and the command line tool in examples/ turn HEIC
// decoding on with [Option]; an SDK user who accepts iPhone uploads should
// too.
package heic

import (
	"image"
	"io"

	"github.com/gen2brain/heic"

	"github.com/clinicpro/clinicalimages/compress"
)

// Decode decodes the primary image of a HEIC/HEIF file read from r,
// upright (irot and imir applied). It reads r to the end and does not
// retain it, and is safe for concurrent use. It is a [compress.DecodeFunc];
// a compress.Normalizer calls it only after the input has passed its byte
// and pixel limits.
func Decode(r io.Reader) (image.Image, error) {
	return heic.Decode(r)
}

// Option registers [Decode] as the HEIC decoder of a compress.Normalizer:
// it is compress.WithDecoder(compress.HEIC, Decode).
func Option() compress.Option {
	return compress.WithDecoder(compress.HEIC, Decode)
}

var _ compress.DecodeFunc = Decode

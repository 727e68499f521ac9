package compress

import (
	"context"
	"io"
)

// Engine decodes, orients, colour-converts and resizes images and encodes
// the result as JPEG. [Normalizer] does everything else (reading with
// limits, sniffing, header checks, metadata accounting, the budget search)
// so that every engine is held to the same rules. Engines must be safe for
// concurrent use. [NewGoEngine] is the implementation, and the default; the
// interface is the seam [WithEngine] opens for wrapping it (to count, delay
// or fail decodes in tests) and what package compress/enginetest checks.
type Engine interface {
	// Name identifies the engine in results and benchmarks.
	Name() string
	// Decode turns src into an upright, 8-bit sRGB picture with alpha
	// flattened onto white and no metadata, whose longer side is at most
	// longEdge and at least 95% of min(longEdge, source long edge). It may
	// return any error; Normalize reports it as [ErrCorrupt] unless it is
	// already an [*Error] or the context's error. The caller closes the
	// returned Picture. When src.Decoder is set the engine must decode
	// with it.
	Decode(ctx context.Context, src Source, longEdge int) (Picture, error)
}

// Source is an input that has passed Normalize's checks: its format is
// sniffed, its declared size is within limits, its metadata scanned.
type Source struct {
	// Data is the whole encoded file. Engines must not retain or modify it.
	Data []byte
	// Format is the sniffed container format.
	Format Format
	// Width and Height are the stored (pre-orientation) dimensions.
	Width, Height int
	// Orientation is the EXIF orientation (1..8) to apply. It is always 1
	// for HEIC, whose decoder applies the container's rotation itself.
	Orientation int
	// ICC is the embedded colour profile, nil when none. Engines convert
	// pixels from it to sRGB when it describes another space.
	ICC []byte
	// YCbCr says how the samples of a decoded *image.YCbCr or
	// *image.NYCbCrA are coded: limited-range BT.601 for lossy WebP (VP8),
	// what a HEIF's colr nclx box declares for HEIC, and the zero value
	// (JFIF: full-range BT.601) otherwise. Engines convert such samples to
	// JFIF before using them as JPEG planes or through image/color.
	YCbCr YCbCrCoding
	// Decoder is the decoder registered with [WithDecoder] for Format, nil
	// for the formats decoded natively. A format that needs one (HEIC) and
	// has none is refused before it reaches an engine.
	Decoder DecodeFunc
}

// Picture is a decoded, upright, resized image held by an engine.
// A Picture is used by one goroutine at a time.
type Picture interface {
	// Size returns the picture's dimensions in pixels.
	Size() (width, height int)
	// EncodeJPEG writes a baseline JPEG at the given quality (1..100)
	// carrying no metadata. Same picture and quality give the same bytes.
	EncodeJPEG(w io.Writer, quality int) error
	// Shrink returns a new picture scaled so its longer side is longEdge
	// (smaller than the current one). The receiver stays valid.
	Shrink(ctx context.Context, longEdge int) (Picture, error)
	// Close releases the picture's memory. It is safe to call twice.
	Close() error
}

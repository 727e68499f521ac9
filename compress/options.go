package compress

import (
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"strings"
)

// Defaults applied by [New] when an option is not given.
const (
	DefaultMaxInputBytes = 30 << 20   // 30 MiB of encoded input
	DefaultMaxPixels     = 50_000_000 // 50 MP declared in the header
	DefaultMaxDimension  = 20_000     // longest declared side, px
	DefaultMaxLongEdge   = 2048       // longest output side, px
	DefaultByteBudget    = 1 << 20    // 1 MiB of JPEG output
	DefaultMaxQuality    = 85         // the quality tried first
	DefaultMinQuality    = 60         // below this, scale down instead
	DefaultDecodeBudget  = 512 << 20  // 512 MiB of decode memory shared by all calls
)

// Option configures a [Normalizer]. Options validate their arguments; [New]
// returns the first error.
type Option func(*config) error

type config struct {
	maxInput   int64
	maxPixels  int64
	maxDim     int
	longEdge   int
	budget     int64
	maxQ, minQ int
	engine     Engine
	formats    map[Format]bool // nil: every format that has a decoder
	decoders   map[Format]DecodeFunc
	logger     *slog.Logger
	concurrent int
	// decodeBudget bounds the summed decode cost of the images in flight.
	decodeBudget int64
	// noPassthrough turns off keeping a compliant JPEG's coded data.
	noPassthrough bool
}

func defaultConfig() config {
	return config{
		maxInput:  DefaultMaxInputBytes,
		maxPixels: DefaultMaxPixels,
		maxDim:    DefaultMaxDimension,
		longEdge:  DefaultMaxLongEdge,
		budget:    DefaultByteBudget,
		maxQ:      DefaultMaxQuality,
		minQ:      DefaultMinQuality,

		decodeBudget: DefaultDecodeBudget,
	}
}

// check validates what single options cannot: a format restricted to with
// [WithFormats] must have a decoder, whichever order the options came in.
func (c *config) check() error {
	for _, f := range AllFormats() {
		if c.formats[f] && !c.canDecode(f) {
			return fmt.Errorf("compress: WithFormats(%s): %w", f, notEnabled(f))
		}
	}
	return nil
}

// canDecode reports whether f is decoded natively or by a registered
// decoder.
func (c *config) canDecode(f Format) bool {
	return decodesNatively(f) || c.decoders[f] != nil
}

// accepts reports whether inputs in format f are let through to decoding.
func (c *config) accepts(f Format) bool {
	if c.formats != nil {
		return c.formats[f]
	}
	return c.canDecode(f)
}

// decodesNatively reports whether the package decodes f without a decoder
// registered by [WithDecoder].
func decodesNatively(f Format) bool {
	switch f {
	case JPEG, PNG, GIF, WebP:
		return true
	}
	return false
}

// notEnabled is the cause reported for a format that is recognised but has
// no decoder. Its text tells the operator what to add.
func notEnabled(f Format) error {
	if f == HEIC {
		return errors.New("HEIC decoding is not enabled: pass heic.Option() from package " +
			"github.com/clinicpro/clinicalimages/compress/heic to compress.New")
	}
	return fmt.Errorf("%s decoding is not enabled: register a decoder with compress.WithDecoder", strings.ToUpper(string(f)))
}

// WithMaxInputBytes refuses inputs longer than n bytes with [ErrTooLarge].
// Reading stops at n+1 bytes, so a huge body costs at most n bytes of memory.
func WithMaxInputBytes(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("compress: WithMaxInputBytes(%d): must be positive", n)
		}
		c.maxInput = n
		return nil
	}
}

// WithMaxPixels refuses images whose header declares more than n pixels
// (width x height) with [ErrTooManyPixels], before any pixel is decoded.
func WithMaxPixels(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("compress: WithMaxPixels(%d): must be positive", n)
		}
		c.maxPixels = n
		return nil
	}
}

// WithMaxDimension refuses images whose header declares a side longer than
// n pixels with [ErrTooManyPixels].
func WithMaxDimension(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("compress: WithMaxDimension(%d): must be positive", n)
		}
		c.maxDim = n
		return nil
	}
}

// WithMaxLongEdge sets the longest side of the output in pixels. Smaller
// images are never upscaled.
func WithMaxLongEdge(n int) Option {
	return func(c *config) error {
		if n < 16 || n >= 1<<16 {
			return fmt.Errorf("compress: WithMaxLongEdge(%d): must be in [16, 65535]", n)
		}
		c.longEdge = n
		return nil
	}
}

// WithByteBudget sets the largest JPEG Normalize may produce, in bytes.
func WithByteBudget(n int64) Option {
	return func(c *config) error {
		if n < 1024 {
			return fmt.Errorf("compress: WithByteBudget(%d): must be at least 1024", n)
		}
		c.budget = n
		return nil
	}
}

// WithQuality sets the JPEG quality range searched: max is tried first; if
// even min does not fit the budget the image is scaled down further.
func WithQuality(minQ, maxQ int) Option {
	return func(c *config) error {
		if minQ < 1 || maxQ > 100 || minQ > maxQ {
			return fmt.Errorf("compress: WithQuality(%d, %d): need 1 <= min <= max <= 100", minQ, maxQ)
		}
		c.minQ, c.maxQ = minQ, maxQ
		return nil
	}
}

// WithEngine selects the decode/resize/encode engine. The default is the
// pure-Go engine from [NewGoEngine].
func WithEngine(e Engine) Option {
	return func(c *config) error {
		if e == nil {
			return errors.New("compress: WithEngine(nil)")
		}
		c.engine = e
		return nil
	}
}

// DecodeFunc decodes one whole image from r, as image.Decode's
// format-specific functions do. r reads the complete input, already sniffed
// and checked against the byte and pixel limits. The image returned must be
// the picture as displayed: a HEIC decoder applies the container's rotation
// and mirroring (irot, imir) itself, and no EXIF orientation is applied to a
// HEIC afterwards. A decoded size larger than the declared one is refused.
// A DecodeFunc is called from many goroutines at once and must not retain
// r; a panic in it is recovered and reported as [ErrCorrupt].
type DecodeFunc func(r io.Reader) (image.Image, error)

// WithDecoder registers d as the decoder for f, a format that [Sniff]
// recognises but the package does not decode itself. Today only [HEIC]
// needs one: package github.com/clinicpro/clinicalimages/compress/heic
// provides it (heic.Option() is WithDecoder(HEIC, heic.Decode)), kept out of
// this package because it links a WebAssembly runtime. Without a decoder a
// HEIC input is refused with [ErrUnsupportedFormat] right after sniffing,
// before the rest of it is read.
//
// It returns an error from [New] when d is nil, when f is not a format
// Sniff recognises, or when f is decoded natively (JPEG, PNG, GIF, WebP):
// replacing a built-in decoder is not supported. Registering f twice keeps
// the last decoder.
func WithDecoder(f Format, d DecodeFunc) Option {
	return func(c *config) error {
		switch {
		case d == nil:
			return fmt.Errorf("compress: WithDecoder(%q, nil): nil decoder", f)
		case decodesNatively(f):
			return fmt.Errorf("compress: WithDecoder(%q): %s is decoded natively; only formats without a built-in decoder (heic) take one", f, f)
		case !known(f):
			return fmt.Errorf("compress: WithDecoder(%q): unknown format", f)
		}
		if c.decoders == nil {
			c.decoders = map[Format]DecodeFunc{}
		}
		c.decoders[f] = d
		return nil
	}
}

// known reports whether f is one of [AllFormats].
func known(f Format) bool {
	for _, x := range AllFormats() {
		if f == x {
			return true
		}
	}
	return false
}

// WithFormats restricts the accepted input formats. By default every
// format that can be decoded is accepted: JPEG, PNG, GIF and WebP, plus HEIC
// when a decoder is registered with [WithDecoder]. Naming a format that has
// no decoder (HEIC without WithDecoder) makes [New] return an error, so a
// configuration that asks for HEIC never silently refuses it. A deployment
// may, for example, register the HEIC decoder but leave HEIC out here to
// refuse it for a while.
func WithFormats(fs ...Format) Option {
	return func(c *config) error {
		if len(fs) == 0 {
			return errors.New("compress: WithFormats(): at least one format")
		}
		m := map[Format]bool{}
		for _, f := range fs {
			if !known(f) {
				return fmt.Errorf("compress: WithFormats: unknown format %q", f)
			}
			m[f] = true
		}
		c.formats = m
		return nil
	}
}

// WithMaxConcurrent bounds how many images one Normalizer decodes and
// encodes at once (default GOMAXPROCS); further calls wait, or return when
// their context ends. It bounds CPU: each image already uses every core
// for its resize and encode, so more images at once only queue for them.
// Memory is bounded by [WithDecodeBudget]: a call takes a slot here first,
// then its share of the decode budget, and holds both until its JPEG is
// encoded. Small images fill every slot; large ones wait for memory.
func WithMaxConcurrent(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("compress: WithMaxConcurrent(%d): must be positive", n)
		}
		c.concurrent = n
		return nil
	}
}

// WithDecodeBudget bounds, in bytes, the memory that all the Normalize
// calls on one Normalizer may hold at once for decoding, resizing and
// encoding (default [DefaultDecodeBudget], 512 MiB). The Service holds one
// Normalizer, so this is the decode memory of a server instance.
//
// Before decoding, each input's peak cost is estimated from its headers:
// width x height x the bytes per pixel its decoder will allocate, whatever
// the format and bit depth (a 16-bit RGBA PNG costs 8 bytes a pixel, a
// baseline JPEG decoded at 1/4 scale 1.5/16), plus the planes the engine
// converts it into, the resize planes, the encode buffers and the input
// itself. The call waits (in arrival order, or until its context ends)
// until that much of the budget is free, and gives it back once its JPEG is
// encoded. An input whose cost alone exceeds the whole budget is refused
// before decoding with an [*Error] matching [ErrTooManyPixels] and
// [ErrDecodeBudget]. At the default one 50 MP 8-bit PNG (447 MiB), GIF
// or baseline JPEG fits; a 16-bit RGBA PNG of more than about 33 MP
// (7000x7000 costs 635 MiB) does not, nor a progressive 4:4:4 JPEG or a
// lossless WebP of that size.
//
// The estimate counts live heap, not the collector's headroom: with
// GOGC=100 the heap may briefly reach about twice the budget before a
// collection, so set GOMEMLIMIT (the reference server does) a little above
// the budget plus the rest of the process. [Normalizer.DecodeBudget]
// reports the budget in use.
func WithDecodeBudget(bytes int64) Option {
	return func(c *config) error {
		if bytes < 16<<20 {
			return fmt.Errorf("compress: WithDecodeBudget(%d): must be at least 16 MiB", bytes)
		}
		c.decodeBudget = bytes
		return nil
	}
}

// WithLogger sets where Normalize logs one debug line per image (format,
// dimensions, quality, bytes; never content or metadata values). Silent by
// default.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("compress: WithLogger(nil)")
		}
		c.logger = l
		return nil
	}
}

// WithPassthrough turns the lossless path for compliant JPEGs on (the
// default) or off. With it on, a baseline JPEG that already meets every
// output rule (long edge within MaxLongEdge, size within the byte budget,
// upright, sRGB) keeps its compressed image data bit for bit: Normalize
// checks that the data decodes completely, then writes the file again from
// its coding segments alone, with a fresh JFIF header and no metadata,
// instead of decoding and encoding it a second time. [Result.Passthrough]
// says which path an image took. Turn it off to re-encode every image (a
// benchmark of the engine, or a deployment that wants one quality for all).
func WithPassthrough(on bool) Option {
	return func(c *config) error {
		c.noPassthrough = !on
		return nil
	}
}

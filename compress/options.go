package compress

import (
	"errors"
	"fmt"
	"log/slog"
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
	formats    map[Format]bool
	logger     *slog.Logger
	concurrent int
}

func defaultConfig() config {
	f := map[Format]bool{}
	for _, x := range AllFormats() {
		f[x] = true
	}
	return config{
		maxInput:  DefaultMaxInputBytes,
		maxPixels: DefaultMaxPixels,
		maxDim:    DefaultMaxDimension,
		longEdge:  DefaultMaxLongEdge,
		budget:    DefaultByteBudget,
		maxQ:      DefaultMaxQuality,
		minQ:      DefaultMinQuality,
		formats:   f,
	}
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

// WithFormats restricts the accepted input formats (all by default). A
// deployment may, for example, refuse HEIC to avoid its decode cost.
func WithFormats(fs ...Format) Option {
	return func(c *config) error {
		if len(fs) == 0 {
			return errors.New("compress: WithFormats(): at least one format")
		}
		m := map[Format]bool{}
		for _, f := range fs {
			switch f {
			case JPEG, PNG, GIF, WebP, HEIC:
				m[f] = true
			default:
				return fmt.Errorf("compress: WithFormats: unknown format %q", f)
			}
		}
		c.formats = m
		return nil
	}
}

// WithMaxConcurrent bounds how many images one Normalizer decodes and
// encodes at once (default GOMAXPROCS); further calls wait, or return when
// their context ends. Each image in flight holds its decoded pixels (about
// 1.5 bytes per pixel for a JPEG, 4-8 for PNG), so this bounds memory.
func WithMaxConcurrent(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("compress: WithMaxConcurrent(%d): must be positive", n)
		}
		c.concurrent = n
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

// Package vips is a compress.Engine backed by libvips through cgo: built only
// with the build tag vips (go build -tags vips) and Debian's libvips-dev
// (scripts/setup.d/compress.sh installs it for the tests).
//
// Beyond what vipsthumbnail does, it decodes JPEGs at 1/2, 1/4 or 1/8 scale
// in the DCT domain whenever the result still reaches 95% of the long-edge
// limit (a 4032 px photo and a 2048 px limit give 2016 px with no resampling
// at all); otherwise it shrinks on load as far as stays above the limit and
// finishes with a Lanczos-3 resize. Each format has its own loader (never
// libvips' sniffing, which would also accept SVG or PDF), truncated data fails
// the load, embedded ICC profiles are converted to sRGB with lcms, alpha is
// flattened onto white, and libvips' operation cache is disabled so untrusted
// inputs are not kept in memory.
//
// JPEGs in RGB or grey are decoded by libjpeg directly, with jpegload's
// settings and size rounding (the same pixels, as a test checks); CMYK and
// YCCK JPEGs and the other formats go through libvips' loaders. When the
// DCT scaling alone meets the size limit and no ICC conversion is needed
// (a phone photo at 2048 px), libjpeg's pixels are the picture and libvips
// is not used at all; they are handed to libvips only if a Shrink needs it.
//
// Pictures stay in memory as decoded; the EXIF rotation is applied while
// encoding. EncodeJPEG encodes with libjpeg directly, with jpegsave's
// settings, in up to Strips (4, a constant, so the bytes do not depend on
// the machine) horizontal strips of whole MCU rows at once, each strip
// reading its rows of the rotated picture straight from the decoded pixels,
// and joins them into one baseline JPEG: a restart interval of one strip's
// MCUs (DRI) and RST0..7 markers between the strips. A decoder sees the same
// blocks, and so the same pixels, as from jpegsave's unsplit encode of the
// rotated picture, as a test checks; a picture of one MCU row is written
// exactly as jpegsave writes it.
//
// libvips is not linked: the binary records no dependency on it (cgo links
// with --as-needed and no libvips symbol is referenced), and it is opened
// with dlopen (libvips.so.42) when first needed, since loading it and the
// hundred libraries it depends on takes about 20 ms, which as a link-time
// dependency every process would spend before main. libvips keeps
// process-wide state (its thread pool, its error buffer) and is initialised
// once per process, after opening; most of that cost is loading the
// optional modules of Debian's libvips 8.14 (heif, jxl, magick, openslide,
// poppler and the libraries they pull in, about 20 ms more), which libvips
// 8.14 offers no documented way to skip or defer. Both start in the
// background with the first Decode that will need libvips (a non-JPEG, or a
// JPEG needing a resize or an ICC conversion), beside that Decode's libjpeg
// decode when there is one, and that Decode waits for them; a process that
// only sees JPEGs libjpeg handles alone never opens libvips. The first such
// Decode in a process therefore pays what of the 40 ms is not hidden, and
// an initialisation failure (libvips missing, say) is reported by it (and
// by New once known). libvips sets $VIPSHOME when it is unset, as vips_init
// always does; that write happens on the background thread under a lock
// that this package's libjpeg calls, which read the environment, hold until
// it is done. It sets no other environment variable.
package vips

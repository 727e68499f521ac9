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
// libvips keeps process-wide state (its thread pool, its error buffer); the
// package initialises it once, on the first New.
package vips

// Package heic turns on HEIC/HEIF decoding for package compress, which
// recognises HEIC but does not decode it on its own:
//
//	n, err := compress.New(heic.Option())
//
// It is a separate package because of what it links: programs that never
// import it link none of this, and compress and the SDK's root package stay
// free of wazero and purego.
//
// # Which decoder runs
//
// Two decoders, chosen once per process on the first decode ([Active]
// says which, and why):
//
//   - System libheif (the fast path). On Linux and macOS (amd64, arm64)
//     the package loads the system's libheif with dlopen through purego,
//     without cgo: libheif.so.1 first (on Debian and Ubuntu the runtime
//     package libheif1, which libvips and ImageMagick already depend on),
//     then libheif.so (libheif-dev); on macOS libheif.1.dylib (Homebrew).
//     The loader's usual search applies (LD_LIBRARY_PATH, the ld.so cache).
//     It decodes with the same libheif and libde265 as vipsthumbnail, copies
//     the picture into Go memory and frees libheif's copy at once. For the
//     files cameras and phones write (one HEVC picture, or a grid of HEVC
//     tiles as iPhones store photos, 8-bit 4:2:0, optionally turned by
//     irot) it skips libheif's decode: the container is read in Go and the
//     HEVC data handed to libde265 (libheif1's own dependency, libde265.so.0,
//     loaded beside it) on all cores, a single picture's wavefront rows on
//     libde265's worker threads (libheif starts it with one) and a grid's
//     tiles one decoder per core, copied once from libde265's planes into
//     the result. Anything else (mirroring, cropping, other bit depths or
//     codecs, a missing libde265, a decode error) goes to libheif as
//     before. On a 12 MP x265 file this halves the decode's wall time on 2
//     cores.
//   - WebAssembly (the fallback). github.com/gen2brain/heic: libheif and
//     libde265 compiled to WebAssembly and run by wazero, pure Go, the
//     module compiled on the first decode (seconds; the first upload after
//     a start pays it). It runs when no system libheif loads: none
//     installed, a statically linked executable, another platform, or a
//     build with -tags nodynamic.
//
// To force the WebAssembly decoder, build with -tags nodynamic: native code
// then never parses untrusted bytes outside the WebAssembly sandbox, at
// about twice to several times the CPU per photo. To insist on the system
// library, use [RequireSystem] instead of [Option]: compress.New then fails
// when libheif cannot be loaded, so a deployment that expects the fast path
// finds out at start, not from its latency graphs.
//
// A deployment that wants the fast path installs libheif1 (Debian, Ubuntu:
// apt-get install libheif1; it pulls libde265-0), or Homebrew's libheif on
// macOS, and keeps the executable dynamically linked (the default for a Go
// binary importing purego, with or without cgo). libheif-dev is not needed.
// A container image without libheif keeps working on the fallback.
//
// gen2brain/heic (v0.4.5) would itself dlopen only the unversioned
// libheif.so, and its own native path never frees the decoded picture (about
// 18 MB of C memory lost per 12 MP photo); this package therefore never
// hands a decode to gen2brain/heic while a system libheif is loaded here.
// Importing this package also registers "heic" with the standard image
// package (gen2brain/heic's own init).
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
	"errors"
	"fmt"
	"image"
	"io"
	gosync "sync"

	"github.com/gen2brain/heic"

	"github.com/clinicpro/clinicalimages/compress"
)

// ErrDecode reports a HEIC the system libheif could not decode (the
// WebAssembly decoder returns gen2brain/heic's own errors).
var ErrDecode = errors.New("heic: cannot decode")

// ErrNoSystemLibrary is returned, wrapped, by compress.New with
// [RequireSystem] when no system libheif could be loaded.
var ErrNoSystemLibrary = errors.New("heic: system libheif not available")

// system is the system libheif, loaded on first use and never changed
// afterwards (a dlopen is process-wide anyway); nil with the reason when
// none loads.
var system = gosync.OnceValues(openSystem)

// Backend describes the decoder [Decode] uses in this process.
type Backend struct {
	// System is true when the system libheif decodes (the fast path),
	// false for the WebAssembly decoder.
	System bool
	// Library is the name that was loaded (such as "libheif.so.1") and
	// Version libheif's own version string; both empty for WebAssembly.
	Library, Version string
	// Reason says why the system library is not used; empty when it is.
	Reason string
}

// String is a one-line description for logs and health output.
func (b Backend) String() string {
	if b.System {
		return fmt.Sprintf("system libheif %s (%s)", b.Version, b.Library)
	}
	return "webassembly (gen2brain/heic): " + b.Reason
}

// Active reports which decoder [Decode] uses, loading the system library
// if that has not happened yet. Safe for concurrent use.
func Active() Backend {
	lib, err := system()
	if err != nil {
		return Backend{Reason: err.Error()}
	}
	return Backend{System: true, Library: lib.path, Version: lib.version}
}

// Decode decodes the primary image of a HEIC/HEIF file read from r,
// upright (irot and imir applied), with the system libheif when one loads
// and the WebAssembly decoder otherwise (see [Active]). It reads r to the
// end and does not retain it, and is safe for concurrent use. It is a
// [compress.DecodeFunc]; a compress.Normalizer calls it only after the
// input has passed its byte and pixel limits.
func Decode(r io.Reader) (image.Image, error) {
	lib, err := system()
	if err != nil {
		return heic.Decode(r)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("heic: read: %w", err)
	}
	return lib.decode(data)
}

// Option registers [Decode] as the HEIC decoder of a compress.Normalizer:
// it is compress.WithDecoder(compress.HEIC, Decode).
func Option() compress.Option {
	return compress.WithDecoder(compress.HEIC, Decode)
}

// RequireSystem is [Option] for a deployment that must decode with the
// system libheif: the compress.New it is given fails with
// [ErrNoSystemLibrary] (wrapped, with the reason) when none loads.
func RequireSystem() compress.Option {
	return failFirst(Option(), func() error {
		if _, err := system(); err != nil {
			return fmt.Errorf("%w: %w", ErrNoSystemLibrary, err)
		}
		return nil
	})
}

// failFirst returns an option that runs check before opt and stops with its
// error. compress.Option's parameter type is unexported; the type parameter
// lets this wrap it without naming it.
func failFirst[O ~func(P) error, P any](opt O, check func() error) O {
	return func(p P) error {
		if err := check(); err != nil {
			return err
		}
		return opt(p)
	}
}

var _ compress.DecodeFunc = Decode

// Package compress normalises every image that enters the SDK: phone and
// desktop photos in, safe, upright, small sRGB JPEGs out.
//
// # What Normalize does
//
//  1. Reads at most the byte limit (default 30 MiB) from an io.Reader and
//     sniffs the format from the bytes: JPEG (baseline, progressive, grey,
//     CMYK/YCCK), PNG (8/16-bit, palette, alpha), GIF (first frame), WebP,
//     and HEIC/HEIF when a HEIC decoder is registered (see below). File
//     names and declared content types are never consulted; SVG, HTML,
//     PDF, AVIF and everything else is refused.
//  2. Reads only the header first and checks the declared size against the
//     pixel limit (default 50 MP) and the side limit (default 20000 px)
//     before reading the rest or decoding anything: a decompression bomb
//     costs a header read.
//  3. Decodes, applies the EXIF orientation (all eight values) to the pixels,
//     converts colour to sRGB, flattens alpha onto white, and resizes with a
//     Lanczos-3 filter so the long edge is at most MaxLongEdge (default
//     2048 px), never upscaling. A JPEG at least about twice the limit is
//     decoded at 1/2, 1/4 or 1/8 scale in the DCT domain whenever the
//     result still reaches 95% of the limit ([DCTScale]): a 4032 px phone
//     photo becomes 2016 px with no full-size decode and no resize.
//  4. Encodes a baseline JPEG at the highest quality between the floor and
//     the ceiling (default 60..85) that fits the byte budget (default 1 MiB),
//     scaling down further if even the floor does not fit. The output is the
//     same bytes for the same input and options.
//  5. Writes the JPEG to an io.Writer only when it is complete, and returns a
//     [Result]: format, dimensions in and out, bytes, quality, orientation
//     applied, the metadata kinds stripped, and whether the lossless path
//     was taken (a compliant JPEG keeps its data; see below).
//
// The output carries no metadata at all: no EXIF (so no GPS, camera serials
// or maker notes, and no orientation tag, since the pixels are upright), no
// XMP, IPTC, comments, or ICC profile. It is re-encoded from pixels, or, on
// the lossless path below, rebuilt from the coding segments alone, so
// nothing from the input's metadata segments can survive.
//
// # One lossy generation: compliant JPEGs keep their data
//
// The phone page already shrinks each photo to a compliant JPEG in the
// browser; decoding and encoding it again would cost a second generation of
// loss and the CPU of a decode and several encodes. So a baseline (SOF0)
// JPEG that already meets every rule (long edge within MaxLongEdge, upright:
// no EXIF orientation or orientation 1, sRGB: no ICC profile or one
// equivalent to sRGB, and within the byte budget once rebuilt) keeps its
// compressed image data bit for bit. Normalize rebuilds the file from its
// own segments: SOI, a fresh JFIF APP0, DQT, SOF0, DHT and DRI in their
// order, the SOS header and the entropy-coded data as they were, EOI.
// Every other APPn (EXIF with GPS, XMP, ICC, MPF, maker data), every COM and
// anything after EOI is dropped. Metadata alone does not force a re-encode,
// since dropping it is lossless; an orientation other than 1 does, since
// the pixels must be turned. Before the rebuilt file is used Normalize
// checks that it decodes completely: its own decoder reads every block's
// entropy-coded data, checking every Huffman code, restart marker and the
// end of the data exactly as a decode at any scale does (and the baseline
// coefficient range a lossless edit needs), while storing nothing; corrupt
// or truncated data is never passed through, it takes the normal path,
// which refuses or normalises it. [Normalizer.Start] lets a caller store
// the rebuilt file while that check runs and learn its verdict from
// [Output.Check] before listing it: the server's upload path does this, so
// the check costs the upload no time beyond the blob store's own. Progressive, arithmetic-coded or
// multi-scan files, a second frame, or a marker after the scan other than
// EOI also take the normal path. [Result.Passthrough] says which path was
// taken and [WithPassthrough](false) turns the lossless path off. On a
// 1600x1200 q85 photo (BenchmarkPassthrough) Normalize took 68-106 ms with
// it off and 7-20 ms with it on, on a shared two-core machine.
//
// # Memory: one decode budget per Normalizer
//
// The pixel limit says how many pixels an image may have, not what they
// cost: a 381 KB PNG of 7000x7000 at 16 bits a channel decodes to 392 MB,
// while a 50 MP baseline JPEG headed for 2048 px decodes at 1/4 scale to a
// few megabytes. So every Normalize, after reading the input and before
// decoding it, estimates from the headers the heap its decode will take:
// the decoder's image at the type and bit depth it will really allocate
// (image/png's Gray, Gray16, RGBA, NRGBA, RGBA64, NRGBA64 or Paletted from
// the colour type, depth and tRNS, plus one image per pass when
// interlaced; the own JPEG decoder's planes at the DCT scale it will use;
// image/jpeg's padded planes, with 4 bytes a coefficient for a progressive
// file and an RGBA copy for RGB or CMYK; GIF's paletted frame; WebP's
// YCbCr or ARGB; 4 bytes a pixel from a registered decoder such as HEIC),
// the planes the engine converts it to, the resize and orientation planes,
// the encode buffers and the input itself. It then takes that many bytes
// from a budget shared by every call on the Normalizer ([WithDecodeBudget],
// default 512 MiB), waiting in arrival order or until its context ends,
// and gives them back once its JPEG is encoded. An image whose cost alone
// exceeds the budget is refused before decoding ([ErrTooManyPixels] with
// the cause [ErrDecodeBudget]). [WithMaxConcurrent] bounds the CPU side:
// a call takes a concurrency slot first, then its bytes.
// [Normalizer.DecodeBudget] reports the bytes in use for a metrics gauge.
//
// The Service holds one Normalizer, so the decode memory of a server
// instance stays under the budget whatever mix of uploads arrives. The
// estimate counts heap allocated, not the collector's headroom: run with
// GOMEMLIMIT set above the budget plus the rest of the process, or the
// heap may briefly grow to about twice the live bytes (GOGC=100). Inputs
// waiting for the budget hold their encoded bytes (at most the byte limit
// each) outside it.
//
// # Colour: converted to sRGB, profile dropped
//
// A photo tagged with an ICC profile other than sRGB (iPhones shoot Display
// P3; some cameras Adobe RGB) has its pixels converted to sRGB and the
// profile is dropped. Keeping the profile instead would be exact only in
// colour-managed viewers; the clinical record is viewed in desktop software
// and browsers' image previews that often ignore profiles, where P3 values
// shown as sRGB turn skin tones duller and shift reds. An untagged sRGB JPEG
// looks the same everywhere, and dropping the profile also drops one more
// place where device details can hide. The cost is clipping of the few
// colours outside sRGB, which skin, wounds and lesions do not reach.
// Matrix/TRC profiles (Display P3, Adobe RGB, ProPhoto and the like) are
// converted; LUT-based profiles are treated as sRGB. [Result.ColourConverted]
// says when a conversion happened.
//
// Decoders that hand over YCbCr planes do not all mean the same numbers by
// them. JPEG (JFIF) codes full-range BT.601, which is what Go's image/color
// and the JPEG written here assume. Lossy WebP (VP8) codes limited-range
// BT.601 (Y 16-235), and golang.org/x/image/webp returns those samples as
// they are in an *image.YCbCr: read as JFIF, black came out dark grey and
// white light grey, about 13% of the contrast lost. A HEIC's samples are
// coded as its colr nclx box says (matrix BT.601, BT.709 or BT.2020, full or
// limited range; full-range BT.601 without one, as libheif assumes). The
// engine converts such planes to full-range BT.601 in place before using
// them ([Source.YCbCr]). TestColourMatchesReferenceDecoders holds every
// input format to its reference decoder (djpeg, dwebp, heif-convert,
// ImageMagick for CMYK) on committed reference decodes.
//
// # The engine
//
// Decoding, resizing and encoding sit behind the small [Engine] interface,
// which package compress/enginetest holds to one contract suite. The
// pure-Go [GoEngine] is the engine and builds with CGO_ENABLED=0. It
// decodes baseline JPEGs (what cameras and phones write) with its own
// decoder, straight to Y, Cb and Cr planes at the DCT scale, running the
// inverse DCTs on a second core while the serial entropy decoding goes on;
// other JPEG variants go to image/jpeg. It resizes planes directly with a
// separable fixed-point Lanczos-3 filter in parallel, folds the orientation
// into the resize, and encodes with its own baseline encoder straight from
// the planes (image/jpeg's tables, a floating-point AAN forward DCT), coding
// strips in parallel joined by restart markers. The reduced inverse DCT
// keeps each block's lowest frequencies (an ideal low-pass within the block,
// as libjpeg's scaled decoding does); on the benchmark photo its output is
// within 0.2 dB PSNR of vipsthumbnail's Lanczos against an ImageMagick
// Lanczos reference.
//
// # HEIC is opt-in
//
// [Sniff] recognises HEIC/HEIF, and Normalize reads its size, metadata and
// colour profile from the container itself, but the package does not decode
// it: a HEIC decoder means libheif, which in pure Go means a WebAssembly
// runtime, and a program that imports this package (or the SDK's root
// package) should not link one unless it asks to. Pass the option from
// package compress/heic to turn it on:
//
//	n, err := compress.New(heic.Option())
//
// (or register any [DecodeFunc] with [WithDecoder]). Without a decoder a
// HEIC input is refused with [ErrUnsupportedFormat] right after sniffing,
// with a message saying HEIC decoding is not enabled; HEIC is left out of
// the default set of accepted formats, and naming it in [WithFormats]
// without a decoder is an error from [New]. The reference server and the
// command line tool in examples/ turn it on. libheif applies the HEIF
// rotation and mirroring (irot, imir) itself, so Normalize never rotates a
// HEIC again by its EXIF tag; package compress/heic says what it links and
// how to keep decoding inside the WebAssembly sandbox.
//
// # Editing stored images
//
// [Normalizer.Edit] rotates (90° steps), crops and redacts a stored JPEG.
// Without a redaction it is lossless, as jpegtran -rotate -trim -crop:
// coefficients are moved, not requantised; the partial MCU at a flipped
// edge is trimmed (at most 15 px); a crop is lossless when all its edges
// are on the MCU grid or at the picture's edge, so nothing cropped away
// stays in the file even as hidden padding (else it is re-encoded once). A
// redaction fills black in the decoded planes and the picture is encoded
// once within the byte budget, so nothing of the region survives in the
// output. Coordinates are in the stored picture's pixels after the turn.
//
// # Errors
//
// Every refusal is an [*Error] wrapping one sentinel, for an HTTP layer to
// map: [ErrUnsupportedFormat] to 415, [ErrTooLarge] and [ErrTooManyPixels]
// to 413 ([ErrTooManyPixels] also for an image over the decode memory
// budget, with the cause [ErrDecodeBudget]), [ErrCorrupt], [ErrBudget] and
// [ErrInvalidEdit] to 422. No panic escapes on any
// input (the decode entry point is fuzzed). Errors carry sizes and formats,
// never image content or metadata values.
package compress

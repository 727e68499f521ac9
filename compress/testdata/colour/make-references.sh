#!/bin/sh
# Regenerates the colour-fidelity samples and their reference decodes, the
# fixtures of TestColourMatchesReferenceDecoders (compress/colour_test.go).
# The Go test compares against the committed files and needs none of these
# tools. Needs Debian 12's webp (cwebp/dwebp 1.2.4), libheif-examples
# (heif-enc/heif-convert 1.15), libjpeg-turbo-progs (cjpeg/djpeg 2.1.5) and
# imagemagick (6.9.11), plus Go for the source picture.
#
# source.png  192x256 camera-like picture (enginetest.Photo through
#             genphoto, upright) with a black-to-white ramp down its middle,
#             so a wrong range or matrix shows at both ends.
# <name>.<ext> the input; <name>.ref.png its reference decode:
#   jpeg        cjpeg q90 4:2:0 baseline       djpeg
#   grey        cjpeg q90 -grayscale           djpeg
#   cmyk        ImageMagick -colorspace CMYK   ImageMagick (naive CMYK->RGB, as image/jpeg)
#   webp        cwebp q90 (VP8: BT.601 limited range)  dwebp
#   webp-lossless cwebp -lossless (VP8L, RGB)  dwebp
#   heic        heif-enc q90 (no colr box: BT.601 full range)  heif-convert
# PNG and lossless WebP are compared with source.png itself: the script
# checks that dwebp gives back exactly its pixels.
# (heif-enc 1.15 ignores its --matrix_coefficients/--full_range_flag
# options, so a BT.709 or limited-range HEIC cannot be made here; the nclx
# handling is tested on synthetic planes in colour_test.go.)
set -eu
cd "$(dirname "$0")"
IM=/usr/bin/convert
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(cd ../../.. && go run ./examples/bench/compress/genphoto -w 256 -h 192 -o "$tmp/g.jpg" -upright "$tmp/up.png")
$IM "$tmp/up.png" \( -size 24x256 gradient:black-white \) \
	-geometry +84+0 -composite -strip "PNG24:source.png"
$IM source.png -strip "$tmp/source.ppm"

cjpeg -quality 90 -sample 2x2 -optimize "$tmp/source.ppm" > jpeg.jpg
djpeg -ppm jpeg.jpg > "$tmp/jpeg.ppm"
$IM "$tmp/jpeg.ppm" -strip PNG24:jpeg.ref.png

cjpeg -quality 90 -grayscale "$tmp/source.ppm" > grey.jpg
djpeg -pnm grey.jpg > "$tmp/grey.pgm"
$IM "$tmp/grey.pgm" -strip -define png:color-type=0 -define png:bit-depth=8 grey.ref.png

$IM source.png -strip -colorspace CMYK -quality 90 cmyk.jpg
$IM cmyk.jpg -colorspace sRGB -strip PNG24:cmyk.ref.png

cwebp -quiet -q 90 -metadata none source.png -o webp.webp
dwebp -quiet webp.webp -o webp.ref.png

cwebp -quiet -lossless -metadata none source.png -o webp-lossless.webp
dwebp -quiet -ppm webp-lossless.webp -o "$tmp/lossless.ppm"
cmp "$tmp/lossless.ppm" "$tmp/source.ppm"

heif-enc -q 90 source.png -o heic.heic
heif-convert heic.heic "$tmp/heic.png" >/dev/null
$IM "$tmp/heic.png" -strip PNG24:heic.ref.png


#!/usr/bin/env bash
# Makes the small JPEG variants the decoder tests read. Run once by hand
# (needs Debian's imagemagick and libjpeg-turbo-progs); the outputs are
# committed so the tests need neither.
set -euo pipefail
cd "$(dirname "$0")"
src=$(mktemp --suffix=.ppm)
trap 'rm -f "$src"' EXIT
/usr/bin/convert -size 77x53 -seed 3 plasma:red-blue -blur 0x0.5 \
  \( -size 77x53 pattern:checkerboard \) -compose overlay -composite -depth 8 "ppm:$src"
cjpeg -quality 90 -sample 2x2 "$src" >s420.jpg
cjpeg -quality 90 -sample 2x1 "$src" >s422.jpg
cjpeg -quality 90 -sample 1x1 "$src" >s444.jpg
cjpeg -quality 90 -sample 1x2 "$src" >s440.jpg
cjpeg -quality 90 -sample 4x1 "$src" >s411.jpg
cjpeg -quality 95 -sample 2x2 -restart 1 "$src" >s420-rst1.jpg
cjpeg -quality 75 -sample 2x1 -restart 1B "$src" >s422-rst-blocks.jpg
cjpeg -quality 90 -optimize -sample 2x2 "$src" >s420-optimized.jpg
cjpeg -quality 90 -grayscale "$src" >gray.jpg
cjpeg -quality 90 -grayscale -restart 2B "$src" >gray-rst.jpg
cjpeg -quality 90 -progressive "$src" >progressive.jpg
cjpeg -quality 90 -arithmetic "$src" >arithmetic.jpg
cjpeg -quality 90 -rgb "$src" >rgb.jpg
/usr/bin/convert "$src" -colorspace CMYK -quality 90 cmyk.jpg

#!/usr/bin/env bash
# Makes the reference files the edit tests read. Run once by hand (needs
# libjpeg-turbo-progs); the outputs are committed so the tests do not.
# The sources are compress/internal/jpegdec/testdata's 77x53 variants
# (4:2:0, 4:2:2, 4:4:4, 4:4:0, 4:1:1, grey, 4:2:0 with a restart every MCU).
set -euo pipefail
cd "$(dirname "$0")"
for s in s420 s422 s444 s440 s411 gray s420-rst1; do
  cp "../../internal/jpegdec/testdata/$s.jpg" "$s.jpg"
  for r in 90 180 270; do
    jpegtran -rotate "$r" -trim "$s.jpg" >"$s-r$r.jpg"
  done
  jpegtran -crop 40x30+32+16 "$s.jpg" >"$s-crop.jpg"
done

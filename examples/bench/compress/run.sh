#!/usr/bin/env bash
# Side-by-side benchmark of image normalising on one generated 12 MP phone
# photo (4032x3024 camera-like JPEG, about 4 MB, EXIF orientation 6 and GPS)
# and the same picture as HEIC, to a long edge of at most 2048 px:
#
#   vipsthumbnail (libvips)        the baseline, ratio 1.00
#   ImageMagick convert            -auto-orient -resize 2048x2048 -strip
#   cli compress, ours             built with CGO_ENABLED=0; for the HEIC the
#                                  system libheif (compress/heic loads
#                                  libheif.so.1 with dlopen, no cgo)
#   cli compress, ours WASM        HEIC only: built with -tags nodynamic, so
#                                  the WebAssembly libheif under wazero
#
# Every tool is timed as a whole process by hyperfine in the same run
# (median of RUNS; cpu_ms is mean user+system time, steadier than wall time
# on a shared machine), beside output bytes, output size, PSNR against a
# reference downscale (ImageMagick Lanczos of the upright picture to the
# output's size) and peak RSS (GNU time). Then the in-process Go benchmark.
#
#   bench/compress/run.sh            RUNS=10 by default
#   RUNS=20 KEEP=1 bench/compress/run.sh   keep the work directory
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../../../scripts/lib.sh"
cd "$ROOT"

RUNS=${RUNS:-10}
IM=${IM:-/usr/bin/convert}       # Debian's ImageMagick 6, not any wrapper earlier in PATH
COMPARE=${COMPARE:-/usr/bin/compare}
IDENTIFY=${IDENTIFY:-/usr/bin/identify}

command -v vipsthumbnail >/dev/null || apt_install libvips-tools
[ -x "$IM" ] || apt_install imagemagick
command -v hyperfine >/dev/null || apt_install hyperfine
command -v heif-enc >/dev/null || apt_install libheif-examples
[ -x /usr/bin/time ] || apt_install time
command -v bc >/dev/null || apt_install bc

W=$(mktemp -d)
[ -n "${KEEP:-}" ] && log "work directory $W" || trap 'rm -rf "$W"' EXIT

log "building cli (CGO_ENABLED=0), and with -tags nodynamic (HEIC in WebAssembly)"
CGO_ENABLED=0 go build -o "$W/cli-go" ./examples/cli
CGO_ENABLED=0 go build -tags nodynamic -o "$W/cli-wasm" ./examples/cli

log "generating the 12 MP photo and its HEIC"
go run ./examples/bench/compress/genphoto -o "$W/photo.jpg" -upright "$W/upright.png"
heif-enc -q 75 -o "$W/photo.heic" "$W/upright.png" >/dev/null

# cmd NAME INPUT OUTPUT: the command line for one tool.
cmd() {
  case $1 in
    vipsthumbnail) echo "vipsthumbnail $2 -s 2048 -o $3[Q=85,strip]" ;;
    imagemagick) echo "$IM $2 -auto-orient -resize 2048x2048 -strip -quality 85 $3" ;;
    go) echo "$W/cli-go compress -q --force -o $3 $2" ;;
    go-wasm) echo "$W/cli-wasm compress -q --force -o $3 $2" ;;
  esac
}

# label TOOL FORMAT: the row's name (no space after "ours: ", bench/run.sh parses it).
label() {
  case $1-$2 in
    go-jpg) echo "ours: pure-Go" ;;
    go-heic) echo "ours: libheif" ;;
    go-wasm-*) echo "ours: WASM" ;;
    *) echo "$1" ;;
  esac
}

rows=()
for input in photo.jpg photo.heic; do
  fmt=${input##*.}
  tools=(vipsthumbnail imagemagick go)
  [ "$fmt" = heic ] && tools+=(go-wasm)
  args=()
  for t in "${tools[@]}"; do
    args+=(-n "$t" "$(cmd "$t" "$W/$input" "$W/out-$fmt-$t.jpg")")
  done
  log "timing $input ($RUNS runs each)"
  hyperfine -N --style basic --warmup 1 --runs "$RUNS" --export-csv "$W/$fmt.csv" "${args[@]}" >"$W/$fmt.hyperfine.txt"
  base=$(awk -F, '$1=="vipsthumbnail"{print $4}' "$W/$fmt.csv")
  basecpu=$(awk -F, '$1=="vipsthumbnail"{print $5+$6}' "$W/$fmt.csv")
  for t in "${tools[@]}"; do
    out="$W/out-$fmt-$t.jpg"
    median=$(awk -F, -v t="$t" '$1==t{print $4}' "$W/$fmt.csv")
    read -r w h < <("$IDENTIFY" -format '%w %h\n' "$out")
    bytes=$(stat -c %s "$out")
    "$IM" "$W/upright.png" -filter Lanczos -resize "${w}x${h}!" "$W/ref-$w-$h.png"
    psnr=$("$COMPARE" -metric PSNR "$out" "$W/ref-$w-$h.png" null: 2>&1 || true)
    user=$(awk -F, -v t="$t" '$1==t{print $5+$6}' "$W/$fmt.csv")
    # shellcheck disable=SC2046
    /usr/bin/time -o "$W/time.txt" -f '%M' $(cmd "$t" "$W/$input" "$W/mem.jpg") >/dev/null 2>&1
    peak=$(tail -1 "$W/time.txt")
    rows+=("$(printf '%-5s %-16s %9.0f %7.2f %8.0f %9.2f %9d %10s %8.2f %8.0f' "$fmt" "$(label "$t" "$fmt")" \
      "$(echo "$median*1000" | bc -l)" "$(echo "$median/$base" | bc -l)" "$(echo "$user*1000" | bc -l)" "$(echo "$user/$basecpu" | bc -l)" \
      "$bytes" "${w}x${h}" "${psnr%% *}" "$(echo "$peak/1024" | bc -l)")")
  done
done

echo
echo "12 MP photo to <= 2048 px, quality 85, whole processes, median of $RUNS runs ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
printf '%-5s %-16s %9s %7s %8s %9s %9s %10s %8s %8s\n' input tool median_ms x_vips cpu_ms cpu_x_vips bytes size PSNR_dB peak_MB
printf '%s\n' "${rows[@]}"
echo
echo "In process (Go benchmarks: no process start):"
go test -run '^$' -bench 'Normalize12MP' -benchtime 5x -benchmem ./compress/ | sed -n 's/^Benchmark/pure Go: Benchmark/p'

# Where the HEIC time goes, in process (warm: WebAssembly compiled): the
# decode alone (libheif or WebAssembly, plus the copy into Go memory) and
# the whole Normalize (decode + resize to 2048 px + JPEG encode); their
# difference is our resize and encode. rss-growth-MiB is the resident set's
# growth over the decodes with the Go heap returned to the OS and one glibc
# malloc arena (MALLOC_ARENA_MAX=1: libde265's decoder threads otherwise
# keep freed memory in per-thread arenas, which looks like a leak but
# plateaus): near 0 means the decoder frees its native picture.
echo
echo "HEIC in process, median of $RUNS (compress/heic BenchmarkDecodeFile, BenchmarkNormalizeFile on the same 12 MP HEIC):"
heic_bench() { # heic_bench LABEL [go test flags...]
  local label=$1 out
  shift
  out=$(MALLOC_ARENA_MAX=1 HEIC_BENCH_FILE=$W/photo.heic go test "$@" -run '^$' -bench 'File$' -benchtime 2x -count "$RUNS" ./compress/heic 2>&1)
  med() { awk -v b="$1" -v u="$2" '$1 ~ "^"b { for (i = 2; i < NF; i++) if ($(i+1) == u) print $i }' <<<"$out" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
  printf 'heic  %-16s decode %6.0f ms  resize+encode %5.0f ms  (Normalize, median of %s)  decode alone %6.0f ms  max rss-growth %s MiB  [%s]\n' \
    "$label" "$(med BenchmarkNormalizeFile decode-ms)" "$(med BenchmarkNormalizeFile rest-ms)" "$RUNS" \
    "$(med BenchmarkDecodeFile ns/op | awk '{ print $1 / 1e6 }')" \
    "$(awk '/^BenchmarkDecodeFile/ { for (i = 1; i < NF; i++) if ($(i+1) == "rss-growth-MiB") print $i }' <<<"$out" | sort -g | tail -1)" \
    "$(grep -m1 -o 'HEIC decoder: .*' <<<"$out" | cut -c15-60)"
}
heic_bench "ours: libheif"
heic_bench "ours: WASM" -tags nodynamic

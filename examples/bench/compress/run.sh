#!/usr/bin/env bash
# Side-by-side benchmark of image normalising on one generated 12 MP phone
# photo (4032x3024 camera-like JPEG, about 4 MB, EXIF orientation 6 and GPS)
# and the same picture as HEIC, to a long edge of at most 2048 px:
#
#   vipsthumbnail (libvips)        the baseline, ratio 1.00
#   ImageMagick convert            -auto-orient -resize 2048x2048 -strip
#   cli compress, pure-Go engine   built with CGO_ENABLED=0
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

log "building cli (pure Go, CGO_ENABLED=0)"
CGO_ENABLED=0 go build -o "$W/cli-go" ./examples/cli
engines=(go)

log "generating the 12 MP photo and its HEIC"
go run ./examples/bench/compress/genphoto -o "$W/photo.jpg" -upright "$W/upright.png"
heif-enc -q 75 -o "$W/photo.heic" "$W/upright.png" >/dev/null

# cmd NAME INPUT OUTPUT: the command line for one tool.
cmd() {
  case $1 in
    vipsthumbnail) echo "vipsthumbnail $2 -s 2048 -o $3[Q=85,strip]" ;;
    imagemagick) echo "$IM $2 -auto-orient -resize 2048x2048 -strip -quality 85 $3" ;;
    go) echo "$W/cli-go compress -q -o $3 $2" ;;
  esac
}

tools=(vipsthumbnail imagemagick "${engines[@]}")
label() { case $1 in go) echo "ours: pure Go" ;; *) echo "$1" ;; esac; }

rows=()
for input in photo.jpg photo.heic; do
  fmt=${input##*.}
  args=()
  for t in "${tools[@]}"; do
    args+=(-n "$t" "$(cmd "$t" "$W/$input" "$W/out-$fmt-$t.jpg")")
  done
  log "timing $input ($RUNS runs each)"
  hyperfine -N --style basic --warmup 1 --runs "$RUNS" --export-csv "$W/$fmt.csv" "${args[@]}" >"$W/$fmt.hyperfine.txt"
  base=$(awk -F, '$1=="vipsthumbnail"{print $4}' "$W/$fmt.csv")
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
    rows+=("$(printf '%-5s %-16s %9.0f %7.2f %8.0f %9d %10s %8.2f %8.0f' "$fmt" "$(label "$t")" \
      "$(echo "$median*1000" | bc -l)" "$(echo "$median/$base" | bc -l)" "$(echo "$user*1000" | bc -l)" \
      "$bytes" "${w}x${h}" "${psnr%% *}" "$(echo "$peak/1024" | bc -l)")")
  done
done

echo
echo "12 MP photo to <= 2048 px, quality 85, whole processes, median of $RUNS runs ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
printf '%-5s %-16s %9s %7s %8s %9s %10s %8s %8s\n' input tool median_ms x_vips cpu_ms bytes size PSNR_dB peak_MB
printf '%s\n' "${rows[@]}"
echo
echo "In process (Go benchmarks: no process start):"
go test -run '^$' -bench 'Normalize12MP' -benchtime 5x -benchmem ./compress/ | sed -n 's/^Benchmark/pure Go: Benchmark/p'

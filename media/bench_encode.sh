#!/usr/bin/env bash
# Compares media.Encode (streamed base64) with json.Marshal of the same Media
# holding a 10 MB image's base64 inline, side by side, and prints the ratios.
#   media/bench_encode.sh [benchtime]   (default 20x)
set -euo pipefail
cd "$(dirname "$0")/.."
go test -run '^$' -bench '^BenchmarkEncode$' -benchmem -benchtime "${1:-20x}" -count 5 ./media |
  awk '
    /^BenchmarkEncode\// {
      split($1, name, "/"); sub(/-[0-9]+$/, "", name[2])
      for (i = 2; i <= NF; i++) {
        if ($(i+1) == "ns/op") ns[name[2]] += $i
        if ($(i+1) == "B/op") by[name[2]] += $i
      }
      n[name[2]]++
    }
    END {
      s = "stream"; m = "json.Marshal"
      if (!n[s] || !n[m]) { print "benchmark output missing" > "/dev/stderr"; exit 1 }
      printf "%-14s %14s %16s\n", "10 MB image", "ns/op (mean)", "B/op (mean)"
      printf "%-14s %14.0f %16.0f\n", m, ns[m]/n[m], by[m]/n[m]
      printf "%-14s %14.0f %16.0f\n", "media.Encode", ns[s]/n[s], by[s]/n[s]
      printf "json.Marshal / Encode: %.1fx the time, %.0fx the bytes allocated\n", (ns[m]/n[m])/(ns[s]/n[s]), (by[m]/n[m])/(by[s]/n[s])
    }'

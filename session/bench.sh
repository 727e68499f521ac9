#!/usr/bin/env bash
# Benchmarks the session implementations against the raw client calls that
# move the same bytes, on the real Redis and S3 server, and prints each
# pair's median ns/op with the ratio (Store / raw; 1.00 means no overhead).
#
#   session/bench.sh              5 runs of 200 iterations each
#   COUNT=10 BENCHTIME=500x session/bench.sh
set -euo pipefail
# shellcheck source=../scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_redis
ensure_s3
trap '[ -n "${S3_PID:-}" ] && kill "$S3_PID" 2>/dev/null || true' EXIT

COUNT=${COUNT:-5}
BENCHTIME=${BENCHTIME:-200x}
out=$(go test -run '^$' -bench . -benchtime "$BENCHTIME" -count "$COUNT" ./session/redisstore ./session/s3blob)
echo "$out" | grep -E '^Benchmark' >&2

echo "$out" | awk -v count="$COUNT" '
/^Benchmark/ {
  name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
  n[name]++; v[name, n[name]] = $3
}
function median(name,   i, j, t, m, a) {
  m = n[name]
  for (i = 1; i <= m; i++) a[i] = v[name, i]
  for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
function pair(label, store, raw,   s, r) {
  if (!(store in n) || !(raw in n)) { printf "%-34s missing (%s or %s)\n", label, store, raw; return }
  s = median(store); r = median(raw)
  printf "%-34s %12.0f %12.0f %8.2f\n", label, s, r, s / r
}
END {
  printf "\n%-34s %12s %12s %8s\n", "median of " count " runs (ns/op)", "store", "raw", "ratio"
  pair("Redis Update vs GET+SET", "StoreUpdate", "RawGetSet")
  pair("Redis Get vs GET", "StoreGet", "RawGet")
  pair("S3 Put 1 MiB vs PutObject", "StorePut1MiB", "RawPut1MiB")
  pair("S3 Open 1 MiB vs GetObject", "StoreOpen1MiB", "RawGet1MiB")
}'

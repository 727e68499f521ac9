#!/usr/bin/env bash
# Benchmarks the session implementations against the raw client calls that
# move the same bytes, on the real Redis and S3 server, and prints each
# pair's median ns/op and the median of the per-run ratios (Store / raw;
# 1.00 means no overhead). Each run measures every pair back to back, so a
# ratio compares the two under the same machine load.
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
go test -c -o "$TOOLS/redisstore.test" ./session/redisstore
go test -c -o "$TOOLS/s3blob.test" ./session/s3blob
out=
for i in $(seq 1 "$COUNT"); do
  out+=$'\n'"$(cd session/redisstore && "$TOOLS/redisstore.test" -test.run '^$' -test.bench . -test.benchtime "$BENCHTIME")"
  out+=$'\n'"$(cd session/s3blob && "$TOOLS/s3blob.test" -test.run '^$' -test.bench . -test.benchtime "$BENCHTIME")"
done
echo "$out" | grep -E '^Benchmark' >&2

echo "$out" | awk -v count="$COUNT" '
/^Benchmark/ {
  name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
  n[name]++; v[name, n[name]] = $3
}
function median(arr, m,   i, j, t, a) {
  for (i = 1; i <= m; i++) a[i] = arr[i]
  for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
function pair(label, store, raw,   i, m, s, r, q) {
  if (!(store in n) || !(raw in n)) { printf "%-30s missing (%s or %s)\n", label, store, raw; return }
  m = n[store] < n[raw] ? n[store] : n[raw]
  for (i = 1; i <= m; i++) { s[i] = v[store, i]; r[i] = v[raw, i]; q[i] = v[store, i] / v[raw, i] }
  printf "%-30s %12.0f %12.0f %8.2f\n", label, median(s, m), median(r, m), median(q, m)
}
END {
  printf "\n%-30s %12s %12s %8s\n", count " runs, medians", "store ns/op", "raw ns/op", "ratio"
  pair("Redis Update vs GET+SET", "StoreUpdate", "RawGetSet")
  if ("Codec" in n) { for (i = 1; i <= n["Codec"]; i++) c[i] = v["Codec", i]; printf "%-30s %12.0f   (decode + encode of that record, in process)\n", "  of which JSON codec", median(c, n["Codec"]) }
  pair("Redis Get vs GET", "StoreGet", "RawGet")
  pair("S3 Put 1 MiB vs PutObject", "StorePut1MiB", "RawPut1MiB")
  pair("S3 Open 1 MiB vs GetObject", "StoreOpen1MiB", "RawGet1MiB")
}'

#!/usr/bin/env bash
# One command for every performance comparison, side by side in one run:
# builds everything, starts Redis and the S3 server if they are not running
# (the ALEX simulator is started in process by the benchmarks that need it),
# runs each comparison against its baseline and the load generator, prints a
# summary table of ratios with the absolute figures beside them, then each
# comparison's own output, and writes all of it to bench/out/report.txt.
#
#   bench/run.sh                       everything (about 20-25 minutes on 2 cores)
#   SKIP_COMPRESS=1 SKIP_LOAD=1 SKIP_FAULTS=1 SKIP_FUZZ=1 SKIP_CAPACITY=1 bench/run.sh   the quick comparisons only
#   COUNT=5 RUNS=10 LOAD_GPS=100 FUZZTIME=60s CAP_UPLOADS=96 bench/run.sh   more repetitions (defaults 3, 5, 100, 20s, 48)
#
# A comparison that fails is reported as FAILED in its row and the run goes
# on; the exit status is non-zero when any did.
set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../../scripts/lib.sh"
cd "$ROOT" || exit 1

COUNT=${COUNT:-3}
RUNS=${RUNS:-5}
LOAD_GPS=${LOAD_GPS:-100}
CAP_UPLOADS=${CAP_UPLOADS:-48}
OUT=$ROOT/examples/bench/out
mkdir -p "$OUT"
REPORT=$OUT/report.txt
failed=0

# services: Redis and S3 may be shared with other runs on this machine (and
# stopped by them), so each comparison makes sure they are up before it runs.
services() { ensure_redis && ensure_s3; }
services || exit 1
trap '[ -n "${S3_PID:-}" ] && kill "$S3_PID" 2>/dev/null || true' EXIT

log "building"
go build ./... ./examples/... || exit 1
go vet ./examples/bench/... || exit 1

summary=()   # rows of the summary table
sections=()  # each comparison's own output

row() { summary+=("$(printf '%-50s %22s %22s %10s' "$@")"); }
section() { sections+=("== $1"$'\n'"$2"); }

# field UNIT: prints, for each benchmark line on stdin, "name value" of the
# figure followed by UNIT (name without the -GOMAXPROCS suffix).
field() {
  awk -v u="$1" '/^Benchmark/ { n = $1; sub(/-[0-9]+$/, "", n); for (i = 2; i < NF; i++) if ($(i+1) == u) print n, $i }'
}
# median NAME UNIT <bench output>: the median of NAME's UNIT figures.
median() {
  field "$2" <<<"$3" | awk -v n="$1" '$1 == n { v[++k] = $2 } END {
    if (!k) exit 1
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    print (k % 2) ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2fx", a / b }'; }
msf() { awk -v ns="$1" 'BEGIN { printf "%.1f ms", ns / 1e6 }'; }
mibf() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# --- upload path ---------------------------------------------------------
services
log "upload path vs raw S3 PUT + Redis SET + PUBLISH ($COUNT runs)"
UPBENCH='^Benchmark(UploadPath|ServiceUpload|RawUpload|Normalize)$'
if out=$(go test -run '^$' -bench "$UPBENCH" -benchmem -benchtime 20x -count "$COUNT" ./examples/bench/uploadpath 2>&1) &&
  grep -q '^BenchmarkUploadPath' <<<"$out"; then
  svc=$(median BenchmarkUploadPath svc-p50-ms "$out") raw=$(median BenchmarkUploadPath raw-p50-ms "$out")
  pt=$(median BenchmarkUploadPath passthrough "$out")
  norm=$(median BenchmarkUploadPath normalize-p50-ms "$out") plumb=$(median BenchmarkUploadPath plumbing/raw "$out")
  row "upload path (phone upload -> desktop event)" "$svc ms" "raw: $raw ms" "$(ratio "$svc" "$raw")"
  row "  goal: at most 2x the raw sum" "$(awk -v a="$svc" -v b="$raw" 'BEGIN { print (a <= 2 * b) ? "met" : "NOT met" }')" "" ""
  row "  compliant ~900 KiB phone JPEG: passthrough" "$(awk -v p="$pt" 'BEGIN { print (p == 1) ? "taken" : "NOT taken" }')" "kept its coded data" ""
  row "  of which normalising (compress alone)" "$norm ms" "" ""
  row "  upload path less normalising" "$(awk -v s="$svc" -v n="$norm" 'BEGIN { printf "%.1f ms", s - n }')" "raw: $raw ms" "${plumb}x"
  svcb=$(median BenchmarkServiceUpload B/op "$out") rawb=$(median BenchmarkRawUpload B/op "$out")
  row "  bytes allocated per upload" "$(mibf "$svcb")" "raw: $(mibf "$rawb")" "$(ratio "$svcb" "$rawb")"
else
  row "upload path" FAILED "" ""; failed=1
fi
section "upload path: go test -run '^\$' -bench '$UPBENCH' -benchmem -benchtime 20x -count $COUNT ./examples/bench/uploadpath" "$(grep -E '^(Benchmark|---|FAIL|ok)' <<<"$out")"

# --- capacity: CPU per upload at saturation, operations per upload and commit
if [ -z "${SKIP_CAPACITY:-}" ]; then
  services
  log "capacity: $CAP_UPLOADS concurrent uploads per kind x $COUNT, ops per upload and commit"
  if out=$(go test -count=1 -v -run '^TestOpsPerUploadAndCommit$' -bench '^BenchmarkCapacity$' -benchtime "${CAP_UPLOADS}x" -count "$COUNT" ./examples/bench/uploadpath 2>&1) &&
    grep -q '^BenchmarkCapacity/desktop12MP' <<<"$out"; then
    for kind in phone desktop12MP; do
      b=BenchmarkCapacity/$kind
      cpu=$(median "$b" cpu-ms/upload "$out") ups=$(median "$b" uploads/s "$out") upc=$(median "$b" upl/core-s "$out")
      util=$(median "$b" cpu-util "$out") rops=$(median "$b" redis-ops/upload "$out") put=$(median "$b" s3-put/upload "$out")
      rcpu=$(median "$b" redis-cpu-ms/upload "$out") scpu=$(median "$b" s3-cpu-ms/upload "$out")
      case $kind in phone) what="phone ~900 KiB JPEG (passthrough)" ;; *) what="desktop 12 MP JPEG (re-encoded)" ;; esac
      row "capacity $what" "$upc upl/core-s" "cpu $cpu ms/upload" ""
      row "  measured: uploads/s on $(nproc) shared cores" "$ups/s" "cpu-util $util" ""
      row "  Redis cmds / S3 PUTs per upload (at clients)" "$rops / $put" "redis-server ${rcpu} ms" "s3 ${scpu} ms"
    done
    while read -r step rest; do
      row "  ops: $step" "$rest" "" ""
    done < <(sed -n 's/.*ops: \(.*\) *redis=\([0-9]*\) .*s3=\([0-9]*\) .*alex=\([0-9]*\) .*/\1|redis \2, s3 \3, alex \4/p' <<<"$out" |
      awk -F'|' '{ gsub(/ +$/, "", $1); k = $1; if (!(k in seen)) { order[++n] = k } seen[k] = 1; last[k] = $2 } END { for (i = 1; i <= n; i++) { k = order[i]; g = k; gsub(/ /, "_", g); print g, last[k] } }')
  else
    row "capacity" FAILED "" ""; failed=1
  fi
  section "capacity: go test -count=1 -v -run '^TestOpsPerUploadAndCommit\$' -bench '^BenchmarkCapacity\$' -benchtime ${CAP_UPLOADS}x -count $COUNT ./examples/bench/uploadpath" "$(grep -E '^(Benchmark|---|FAIL|ok)|ops:|Error' <<<"$out")"
fi

# --- push ----------------------------------------------------------------
services
log "push: redisnotify publish-to-receive vs raw go-redis pub/sub"
if out=$(go test -run '^$' -bench PublishToReceive -benchtime 2000x ./sync/redisnotify/ 2>&1); then
  for p in p50 p99; do
    hub=$(median BenchmarkPublishToReceive "hub-$p-µs" "$out") raw=$(median BenchmarkPublishToReceive "raw-$p-µs" "$out")
    row "push publish->receive $p (A->B instances)" "$hub µs" "raw PUBLISH: $raw µs" "$(ratio "$hub" "$raw")"
  done
else
  row "push publish->receive" FAILED "" ""; failed=1
fi
section "push: go test -run '^\$' -bench PublishToReceive -benchtime 2000x ./sync/redisnotify/" "$(grep -E '^(Benchmark|FAIL|ok)|ratio' <<<"$out")"

# --- commit: Media encode and POST ----------------------------------------
services
log "commit: streamed CreateMedia vs json.Marshal of the whole Media"
if out=$(go test -run '^$' -bench CreateMedia -benchmem -benchtime 10x -count "$COUNT" ./alex 2>&1); then
  for mb in 1 10; do
    for u in ns/op B/op; do
      s=$(median "BenchmarkCreateMedia/streamed/${mb}MB" "$u" "$out") n=$(median "BenchmarkCreateMedia/naive-json.Marshal/${mb}MB" "$u" "$out")
      if [ "$u" = ns/op ]; then a=$(msf "$s") b=$(msf "$n"); else a=$(mibf "$s") b=$(mibf "$n"); fi
      row "commit POST ${mb} MB Media, ${u%/op}/op" "$a" "json.Marshal: $b" "$(ratio "$s" "$n")"
    done
  done
else
  row "commit CreateMedia" FAILED "" ""; failed=1
fi
section "commit: go test -run '^\$' -bench CreateMedia -benchmem -benchtime 10x -count $COUNT ./alex" "$(grep -E '^(Benchmark|FAIL|ok)' <<<"$out")"

services
log "media.Encode vs json.Marshal (media/bench_encode.sh)"
if out=$(bash media/bench_encode.sh 2>&1); then
  read -r _ mns mby < <(grep '^json.Marshal ' <<<"$out")
  read -r _ ens eby < <(grep '^media.Encode ' <<<"$out")
  row "media.Encode 10 MB image, time/op" "$(msf "$ens")" "json.Marshal: $(msf "$mns")" "$(ratio "$ens" "$mns")"
  row "media.Encode 10 MB image, B/op" "$(mibf "$eby")" "json.Marshal: $(mibf "$mby")" "$(ratio "$eby" "$mby")"
else
  row "media.Encode" FAILED "" ""; failed=1
fi
section "media encode: media/bench_encode.sh" "$out"

# --- stores ----------------------------------------------------------------
services
log "session stores vs raw Redis/S3 (session/bench.sh)"
if out=$(COUNT=$COUNT bash session/bench.sh 2>/dev/null); then
  while read -r line; do
    label=${line:0:30}
    read -r s r q < <(awk '{ print $(NF-2), $(NF-1), $NF }' <<<"$line")
    row "store: ${label%"${label##*[! ]}"}" "$s ns" "raw: $r ns" "${q}x"
  done < <(grep -E ' vs ' <<<"$out")
else
  row "session stores" FAILED "" ""; failed=1
fi
section "stores: COUNT=$COUNT session/bench.sh" "$out"

# --- tokens ----------------------------------------------------------------
services
log "tokens during 1,000 concurrent ALEX calls"
if out=$(go test -count=1 -run TestTokenRequestsDuringConcurrentCalls -v ./examples/bench/tokens 2>&1); then
  cold=$(sed -n 's/.*tokens: \([0-9]*\) token requests.*cold client/\1/p' <<<"$out")
  rev=$(sed -n 's/.*tokens: \([0-9]*\) token requests.*revoked/\1/p' <<<"$out")
  row "tokens for 1,000 concurrent calls (cold)" "$cold" "goal: 1" "$(ratio "$cold" 1)"
  row "tokens for 1,000 calls after revocation" "$rev" "goal: 1" "$(ratio "$rev" 1)"
else
  row "tokens" FAILED "" ""; failed=1
fi
section "tokens: go test -count=1 -run TestTokenRequestsDuringConcurrentCalls -v ./examples/bench/tokens" "$(grep -E 'tokens:|^(---|ok|FAIL)' <<<"$out")"

# --- faults ----------------------------------------------------------------
if [ -z "${SKIP_FAULTS:-}" ]; then
  services
  log "fault scenarios (BENCH_FAULTS=1 ./examples/bench/faults)"
  out=$(BENCH_FAULTS=1 go test -count=1 -v ./examples/bench/faults 2>&1) || failed=1
  while read -r verdict name; do
    case $name in TestALEXFaultsDuringCommit/*) name="ALEX ${name#*/}" ;; *) name=${name#Test} ;; esac
    row "fault: ${name//_/ }" "$verdict" "" ""
  done < <(sed -n 's/^ *--- \(PASS\|FAIL\|SKIP\): \([^ ]*\) .*/\1 \2/p' <<<"$out" | grep / ; sed -n 's/^--- \(PASS\|FAIL\|SKIP\): \([^ ]*\) .*/\1 \2/p' <<<"$out" | grep -v ALEXFaults)
  section "faults: BENCH_FAULTS=1 go test -count=1 -v ./examples/bench/faults" "$(grep -E 'verdict|killed with|^(---|ok|FAIL)|^    ---|Error:|Messages:' <<<"$out")"
fi

# --- fuzzing ---------------------------------------------------------------
if [ -z "${SKIP_FUZZ:-}" ]; then
  for target in FuzzPhoneUpload FuzzUnauthenticatedBodies; do
    log "fuzz $target for ${FUZZTIME:-20s}"
    if out=$(go test -run '^$' -fuzz "^$target\$" -fuzztime "${FUZZTIME:-20s}" ./examples/bench/hostile 2>&1); then
      row "fuzz: $target (${FUZZTIME:-20s})" PASS "$(grep -o 'execs: [0-9]*' <<<"$out" | tail -1)" ""
    else
      row "fuzz: $target" FAIL "" ""; failed=1
    fi
    section "fuzz: go test -run '^\$' -fuzz '^$target\$' -fuzztime ${FUZZTIME:-20s} ./examples/bench/hostile" "$(tail -4 <<<"$out")"
  done
fi

# --- compress (owned by the compress package; called, not copied) ----------
if [ -z "${SKIP_COMPRESS:-}" ]; then
  log "compress vs vipsthumbnail and ImageMagick (examples/bench/compress/run.sh, RUNS=$RUNS)"
  if out=$(RUNS=$RUNS bash examples/bench/compress/run.sh 2>/dev/null); then
    while read -r fmt tool rest; do
      read -r ms xv cpu cpux _ <<<"$rest"
      row "compress $fmt: $tool" "$ms ms" "vipsthumbnail (cpu ${cpux}x)" "${xv}x"
    done < <(awk '/^(jpg|heic) / && /ours/ { sub(/ours: /, "ours:"); sub(/pure Go/, "pure-Go") } /^(jpg|heic) +ours:[^ ]+ +[0-9]/' <<<"$out")
    while read -r line; do
      row "  heic in process $(awk '{ print $2, $3 }' <<<"$line"): decode" "$(awk '{ print $5, $6 }' <<<"$line")" "resize+encode $(awk '{ print $8, $9 }' <<<"$line")" ""
    done < <(grep -E '^heic +ours: [^ ]+ +decode' <<<"$out")
  else
    row "compress" FAILED "" ""; failed=1
  fi
  section "compress: RUNS=$RUNS examples/bench/compress/run.sh" "$out"
fi

# --- load ------------------------------------------------------------------
if [ -z "${SKIP_LOAD:-}" ]; then
  services
  log "load: $LOAD_GPS GPs x 5 photos, ALEX at 1-3 s"
  if out=$(go run ./examples/bench/load -gps "$LOAD_GPS" -out "$OUT/load.txt" 2>&1); then
    verdict=PASS
  else
    verdict=FAIL; failed=1
  fi
  L=$OUT/load.txt
  rss=$(sed -n 's/^server peak RSS (VmHWM) per instance *//p' "$L" 2>/dev/null)
  big=$(sed -n 's/^server peak RSS (VmHWM), largest instance *//p' "$L" 2>/dev/null)
  once=$(sed -n 's/^images with exactly one Media *//p' "$L" 2>/dev/null)
  dups=$(sed -n 's/^missing \/ duplicated \/ wrong patient \/ stray *//p' "$L" 2>/dev/null)
  v=$(sed -n 's/^verdict *\([A-Z]*\).*/\1/p' "$L" 2>/dev/null)
  row "load: $LOAD_GPS GPs x 5 photos, exactly-once verdict" "${v:-$verdict}" "${once:-?}" ""
  row "  missing / duplicated / wrong patient / stray" "${dups:-?}" "goal: 0 / 0 / 0 / 0" ""
  row "  server peak RSS, largest instance" "${big:-?}" "per instance: ${rss:-?}" ""
  while IFS='|' read -r name p50 p99; do
    row "  $name" "p50 $p50" "p99 $p99" ""
  done < <(awk '/^ *(launch|phone upload request|upload response|upload start|commit) / && / ms *$/ { n = $0; sub(/ +[0-9]+ +[0-9.]+ ms +[0-9.]+ ms +[0-9.]+ ms *$/, "", n); sub(/^ +/, "", n); print n "|" $(NF-5) " " $(NF-4) "|" $(NF-3) " " $(NF-2) }' "$L" 2>/dev/null)
  section "load: go run ./examples/bench/load -gps $LOAD_GPS" "$out"
fi

{
  echo "clinicalimages bench, $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
  echo "ratio = ours / baseline (below 1.00 is better than the baseline for time and bytes)"
  echo
  printf '%-50s %22s %22s %10s\n' comparison ours baseline ratio
  printf '%s\n' "${summary[@]}"
  for s in "${sections[@]}"; do
    echo
    echo "$s"
  done
} | tee "$REPORT"
log "written to $REPORT"
exit "$failed"

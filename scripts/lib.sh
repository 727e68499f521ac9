# shellcheck shell=bash
# Shared by scripts/test and the bench scripts: installs pinned tools into the
# git-ignored .tools/ folder (reused across runs) and starts the services the
# integration tests need when they are not already running. Source it; do not run it.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=$ROOT/.tools
BIN=$TOOLS/bin
export PATH=$BIN:$PATH
mkdir -p "$BIN"

STATICCHECK_VERSION=v0.8.2 # honnef.co/go/tools, first release line supporting Go 1.26
VERSITYGW_VERSION=v1.8.0   # github.com/versity/versitygw, Apache-2.0 S3 server

log() { printf '==> %s\n' "$*" >&2; }

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# go_tool NAME MODULE@VERSION: installs a Go binary once per version.
go_tool() {
  local name=$1 pkg=$2 stamp="$BIN/.$1.version"
  if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pkg" ]; then return 0; fi
  log "installing $pkg"
  GOBIN=$BIN go install -ldflags="-s -w" "$pkg"
  echo "$pkg" >"$stamp"
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

wait_port() {
  local i
  for i in $(seq 1 100); do port_open "$1" "$2" && return 0; sleep 0.1; done
  return 1
}

# ensure_redis: Redis on 127.0.0.1:6379, installed from Debian and started if absent.
ensure_redis() {
  export TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/0}
  if port_open 127.0.0.1 6379; then return 0; fi
  command -v redis-server >/dev/null || apt_install redis-server
  log "starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  wait_port 127.0.0.1 6379 || { log "redis did not start"; return 1; }
}

# ensure_s3: a real S3-compatible server (versitygw) on 127.0.0.1:$S3_PORT with
# fixed test credentials, its data under .tools/s3data.
S3_PORT=${S3_PORT:-7071}
ensure_s3() {
  export TEST_S3_ENDPOINT=${TEST_S3_ENDPOINT:-http://127.0.0.1:$S3_PORT}
  export TEST_S3_ACCESS_KEY=${TEST_S3_ACCESS_KEY:-clinicalimages}
  export TEST_S3_SECRET_KEY=${TEST_S3_SECRET_KEY:-clinicalimages-test-secret}
  export TEST_S3_REGION=${TEST_S3_REGION:-us-east-1}
  if port_open 127.0.0.1 "$S3_PORT"; then return 0; fi
  go_tool versitygw "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
  mkdir -p "$TOOLS/s3data" "$TOOLS/s3meta"
  log "starting versitygw on 127.0.0.1:$S3_PORT"
  ROOT_ACCESS_KEY=$TEST_S3_ACCESS_KEY ROOT_SECRET_KEY=$TEST_S3_SECRET_KEY \
    nohup "$BIN/versitygw" --port "127.0.0.1:$S3_PORT" posix --sidecar "$TOOLS/s3meta" "$TOOLS/s3data" \
    >"$TOOLS/versitygw.log" 2>&1 &
  S3_PID=$!
  wait_port 127.0.0.1 "$S3_PORT" || { log "versitygw did not start:"; cat "$TOOLS/versitygw.log" >&2; return 1; }
}

# The two modules, tied by go.work: the SDK at the root and examples/ (server,
# CLI, benchmarks), whose dependencies never reach an importer of the SDK.
ALL_PACKAGES=(./... ./examples/...)

# check_tidy: fails when go mod tidy would change either module's go.mod or go.sum.
check_tidy() {
  local m
  for m in . examples; do
    (cd "$ROOT/$m" && go mod tidy -diff) || { log "go mod tidy needed in $m"; return 1; }
  done
}

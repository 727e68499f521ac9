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

# ensure_postgres: PostgreSQL on 127.0.0.1:5432 with a database "test" that the
# user postgres reaches over loopback TCP without a password, for the audit
# trail's tests (each makes and drops a schema of its own, so a shared server is
# fine). If the port answers it is used as it is; otherwise Debian's postgresql is
# installed if missing, loopback TCP is set to trust (a test server only: never
# do this to a server holding real data) and the cluster started.
ensure_postgres() {
  export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
  if ! port_open 127.0.0.1 5432; then
    if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
      apt_install postgresql
    fi
    local ver hba
    ver=$(ls /etc/postgresql | sort -V | tail -n 1)
    [ -n "$ver" ] || { log "postgresql installed but no cluster under /etc/postgresql"; return 1; }
    hba=/etc/postgresql/$ver/main/pg_hba.conf
    if ! grep -Eq '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba"; then
      # First match wins in pg_hba.conf: put the test rule on top.
      sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    fi
    log "starting PostgreSQL $ver on 127.0.0.1:5432"
    pg_ctlcluster --skip-systemctl-redirect -o "-c listen_addresses=127.0.0.1" -o "-c port=5432" "$ver" main start ||
      { log "pg_ctlcluster could not start PostgreSQL $ver"; return 1; }
    wait_port 127.0.0.1 5432 || { log "postgresql did not start"; return 1; }
  fi
  # The default URL names the database "test": create it when missing.
  if [ "$TEST_DATABASE_URL" = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable" ] && command -v psql >/dev/null; then
    if [ "$(psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>/dev/null)" != 1 ]; then
      log "creating database test"
      psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE test' >/dev/null ||
        { log "PostgreSQL on 127.0.0.1:5432 refuses user postgres without a password, or CREATE DATABASE; set TEST_DATABASE_URL"; return 1; }
    fi
  fi
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

# shellcheck shell=bash
# sync/natsnotify's integration tests need a NATS server with JetStream on
# 127.0.0.1:4222 (some machines start one; a fresh CI machine does not).
# Sourced by scripts/test with lib.sh's helpers; idempotent and quick when
# the server is already up.
export TEST_NATS_URL=${TEST_NATS_URL:-nats://127.0.0.1:4222}
if ! port_open 127.0.0.1 4222; then
  command -v nats-server >/dev/null || apt_install nats-server
  mkdir -p "$TOOLS/nats"
  log "starting nats-server (JetStream) on 127.0.0.1:4222"
  nohup nats-server -js -a 127.0.0.1 -p 4222 -sd "$TOOLS/nats" >"$TOOLS/nats.log" 2>&1 &
  wait_port 127.0.0.1 4222 || { log "nats-server did not start:"; cat "$TOOLS/nats.log" >&2; exit 1; }
fi

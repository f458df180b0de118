#!/usr/bin/env bash
# Start a throw-away PostgreSQL cluster on 127.0.0.1:54329 for the test suite and print its URL.
# Idempotent: reuses a running cluster. Installs Debian's postgresql package when it is missing.
set -euo pipefail
PGDIR=${PUBDATA_PG_DIR:-/tmp/pubdata-test-pg}
PORT=${PUBDATA_PG_PORT:-54329}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$BIN" ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
  BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
run_as_pg() {
  if [ "$(id -u)" = "0" ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}
if ! run_as_pg "$BIN/pg_ctl -D $PGDIR status" >/dev/null 2>&1; then
  if [ ! -f "$PGDIR/PG_VERSION" ]; then
    mkdir -p "$PGDIR"
    [ "$(id -u)" = "0" ] && chown postgres "$PGDIR"
    run_as_pg "$BIN/initdb -D $PGDIR -A trust -U pubdata -E UTF8 --locale=C.UTF-8" >/dev/null
  fi
  run_as_pg "$BIN/pg_ctl -D $PGDIR -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1' -l $PGDIR/log -w start" >/dev/null
fi
echo "postgresql+psycopg://pubdata@127.0.0.1:$PORT/postgres"

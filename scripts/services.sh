#!/usr/bin/env bash
# Start or stop the real services the tests use, on loopback ports:
# PostgreSQL 15, Redis 7 (AOF on) and moto's S3 server. `eval "$(scripts/services.sh env)"` exports
# the URLs the tests read. Idempotent: `start` leaves running services alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# Data lives under /tmp (one folder per checkout): the `postgres` user must be able to reach it,
# whatever the permissions of the folder the project was cloned into.
SVC=${AEROFS_SERVICES_DIR:-/tmp/aerofs-services-$(echo "$ROOT" | sha256sum | cut -c1-12)}
# Default ports lie below Linux's ephemeral range (32768-60999): a port in it can be taken at any moment
# as the local end of some outgoing connection, and the service then fails to bind ("Address already
# in use"; seen on a busy machine with moto on 55000).
PG_PORT=${AEROFS_TEST_PG_PORT:-25432}
REDIS_PORT=${AEROFS_TEST_REDIS_PORT:-26379}
S3_PORT=${AEROFS_TEST_S3_PORT:-25000}
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
VENV_BIN=$ROOT/.venv/bin

as_postgres() {
  # initdb and postgres refuse to run as root; run them as the `postgres` system user.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 100); do
    (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "services: $name did not open port $port" >&2
  return 1
}

start_pg() {
  mkdir -p "$SVC"
  if [ ! -d "$SVC/pg" ]; then
    mkdir -p "$SVC/pg"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$SVC/pg"
    as_postgres "$PG_BIN/initdb" -D "$SVC/pg" -U postgres --auth=trust -E UTF8 >"$SVC/pg-init.log"
  fi
  if ! as_postgres "$PG_BIN/pg_ctl" -D "$SVC/pg" status >/dev/null 2>&1; then
    as_postgres "$PG_BIN/pg_ctl" -D "$SVC/pg" -l "$SVC/pg/server.log" -w \
      -o "-p $PG_PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
  fi
  wait_port "$PG_PORT" postgresql
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='aerofs_test'" | grep -q 1 ||
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE aerofs_test"
}

start_redis() {
  mkdir -p "$SVC/redis"
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$SVC/redis" --appendonly yes \
      --daemonize yes --logfile "$SVC/redis/redis.log" --pidfile "$SVC/redis/redis.pid"
  fi
  wait_port "$REDIS_PORT" redis
}

start_s3() {
  if ! (echo >/dev/tcp/127.0.0.1/"$S3_PORT") 2>/dev/null; then
    nohup "$VENV_BIN/moto_server" -H 127.0.0.1 -p "$S3_PORT" >"$SVC/moto.log" 2>&1 &
    echo $! >"$SVC/moto.pid"
  fi
  wait_port "$S3_PORT" "moto S3 server"
}

stop_all() {
  [ -d "$SVC/pg" ] && as_postgres "$PG_BIN/pg_ctl" -D "$SVC/pg" -m fast stop >/dev/null 2>&1 || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  [ -f "$SVC/moto.pid" ] && kill "$(cat "$SVC/moto.pid")" 2>/dev/null || true
  rm -f "$SVC/moto.pid"
}

case "${1:-start}" in
  start) mkdir -p "$SVC"; start_pg; start_redis; start_s3 ;;
  stop) stop_all ;;
  env)
    echo "export AEROFS_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:$PG_PORT/aerofs_test"
    echo "export AEROFS_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
    echo "export AEROFS_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
    echo "export AEROFS_TEST_PG_BIN=$PG_BIN"
    ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac

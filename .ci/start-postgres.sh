#!/usr/bin/env bash
# Starts a throw-away PostgreSQL cluster for the PostgreSQL store's tests and
# prints shell assignments for the caller to eval:
#
#   eval "$(.ci/start-postgres.sh)"       # sets KOSHIN_TEST_PG, KOSHIN_PG_DIR, KOSHIN_PG_STOP
#   trap 'eval "$KOSHIN_PG_STOP"' EXIT    # stops the server and removes its directory
#
# The cluster lives in a fresh mktemp directory, listens on 127.0.0.1 only, on
# a free port found at run time, trusts local connections (-A trust: it holds
# nothing but test data and dies with the job), and runs with fsync off. It
# registers nothing that outlives the job: no service, no cron entry, no file
# outside its directory. `start-postgres.sh stop DIR` stops it; the server's
# pid is also in DIR/data/postmaster.pid.
#
# Only the export lines go to stdout; progress and errors go to stderr.
set -euo pipefail

log() { printf 'start-postgres: %s\n' "$*" >&2; }

# pgbin finds the server binaries, preferring PostgreSQL 15 (the version the
# project tests against, Debian 12's), then any other installed major.
pgbin() {
  local d
  for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

# as_owner runs a command as the cluster's owner: initdb and the server
# refuse to run as root, so root hands them to the postgres account.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

stop_cluster() {
  local dir=$1 bin
  bin=$(pgbin) || true
  if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  case "$dir" in
    */koshin-pg.*) rm -rf -- "$dir" ;;
    *) log "refusing to remove $dir: not a directory this script created" ;;
  esac
}

if [ "${1:-start}" = stop ]; then
  [ $# -eq 2 ] || { log "usage: $0 stop DIR"; exit 2; }
  stop_cluster "$2"
  exit 0
fi

if ! bin=$(pgbin); then
  log "PostgreSQL server binaries not found; installing the postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  # Debian's package would create and start a system cluster ("main", port
  # 5432) that outlives the job; only the binaries are wanted.
  conf=/etc/postgresql-common/createcluster.d/koshin-ci.conf
  mkdir -p "$(dirname "$conf")"
  echo 'create_main_cluster = false' >"$conf"
  { apt-get install -y -qq postgresql || { apt-get update -qq && apt-get install -y -qq postgresql; }; } >&2
  rm -f "$conf"
  bin=$(pgbin) || { log "postgresql installed but initdb not found"; exit 1; }
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/koshin-pg.XXXXXXXX")
chmod 0700 "$dir"
if [ "$(id -u)" -eq 0 ]; then
  chown postgres:postgres "$dir"
fi
trap 'stop_cluster "$dir"' ERR

as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log" >&2; exit 1; }

# port_free reports whether nothing accepts connections on 127.0.0.1:$1.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

started=
for attempt in 1 2 3 4 5 6 7 8; do
  port=$((20000 + RANDOM % 40000))
  port_free "$port" || continue
  # The options, and why:
  #   listen on loopback only; the Unix socket goes into the temp directory
  #   (not /var/run/postgresql, which may not exist or belong to a system
  #   cluster); fsync, synchronous_commit and full_page_writes off because a
  #   crash loses only test data; max_connections covers several test pools
  #   (each store is a "replica" with its own pool) plus lock sessions.
  if as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o \
    "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >&2; then
    started=1
    break
  fi
  log "start on port $port failed (attempt $attempt); retrying on another port"
  tail -n 5 "$dir/server.log" >&2 || true
done
[ -n "$started" ] || { log "could not start PostgreSQL"; exit 1; }

dsn="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
"$bin/psql" "$dsn" -Atqc 'SELECT 1' >/dev/null 2>&1 || { log "server started but does not answer"; exit 1; }
trap - ERR
log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port, data in $dir"

self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
printf 'export KOSHIN_TEST_PG=%q\n' "$dsn"
printf 'export KOSHIN_PG_DIR=%q\n' "$dir"
printf 'export KOSHIN_PG_STOP=%q\n' "$self stop $dir"

#!/usr/bin/env bash
# Starts a throw-away S3 server (versitygw v1.8.0, posix backend) for the s3
# blob store's integration tests and prints shell assignments for the
# caller to eval:
#
#   eval "$(.ci/start-versitygw.sh)"     # sets KOSHIN_TEST_S3*, KOSHIN_VERSITYGW, KOSHIN_S3_STOP
#   trap 'eval "$KOSHIN_S3_STOP"' EXIT   # stops the server and removes its directory
#
# The binary is built once with `go install` into $KOSHIN_TOOLS (default
# ~/.cache/koshin-tools), outside the repository, and reused afterwards
# (a cold build takes about 2 minutes and 750 MB of memory). The server
# listens on 127.0.0.1 only, on a free port found at run time, keeps its
# objects in a fresh mktemp directory and gets random root credentials,
# passed through its environment so that they never show in `ps`. It
# registers nothing that outlives the job. `start-versitygw.sh stop DIR`
# stops it; its pid is in DIR/pid.
#
# The bucket named in KOSHIN_TEST_S3_BUCKET does not exist yet: the tests
# create it (a bucket is made through the S3 API, so that the server
# records its owner).
#
# Only the export lines go to stdout; progress and errors go to stderr.
set -euo pipefail

VERSION=v1.8.0
log() { printf 'start-versitygw: %s\n' "$*" >&2; }

stop_server() {
  local dir=$1 pid
  case "$dir" in
    */koshin-s3.*) ;;
    *) log "refusing to touch $dir: not a directory this script created"; return 0 ;;
  esac
  if [ -f "$dir/pid" ]; then
    pid=$(cat "$dir/pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf -- "$dir"
}

if [ "${1:-start}" = stop ]; then
  [ $# -eq 2 ] || { log "usage: $0 stop DIR"; exit 2; }
  stop_server "$2"
  exit 0
fi

tools=${KOSHIN_TOOLS:-$HOME/.cache/koshin-tools}
bin=$tools/versitygw
# `go version -m` names the module version the binary was built from
# (versitygw --version says "git" for a go-install build).
if [ ! -x "$bin" ] || ! go version -m "$bin" 2>/dev/null | grep -Eq "^[[:space:]]+mod[[:space:]]+github.com/versity/versitygw[[:space:]]+$VERSION([[:space:]]|$)"; then
  log "building versitygw $VERSION into $tools (about 2 minutes on a cold cache)"
  mkdir -p "$tools"
  # Outside the repository's module, so nothing of versitygw's dependency
  # graph touches koshin's go.mod.
  (cd "$tools" && GOFLAGS=-mod=mod GOBIN=$tools go install "github.com/versity/versitygw/cmd/versitygw@$VERSION") >&2
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/koshin-s3.XXXXXXXX")
chmod 0700 "$dir"
mkdir "$dir/data"
trap 'stop_server "$dir"' ERR

rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
access=$(rand_hex 10)
secret=$(rand_hex 20)

# port_free reports whether nothing accepts connections on 127.0.0.1:$1.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# answers reports whether an HTTP server answers on 127.0.0.1:$1 (an
# anonymous request gets 403, which is an answer).
answers() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1" &&
    printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 &&
    head -c 12 <&3 | grep -q '^HTTP/') 2>/dev/null
}

started=
for attempt in 1 2 3 4 5 6 7 8; do
  port=$((20000 + RANDOM % 40000))
  port_free "$port" || continue
  # --quiet: no per-request log lines.
  ROOT_ACCESS_KEY_ID=$access ROOT_SECRET_ACCESS_KEY=$secret \
    setsid "$bin" --port "127.0.0.1:$port" --quiet posix "$dir/data" \
    >"$dir/server.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  for _ in $(seq 1 100); do
    if answers "$port"; then started=1; break; fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$started" ] && break
  log "start on port $port failed (attempt $attempt); retrying on another port"
  tail -n 5 "$dir/server.log" >&2 || true
  kill "$(cat "$dir/pid")" 2>/dev/null || true
done
[ -n "$started" ] || { log "could not start versitygw"; exit 1; }
trap - ERR
log "versitygw $VERSION on 127.0.0.1:$port, objects in $dir/data"

self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
printf 'export KOSHIN_TEST_S3=%q\n' "http://127.0.0.1:$port"
printf 'export KOSHIN_TEST_S3_ACCESS_KEY=%q\n' "$access"
printf 'export KOSHIN_TEST_S3_SECRET_KEY=%q\n' "$secret"
printf 'export KOSHIN_TEST_S3_BUCKET=%q\n' "koshin-ci"
printf 'export KOSHIN_TEST_S3_REGION=%q\n' "us-east-1"
printf 'export KOSHIN_VERSITYGW=%q\n' "$bin"
printf 'export KOSHIN_S3_DIR=%q\n' "$dir"
printf 'export KOSHIN_S3_STOP=%q\n' "$self stop $dir"

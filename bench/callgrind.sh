#!/usr/bin/env bash
# Instructions per request, counted by callgrind: a measure that other work on the machine does
# not distort (wall-clock numbers from bench/run.sh need a quiet machine). Each server runs under
# `valgrind --tool=callgrind` twice, once answering SMALL requests and once LARGE, sent one after
# another by examples/seq_post.rs; (instructions of the large run − the small run) / (LARGE −
# SMALL) is one request's cost with start-up, shutdown and warm-up cancelled out. Every thread of
# the server is counted (HTTP workers, the writer, SQLite). Kernel time (fsync, syscalls) is not.
#
#   bench/callgrind.sh                  # auto-approve, verify, durable limit, bare; profiling build
#   SMALL=100 LARGE=600 bench/callgrind.sh
#   KEEP=/tmp/cg bench/callgrind.sh     # keep the callgrind.out files (callgrind_annotate --inclusive=yes)
#   PROFILE=dist bench/callgrind.sh     # count the shipped (stripped) build instead
set -euo pipefail
cd "$(dirname "$0")/.."

SMALL=${SMALL:-200}
LARGE=${LARGE:-1200}
PROFILE=${PROFILE:-profiling}
DIR=target/$PROFILE
PORT=${PORT:-18797}

command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
cargo build --profile "$PROFILE" --quiet --bin agent-otp --example bare_json --example durable_json --example seq_post

WORK=${KEEP:-$(mktemp -d)}
mkdir -p "$WORK"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
wait_http() { for _ in $(seq 1 3000); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.02; done; return 1; }
wait_port() { for _ in $(seq 1 3000); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.02; done; return 1; }

# counted NAME N CMD... : runs `before`, then CMD under callgrind, lets `load N` run against it, stops it with
# SIGTERM and prints the total instructions of every thread.
counted() {
  local name=$1 n=$2
  shift 2
  local out="$WORK/callgrind.out.$name.$n"
  before
  valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >>"$WORK/server.log" 2>&1 &
  local pid=$!
  ready
  load "$n"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  awk '/^summary:|^totals:/ {print $2; exit}' "$out"
}

# per_request NAME CMD... : instructions per request of CMD, from a SMALL and a LARGE run.
per_request() {
  local name=$1
  shift
  local a b
  a=$(counted "$name" "$SMALL" "$@")
  b=$(counted "$name" "$LARGE" "$@")
  awk -v a="$a" -v b="$b" -v s="$SMALL" -v l="$LARGE" -v n="$name" \
    'BEGIN { printf "%-14s %9.0f instructions/request\n", n, (b - a) / (l - s) }'
}

post() { target/$PROFILE/examples/seq_post "127.0.0.1:$PORT" "$1" "$2" "$3" "$4"; }

# Bare actix-web and the durable limit.
before() { :; }
ready() { wait_port "$PORT"; }
load() { post / "" '{"action":"bench.auto"}' "$1"; }
per_request bare target/$PROFILE/examples/bare_json "127.0.0.1:$PORT"
before() { rm -f "$WORK/durable.db"*; }
per_request durable target/$PROFILE/examples/durable_json "127.0.0.1:$PORT" "$WORK/durable.db"

# agent-otp, on a fresh data directory each run (a WAL left by the last run would be
# recovered at start-up, in one run and not the other), set up as bench/run.sh does.
BIN=target/$PROFILE/agent-otp
export AGENT_OTP_RATE_LIMIT_AGENT=1000000/s AGENT_OTP_MAX_STORED_PER_AGENT=off
fresh() {
  rm -rf "$WORK/data"
  export AGENT_OTP_DATA_DIR="$WORK/data"
  $BIN init >/dev/null 2>&1
  KEY=$($BIN agent create bench 2>/dev/null)
}
SERVE=("$BIN" serve --listen "127.0.0.1:$PORT" --policies bench/policy.yaml)
before() { fresh; }
ready() { wait_http "http://127.0.0.1:$PORT/health"; }
load() { post /api/v1/permissions/request "$KEY" '{"action":"bench.auto"}' "$1"; }
per_request auto-approve "${SERVE[@]}"

ready() {
  wait_http "http://127.0.0.1:$PORT/health"
  local grant
  grant=$(curl -s "http://127.0.0.1:$PORT/api/v1/permissions/request" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d '{"action":"bench.auto","uses":100}')
  ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])' <<<"$grant")
  TOKEN=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])' <<<"$grant")
}
load() { post "/api/v1/permissions/$ID/verify" "$KEY" "{\"token\":\"$TOKEN\"}" "$1"; }
per_request verify "${SERVE[@]}"

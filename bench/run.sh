#!/usr/bin/env bash
# The project's benchmark (not a test): starts the release server and a bare actix-web JSON
# handler, loads both with the same wrk settings and core pinning (server on core 0, load on
# core 1), measures auto-approve latency at a fixed half of its peak rate, and prints a
# markdown table for the README.
#
#   bench/run.sh            # defaults: 10 s per run, 32 connections, pinned
#   DURATION=30s CONNS=64 bench/run.sh
#   PIN=0 bench/run.sh      # no pinning: server and load share every core
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
case "$DURATION" in # wrk's forms; fixed_rate wants seconds
  *[0-9]s) SECS=${DURATION%s} ;; *[0-9]m) SECS=$(( ${DURATION%m} * 60 )) ;; *[0-9]) SECS=$DURATION ;;
  *) echo "DURATION must look like 10s, 2m or 30" >&2; exit 2 ;;
esac
CONNS=${CONNS:-32}
PIN=${PIN:-1}
if [ "$PIN" = 1 ]; then SERVER_CPU="taskset -c 0"; LOAD_CPU="taskset -c 1"; else SERVER_CPU=""; LOAD_CPU=""; fi
PORT_BARE=18080
PORT_OTP=18787
BIN=target/dist/agent-otp

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build --profile dist --quiet --bin agent-otp --example bare_json --example wake_latency --example fixed_rate

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# wrk_run URL BODY KEY PID → "req/s p50 p99 cpu" (latencies in ms; cpu: the server PID's user +
# system CPU time per request in µs, from /proc, which other load on the machine does not distort)
wrk_run() {
  local out cpu0 cpu1
  cpu0=$(cpu_ticks "$4")
  out=$(BODY="$2" KEY="$3" $LOAD_CPU wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s bench/post.lua "$1")
  cpu1=$(cpu_ticks "$4")
  echo "$out" >>"$WORK/wrk.log"
  local rps p50 p99 n
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$rps $(to_ms "$p50") $(to_ms "$p99") $(awk -v t=$((cpu1 - cpu0)) -v hz="$(getconf CLK_TCK)" -v n="$n" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
to_ms() { # wrk prints 812.00us / 1.23ms / 1.01s
  awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /s$/ && v !~ /ms$/) n*=1000; printf "%.2f", n }'
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
wait_http() { for _ in $(seq 1 2000); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.005; done; return 1; }

# 1. Bare actix-web JSON handler.
$SERVER_CPU target/dist/examples/bare_json 127.0.0.1:$PORT_BARE & BARE_PID=$!
PIDS+=($BARE_PID)
sleep 0.5
read -r BARE_RPS BARE_P50 BARE_P99 BARE_CPU < <(wrk_run "http://127.0.0.1:$PORT_BARE/" '{"action":"bench.auto"}' "" "$BARE_PID")

# 2. agent-otp on a fresh data directory.
export AGENT_OTP_DATA_DIR="$WORK/data"
# One agent key at full speed: keep the per-key limiter on the path (its cost is measured) but
# out of the way (the default 600/min would answer 429).
export AGENT_OTP_RATE_LIMIT_AGENT=1000000/s
$BIN init 2>/dev/null
KEY=$($BIN agent create bench 2>/dev/null)
ADMIN=$($BIN admin token create --name bench 2>/dev/null)
start_server() {
  $SERVER_CPU $BIN serve --listen 127.0.0.1:$PORT_OTP --policies bench/policy.yaml 2>>"$WORK/server.log" &
  OTP_PID=$!
  PIDS+=($OTP_PID)
}
T0=$(date +%s%N)
start_server
wait_http "http://127.0.0.1:$PORT_OTP/health"
T1=$(date +%s%N)
sleep 1
IDLE_RSS=$(rss_kb "$OTP_PID")

URL="http://127.0.0.1:$PORT_OTP"
( peak=0; while kill -0 "$OTP_PID" 2>/dev/null; do r=$(rss_kb "$OTP_PID" || echo 0); [ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" >"$WORK/peak"; sleep 0.2; done ) &
PIDS+=($!)
read -r AUTO_RPS AUTO_P50 AUTO_P99 AUTO_CPU < <(wrk_run "$URL/api/v1/permissions/request" '{"action":"bench.auto"}' "$KEY" "$OTP_PID")

# Latency at half of the peak just measured, open loop (fixed rate, no coordinated omission).
HALF_RPS=$(awk -v r="$AUTO_RPS" 'BEGIN { printf "%d", r / 2 }')
read -r HALF_ACHIEVED HALF_P50 HALF_P99 HALF_MAX HALF_FAILED < <($LOAD_CPU target/dist/examples/fixed_rate \
  "127.0.0.1:$PORT_OTP" /api/v1/permissions/request "$KEY" '{"action":"bench.auto"}' "$HALF_RPS" "$SECS")

GRANT=$(curl -s "$URL/api/v1/permissions/request" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '{"action":"bench.auto","uses":100}')
ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])' <<<"$GRANT")
TOKEN=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])' <<<"$GRANT")
read -r VERIFY_RPS VERIFY_P50 VERIFY_P99 VERIFY_CPU < <(wrk_run "$URL/api/v1/permissions/$ID/verify" "{\"token\":\"$TOKEN\"}" "$KEY" "$OTP_PID")
LOAD_RSS=$(cat "$WORK/peak")

read -r WAKE_P50 WAKE_P99 WAKE_MAX < <($LOAD_CPU target/dist/examples/wake_latency "$URL" "$KEY" "$ADMIN" 200)

# 3. Start-up to ready on the now well-filled database.
kill "$OTP_PID"; wait "$OTP_PID" 2>/dev/null || true
T2=$(date +%s%N)
start_server
wait_http "$URL/health"
T3=$(date +%s%N)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100*a/b }'; }
cat <<TABLE
machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -sr)
load: wrk -t1 -c$CONNS -d$DURATION, $([ "$PIN" = 1 ] && echo "server pinned to core 0, load to core 1" || echo "no pinning")

| measure | result | vs bare actix-web |
|---|---|---|
| bare actix-web JSON handler | $BARE_RPS req/s, p50 $BARE_P50 ms, p99 $BARE_P99 ms, CPU $BARE_CPU µs/req | 100% |
| auto-approve round trip (request → 201 + token, durable commit) | $AUTO_RPS req/s, p50 $AUTO_P50 ms, p99 $AUTO_P99 ms, CPU $AUTO_CPU µs/req | $(ratio "$AUTO_RPS" "$BARE_RPS") |
| auto-approve at half of peak, fixed rate ($HALF_ACHIEVED req/s, $HALF_FAILED failed) | p50 $HALF_P50 ms, p99 $HALF_P99 ms, max $HALF_MAX ms | |
| verify | $VERIFY_RPS req/s, p50 $VERIFY_P50 ms, p99 $VERIFY_P99 ms, CPU $VERIFY_CPU µs/req | $(ratio "$VERIFY_RPS" "$BARE_RPS") |
| approval → waiting agent's long-poll returns (200 rounds) | p50 $WAKE_P50 ms, p99 $WAKE_P99 ms, max $WAKE_MAX ms | |
| RSS idle / peak under load | $((IDLE_RSS / 1024)) MB / $((LOAD_RSS / 1024)) MB | |
| start-up to ready: first serve / restart after the load above | $(( (T1 - T0) / 1000000 )) ms / $(( (T3 - T2) / 1000000 )) ms | |
| release binary | $(awk -v b="$(stat -c %s $BIN)" 'BEGIN { printf "%.1f MiB", b/1048576 }') | |
TABLE

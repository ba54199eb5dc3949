#!/usr/bin/env bash
# The project's benchmark (not a test): starts the shipped server, a bare actix-web JSON handler
# and the "durable limit" baseline (the same stack answering after one group-committed SQLite
# insert of a permission-sized row and its audit event, same durability settings:
# examples/durable_json.rs; the bytes both store per request are printed, from SQLite's dbstat),
# loads each with the same wrk settings and core pinning (server on core 0, load on core 1),
# measures auto-approve latency at a fixed half of its peak rate, and prints a markdown table for
# the README: the median of RUNS runs with their range, each measure as a ratio to bare and to the
# durable limit, the server's CPU per request, and the targets; then, per run, the half-peak
# measure's slowest request beside the slow commits, the disk alone and what the machine did
# meanwhile. In each run the order is: durable limit, auto-approve, half-peak, the durable limit
# at the same fixed rate, the disk's fsync loop, verify, bare, wake-up, restart, so each target's
# two sides are measured back to back.
#
#   bench/run.sh            # defaults: 1 run, 10 s per measure, 32 connections, pinned
#   RUNS=5 bench/run.sh     # five runs, median and range of each measure
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
RUNS=${RUNS:-1}
PIN=${PIN:-1}
if [ "$PIN" = 1 ]; then SERVER_CPU="taskset -c 0"; LOAD_CPU="taskset -c 1"; else SERVER_CPU=""; LOAD_CPU=""; fi
PORT_BARE=18080
PORT_DURABLE=18081
PORT_OTP=18787
BIN=target/dist/agent-otp

command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build --profile dist --quiet --bin agent-otp --example bare_json --example durable_json --example wake_latency --example fixed_rate

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
# row_bytes DB REQUESTS EVENTS → stored bytes (payload) of one request row plus its events, per request
row_bytes() {
  python3 - "$@" <<'PY' 2>/dev/null || { echo "row sizes need python3's sqlite3 with dbstat" >&2; echo nan; }
import sqlite3, sys
db, requests, events = sys.argv[1:4]
c = sqlite3.connect(db)
n = c.execute(f"SELECT count(*) FROM {requests}").fetchone()[0]
payload = c.execute("SELECT sum(payload) FROM dbstat WHERE name IN (?, ?)", (requests, events)).fetchone()[0]
print(round(payload / n))
PY
}
# slow_commits URL ADMIN → group commits so far that took over 10 ms (from /metrics); stops the
# bench if the histogram or its 10 ms bucket is missing, rather than count every commit as slow
slow_commits() {
  curl -sf "$1/metrics" -H "Authorization: Bearer $2" | awk '
    /^agent_otp_writer_commit_seconds_count/ { n = $2 }
    /^agent_otp_writer_commit_seconds_bucket\{le="0.01"\}/ { fast = $2 }
    END { if (n == "" || fast == "") { print "no commit histogram with a 10 ms bucket in /metrics" > "/dev/stderr"; exit 1 }
          printf "%d", n - fast }'
}
# fsync_probe DIR SECONDS → "p99_ms max_ms": the disk alone, 4 KiB written and fsync'd in a loop, so
# a run's tail can be held against what the machine's storage did in the same minute
fsync_probe() {
  python3 - "$@" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync_probe")
fd, lat, end = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), [], time.time() + float(sys.argv[2])
while time.time() < end:
    os.write(fd, b"x" * 4096)
    t = time.perf_counter(); os.fsync(fd); lat.append(time.perf_counter() - t)
os.close(fd); os.unlink(path); lat.sort()
print(f"{lat[int(len(lat) * 0.99)] * 1000:.2f} {lat[-1] * 1000:.2f}")
PY
}
# rss_kb PID [FIELD] → the process's resident set now (VmRSS) or at its highest so far (VmHWM), in KiB
rss_kb() { awk -v f="${2:-VmRSS}:" '$1 == f {print $2}' "/proc/$1/status"; }
wait_http() { for _ in $(seq 1 2000); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.005; done; return 1; }

# One run of every measure, as "name value" lines on stdout.
one_run() {
  RUN=$1
  mkdir -p "$RUN"
  # Each target's two sides are measured back to back, so that the machine's drift (its speed
  # moves by 10-20% over minutes) falls on both alike: the durable limit just before
  # auto-approve, bare actix-web just after verify.
  # 1. The durable limit: one group-committed insert of a request row and an audit row per request.
  rm -f "$RUN/durable.db"*
  $SERVER_CPU target/dist/examples/durable_json 127.0.0.1:$PORT_DURABLE "$RUN/durable.db" & DURABLE_PID=$!
  PIDS+=($DURABLE_PID)
  sleep 0.5
  read -r DUR_RPS DUR_P50 DUR_P99 DUR_CPU < <(wrk_run "http://127.0.0.1:$PORT_DURABLE/" '{"action":"bench.auto"}' "" "$DURABLE_PID")
  kill "$DURABLE_PID"; wait "$DURABLE_PID" 2>/dev/null || true
  DUR_ROW_BYTES=$(row_bytes "$RUN/durable.db" requests events)

  # 2. agent-otp on a fresh data directory.
  export AGENT_OTP_DATA_DIR="$RUN/data"
  # One agent key at full speed: keep the per-key limiter on the path (its cost is measured) but
  # out of the way (the default 600/min would answer 429).
  export AGENT_OTP_RATE_LIMIT_AGENT=1000000/s
  # The per-agent storage cap (8 MiB/h by default) would refuse the load part-way through.
  export AGENT_OTP_MAX_STORED_PER_AGENT=off
  $BIN init 2>/dev/null
  KEY=$($BIN agent create bench 2>/dev/null)
  ADMIN=$($BIN admin token create --name bench 2>/dev/null)
  start_server() {
    $SERVER_CPU $BIN serve --listen 127.0.0.1:$PORT_OTP --policies bench/policy.yaml >>"$RUN/server.log" 2>&1 &
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
  read -r AUTO_RPS AUTO_P50 AUTO_P99 AUTO_CPU < <(wrk_run "$URL/api/v1/permissions/request" '{"action":"bench.auto"}' "$KEY" "$OTP_PID")
  AUTO_HWM=$(rss_kb "$OTP_PID" VmHWM)

  # Latency at half of the peak just measured, open loop (fixed rate, no coordinated omission).
  # Beside the latencies: what the machine did while the slowest request waited (fixed_rate's
  # second line), and the group commits that took over 10 ms (the writer's histogram).
  HALF_RPS=$(awk -v r="$AUTO_RPS" 'BEGIN { printf "%d", r / 2 }')
  SLOW0=$(slow_commits "$URL" "$ADMIN")
  SERVER_PID=$OTP_PID $LOAD_CPU target/dist/examples/fixed_rate \
    "127.0.0.1:$PORT_OTP" /api/v1/permissions/request "$KEY" '{"action":"bench.auto"}' "$HALF_RPS" "$SECS" >"$RUN/half"
  SLOW1=$(slow_commits "$URL" "$ADMIN")
  HALF_SLOW_COMMITS=$(( SLOW1 - SLOW0 ))
  { read -r HALF_ACHIEVED HALF_P50 HALF_P99 HALF_MAX HALF_FAILED
    read -r _ WORST_AT WORST_MS WORST_STEAL0 WORST_STEAL1 WORST_IDLE0 WORST_IOWAIT0 WORST_SERVER WORST_LOAD WORST_IO_STALLED; } <"$RUN/half"

  HALF_HWM=$(rss_kb "$OTP_PID" VmHWM)

  # The durable limit at the same fixed rate, on its database as its peak load left it (agent-otp
  # stays up, idle): the tail that storage and the same stack give with none of agent-otp's work,
  # measured straight after agent-otp's, so a tail the disk makes shows on both sides.
  $SERVER_CPU target/dist/examples/durable_json 127.0.0.1:$PORT_DURABLE "$RUN/durable.db" & DURABLE_PID=$!
  PIDS+=($DURABLE_PID)
  sleep 0.5
  SERVER_PID=$DURABLE_PID $LOAD_CPU target/dist/examples/fixed_rate \
    "127.0.0.1:$PORT_DURABLE" / "" '{"action":"bench.auto"}' "$HALF_RPS" "$SECS" >"$RUN/durable_half"
  kill "$DURABLE_PID"; wait "$DURABLE_PID" 2>/dev/null || true
  read -r DUR_HALF_ACHIEVED DUR_HALF_P50 DUR_HALF_P99 DUR_HALF_MAX DUR_HALF_FAILED <"$RUN/durable_half"

  read -r FSYNC_P99 FSYNC_MAX < <(fsync_probe "$RUN" 5)

  GRANT=$(curl -s "$URL/api/v1/permissions/request" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '{"action":"bench.auto","uses":100}')
  ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])' <<<"$GRANT")
  TOKEN=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])' <<<"$GRANT")
  read -r VERIFY_RPS VERIFY_P50 VERIFY_P99 VERIFY_CPU < <(wrk_run "$URL/api/v1/permissions/$ID/verify" "{\"token\":\"$TOKEN\"}" "$KEY" "$OTP_PID")
  # The kernel's high-water mark: exact, and no sampling loop forks beside the server.
  LOAD_RSS=$(rss_kb "$OTP_PID" VmHWM)

  # 3. Bare actix-web JSON handler (agent-otp stays up, idle, for the measures after this one).
  $SERVER_CPU target/dist/examples/bare_json 127.0.0.1:$PORT_BARE & BARE_PID=$!
  PIDS+=($BARE_PID)
  sleep 0.5
  read -r BARE_RPS BARE_P50 BARE_P99 BARE_CPU < <(wrk_run "http://127.0.0.1:$PORT_BARE/" '{"action":"bench.auto"}' "" "$BARE_PID")
  kill "$BARE_PID"; wait "$BARE_PID" 2>/dev/null || true

  read -r WAKE_P50 WAKE_P99 WAKE_MAX < <($LOAD_CPU target/dist/examples/wake_latency "$URL" "$KEY" "$ADMIN" 200)

  # 4. Start-up to ready on the now well-filled database.
  kill "$OTP_PID"; wait "$OTP_PID" 2>/dev/null || true
  T2=$(date +%s%N)
  start_server
  wait_http "$URL/health"
  T3=$(date +%s%N)
  kill "$OTP_PID"; wait "$OTP_PID" 2>/dev/null || true
  OTP_ROW_BYTES=$(row_bytes "$RUN/data/agent-otp.db" permissions audit_events)
  cat <<MEASURES
bare_rps $BARE_RPS
bare_p99 $BARE_P99
bare_cpu $BARE_CPU
durable_rps $DUR_RPS
durable_p99 $DUR_P99
durable_cpu $DUR_CPU
durable_row_bytes $DUR_ROW_BYTES
auto_row_bytes $OTP_ROW_BYTES
auto_rps $AUTO_RPS
auto_p50 $AUTO_P50
auto_p99 $AUTO_P99
auto_cpu $AUTO_CPU
half_rps $HALF_ACHIEVED
half_failed $HALF_FAILED
half_p50 $HALF_P50
half_p99 $HALF_P99
half_max $HALF_MAX
half_slow_commits $HALF_SLOW_COMMITS
durable_half_rps $DUR_HALF_ACHIEVED
durable_half_failed $DUR_HALF_FAILED
durable_half_p50 $DUR_HALF_P50
durable_half_p99 $DUR_HALF_P99
durable_half_max $DUR_HALF_MAX
fsync_p99 $FSYNC_P99
fsync_max $FSYNC_MAX
worst_at_s $WORST_AT
worst_ms $WORST_MS
worst_steal0_pct $WORST_STEAL0
worst_steal1_pct $WORST_STEAL1
worst_idle0_pct $WORST_IDLE0
worst_iowait0_pct $WORST_IOWAIT0
worst_server_pct $WORST_SERVER
worst_load_pct $WORST_LOAD
worst_io_stalled_pct $WORST_IO_STALLED
verify_rps $VERIFY_RPS
verify_p99 $VERIFY_P99
verify_cpu $VERIFY_CPU
wake_p50 $WAKE_P50
wake_p99 $WAKE_P99
wake_max $WAKE_MAX
rss_idle_mb $(( IDLE_RSS / 1024 ))
rss_peak_mb $(( LOAD_RSS / 1024 ))
rss_peak_after_auto_mb $(( AUTO_HWM / 1024 ))
rss_peak_after_half_mb $(( HALF_HWM / 1024 ))
start_first_ms $(( (T1 - T0) / 1000000 ))
start_restart_ms $(( (T3 - T2) / 1000000 ))
auto_vs_bare $(awk -v a="$AUTO_RPS" -v b="$BARE_RPS" 'BEGIN { printf "%.1f", 100*a/b }')
auto_vs_durable $(awk -v a="$AUTO_RPS" -v b="$DUR_RPS" 'BEGIN { printf "%.1f", 100*a/b }')
durable_vs_bare $(awk -v a="$DUR_RPS" -v b="$BARE_RPS" 'BEGIN { printf "%.1f", 100*a/b }')
half_p99_vs_durable $(awk -v a="$HALF_P99" -v b="$DUR_HALF_P99" 'BEGIN { printf "%.1f", 100*a/b }')
verify_vs_bare $(awk -v a="$VERIFY_RPS" -v b="$BARE_RPS" 'BEGIN { printf "%.1f", 100*a/b }')
MEASURES
}

for i in $(seq 1 "$RUNS"); do
  echo "== run $i of $RUNS" >&2
  one_run "$WORK/run$i" >"$WORK/measures$i.txt"
  sed 's/^/  /' "$WORK/measures$i.txt" >&2   # the raw measures, kept in the log
done

BINARY_MIB=$(awk -v b="$(stat -c %s $BIN)" 'BEGIN { printf "%.2f", b/1048576 }')
python3 bench/table.py "$RUNS" "$BINARY_MIB" "$CONNS" "$DURATION" "$PIN" "$WORK"/measures*.txt

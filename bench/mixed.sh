#!/usr/bin/env bash
# Verify under write load (not a test): the same server answers verify alone, then while
# auto-approve runs at a fixed RATE for another agent, to show what remembered reads
# (src/store/recent.rs) are worth when requests keep being written. Server pinned to core 0,
# both loads to core 1, like bench/run.sh.
#
#   bench/mixed.sh            # RATE 2000 auto-approvals/s
#   bench/mixed.sh 500
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${1:-2000}
PORT=18798
BIN=${BIN:-target/dist/agent-otp}
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
cargo build --profile dist --quiet --bin agent-otp --example fixed_rate

WORK=$(mktemp -d)
trap 'kill "${PID:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
export AGENT_OTP_DATA_DIR="$WORK/data" AGENT_OTP_RATE_LIMIT_AGENT=1000000/s
$BIN init 2>/dev/null
KEY=$($BIN agent create checker 2>/dev/null)
WRITER=$($BIN agent create writer 2>/dev/null)
taskset -c 0 $BIN serve --listen 127.0.0.1:$PORT --policies bench/policy.yaml >/dev/null 2>"$WORK/server.log" &
PID=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 400); do curl -sf "$URL/health" >/dev/null && break; sleep 0.01; done

GRANT=$(curl -s "$URL/api/v1/permissions/request" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d '{"action":"bench.auto","uses":100}')
ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])' <<<"$GRANT")
TOKEN=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])' <<<"$GRANT")
verify_rps() {
  BODY="{\"token\":\"$TOKEN\"}" KEY="$KEY" taskset -c 1 wrk -t1 -c32 -d8s -s bench/post.lua \
    "$URL/api/v1/permissions/$ID/verify" | awk '/^Requests\/sec/ {print $2}'
}

echo "verify alone: $(verify_rps) req/s"
taskset -c 1 target/dist/examples/fixed_rate "127.0.0.1:$PORT" /api/v1/permissions/request \
  "$WRITER" '{"action":"bench.auto"}' "$RATE" 10 >"$WORK/writes" &
WRITES=$!
sleep 1
echo "verify while auto-approve runs at $RATE/s: $(verify_rps) req/s"
wait $WRITES
read -r ACHIEVED P50 P99 MAX FAILED <"$WORK/writes"
echo "auto-approve meanwhile: $ACHIEVED req/s, p50 $P50 ms, p99 $P99 ms, max $MAX ms, $FAILED failed"

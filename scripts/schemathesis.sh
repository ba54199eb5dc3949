#!/usr/bin/env bash
# Fuzzes the JSON API from its own OpenAPI document: builds (or takes) the server binary, starts
# it on a free loopback port with a throwaway data directory, makes an agent key and an admin
# token, and runs schemathesis with every check and a bounded number of examples. Exits non-zero
# on any failure. Settings (all optional):
#   AGENT_OTP_BIN             server binary to test (default: build the release binary)
#   SCHEMATHESIS_MAX_EXAMPLES examples per operation and phase (default 100)
#   SCHEMATHESIS_VENV         where to keep the Python venv (default: <target dir>/schemathesis-venv)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-100}

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
  echo "== installing python3-venv"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv
fi

target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
if [ -z "${AGENT_OTP_BIN:-}" ]; then
  echo "== release build of the server"
  cargo build --release --locked
  AGENT_OTP_BIN="$target_dir/release/agent-otp"
fi
echo "server binary: $AGENT_OTP_BIN"

venv=${SCHEMATHESIS_VENV:-$target_dir/schemathesis-venv}
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

export AGENT_OTP_DATA_DIR="$work/data"
# One rule per decision, so the fuzzer sees all three answers of POST /permissions/request.
cat >"$work/policies.yaml" <<'YAML'
policies:
  - name: deny-shell
    conditions:
      action: { startsWith: "shell." }
    action: deny
  - name: auto-read
    conditions:
      action: { startsWith: "file." }
    action: auto_approve
  - name: ask
    conditions: {}
    action: require_approval
    priority: -10
YAML

"$AGENT_OTP_BIN" init 2>/dev/null
agent_key=$("$AGENT_OTP_BIN" agent create fuzzer 2>/dev/null | tail -n 1)
admin_token=$("$AGENT_OTP_BIN" admin token create --name fuzzer 2>/dev/null | tail -n 1)
case "$agent_key:$admin_token" in
  ak_*:adm_*) ;;
  *) echo "could not create credentials" >&2; exit 1 ;;
esac

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$AGENT_OTP_BIN" serve --listen "127.0.0.1:$port" --public-url "$base" \
  --policies "$work/policies.yaml" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "$base/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$base/health" >/dev/null || { cat "$work/server.log" >&2; exit 1; }

# Each security scheme of the document gets its own credential. `?wait=` is a long poll that
# holds a pending request open for up to 60 s: keep it short so the run stays bounded (its range
# checks are covered by the integration tests, tests/it/flows.rs).
cat >"$work/schemathesis.toml" <<TOML
[auth.openapi.agentKey]
bearer = "$agent_key"

[auth.openapi.adminToken]
bearer = "$admin_token"

[dictionaries.short-waits]
values = [0, 1]

[parameters]
"query.wait" = { dictionary = "short-waits" }

# Negative cases (extra query parameters) would otherwise draw a free \`wait\` again.
[[operations]]
include-operation-id = "get_own_permission"
generation.mode = "positive"

# Approval edits may only narrow what the request asked for; no schema can say "at most the
# request's own ttl", so a schema-valid edit that widens gets 400 here, by design.
[[operations]]
include-operation-id = "approve"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]
TOML

echo "== schemathesis against $base/openapi.json ($max_examples examples per operation and phase)"
status=0
# Run from the scratch directory: schemathesis keeps a cache in the working directory.
(cd "$work" && "$venv/bin/schemathesis" --config-file schemathesis.toml run "$base/openapi.json" \
  --checks all --continue-on-failure --seed 1 --max-examples "$max_examples" \
  --workers 1 --no-color) || status=$?
if grep -q "panicked" "$work/server.log"; then
  echo "the server panicked:" >&2
  grep -A5 "panicked" "$work/server.log" >&2
  status=1
fi
exit "$status"

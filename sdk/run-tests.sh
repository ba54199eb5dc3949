#!/usr/bin/env bash
# Builds the release server (unless AGENT_OTP_BIN names one already built, as .ci/run does),
# installs the SDKs' test dependencies, and runs the TypeScript and Python suites against the
# real binary (each suite starts its own server on 127.0.0.1:0), then sdk/install_test.py: each
# SDK installed into a fresh project from a directory and from a git URL, the docs' examples run.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
if ! need node || ! need npm; then
  echo "== installing node and npm"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm
fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
  echo "== installing python3-venv"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv
fi

if [ -z "${AGENT_OTP_BIN:-}" ]; then
  echo "== release build of the server (scripts/build-release.sh)"
  AGENT_OTP_BIN=$(scripts/build-release.sh)
fi
export AGENT_OTP_BIN
echo "server binary: $AGENT_OTP_BIN"

echo "== TypeScript SDK: install (its prepare script builds dist/), typecheck, test"
(
  cd sdk/typescript
  npm ci --no-audit --no-fund
  npm run typecheck
  npm test
)

echo "== Python SDK: venv, install (with the langchain extra), test"
(
  cd sdk/python
  python3 -m venv .venv
  .venv/bin/pip install -q -e ".[langchain,test]"
  status=0
  .venv/bin/python -m pytest -q || status=$?
  if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing" >&2
    exit 1
  fi
  exit "$status"
)
if ! need git; then
  echo "== installing git"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends git
fi
echo "== SDK install test: each SDK installed the way its docs say (directory, git URL), examples run"
python3 sdk/install_test.py

echo "== SDK suites passed"

#!/usr/bin/env bash
# The one release build of the server. The Dockerfile's builder stage runs this script, and so
# does CI (.ci/run, for the crash test and the SDK suites), so the binary CI tests is built exactly
# the way the image's is. Cargo's progress goes to stderr; stdout is one line: the binary's path.
#
#   bin=$(scripts/build-release.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --bin agent-otp

target_dir=${CARGO_TARGET_DIR:-target}
case "$target_dir" in
  /*) ;;
  *) target_dir="$PWD/$target_dir" ;;
esac
bin="$target_dir/release/agent-otp"
test -x "$bin" || { echo "build-release: no binary at $bin" >&2; exit 1; }
echo "$bin"

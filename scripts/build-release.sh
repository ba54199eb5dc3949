#!/usr/bin/env bash
# The one build of the binary we ship, with the `dist` profile (fat LTO, one codegen unit,
# stripped; see Cargo.toml). The Dockerfile's builder stage runs this script, and so does CI
# (.ci/run, for the crash test and the SDK suites), so the binary CI tests is built exactly the
# way the image's is. Cargo's progress goes to stderr; stdout is one line: the binary's path.
#
#   bin=$(scripts/build-release.sh)
#
# `cargo build --release` is the quick build for trying agent-otp out; this one takes longer
# (see README, "Two commands").
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --profile dist --locked --bin agent-otp

target_dir=${CARGO_TARGET_DIR:-target}
case "$target_dir" in
  /*) ;;
  *) target_dir="$PWD/$target_dir" ;;
esac
bin="$target_dir/dist/agent-otp"
test -x "$bin" || { echo "build-release: no binary at $bin" >&2; exit 1; }
echo "$bin"

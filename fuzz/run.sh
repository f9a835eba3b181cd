#!/usr/bin/env bash
# Build and run every fuzz target for SECONDS each (condition parser at least
# 60 s in CI; the others a third of it). Stable toolchain only.
# Exit non-zero if any target crashes (the input is in fuzz/artifacts/).
set -euo pipefail
seconds="${1:-60}"
here="$(cd "$(dirname "$0")" && pwd)"
others=$(( seconds / 3 > 0 ? seconds / 3 : 1 ))
cargo build --release --quiet --manifest-path "$here/Cargo.toml" --target-dir "$here/target"
status=0
for t in condition:"$seconds" policy:"$others" canonicalise:"$others"; do
  name="${t%%:*}"; secs="${t##*:}"
  "$here/target/release/$name" "$secs" || status=1
done
exit "$status"

#!/usr/bin/env bash
# Run every fuzz target, coverage-guided (libFuzzer via cargo-fuzz), on the
# stable toolchain: `-s none` builds without a sanitizer, which needs no
# nightly. The condition parser runs SECONDS (60 in CI), the policy and
# canonicalise targets a third of it, and the audit log verifier, the
# broker's request decoding, the emulator config and the remote port
# request packet (knock) 10 s each. Exits non-zero if a target crashes;
# the input is in fuzz/artifacts/TARGET/.
# Seeds: fuzz/seeds/TARGET (read only); what the fuzzer learns goes to
# fuzz/corpus/TARGET (not committed).
set -euo pipefail
seconds="${1:-60}"
here="$(cd "$(dirname "$0")" && pwd)"
others=$(( seconds / 3 > 0 ? seconds / 3 : 1 ))
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --quiet
fi
cd "$here/.."
status=0
for t in condition:"$seconds" policy:"$others" canonicalise:"$others" aws_canonicalise:10 gcp_canonicalise:10 \
    audit_verify:10 broker_request:10 emulator_config:10 knock:10; do
    name="${t%%:*}"; secs="${t##*:}"
    mkdir -p "fuzz/corpus/$name"
    echo "== fuzz $name for ${secs}s"
    if ! cargo fuzz run -s none "$name" "fuzz/corpus/$name" "fuzz/seeds/$name" -- \
        -max_total_time="$secs" -dict="fuzz/dicts/$name.dict" -max_len=8192 \
        -print_final_stats=1 2>&1 | tail -n 12; then
        status=1
    fi
done
exit "$status"

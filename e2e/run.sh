#!/usr/bin/env bash
# gatehouse end-to-end harness: real clients, unchanged, on a real network
# stack. Each scenario builds its own network namespaces -- a platform with
# gatehouse's emulator on 169.254.169.254, a VM with gatehouse applied, a
# container bridged to the VM -- runs real processes in them as test users,
# and removes everything on exit. Prints `scenario | user | expected | got`
# and exits non-zero on any mismatch.
#
# Usage (root only):  e2e/run.sh [SCENARIO...]      (default: all)
#   E2E_SKIP_BUILD=1    use the binaries already built
#   E2E_NS_PREFIX=P     namespace names P-plat-ID, P-vm-ID, P-ctr-ID (default gh)
#   E2E_CALLER_LOOKUP=ebpf|sock-diag
#                       how the gate finds callers (`--caller-lookup`; default
#                       ebpf: the build has the `ebpf` feature, so clang is needed)
#   GATEHOUSE_VENV=DIR  the Python clients' venv (default /opt/gatehouse-venv;
#                       built by .ci/python-venv.sh when missing)
#
# Nothing is sent from the host's own network namespace: every client runs
# via `ip netns exec` inside namespaces made here, on link-local addresses.
set -euo pipefail

E2E="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$E2E")"
# shellcheck source=e2e/lib/common.sh
source "$E2E/lib/common.sh"
# shellcheck source=e2e/lib/net.sh
source "$E2E/lib/net.sh"
# shellcheck source=e2e/lib/firewall.sh
source "$E2E/lib/firewall.sh"
# shellcheck source=e2e/lib/stage.sh
source "$E2E/lib/stage.sh"
# shellcheck source=e2e/lib/scenarios.sh
source "$E2E/lib/scenarios.sh"
# shellcheck source=e2e/lib/jit.sh
source "$E2E/lib/jit.sh"
# shellcheck source=e2e/lib/lifecycle.sh
source "$E2E/lib/lifecycle.sh"
# shellcheck source=e2e/lib/observe.sh
source "$E2E/lib/observe.sh"
# shellcheck source=e2e/lib/faults.sh
source "$E2E/lib/faults.sh"
# shellcheck source=e2e/lib/redirects.sh
source "$E2E/lib/redirects.sh"
# shellcheck source=e2e/lib/aws.sh
source "$E2E/lib/aws.sh"
# shellcheck source=e2e/lib/gcp.sh
source "$E2E/lib/gcp.sh"

if [[ "$(id -u)" -ne 0 ]]; then
    echo "e2e/run.sh: needs root (network namespaces, nftables, running clients as test users)" >&2
    exit 1
fi
for tool in ip nft curl setpriv timeout ssh-keygen "$PY"; do
    command -v "$tool" >/dev/null || { echo "e2e/run.sh: \`$tool\` is missing" >&2; exit 1; }
done

CALLER_LOOKUP="${E2E_CALLER_LOOKUP:-ebpf}"
case "$CALLER_LOOKUP" in
    ebpf | sock-diag) ;;
    *) echo "e2e/run.sh: E2E_CALLER_LOOKUP must be ebpf or sock-diag, not \`$CALLER_LOOKUP\`" >&2; exit 2 ;;
esac

selected=("$@")
[[ ${#selected[@]} -gt 0 ]] || selected=("${SCENARIOS[@]}")
for s in "${selected[@]}"; do
    declare -F "scenario_$s" >/dev/null || { echo "e2e/run.sh: no scenario \`$s\` (have: ${SCENARIOS[*]})" >&2; exit 2; }
done

# ---- build ------------------------------------------------------------------------
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
GATEHOUSE="$TARGET_DIR/debug/gatehouse"
RUST_CLIENT="$E2E/rust-client/target/release/gatehouse-e2e-rust-client"
if [[ "${E2E_SKIP_BUILD:-0}" != 1 ]]; then
    echo "== build gatehouse" >&2
    (cd "$ROOT" && cargo build -q -p gatehouse --features ebpf)
    echo "== build the Rust azure_identity client (its own workspace)" >&2
    cargo build -q --release --manifest-path "$E2E/rust-client/Cargo.toml"
fi
VENV="${GATEHOUSE_VENV:-/opt/gatehouse-venv}"
[[ -x "$VENV/bin/python" ]] || bash "$ROOT/.ci/python-venv.sh" "$VENV"

# ---- the run's scratch directory and clean-up --------------------------------------
WORK="$(mktemp -d /tmp/gatehouse-e2e.XXXXXX)"
chmod 755 "$WORK" # the test users run the scripts from here
cleanup() {
    local rc=$?
    net_down_all
    if [[ "${E2E_KEEP:-0}" == 1 || $rc -ne 0 ]]; then
        echo "logs kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ROWS_FILE="$WORK/rows.tsv"
: >"$ROWS_FILE"
exec 3>&2
mkdir -p "$WORK/bin"
# The same client script the gate's tests use; here the environment is
# empty, so no endpoint override: the clients go to 169.254.169.254 as on a VM.
install -m 644 "$E2E/../crates/gate/tests/clients/client.py" "$E2E/helpers/probe.py" "$E2E/helpers/platform_listeners.py" "$E2E/helpers/jit_server.py" "$E2E/helpers/fault_callers.py" "$WORK/bin/"
install -m 755 "$RUST_CLIENT" "$WORK/bin/rust-client"
write_policy "$WORK/policy.toml"
"$GATEHOUSE" emulate --write-key "$WORK/emulator-key.pem" 2>/dev/null
ensure_test_users
# Signed port requests (scenario jit): gh-allowed's SSH key, listed as
# `alice@e2e`; a second key nobody listed.
for k in knock-key stranger-key; do
    ssh-keygen -q -t ed25519 -N "" -C "$k" -f "$WORK/$k"
    chown gh-allowed:gh-allowed "$WORK/$k" "$WORK/$k.pub"
done
echo "alice@e2e $(cut -d' ' -f1,2 "$WORK/knock-key.pub")" >"$WORK/allowed_signers"
chmod 644 "$WORK/allowed_signers"

# ---- scenarios --------------------------------------------------------------------
id_base=$(($$ % 10000))
n=0
started=$SECONDS
for s in "${selected[@]}"; do
    n=$((n + 1))
    id="$id_base-$n"
    echo "== scenario $s (namespaces ${E2E_NS_PREFIX:-gh}-*-$id)" >&2
    t=$SECONDS
    # A subshell: a step that fails (set -e) ends this scenario, not the run.
    # errexit is off for anything inside `if`/`||`: run the subshell plainly.
    set +e
    ( set -e; "scenario_$s" "$id" ) 2>>"$WORK/scenario-$s.log"
    rc=$?
    set -e
    if [[ $rc -ne 0 ]]; then
        row "scenario $s ran to the end" root "yes" "no, see scenario-$s.log"
        sed 's/^/   | /' "$WORK/scenario-$s.log" | tail -n 15 >&2
    fi
    net_down "$id"
    echo "   ${s}: $((SECONDS - t))s" >&2
done
echo "== total $((SECONDS - started))s" >&2

# Every record every gate of the run wrote, against the schema generated
# from the types (docs/audit.md).
mapfile -t audit_logs < <(find "$WORK" -name 'audit.log*' -type f | sort)
if [[ ${#audit_logs[@]} -gt 0 ]]; then
    got="$("$VENV/bin/python" "$E2E/helpers/check_audit_schema.py" "$ROOT/docs/audit.schema.json" "${audit_logs[@]}" 2>&1 | tail -n 1)"
    row "audit: every record matches docs/audit.schema.json" root "ok" "${got%% *}"
    echo "   audit schema: $got (${#audit_logs[@]} files)" >&2
fi

status=0
print_table || status=$?
exit "$status"

#!/usr/bin/env bash
# What a package upgrade's restart does to a running gate, without systemd
# (CI has no systemd as PID 1; packaging/deb-test.sh runs this after the
# upgrade step, with the package installed and /etc/gatehouse/policy.toml
# the example policy):
#
#   bash packaging/deb-restart.sh VM_NS WORK_DIR
#
# In VM_NS (a network namespace of the caller's) and a platform namespace
# made here (VM_NS-plat: the emulator on 169.254.169.254:80), the installed
# units' own ExecStart lines run: the firewall unit's, then the gate's, as
# systemd would (its runtime directory and umask). The gate is stopped the
# way `systemctl restart` stops it (SIGTERM to the main pid, from its pid
# file; KillMode=mixed) and started again, then:
#   * each run serves a token (200) to /usr/bin/curl, which the example
#     policy allows: the first run fetched it from the emulator and served
#     it again from the cache; the second run fetched it again (the cache
#     does not outlive the process: tokens re-fetched);
#   * `gatehouse audit verify` passes over the log of both runs, the second
#     run's first record links to the first run's last (`prev` = its hash,
#     `seq` one more): the chain continues across the restart.
# Not exercised without systemd: systemd's own stop/start ordering of the
# two units, Type=notify readiness, the watchdog, and the sandboxing
# directives (ProtectSystem=, SystemCallFilter=, ...): see
# docs/packaging.md.
set -euo pipefail

vm="$1" work="$2"
plat="$vm-plat"
unit=/lib/systemd/system/gatehouse.service
fw_unit=/lib/systemd/system/gatehouse-firewall.service
audit=/var/log/gatehouse/audit.log
client_id=2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809 # storage-writer in examples/policy.toml
token="/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com&client_id=$client_id"

fail() { echo "deb-restart: FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

[ ! -e /run/gatehouse ] || fail "/run/gatehouse exists: is a gate running on this machine?"
emulator="" gate=""
cleanup() {
    set +e
    [ -z "$gate" ] || { kill -KILL "$gate" 2>/dev/null; wait "$gate" 2>/dev/null; }
    [ -z "$emulator" ] || { kill -KILL "$emulator" 2>/dev/null; wait "$emulator" 2>/dev/null; }
    ip netns del "$plat" 2>/dev/null
    rm -rf /run/gatehouse
}
trap cleanup EXIT

# ---- the platform: the emulator at 169.254.169.254, inside namespaces only
ip netns del "$plat" 2>/dev/null || true
ip netns add "$plat"
ip -n "$plat" link set lo up
ip link add dp0 netns "$plat" type veth peer name dv0 netns "$vm"
ip -n "$plat" addr add 169.254.169.254/32 dev dp0
ip -n "$plat" addr add 169.254.20.1/30 dev dp0
ip -n "$plat" link set dp0 up
ip -n "$vm" addr add 169.254.20.2/30 dev dv0
ip -n "$vm" link set dv0 up
ip -n "$vm" route add 169.254.169.254/32 via 169.254.20.1 dev dv0
ip netns exec "$plat" /usr/bin/gatehouse emulate --listen 169.254.169.254:80 \
    --control 127.0.0.1:16981 --no-rate-limits >"$work/emulator.log" 2>&1 &
emulator=$!
stats() {
    ip netns exec "$plat" curl -sS --max-time 5 http://127.0.0.1:16981/stats |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["by_endpoint"].get(sys.argv[1], 0))' "$1"
}
for _ in $(seq 100); do stats token >/dev/null 2>&1 && break; sleep 0.1; done
stats token >/dev/null || { cat "$work/emulator.log"; fail "the emulator did not start"; }

# ---- the units' own command lines
exec_start() { sed -n 's/^ExecStart=//p' "$1"; }
fw_cmd="$(exec_start "$fw_unit")"
gate_cmd="$(exec_start "$unit")"
[ -n "$fw_cmd" ] && [ -n "$gate_cmd" ] || fail "no ExecStart= in the installed units"
echo "firewall unit: $fw_cmd"
echo "gate unit:     $gate_cmd"
# shellcheck disable=SC2086 # the unit's words
ip netns exec "$vm" $fw_cmd >/dev/null || fail "the firewall unit's ExecStart failed"

# start_gate N: as systemd starts the unit (RuntimeDirectory=gatehouse 0775,
# ExecStartPre=+chown gatehouse:root, UMask=0077), in the VM's namespace
# (nsenter keeps /sys: the eBPF lookup attaches to the cgroup hierarchy).
start_gate() {
    install -d -m 0775 -o gatehouse -g root /run/gatehouse
    # shellcheck disable=SC2086 # the unit's words
    (umask 0077; exec nsenter --net="/run/netns/$vm" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        $gate_cmd) >"$work/gate-$1.log" 2>&1 &
    gate=$!
    for _ in $(seq 200); do
        ip netns exec "$vm" /usr/bin/gatehouse status --json >/dev/null 2>&1 && return 0
        kill -0 "$gate" 2>/dev/null || break
        sleep 0.1
    done
    cat "$work/gate-$1.log"
    fail "run $1: the gate did not become healthy (gatehouse status)"
}

# stop_gate N: as `systemctl stop` (KillMode=mixed: SIGTERM to the main pid,
# TimeoutStopSec=5s).
stop_gate() {
    local pid
    pid="$(cat /run/gatehouse/gatehouse.pid)" || fail "run $1: no pid file"
    [ "$pid" = "$gate" ] || fail "run $1: the pid file names $pid, the unit's main process is $gate"
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$gate" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$gate" 2>/dev/null; then
        fail "run $1: the gate did not stop within TimeoutStopSec=5s"
    fi
    wait "$gate" || fail "run $1: the gate exited with $? on SIGTERM"
    gate=""
    # systemd removes the runtime directory of a stopped unit.
    rm -rf /run/gatehouse
}

curl_token() {
    ip netns exec "$vm" curl -sS -o /dev/null -w '%{http_code}' --max-time 5 \
        -H 'Metadata: true' "http://169.254.169.254$token"
}

lines_before=0
[ ! -f "$audit" ] || lines_before="$(wc -l <"$audit")"

start_gate 1
[ "$(curl_token)" = 200 ] || fail "run 1: no token for /usr/bin/curl"
[ "$(curl_token)" = 200 ] || fail "run 1: no token for /usr/bin/curl the second time"
[ "$(stats token)" = 1 ] || fail "run 1: the emulator was asked $(stats token) times (want 1: then the cache)"
stop_gate 1
ok "run 1: token fetched once, served again from the cache; stopped by SIGTERM"

start_gate 2
[ "$(curl_token)" = 200 ] || fail "run 2: no token for /usr/bin/curl"
[ "$(stats token)" = 2 ] || fail "run 2: the emulator was asked $(stats token) times in all (want 2: fetched again)"
stop_gate 2
ok "run 2: the token fetched again from the metadata service (no cache across the restart)"

/usr/bin/gatehouse audit verify "$audit" >"$work/verify.out" 2>&1 ||
    { cat "$work/verify.out"; fail "gatehouse audit verify fails over both runs"; }
tail -n +"$((lines_before + 1))" "$audit" | /usr/bin/python3 -c '
import json, sys
recs = [json.loads(l) for l in sys.stdin if l.strip()]
kinds = [r["event"]["type"] for r in recs]
starts = [i for i, k in enumerate(kinds) if k == "gate_started"]
assert len(starts) == 2, f"want 2 gate_started records, got {kinds}"
second = starts[1]
last, first = recs[second - 1], recs[second]
# A clean stop writes gate_stopped, then the checkpoint that signs it.
assert kinds[second - 2 : second] == ["gate_stopped", "checkpoint"], f"run 1 did not end with gate_stopped, checkpoint: {kinds}"
assert first["prev"] == last["hash"], "the second run does not link to the first run'"'"'s last record"
assert first["seq"] == last["seq"] + 1, ("seq", last["seq"], "then", first["seq"])
src = [r["event"]["upstream"]["source"] for r in recs if r["event"]["type"] == "request" and r["event"].get("upstream")]
assert src == ["upstream", "cache", "upstream"], f"token sources {src}"
print(len(recs), "records; run 2 starts at seq", first["seq"], "; token sources:", src)
' || fail "the audit chain across the restart (above)"
ok "the audit chain continues across the restart (gatehouse audit verify passes; run 2's first record links to run 1's last)"

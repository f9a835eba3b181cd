# shellcheck shell=bash
# Bringing up the pieces of one scenario: the platform (emulator + extra
# listeners), then gatehouse in the VM (firewall, then the gate).

# The gate's pid per scenario id.
declare -A GATE_PID=()
# Extra `gatehouse run` flags for the next gate_start (scenario observe).
GATE_EXTRA=()
# Extra `gatehouse emulate` flags for the next platform_up (scenario aws).
EMULATOR_EXTRA=()
# Another policy for the next gate_start (empty: the run's policy.toml).
GATE_POLICY=""

# platform_up ID: namespaces, the emulator on 169.254.169.254:80 (control on
# the platform's loopback), and platform_listeners.py's listeners.
platform_up() {
    local id="$1" s="$WORK/s$1" plat
    plat="$(ns_plat "$id")"
    mkdir -p "$s"
    chmod 755 "$s"
    net_up "$id"
    ip netns exec "$plat" "$GATEHOUSE" emulate --listen "$IMDS:80" --control 127.0.0.1:16981 \
        --no-rate-limits --key-file "$WORK/emulator-key.pem" "${EMULATOR_EXTRA[@]}" >"$s/emulator.log" 2>&1 &
    # The same platform at IMDS's IPv6 address (its own counts on :16982).
    ip netns exec "$plat" "$GATEHOUSE" emulate --listen "[$IMDS6]:80" --control 127.0.0.1:16982 \
        --no-rate-limits --key-file "$WORK/emulator-key.pem" "${EMULATOR_EXTRA[@]}" >"$s/emulator6.log" 2>&1 &
    ip netns exec "$plat" "$PY" "$WORK/bin/platform_listeners.py" "$IMDS" "$WIRESERVER" "$s/platform.json" \
        >"$s/platform.log" 2>&1 &
    wait_for "the emulator of scenario $id" 20 imds_total "$id"
    wait_for "the platform listeners of scenario $id" 10 \
        ip netns exec "$plat" bash -c ": </dev/tcp/$IMDS/8080"
    # That readiness check was one connection: start counting from zero.
    sleep 0.2
    cp "$s/platform.json" "$s/platform.ready.json"
}

# gatehouse_up ID: the firewall, then the gate, inside the VM namespace.
gatehouse_up() {
    firewall_apply "$(ns_vm "$1")"
    gate_start "$1"
}

# gate_start ID: `gatehouse run` in the VM namespace, as a deployment runs it.
gate_start() {
    local id="$1" s="$WORK/s$1" vm
    vm="$(ns_vm "$id")"
    # The worker writes (and rotates) the audit log: its directory is the worker's.
    chown "$GATE_USER:$GATE_USER" "$s"
    # The pid file and control socket are the root broker's, in a directory
    # it can write without CAP_DAC_OVERRIDE (as /run/gatehouse, group root).
    install -d -m 755 "$s/run"
    # After a kill -9 the old worker exits when it sees its broker gone; a
    # new gate refuses to take over an admin socket that still answers.
    [[ ! -S "$s/admin.sock" ]] || wait_for "the old worker to go" 10 \
        "$PY" -c 'import socket,sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError:
    sys.exit(0)
sys.exit(1)' "$s/admin.sock"
    local banners
    banners="$(banner_count "$s/gate.log")"
    gate_cmd "$id" >>"$s/gate.log" 2>&1 &
    GATE_PID[$id]=$!
    # Started, not only listening: the socket accepts into its backlog while
    # the start-up probe and the just-in-time reconcile still run, and a
    # scenario that changes the table then would race the start. The banner
    # comes last (the log is appended to across restarts: one more of it).
    wait_for "the gate of scenario $id to start" 20 banner_after "$s/gate.log" "$banners"
    wait_for "the gate of scenario $id" 20 ip netns exec "$vm" bash -c ": </dev/tcp/127.0.0.1/$GATE_PORT"
}

# banner_count LOG: how many gates of this log have finished starting.
banner_count() {
    local n=0
    [[ ! -f "$1" ]] || n="$(grep -c '^gatehouse is listening on ' "$1" || true)"
    echo "${n:-0}"
}
banner_after() { (($(banner_count "$1") > ${2:-0})); }

# gate_cmd ID: become the gate of scenario ID (it execs: run it with `&`,
# so that `$!` is the gate's own pid, which signals reach).
gate_cmd() {
    local id="$1" s="$WORK/s$1" vm
    vm="$(ns_vm "$id")"
    # shellcheck disable=SC2046 # flags are words
    # nsenter, not `ip netns exec`: that remounts /sys, and the eBPF path
    # attaches to the cgroup v2 hierarchy mounted there.
    exec nsenter --net="/run/netns/$vm" "$GATEHOUSE" run --user "$GATE_USER" --upstream imds --policy "${GATE_POLICY:-$WORK/policy.toml}" \
        --audit "$s/audit.log" --audit-key "$s/keys/audit.key" --pid-file "$s/run/gate.pid" --upstream-mark "$UPSTREAM_MARK" \
        --jit-db "$s/jit.db" --admin-socket "$s/admin.sock" \
        --knock-listen 169.254.11.1:62201 --knock-host 169.254.11.1 --allowed-signers "$WORK/allowed_signers" \
        --caller-lookup "$CALLER_LOOKUP" \
        --firewall watch $(firewall_flags) "${GATE_EXTRA[@]}"
}

# gate_stop ID: SIGTERM the gate and wait until it is gone.
gate_stop() {
    local pid="${GATE_PID[$1]}"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
}

# gate_kill9 ID: SIGKILL the gate and wait until it is gone.
gate_kill9() {
    local pid="${GATE_PID[$1]}"
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
}

# platform_delta ID KEY: how many more times KEY was reached since platform_up.
platform_delta() {
    local now ready
    now="$(plat_count "$1" "$2")"
    ready="$(json_get "$2" <"$WORK/s$1/platform.ready.json")"
    echo $((now - ready))
}

# write_policy FILE: the run's policy: gh-allowed may have a storage token
# as storage-writer; everyone may read the instance document; nothing else.
write_policy() {
    cat >"$1" <<EOF
# gatehouse e2e policy (written by e2e/run.sh)
version = 1

[identities.system]
kind = "system"
object_id = "0d4f5e6a-7b8c-4d9e-a0f1-b2c3d4e5f607"
client_id = "1e5a6b7c-8d9e-4fa0-b1c2-d3e4f5a6b708"

[identities.storage-writer]
kind = "user"
client_id = "$STORAGE_WRITER"
object_id = "3a7c8d9e-afb0-41c2-93e4-f5a6b7c8d90a"
resource_id = "/subscriptions/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b/resourcegroups/gatehouse-demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/storage-writer"

[[assignments]]
name = "everyone-reads-instance-metadata"
principal = "everyone"
role = "Instance Metadata Reader"

[[assignments]]
name = "e2e-allowed-storage"
principal = "user:gh-allowed"
role = "Token Reader"
identities = ["storage-writer"]
audiences = ["$STORAGE"]

# Just-in-time: port 2222 in the VM opens for one source when gh-allowed
# asks and root approves (scenario jit). The break-glass range does not
# hold the test client.
[jit]
break_glass = ["192.0.2.0/24"]

[[jit_port]]
name = "e2e-ssh"
port = 2222
protocol = "tcp"
sources = ["169.254.0.0/16"]
max_duration = "1h"
requesters = ["user:gh-allowed", "signer:alice@e2e"]
approvers = ["uid:0"]
EOF
    chmod 644 "$1"
}

# shellcheck shell=bash
# Just-in-time ports, end to end through the daemon: the VM namespace runs
# the gate (firewall watch) and a server on port 2222 that keeps sending;
# the container namespace, joined to it by a veth, is the remote client
# (169.254.11.2 -> 169.254.11.1:2222). Requests go through the admin socket
# as the test users; the kernel's set does the opening and closing.

JIT_PORT=2222
JIT_CLIENT=169.254.11.2
JIT_SERVER=169.254.11.1

# jit_cli S USER ARGS...: `gatehouse jit --json ARGS` on scenario S's admin socket, as USER.
jit_cli() {
    local s="$1" user="$2"
    shift 2
    in_ns "$(ns_vm "${s#"$WORK/s"}")" "$user" "$GATEHOUSE" jit --socket "$s/admin.sock" --json "$@" 2>>"$WORK/clients.err"
}

# jit_field JSON-ON-STDIN PATH: a nested field ("record.state").
jit_field() {
    "$PY" -c 'import json,sys
try:
    v = json.loads(sys.stdin.read())
    for k in sys.argv[1].split("."):
        v = v[k]
except Exception:
    v = ""
print(v)' "$1"
}

# jit_stream_start NS USER FLAG: a streaming connection to the JIT port.
jit_stream_start() {
    install -d -m 755 -o "$2" "$(dirname "$3")"
    in_ns "$1" "$2" "$PY" "$WORK/bin/probe.py" stream "$JIT_SERVER" "$JIT_PORT" "$3" >"$3.out" 2>>"$WORK/clients.err" &
    STREAM_PID=$!
    wait_for "the streaming connection" 10 test -e "$3.connected"
}

scenario_jit() {
    local id="$1" vm ctr s="$WORK/s$1" out rid
    vm="$(ns_vm "$id")"; ctr="$(ns_ctr "$id")"
    platform_up "$id"
    gatehouse_up "$id"
    ip netns exec "$vm" "$PY" "$WORK/bin/jit_server.py" 0.0.0.0 "$JIT_PORT" >"$s/jit-server.log" 2>&1 &
    wait_for "the port-$JIT_PORT server" 10 ip netns exec "$vm" bash -c ": </dev/tcp/127.0.0.1/$JIT_PORT"

    row "jit: before any grant, new connection" gh-allowed "timeout" "$(probe "$ctr" gh-allowed tcp "$JIT_SERVER" "$JIT_PORT")"

    # gh-denied may not even ask; gh-allowed asks; it may not approve its own.
    out="$(jit_cli "$s" gh-denied open-port "$JIT_PORT" --from "$JIT_CLIENT" --duration 8s --reason e2e)" || true
    row "jit: request by a non-requester" gh-denied "not_a_requester" "$(jit_field error.kind <<<"$out")"
    out="$(jit_cli "$s" gh-allowed open-port "$JIT_PORT" --from "$JIT_CLIENT" --duration 12s --reason "e2e: short grant")" || true
    rid="$(jit_field record.id <<<"$out")"
    row "jit: request (approval required)" gh-allowed "pending" "$(jit_field record.state <<<"$out")"
    row "jit: pending, new connection" gh-allowed "timeout" "$(probe "$ctr" gh-allowed tcp "$JIT_SERVER" "$JIT_PORT")"
    out="$(jit_cli "$s" gh-allowed approve "$rid")" || true
    row "jit: approving one's own request" gh-allowed "self_approval" "$(jit_field error.kind <<<"$out")"
    out="$(jit_cli "$s" root approve "$rid")" || true
    row "jit: approved by root (an approver)" root "active" "$(jit_field record.state <<<"$out")"

    # During the grant: connect, and keep that session past the expiry.
    row "jit: during the grant, new connection" gh-allowed "answered" "$(probe "$ctr" gh-allowed tcp "$JIT_SERVER" "$JIT_PORT")"
    jit_stream_start "$ctr" gh-allowed "$s/jit1/flag"
    sleep 13 # past the 12 s grant: the kernel removed the element by itself
    touch "$s/jit1/flag"
    row "jit: after expiry, new connection" gh-allowed "timeout" "$(probe "$ctr" gh-allowed tcp "$JIT_SERVER" "$JIT_PORT")"
    stream_wait
    row "jit: after expiry, established session" gh-allowed "open" "$(stream_result "$s/jit1/flag")"

    # Revoke cuts an established session whose server keeps sending.
    out="$(jit_cli "$s" gh-allowed open-port "$JIT_PORT" --from "$JIT_CLIENT" --duration 10m --reason "e2e: to revoke")" || true
    rid="$(jit_field record.id <<<"$out")"
    jit_cli "$s" root approve "$rid" >/dev/null || true
    jit_stream_start "$ctr" gh-allowed "$s/jit2/flag"
    sleep 1
    out="$(jit_cli "$s" gh-allowed revoke "$rid" --reason "e2e: done")" || true
    touch "$s/jit2/flag"
    row "jit: revoke" gh-allowed "revoked" "$(jit_field record.state <<<"$out")"
    stream_wait
    row "jit: after revoke, established session" gh-allowed "cut" "$(stream_result "$s/jit2/flag")"
    row "jit: after revoke, new connection" gh-allowed "timeout" "$(probe "$ctr" gh-allowed tcp "$JIT_SERVER" "$JIT_PORT")"

    # From outside, one signed UDP packet (the client namespace, gh-allowed's
    # SSH key): a stranger's key gets no answer; alice's is recorded, and
    # opens the port once approved.
    out="$(in_ns "$ctr" gh-allowed "$GATEHOUSE" jit --json knock "$JIT_SERVER" --port "$JIT_PORT" --from "$JIT_CLIENT" \
        --duration 10m --reason "e2e: stranger" --key "$WORK/stranger-key" --wait 2 2>&1)" || true
    row "jit: signed request, unknown key" gh-allowed "no answer" "$(if [[ "$out" == *"no answer"* ]]; then echo "no answer"; else echo "$out"; fi)"
    out="$(in_ns "$ctr" gh-allowed "$GATEHOUSE" jit --json knock "$JIT_SERVER" --port "$JIT_PORT" --from "$JIT_CLIENT" \
        --duration 10m --reason "e2e: signed" --key "$WORK/knock-key" 2>>"$WORK/clients.err")" || true
    rid="$(jit_field id <<<"$out")"
    row "jit: signed request from the client namespace" gh-allowed "pending" "$(jit_field state <<<"$out")"
    row "jit: signed, pending, new connection" gh-allowed "timeout" "$(probe "$ctr" gh-allowed tcp "$JIT_SERVER" "$JIT_PORT")"
    out="$(jit_cli "$s" root approve "$rid")" || true
    row "jit: signed request approved" root "active" "$(jit_field record.state <<<"$out")"
    row "jit: signed and approved, new connection" gh-allowed "answered" "$(probe "$ctr" gh-allowed tcp "$JIT_SERVER" "$JIT_PORT")"
    out="$(jit_cli "$s" root revoke "$rid" --reason "e2e: done")" || true

    # Restart: the kernel's set is reconciled with the database.
    out="$(jit_cli "$s" gh-allowed open-port "$JIT_PORT" --from "$JIT_CLIENT" --duration 10m --reason "e2e: survive restart")" || true
    rid="$(jit_field record.id <<<"$out")"
    jit_cli "$s" root approve "$rid" >/dev/null || true
    gate_kill9 "$id"
    ip netns exec "$vm" nft flush set inet gatehouse jit4
    row "jit: gate down, element removed by hand" gh-allowed "timeout" "$(probe "$ctr" gh-allowed tcp "$JIT_SERVER" "$JIT_PORT")"
    gate_start "$id"
    wait_for "the admin socket" 10 test -S "$s/admin.sock"
    row "jit: restarted, set reconciled" gh-allowed "answered" "$(probe "$ctr" gh-allowed tcp "$JIT_SERVER" "$JIT_PORT")"
    out="$("$GATEHOUSE" audit verify "$s/audit.log" 2>&1 | tail -n 1)"
    row "jit: audit chain after it all" root "intact" "$(if [[ "$out" == *ok* || "$out" == *intact* ]]; then echo intact; else echo "$out"; fi)"
}

# shellcheck shell=bash
# The scenarios. Each builds its own namespaces (platform_up), runs real
# processes inside them, adds rows to the table, and tears everything down.
# "imds+N" is how many requests the emulator read meanwhile (the only way to
# tell "answered by IMDS directly" from "answered by the gate"); "plat+N" the
# same for platform_listeners.py's other listeners.

# ---- clients ----------------------------------------------------------------------

# py_client NS USER MODE: azure-identity / msal, no endpoint override.
py_client() {
    local out ok status
    out="$(in_ns "$1" "$2" "$VENV/bin/python" "$WORK/bin/client.py" "$3" "$STORAGE" "$STORAGE_WRITER" 2>>"$WORK/clients.err")" || true
    echo "python $3 as $2: $out" >>"$WORK/clients.out"
    ok="$(json_get ok <<<"$out")"
    if [[ "$ok" == True ]]; then echo token; return; fi
    status="$("$PY" -c 'import json,sys
try:
    r = json.loads(sys.stdin.read().strip().splitlines()[-1])["responses"]
    print(r[-1]["status"] if r else "")
except Exception:
    print("")' <<<"$out")"
    if [[ -n "$status" ]]; then echo "denied $status"; else echo "error:$(json_get error_type <<<"$out")"; fi
}

# rust_client NS USER: the azure_identity crate, unchanged.
rust_client() {
    local out
    out="$(in_ns "$1" "$2" "$WORK/bin/rust-client" "$STORAGE_WRITER" 2>>"$WORK/clients.err")" || true
    echo "rust as $2: $out" >>"$WORK/clients.out"
    if [[ "$(json_get ok <<<"$out")" == True ]]; then echo token; return; fi
    # The crate folds the HTTP status into a Credential error; the IMDS-shaped
    # body it quotes says who refused.
    if [[ "$(json_get message <<<"$out")" == *'"error":"access_denied"'* ]]; then echo "denied access_denied"; return; fi
    echo "error:$(json_get error_kind <<<"$out")"
}

# probe NS USER tcp|udp HOST PORT: answered / refused / timeout / no-answer / EPERM / ...
probe() {
    local out result
    out="$(in_ns "$1" "$2" "$PY" "$WORK/bin/probe.py" "$3" "$4" "$5" 2>>"$WORK/clients.err")" || true
    result="$(json_get result <<<"$out")"
    if [[ "$result" == error && "$(json_get message <<<"$out")" == *"not permitted"* ]]; then
        result=EPERM
    fi
    echo "${result:-no-output}"
}

# with_imds ID CMD...: CMD's output plus " imds+N".
with_imds() {
    local id="$1" before got after
    shift
    before="$(imds_total "$id")"
    got="$("$@")"
    after="$(imds_total "$id")"
    echo "$got imds+$((after - before))"
}

# with_gate ID CMD...: CMD's output plus " gate:OUTCOMES", the outcomes of the
# audit records the gate wrote meanwhile ("-": none): proof that the gate,
# not IMDS directly, answered.
with_gate() {
    local id="$1" log="$WORK/s$1/audit.log" before=0 got
    shift
    [[ ! -e "$log" ]] || before="$(wc -l <"$log")"
    got="$("$@")"
    echo "$got gate:$("$PY" -c 'import json,sys
try:
    lines = open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]
except FileNotFoundError:
    lines = []
events = [json.loads(line)["event"] for line in lines]
print(",".join(e["outcome"] for e in events if "outcome" in e) or "-")' "$log" "$before")"
}

# last_lookup ID: how the gate found the caller of its latest decision
# (`caller.lookup` of the last audit line with an outcome).
last_lookup() {
    "$PY" -c 'import json,sys
events = [json.loads(line)["event"] for line in open(sys.argv[1]).read().splitlines()]
found = [e.get("caller") or {} for e in events if "outcome" in e]
print((found[-1].get("lookup") if found else None) or "-")' "$WORK/s$1/audit.log"
}

# with_plat ID KEY CMD...: CMD's output plus " plat+N" for platform_listeners.py's KEY.
with_plat() {
    local id="$1" key="$2" before got
    shift 2
    before="$(platform_delta "$id" "$key")"
    got="$("$@")"
    sleep 0.2 # the platform writes its counts after answering
    echo "$got plat+$(($(platform_delta "$id" "$key") - before))"
}

# stream_start NS USER FLAG: open a connection to the streaming port now, in
# the background; its JSON line goes to FLAG.out.
stream_start() {
    # The probe (running as USER) marks the connection in FLAG's directory.
    install -d -m 755 -o "$2" "$(dirname "$3")"
    in_ns "$1" "$2" "$PY" "$WORK/bin/probe.py" stream "$IMDS" 81 "$3" >"$3.out" 2>>"$WORK/clients.err" &
    STREAM_PID=$!
    wait_for "the streaming connection" 10 test -e "$3.connected"
}

# stream_wait: wait for the stream probe (not from a $(...) subshell: only
# the shell that started it can wait for it).
stream_wait() {
    wait "$STREAM_PID" 2>/dev/null || true
}

# stream_result FLAG: the stream probe's verdict, after stream_wait.
stream_result() {
    local result before
    result="$(json_get result <"$1.out")"
    before="$(json_get before <"$1.out")"
    # A stream that never delivered anything proves nothing either way.
    if [[ "${before:-0}" -le 0 ]]; then echo "no-data-before"; else echo "${result:-no-output}"; fi
}

# ---- scenarios --------------------------------------------------------------------

# Without gatehouse everything reaches the platform: the control that shows
# each later "blocked" is gatehouse's doing, not a broken topology.
scenario_baseline() {
    local id="$1" vm ctr flag="$WORK/s$1/stream/flag"
    vm="$(ns_vm "$id")"; ctr="$(ns_ctr "$id")"
    platform_up "$id"
    stream_start "$vm" gh-denied "$flag"
    sleep 1 # some data first, as in the pre-apply scenario
    touch "$flag"
    local sc="baseline, no gatehouse:"
    row "$sc curl token" gh-denied "200 imds+1" "$(with_imds "$id" curl_imds "$vm" gh-denied "$TOKEN_PATH")"
    row "$sc tcp :8080" gh-denied "answered plat+1" "$(with_plat "$id" tcp_alt probe "$vm" gh-denied tcp "$IMDS" 8080)"
    row "$sc udp :8080" gh-denied "answered plat+1" "$(with_plat "$id" udp_alt probe "$vm" gh-denied udp "$IMDS" 8080)"
    row "$sc WireServer :80" gh-denied "answered plat+1" "$(with_plat "$id" wireserver probe "$vm" gh-denied tcp "$WIRESERVER" 80)"
    row "$sc container curl token" "root (ctr)" "200 imds+1" "$(with_imds "$id" curl_imds "$ctr" root "$TOKEN_PATH")"
    row "$sc rust azure_identity" gh-denied "token imds+1" "$(with_imds "$id" rust_client "$vm" gh-denied)"
    stream_wait
    row "$sc streaming conn keeps flowing" gh-denied "open" "$(stream_result "$flag")"
}

scenario_curl() {
    local id="$1" vm
    vm="$(ns_vm "$id")"
    platform_up "$id"
    gatehouse_up "$id"
    row "curl token" gh-allowed "200 imds+1 gate:allow" "$(with_gate "$id" with_imds "$id" curl_imds "$vm" gh-allowed "$TOKEN_PATH")"
    row "curl token" gh-denied "403 imds+0 gate:deny" "$(with_gate "$id" with_imds "$id" curl_imds "$vm" gh-denied "$TOKEN_PATH")"
    # The policy names users only: the socket's uid is the whole answer, on
    # either path, and no process is looked up.
    row "curl token: caller found ($CALLER_LOOKUP)" gh-denied "SocketOnly" "$(last_lookup "$id")"
    row "curl instance document (everyone)" gh-denied "200 gate:allow" \
        "$(with_gate "$id" curl_imds "$vm" gh-denied "/metadata/instance?api-version=2021-02-01")"
    # An assignment on users allows it: decided on the socket's uid too.
    row "curl instance: caller found ($CALLER_LOOKUP)" gh-denied "SocketOnly" "$(last_lookup "$id")"
    # No assignment allows scheduled events, but a trusted service might: the
    # process is read (with eBPF: curl connected and neither forked nor
    # exec'd, so from its record), and it is no trusted service.
    row "curl scheduled events (no assignment)" gh-denied "403 gate:deny" \
        "$(with_gate "$id" curl_imds "$vm" gh-denied "/metadata/scheduledevents?api-version=2020-07-01")"
    local how="Recent | Newest | SameUid | FullScan"
    [[ "$CALLER_LOOKUP" != ebpf ]] || how=ConnectRecord
    row "curl scheduled events: caller found ($CALLER_LOOKUP)" gh-denied "$how" "$(last_lookup "$id")"
    local verify="ok" outcomes
    "$GATEHOUSE" audit verify "$WORK/s$id/audit.log" >>"$WORK/s$id/verify.log" 2>&1 || verify="broken"
    outcomes="$("$PY" -c 'import json,sys
events = (json.loads(line)["event"] for line in open(sys.argv[1]))
print(" ".join(e["caller"]["user"] + ":" + e["outcome"] for e in events if "outcome" in e))' "$WORK/s$id/audit.log")"
    row "audit: chain verifies; who was decided what" root "ok gh-allowed:allow gh-denied:deny gh-denied:allow gh-denied:deny" "$verify $outcomes"
}

scenario_python() {
    local id="$1" vm mode
    vm="$(ns_vm "$id")"
    platform_up "$id"
    gatehouse_up "$id"
    for mode in identity-sync identity-async msal; do
        # A token may come from the gate's cache after the first: no imds+N here.
        row "python $mode, no endpoint override" gh-allowed "token gate:allow" "$(with_gate "$id" py_client "$vm" gh-allowed "$mode")"
        row "python $mode, no endpoint override" gh-denied "denied 403 imds+0 gate:deny" "$(with_gate "$id" with_imds "$id" py_client "$vm" gh-denied "$mode")"
    done
}

scenario_rust() {
    local id="$1" vm
    vm="$(ns_vm "$id")"
    platform_up "$id"
    gatehouse_up "$id"
    row "rust azure_identity 1.0, unchanged" gh-allowed "token imds+1 gate:allow" "$(with_gate "$id" with_imds "$id" rust_client "$vm" gh-allowed)"
    row "rust azure_identity 1.0, unchanged" gh-denied "denied access_denied imds+0 gate:deny" "$(with_gate "$id" with_imds "$id" rust_client "$vm" gh-denied)"
}

# A container's request arrives through prerouting/forward: the gate cannot
# attribute it (its socket lives in another namespace) and denies it, or the
# firewall drops it. Never IMDS.
scenario_container() {
    local id="$1" ctr
    ctr="$(ns_ctr "$id")"
    platform_up "$id"
    gatehouse_up "$id"
    row "container: curl token" "root (ctr)" "403 caller-unknown imds+0 gate:deny" \
        "$(with_gate "$id" with_imds "$id" curl_imds "$ctr" root "$TOKEN_PATH")"
    row "container: tcp :8080" "root (ctr)" "refused plat+0" "$(with_plat "$id" tcp_alt probe "$ctr" root tcp "$IMDS" 8080)"
    row "container: udp :8080" "root (ctr)" "no-answer plat+0" "$(with_plat "$id" udp_alt probe "$ctr" root udp "$IMDS" 8080)"
}

# Ways around the gate from inside the VM.
scenario_walkaround() {
    local id="$1" vm
    vm="$(ns_vm "$id")"
    platform_up "$id"
    gatehouse_up "$id"
    row "walk-around: tcp :8080" gh-denied "refused plat+0" "$(with_plat "$id" tcp_alt probe "$vm" gh-denied tcp "$IMDS" 8080)"
    row "walk-around: udp :8080" gh-denied "EPERM plat+0" "$(with_plat "$id" udp_alt probe "$vm" gh-denied udp "$IMDS" 8080)"
    # A process with the gate's uid that is not the gate (its sockets carry
    # no mark) is redirected to the gate and decided like any other.
    local gate_user
    # (The separated gate's worker: the process that parses callers' HTTP.)
    local worker
    worker="$(pgrep -P "${GATE_PID[$id]}" | head -n 1)"
    gate_user="$(id -nu "$(stat -c %u "/proc/${worker:-${GATE_PID[$id]}}")")"
    row "walk-around: gate's uid, not the gate: curl" "$gate_user" "403 imds+0 gate:deny" "$(with_gate "$id" with_imds "$id" curl_imds "$vm" "$gate_user" "$TOKEN_PATH")"
    row "walk-around: gate's uid, not the gate: :8080" "$gate_user" "refused plat+0" "$(with_plat "$id" tcp_alt probe "$vm" "$gate_user" tcp "$IMDS" 8080)"
    # The WireServer: root (the platform agent) only.
    row "WireServer :80" gh-denied "timeout plat+0" "$(with_plat "$id" wireserver probe "$vm" gh-denied tcp "$WIRESERVER" 80)"
    row "WireServer :80" root "answered plat+1" "$(with_plat "$id" wireserver probe "$vm" root tcp "$WIRESERVER" 80)"
    row "container: WireServer :80" "root (ctr)" "timeout plat+0" "$(with_plat "$id" wireserver probe "$(ns_ctr "$id")" root tcp "$WIRESERVER" 80)"
}

# A connection to the platform opened before apply, with the server still
# sending, stops delivering once gatehouse is applied.
scenario_preopen() {
    local id="$1" vm flag="$WORK/s$1/stream/flag"
    vm="$(ns_vm "$id")"
    platform_up "$id"
    stream_start "$vm" gh-denied "$flag"
    sleep 1 # let some data flow first
    gatehouse_up "$id"
    touch "$flag"
    stream_wait
    row "connection opened before apply is cut" gh-denied "cut" "$(stream_result "$flag")"
}

# kill -9 of the gate: the redirect now points at a closed port, so IMDS is
# refused for everyone (fail closed, and fast); a restart serves again.
scenario_kill9() {
    local id="$1" vm
    vm="$(ns_vm "$id")"
    platform_up "$id"
    gatehouse_up "$id"
    row "kill -9: before, curl token" gh-allowed "200 imds+1 gate:allow" "$(with_gate "$id" with_imds "$id" curl_imds "$vm" gh-allowed "$TOKEN_PATH")"
    gate_kill9 "$id"
    row "kill -9: gate dead, curl token" gh-allowed "refused imds+0 gate:-" "$(with_gate "$id" with_imds "$id" curl_imds "$vm" gh-allowed "$TOKEN_PATH")"
    row "kill -9: gate dead, curl token" gh-denied "refused imds+0 gate:-" "$(with_gate "$id" with_imds "$id" curl_imds "$vm" gh-denied "$TOKEN_PATH")"
    row "kill -9: gate dead, curl token" root "refused imds+0 gate:-" "$(with_gate "$id" with_imds "$id" curl_imds "$vm" root "$TOKEN_PATH")"
    gate_start "$id"
    row "kill -9: restarted, curl token" gh-allowed "200 imds+1 gate:allow" "$(with_gate "$id" with_imds "$id" curl_imds "$vm" gh-allowed "$TOKEN_PATH")"
}

# Someone deletes gatehouse's table: the running gate puts it back (nftables
# events, a periodic check as backstop) and IMDS is guarded again.
scenario_drift() {
    local id="$1" vm got="not repaired within 15s" t
    vm="$(ns_vm "$id")"
    platform_up "$id"
    gatehouse_up "$id"
    ip netns exec "$vm" nft delete table inet gatehouse
    t=$SECONDS
    # shellcheck disable=SC2046 # flags are words
    if wait_for "the repaired table" 15 ip netns exec "$vm" "$GATEHOUSE" firewall verify $(firewall_flags) --policy "$WORK/policy.toml"; then
        got="repaired"
    fi
    echo "drift repaired after $((SECONDS - t))s" >&2
    row "table deleted: the gate restores it" root "repaired" "$got"
    row "after the repair: curl token" gh-denied "403 imds+0 gate:deny" "$(with_gate "$id" with_imds "$id" curl_imds "$vm" gh-denied "$TOKEN_PATH")"
    row "after the repair: tcp :8080" gh-denied "refused plat+0" "$(with_plat "$id" tcp_alt probe "$vm" gh-denied tcp "$IMDS" 8080)"
}

SCENARIOS=(baseline curl python rust container walkaround preopen kill9 drift jit lifecycle observe faults redirects ipv6 aws gcp)

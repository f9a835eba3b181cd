# shellcheck shell=bash
# Scenario lifecycle: the gate as deployed (`--user`, the firewall applied)
# reloaded, stopped and crashed with real signals, as systemd and an admin
# would: `gatehouse reload` and SIGHUP to the pid file's pid with a valid and
# an invalid policy, SIGTERM, SIGKILL of the broker and of the worker.

# reload_cli ID: `gatehouse reload` on the scenario's pid file, as "exit=N".
reload_cli() {
    local rc=0
    "$GATEHOUSE" reload --pid-file "$WORK/s$1/run/gate.pid" >>"$WORK/s$1/reload.log" 2>&1 || rc=$?
    echo "exit=$rc"
}

# audit_count ID TYPE: audit lines of event type TYPE so far.
audit_count() {
    "$PY" -c 'import json,sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["event"].get("type") == sys.argv[2]))' "$WORK/s$1/audit.log" "$2"
}

# last_audit ID: the event types of the last two audit lines, joined by `+`.
last_audit() {
    "$PY" -c 'import json,sys
print("+".join(json.loads(l)["event"].get("type", "-") for l in open(sys.argv[1]).read().splitlines()[-2:]))' "$WORK/s$1/audit.log"
}

# verify_against ID: `gatehouse audit verify --against` the log's own
# records (as an export would have shipped them) with the gate's public key.
verify_against() {
    local s="$WORK/s$1" key rc=0
    key="$("$GATEHOUSE" audit key --audit-key "$s/keys/audit.key")" || { echo "no key"; return; }
    cp "$s/audit.log" "$s/collected.jsonl"
    "$GATEHOUSE" audit verify "$s/audit.log" --against "$s/collected.jsonl" --key "$key" >/dev/null 2>&1 || rc=$?
    echo "exit=$rc"
}

# all_gone PID...: succeeds when none of the PIDs is a live (non-zombie) process.
all_gone() {
    local pid state
    for pid in "$@"; do
        state="$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)"
        [[ -z "$state" || "$state" == Z ]] || return 1
    done
}

# gone_within SECONDS PID...: "gone" when every PID is gone within SECONDS
# (polled every 20 ms), else "alive".
gone_within() {
    local seconds="$1" deadline
    shift
    deadline=$(($(date +%s%N) + seconds * 1000000000))
    while (($(date +%s%N) < deadline)); do
        all_gone "$@" && { echo gone; return; }
        sleep 0.02
    done
    echo alive
}

# gate_children ID: "WORKER MONITOR", the broker's worker and `nft monitor`.
gate_children() {
    local broker="${GATE_PID[$1]}" pid worker="" monitor=""
    for pid in $(pgrep -P "$broker"); do
        if [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == nft ]]; then monitor="$pid"; else worker="$pid"; fi
    done
    echo "$worker $monitor"
}

# after ID TYPE CMD...: CMD's output, then " TYPE+N": how many audit
# lines of TYPE appeared (waiting up to 5 s for the first).
after() {
    local id="$1" type="$2" before got
    shift 2
    before="$(audit_count "$id" "$type")"
    got="$("$@")"
    wait_for "an audit line $type" 5 test "$(audit_count "$id" "$type")" -gt "$before" || true
    echo "$got $type+$(($(audit_count "$id" "$type") - before))"
}

hup_pid_file() {
    kill -HUP "$(cat "$WORK/s$1/run/gate.pid")"
    echo "sent"
}

scenario_lifecycle() {
    local id="$1" vm s="$WORK/s$1" broker worker monitor rc
    vm="$(ns_vm "$id")"
    platform_up "$id"
    gatehouse_up "$id"
    cp "$WORK/policy.toml" "$s/policy.orig"
    # The run's policy is shared with later scenarios: put it back whatever happens.
    # shellcheck disable=SC2064 # expanded now: $s is local
    trap "cp '$s/policy.orig' '$WORK/policy.toml'" EXIT
    read -r worker monitor <<<"$(gate_children "$id")"
    broker="${GATE_PID[$id]}"
    row "lifecycle: serving, curl token" gh-allowed "200 imds+1 gate:allow" "$(with_gate "$id" with_imds "$id" curl_imds "$vm" gh-allowed "$TOKEN_PATH")"

    # A valid change (same rules, another hash), then an invalid file.
    echo "# reloaded by the lifecycle scenario" >>"$WORK/policy.toml"
    row "reload (gatehouse reload): valid policy" root "exit=0 policy_loaded+1" "$(after "$id" policy_loaded reload_cli "$id")"
    echo 'this is = = not toml' >"$WORK/policy.toml"
    row "reload (gatehouse reload): invalid policy" root "exit=1 policy_rejected+1" "$(after "$id" policy_rejected reload_cli "$id")"
    # The last good policy decides (the token may come from the gate's cache).
    row "after the refused reload: curl token" gh-allowed "200 imds+0 gate:allow | 200 imds+1 gate:allow" "$(with_gate "$id" with_imds "$id" curl_imds "$vm" gh-allowed "$TOKEN_PATH")"
    cp "$s/policy.orig" "$WORK/policy.toml"
    row "reload (SIGHUP to the pid file's pid): valid" root "sent policy_loaded+1" "$(after "$id" policy_loaded hup_pid_file "$id")"
    echo 'this is = = not toml' >"$WORK/policy.toml"
    row "reload (SIGHUP to the pid file's pid): invalid" root "sent policy_rejected+1" "$(after "$id" policy_rejected hup_pid_file "$id")"
    cp "$s/policy.orig" "$WORK/policy.toml"

    # SIGTERM: everything gone within 2 s, a last audit line, no pid file, the table kept.
    kill -TERM "$broker"
    row "SIGTERM: broker, worker, nft monitor" root "gone" "$(gone_within 2 "$broker" "$worker" "$monitor")"
    rc=0; wait "$broker" || rc=$?
    row "SIGTERM: exit status of the gate" root "0" "$rc"
    row "SIGTERM: last audit lines" root "gate_stopped+checkpoint" "$(last_audit "$id")"
    row "SIGTERM: audit verify --against its checkpoints" root "exit=0" "$(verify_against "$id")"
    row "SIGTERM: pid file" root "removed" "$([[ -e "$s/run/gate.pid" ]] && echo kept || echo removed)"
    row "SIGTERM: firewall table" root "kept" "$(ip netns exec "$vm" nft list table inet gatehouse >/dev/null 2>&1 && echo kept || echo gone)"
    row "stopped: curl token" gh-allowed "refused imds+0 gate:-" "$(with_gate "$id" with_imds "$id" curl_imds "$vm" gh-allowed "$TOKEN_PATH")"
    row "stopped: gatehouse reload" root "exit=2" "$(reload_cli "$id")"

    # SIGKILL of the broker takes the worker and nft monitor along.
    gate_start "$id"
    read -r worker monitor <<<"$(gate_children "$id")"
    broker="${GATE_PID[$id]}"
    kill -KILL "$broker"
    row "SIGKILL broker: worker, nft monitor" root "gone" "$(gone_within 2 "$worker" "$monitor")"
    wait "$broker" 2>/dev/null || true
    row "SIGKILL broker: gatehouse reload (stale pid file)" root "exit=2" "$(reload_cli "$id")"

    # SIGKILL of the worker ends the broker (non-zero) and nft monitor; a
    # restart replaces the stale pid file.
    gate_start "$id"
    row "restarted over a stale pid file: curl token" gh-allowed "200 imds+1 gate:allow" "$(with_gate "$id" with_imds "$id" curl_imds "$vm" gh-allowed "$TOKEN_PATH")"
    read -r worker monitor <<<"$(gate_children "$id")"
    broker="${GATE_PID[$id]}"
    kill -KILL "$worker"
    row "SIGKILL worker: broker, nft monitor" root "gone" "$(gone_within 2 "$broker" "$monitor")"
    rc=0; wait "$broker" || rc=$?
    row "SIGKILL worker: broker exits non-zero" root "yes" "$([[ $rc -ne 0 ]] && echo yes || echo "no ($rc)")"
    row "SIGKILL worker: firewall table" root "kept" "$(ip netns exec "$vm" nft list table inet gatehouse >/dev/null 2>&1 && echo kept || echo gone)"
}

# shellcheck shell=bash
# Scenario `faults`: a failing metadata service, as deployed (`--user`,
# firewall applied, default 1.5 s budget). The emulator fails on purpose
# (control port: 500, 429 with Retry-After, 3 s late, closing at once,
# reading then hanging up) or the platform's network does (nftables in the
# platform namespace: SYN refused with a reset, or dropped). Each with 1, 8
# and 50 concurrent callers of one key and 40 callers of 40 keys; every
# answer within budget + margin, an expected status with Retry-After, and
# few upstream calls, inside IMDS's limits as the emulator counted them.

FAULT_MAX_MS=2500 # the gate's 1.5 s budget + 1 s for a loaded 2-core machine

# emu_control ID METHOD PATH [BODY]: the emulator's control port.
emu_control() {
    ip netns exec "$(ns_plat "$1")" curl -sS --max-time 5 -X "$2" ${4:+-d "$4"} "http://127.0.0.1:16981$3"
}

# plat_nft ID ACTION: SYNs to IMDS's port counted, then ACTION (accept,
# drop, or reject with tcp reset), in a table of its own.
plat_nft() {
    local plat
    plat="$(ns_plat "$1")"
    ip netns exec "$plat" nft delete table inet faults 2>/dev/null || true
    ip netns exec "$plat" nft -f - <<NFT
table inet faults {
    chain input {
        type filter hook input priority -10;
        tcp dport 80 tcp flags syn counter $2
    }
}
NFT
}

plat_syns() {
    ip netns exec "$(ns_plat "$1")" nft list table inet faults | grep -o 'packets [0-9]*' | head -n 1 | cut -d' ' -f2
}

# fault_case ID NAME FAULTS_JSON NFT_ACTION STATUSES CALLS_PER_KEY OFFSET KEYS CALLERS
fault_case() {
    local id="$1" name="$2" faults="$3" action="$4" allowed="$5" per_key="$6" offset="$7" keys="$8" callers="$9"
    emu_control "$id" POST /reset >/dev/null
    emu_control "$id" PUT /faults "$faults" >/dev/null
    plat_nft "$id" "$action"
    local out statuses max_ms no_ra stats calls peak_s peak_f bad="" s
    out="$(in_ns "$(ns_vm "$id")" gh-allowed "$PY" "$WORK/bin/fault_callers.py" "$offset" "$keys" "$callers" "$STORAGE_WRITER" 2>>"$WORK/clients.err")" || true
    [[ "$name" != slow ]] || sleep 2 # the emulator counts a request once answered
    echo "faults: $name $callers/$keys: callers' view: $out" >&2
    statuses="$(json_get statuses <<<"$out")"; max_ms="$(json_get max_ms <<<"$out")"; no_ra="$(json_get no_retry_after <<<"$out")"
    stats="$(emu_control "$id" GET /stats)"
    if [[ "$action" == accept ]]; then
        calls=$(($("$PY" -c 'import json,sys; s=json.load(sys.stdin); print(s["by_endpoint"].get("token",0)+s["closed_at_accept"])' <<<"$stats")))
    else
        calls="$(plat_syns "$id")"
    fi
    peak_s="$(json_get identity_peak_per_second <<<"$stats")"; peak_f="$(json_get identity_peak_in_flight <<<"$stats")"
    echo "faults: $name $callers callers/$keys keys: statuses=$statuses max_ms=$max_ms no_retry_after=$no_ra upstream_calls=$calls peak/s=$peak_s in_flight=$peak_f" >&2
    for s in ${statuses//\// }; do [[ " $allowed " == *" $s "* ]] || bad+=" status:$s"; done
    [[ -n "$max_ms" && "$max_ms" -le "$FAULT_MAX_MS" ]] || bad+=" ${max_ms:-?}ms"
    [[ "$no_ra" == 0 ]] || bad+=" no-retry-after:$no_ra"
    [[ "$calls" -ge 1 && "$calls" -le $((per_key * keys)) ]] || bad+=" calls:$calls"
    [[ "${peak_s:-0}" -le 20 && "${peak_f:-0}" -le 5 ]] || bad+=" peak:$peak_s/$peak_f"
    row "faults: $name, $callers callers of $keys key(s)" gh-allowed "ok" "${bad:-ok}${bad:+ ($statuses ${max_ms}ms calls=$calls)}"
}

scenario_faults() {
    local id="$1" offset=0 spec name faults action allowed per_key keys callers
    platform_up "$id"
    gatehouse_up "$id"
    # name | emulator faults | platform nft | statuses allowed | calls per key
    local specs=(
        "refused|{}|reject with tcp reset|503 504 429|3"
        "blackhole|{}|drop|503 504 429|3"
        "close|{\"close_at_once\":true}|accept|503 504 429|3"
        "hangup|{\"outage\":true}|accept|503 504 429|3"
        "500|{\"forced\":[{\"endpoint\":\"token\",\"status\":500}]}|accept|500 504 429|3"
        "429|{\"forced\":[{\"endpoint\":\"token\",\"status\":429,\"retry_after_secs\":3}]}|accept|429 504|1"
        "slow|{\"latency_ms\":3000}|accept|504 429|1"
    )
    for spec in "${specs[@]}"; do
        IFS='|' read -r name faults action allowed per_key <<<"$spec"
        for kc in "1 1" "1 8" "1 50" "40 40"; do
            read -r keys callers <<<"$kc"
            fault_case "$id" "$name" "$faults" "$action" "$allowed" "$per_key" "$offset" "$keys" "$callers"
            offset=$((offset + keys))
        done
    done
    plat_nft "$id" accept
    emu_control "$id" POST /reset >/dev/null
    # Healthy again: served (a key no case touched).
    row "faults: healthy again, curl token" gh-allowed "200 gate:allow" "$(with_gate "$id" curl_imds "$(ns_vm "$id")" gh-allowed "$TOKEN_PATH")"
}

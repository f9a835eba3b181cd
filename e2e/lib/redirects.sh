# shellcheck shell=bash
# Other agents that redirect or block metadata traffic (issue 17, item 7):
# with gatehouse's table exactly as rendered, `gatehouse firewall verify`
# must still fail when its probe connection (uid nobody → 169.254.169.254:80)
# does not reach the gate, and `gatehouse doctor` must name the other agent.
# Each competitor is built inside the VM namespace, checked, and removed:
#   1. an earlier nftables DNAT (a table of its own, nat output at priority
#      -150, before gatehouse's -100) to a listener of its own;
#   2. an iptables (iptables-nft) DNAT at gatehouse's own priority: the
#      probe reports whichever sees the connection first; doctor names it;
#   3. systemd-imdsd's lockdown shape: a prohibit route to 169.254.169.254
#      in a table that every packet without its firewall mark looks up.
# A cgroup BPF connect4 redirect (Azure's Guest Proxy Agent) is not built
# here: it attaches to the cgroup root, shared with the host.
# The gate makes the same probe at start: with competitors 1 and 3 in place
# a gate started then refuses to serve, names what is in the way, and
# audits `firewall_probed` with the verdict.

COMPETITOR_PORT=9999

# verify_probe VM FILE: `gatehouse firewall verify`'s exit code (output to FILE).
verify_probe() {
    local code=0
    # shellcheck disable=SC2046 # flags are words
    ip netns exec "$1" "$GATEHOUSE" firewall verify $(firewall_flags) --policy "$WORK/policy.toml" >"$2" 2>&1 || code=$?
    echo "$code"
}

# start_refused ID FILE: start the (stopped: gate_stop) gate of ID in the
# foreground with its output in FILE; prints its exit code, or 124 when it
# is still running after 40 s (it serves: stopped again).
start_refused() {
    local pid code=0 i
    gate_cmd "$1" >"$2" 2>&1 &
    pid=$!
    for ((i = 0; i < 400; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        wait "$pid" 2>/dev/null || true
        echo 124
        return
    fi
    wait "$pid" || code=$?
    echo "$code"
}

# doctor_names VM CHECK NEEDLE: the level of doctor's first CHECK finding whose summary has NEEDLE.
doctor_names() {
    local report
    # doctor exits non-zero when it finds errors: its report is what counts.
    report="$(in_ns "$1" root "$GATEHOUSE" doctor --json --policy "$WORK/policy.toml" 2>/dev/null)" || true
    "$PY" -c 'import json,sys
fs = [f for f in json.load(sys.stdin)["findings"] if f["check"] == sys.argv[1] and sys.argv[2] in f["summary"]]
print(fs[0]["level"] if fs else "none")' "$2" "$3" <<<"$report" 2>/dev/null || echo "none"
}

scenario_redirects() {
    local id="$1" vm s="$WORK/s$1" listener code
    vm="$(ns_vm "$id")"
    platform_up "$id"
    gatehouse_up "$id"
    # The competitor's own listener on the VM's loopback (bounded in time).
    ip netns exec "$vm" timeout -k 2 120 "$PY" -c 'import socket,sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
while True:
    c, _ = s.accept(); c.close()' "$COMPETITOR_PORT" >"$s/competitor.log" 2>&1 &
    listener=$!
    wait_for "the competitor's listener" 10 ip netns exec "$vm" bash -c ": </dev/tcp/127.0.0.1/$COMPETITOR_PORT"

    row "redirects: verify, nothing else in the way" root "0" "$(verify_probe "$vm" "$s/verify-clean.out")"
    grep -q "reached the gate's listener" "$s/verify-clean.out" && code=said || code=silent
    row "redirects: verify says the probe reached the gate" root "said" "$code"

    # 1. An earlier nftables DNAT.
    ip netns exec "$vm" nft -f - <<EOF
table ip competitor {
    chain out {
        type nat hook output priority -150; policy accept;
        ip daddr $IMDS tcp dport 80 dnat to 127.0.0.1:$COMPETITOR_PORT
    }
}
EOF
    row "redirects: earlier nft dnat: table still as rendered" root "0" \
        "$(ip netns exec "$vm" "$GATEHOUSE" firewall verify --no-probe $(firewall_flags) --policy "$WORK/policy.toml" >/dev/null 2>&1; echo $?)"
    code="$(verify_probe "$vm" "$s/verify-nft.out")"
    grep -q "not by the gate's listener" "$s/verify-nft.out" && code="$code diverted"
    row "redirects: earlier nft dnat: verify fails" root "1 diverted" "$code"
    row "redirects: earlier nft dnat: doctor names it" root "error" "$(doctor_names "$vm" nft-other-rule "ip competitor")"
    row "redirects: earlier nft dnat: a denied user meets the competitor" gh-denied "reset" \
        "$(curl_imds "$vm" gh-denied "$TOKEN_PATH")"
    gate_stop "$id"
    code="$(start_refused "$id" "$s/start-nft.out")"
    grep -q "not by the gate's listener" "$s/start-nft.out" && code="$code diverted"
    grep -q "ip competitor" "$s/start-nft.out" && code="$code named"
    row "redirects: earlier nft dnat: the gate refuses to start" root "2 diverted named" "$code"
    row "redirects: earlier nft dnat: the start's probe is audited" root "diverted" "$(probe_verdict "$id" "$IMDS:80")"
    ip netns exec "$vm" nft delete table ip competitor
    gate_start "$id"
    # The broker probes before its worker, which writes the record, runs.
    for _ in {1..50}; do [[ "$(probe_verdict "$id" "$IMDS:80")" == reaches_gate ]] && break; sleep 0.2; done
    row "redirects: nft dnat removed: the gate starts, probe audited" root "reaches_gate" "$(probe_verdict "$id" "$IMDS:80")"
    row "redirects: nft dnat removed: verify passes" root "0" "$(verify_probe "$vm" "$s/verify-nft-gone.out")"

    # 2. An iptables DNAT in iptables-nft's nat OUTPUT chain, at the same
    #    priority as gatehouse's (-100): which chain sees a connection first
    #    is the kernel's order, so the probe's verdict must agree with what a
    #    denied user meets: the gate (403) or the competitor (reset).
    ip netns exec "$vm" iptables -t nat -I OUTPUT -d "$IMDS" -p tcp --dport 80 -j DNAT --to-destination "127.0.0.1:$COMPETITOR_PORT"
    code="$(verify_probe "$vm" "$s/verify-ipt.out")"
    grep -q "not by the gate's listener" "$s/verify-ipt.out" && code="$code diverted"
    row "redirects: iptables dnat (same priority): verify agrees with curl" gh-denied "0 403 | 1 diverted reset" \
        "$code $(curl_imds "$vm" gh-denied "$TOKEN_PATH")"
    row "redirects: iptables dnat: doctor names it" root "error" "$(doctor_names "$vm" iptables-rule DNAT)"
    ip netns exec "$vm" iptables -t nat -D OUTPUT -d "$IMDS" -p tcp --dport 80 -j DNAT --to-destination "127.0.0.1:$COMPETITOR_PORT"
    ip netns exec "$vm" nft delete table ip nat 2>/dev/null || true
    row "redirects: iptables dnat removed: verify passes" root "0" "$(verify_probe "$vm" "$s/verify-ipt-gone.out")"

    # 3. The lockdown shape: everything without mark 0x1000 looks up a table
    #    where IMDS is prohibited.
    ip -n "$vm" route add prohibit "$IMDS/32" table 4242
    ip -n "$vm" rule add priority 4242 not fwmark 0x1000 lookup 4242
    code="$(verify_probe "$vm" "$s/verify-route.out")"
    grep -q "prohibit, unreachable or blackhole route" "$s/verify-route.out" && code="$code blocked"
    row "redirects: prohibit route + mark rule: verify fails" root "1 blocked" "$code"
    row "redirects: prohibit route: doctor names the route" root "error" "$(doctor_names "$vm" route prohibit)"
    row "redirects: mark rule: doctor names it" root "warn" "$(doctor_names "$vm" ip-rule fwmark)"
    gate_stop "$id"
    code="$(start_refused "$id" "$s/start-route.out")"
    grep -q "prohibit, unreachable or blackhole route" "$s/start-route.out" && code="$code blocked"
    grep -q "prohibit $IMDS" "$s/start-route.out" && code="$code named"
    row "redirects: prohibit route: the gate refuses to start" root "2 blocked named" "$code"
    row "redirects: prohibit route: the start's probe is audited" root "blocked" "$(probe_verdict "$id" "$IMDS:80")"
    ip -n "$vm" rule del priority 4242
    ip -n "$vm" route flush table 4242
    gate_start "$id"
    row "redirects: route removed: verify passes" root "0" "$(verify_probe "$vm" "$s/verify-route-gone.out")"

    kill "$listener" 2>/dev/null || true
    wait "$listener" 2>/dev/null || true
}

# curl_at NS USER URL: like curl_imds, to any URL (status, or refused/timeout/reset).
curl_at() {
    local out rc=0
    out="$(in_ns "$1" "$2" curl -gsS --connect-timeout 5 --max-time 15 -H 'Metadata: true' \
        -o /dev/null -w '%{http_code}' "$3" 2>/dev/null)" || rc=$?
    case "$rc" in
        0) echo "$out" ;;
        7) echo refused ;;
        28) echo timeout ;;
        52 | 56) echo reset ;;
        *) echo "curl-exit-$rc" ;;
    esac
}

# IMDS's IPv6 address (fd00:ec2::254): the emulator answers there inside the
# platform namespace; once gatehouse's table is in place every local
# connection to it goes to the gate's IPv6 listener ([::1], the same port)
# and is decided like one to 169.254.169.254: a denied user gets the gate's
# 403 (audited, with its IPv6 address as the peer), an allowed one is served
# over IPv6 (from the gate's IPv4 upstream), and the IPv6 emulator sees
# nothing. IPv4-mapped 169.254.169.254 travels as IPv4: the gate answers it.
scenario_ipv6() {
    local id="$1" vm plat before
    vm="$(ns_vm "$id")"
    plat="$(ns_plat "$id")"
    platform_up "$id"
    local v6="http://[$IMDS6]" instance="/metadata/instance?api-version=2021-02-01"
    wait_for "the emulator at [$IMDS6]" 10 ip netns exec "$plat" curl -sf --max-time 2 http://127.0.0.1:16982/stats
    row "ipv6: no table: the emulator answers at [$IMDS6]" gh-denied "200" "$(curl_at "$vm" gh-denied "$v6$instance")"
    gatehouse_up "$id"
    # The worker prints its banner and audits the broker's probe once it runs.
    for _ in {1..50}; do [[ "$(probe_verdict "$id" "[$IMDS6]:80")" != none ]] && break; sleep 0.2; done
    grep -q "answered on http://\[::1\]:$GATE_PORT" "$WORK/s$id/gate.log" && before=said || before=silent
    row "ipv6: the gate says it listens on [::1]:$GATE_PORT" root "said" "$before"
    row "ipv6: the start-up probe of [$IMDS6] reached the gate" root "reaches_gate" "$(probe_verdict "$id" "[$IMDS6]:80")"
    before="$(ip netns exec "$plat" curl -sS --max-time 5 http://127.0.0.1:16982/stats | json_get total)"
    row "ipv6: token at [$IMDS6]" gh-denied "403" "$(curl_at "$vm" gh-denied "$v6$TOKEN_PATH")"
    row "ipv6: the refusal is audited with the caller's IPv6 address" gh-denied "deny 403" \
        "$(last_request_from "$id" "[fd00:e2e::2]:")"
    row "ipv6: token at [$IMDS6]" gh-allowed "200" "$(curl_at "$vm" gh-allowed "$v6$TOKEN_PATH")"
    row "ipv6: the grant is audited with the caller's IPv6 address" gh-allowed "allow 200" \
        "$(last_request_from "$id" "[fd00:e2e::2]:")"
    row "ipv6: instance at [$IMDS6]" root "200" "$(curl_at "$vm" root "$v6$instance")"
    row "ipv6: requests the emulator at [$IMDS6] got since the table" root "0" \
        "$(( $(ip netns exec "$plat" curl -sS --max-time 5 http://127.0.0.1:16982/stats | json_get total) - before ))"
    row "ipv6: token at [::ffff:$IMDS] (IPv4 on the wire)" gh-denied "403" \
        "$(curl_at "$vm" gh-denied "http://[::ffff:$IMDS]$TOKEN_PATH")"
    row "ipv6: token at [::ffff:$IMDS] (IPv4 on the wire)" gh-allowed "200" \
        "$(curl_at "$vm" gh-allowed "http://[::ffff:$IMDS]$TOKEN_PATH")"
    row "ipv6: firewall verify probes both addresses" root "0 2" \
        "$(verify_probe "$vm" "$WORK/s$id/verify6.out") $(grep -c "reached the gate's listener" "$WORK/s$id/verify6.out")"
}

# probe_verdict ID TARGET: the verdict of the last start-up probe of TARGET in ID's audit log.
probe_verdict() {
    "$PY" -c 'import json,sys
v = "none"
for line in open(sys.argv[1]):
    e = json.loads(line)["event"]
    if e["type"] == "firewall_probed" and e["target"] == sys.argv[2]:
        v = e["verdict"]
print(v)' "$WORK/s$1/audit.log" "$2" 2>/dev/null || echo "none"
}

# last_request_from ID PREFIX: "OUTCOME STATUS" of the last request record whose peer starts with PREFIX.
last_request_from() {
    "$PY" -c 'import json,sys
v = "none"
for line in open(sys.argv[1]):
    e = json.loads(line)["event"]
    if e["type"] == "request" and str(e.get("peer", "")).startswith(sys.argv[2]):
        v = "%s %s" % (e["outcome"], e["status"])
print(v)' "$WORK/s$1/audit.log" "$2" 2>/dev/null || echo "none"
}

# shellcheck shell=bash
# Watching the gate, end to end: the separated gate in the VM namespace
# serves metrics on the VM's loopback; a real Prometheus (Debian's
# `prometheus`) started in the same namespace scrapes it, and its query API
# must return the requests this scenario made. `gatehouse status` and
# `gatehouse doctor` run there too (doctor may ask IMDS: it does so through
# the gate, inside the namespace). Bounded: Prometheus runs under `timeout`.

METRICS_PORT=9925
PROM_PORT=9090

# prom_query NS QUERY: the first sample's value of an instant query ("" when none).
prom_query() {
    ip netns exec "$1" curl -sS --max-time 5 -G "http://127.0.0.1:$PROM_PORT/api/v1/query" \
        --data-urlencode "query=$2" 2>/dev/null | "$PY" -c 'import json,sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "")
except Exception:
    print("")'
}

# prom_wait NS QUERY WANT: poll until QUERY returns WANT (at most 20 s); print what it returned.
prom_wait() {
    local got="" deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        got="$(prom_query "$1" "$2")"
        [[ "$got" != "$3" ]] || break
        sleep 0.5
    done
    echo "${got:-none}"
}

scenario_observe() {
    local id="$1" vm s="$WORK/s$1" out code
    vm="$(ns_vm "$id")"
    command -v prometheus >/dev/null && command -v promtool >/dev/null ||
        { echo "prometheus/promtool missing (apt-get install prometheus)" >&2; return 1; }
    platform_up "$id"
    GATE_EXTRA=(--metrics-listen "127.0.0.1:$METRICS_PORT")
    gatehouse_up "$id"
    GATE_EXTRA=()
    # From the start, before any repair: the broker's start check, relayed
    # to the worker and audited once (not once more by the watcher). The
    # broker's listener accepts before the worker runs: wait for its socket.
    wait_for "the worker's admin socket" 20 in_ns "$vm" root "$GATEHOUSE" status --socket "$s/admin.sock"
    out="$(in_ns "$vm" root "$GATEHOUSE" status --json --socket "$s/admin.sock")" || true
    row "status at start: firewall state, timed, repairs" root "verified timed 0" "$("$PY" -c 'import json,sys
f = json.load(sys.stdin)["firewall"]
print(f["state"], "timed" if f["since_secs"] is not None else "untimed", f["repairs"])' <<<"$out" 2>/dev/null)"
    row "audit: firewall_verified records at start" root "1" "$(grep -c '"type":"firewall_verified"' "$s/audit.log")"
    row "observe: curl token" gh-allowed "200" "$(curl_imds "$vm" gh-allowed "$TOKEN_PATH")"
    row "observe: curl token again (cache)" gh-allowed "200" "$(curl_imds "$vm" gh-allowed "$TOKEN_PATH")"
    row "observe: curl token" gh-denied "403" "$(curl_imds "$vm" gh-denied "$TOKEN_PATH")"
    # Someone deletes the table; the broker repairs it and the worker counts it.
    ip netns exec "$vm" nft delete table inet gatehouse
    # shellcheck disable=SC2046 # flags are words
    wait_for "the repaired table" 15 ip netns exec "$vm" "$GATEHOUSE" firewall verify $(firewall_flags) --policy "$WORK/policy.toml"

    # The scrape as Prometheus's own tool reads it (classic text without OpenMetrics in Accept).
    ip netns exec "$vm" curl -sS --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics" >"$s/metrics.txt"
    out="ok"; promtool check metrics <"$s/metrics.txt" >"$s/promtool.log" 2>&1 || out="failed"
    row "observe: promtool check metrics" root "ok" "$out"
    out="ok"; promtool check rules "$ROOT/packaging/prometheus/gatehouse-rules.yml" >>"$s/promtool.log" 2>&1 || out="failed"
    row "observe: promtool check rules (example alerts)" root "ok" "$out"

    cat >"$s/prometheus.yml" <<EOC
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: gatehouse
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
EOC
    ip netns exec "$vm" timeout -k 5 60 prometheus --config.file="$s/prometheus.yml" \
        --storage.tsdb.path="$s/prom-data" --web.listen-address="127.0.0.1:$PROM_PORT" >"$s/prometheus.log" 2>&1 &
    local prom=$!
    wait_for "Prometheus in scenario $id" 20 ip netns exec "$vm" curl -sf --max-time 2 "http://127.0.0.1:$PROM_PORT/-/ready"
    row "prometheus: up{job=gatehouse}" root "1" "$(prom_wait "$vm" 'up{job="gatehouse"}' 1)"
    row "prometheus: token requests allowed" root "2" \
        "$(prom_wait "$vm" 'sum(gatehouse_requests_total{endpoint="token",decision="allow",rule="e2e-allowed-storage"})' 2)"
    row "prometheus: token requests denied" root "1" \
        "$(prom_wait "$vm" 'sum(gatehouse_requests_total{endpoint="token",decision="deny"})' 1)"
    row "prometheus: cache hits" root "1" "$(prom_wait "$vm" 'sum(gatehouse_token_cache_lookups_total{result="hit"})' 1)"
    row "prometheus: firewall repairs (nft event)" root "1" \
        "$(prom_wait "$vm" 'sum(gatehouse_firewall_repairs_total{trigger!="start"})' 1)"
    kill "$prom" 2>/dev/null || true
    wait "$prom" 2>/dev/null || true

    # `gatehouse status`: as root, and refused to a user outside the gatehouse group.
    code=0; out="$(in_ns "$vm" root "$GATEHOUSE" status --json --socket "$s/admin.sock")" || code=$?
    row "status: exit code, verdict" root "0 healthy" "$code $("$PY" -c 'import json,sys; print(json.load(sys.stdin)["health"]["verdict"])' <<<"$out" 2>/dev/null)"
    row "status: firewall after the repair, repairs" root "verified 1" "$("$PY" -c 'import json,sys
f = json.load(sys.stdin)["firewall"]
print(f["state"], f["repairs"])' <<<"$out" 2>/dev/null)"
    code=0; in_ns "$vm" gh-denied "$GATEHOUSE" status --socket "$s/admin.sock" >/dev/null 2>&1 || code=$?
    row "status: not in the gatehouse group" gh-denied "4" "$code"

    # `gatehouse doctor` inside the VM: the gate's table, and IMDS through the gate.
    out="$(in_ns "$vm" root "$GATEHOUSE" doctor --json --socket "$s/admin.sock" --policy "$WORK/policy.toml")" || true
    row "doctor: gatehouse table" root "ok" "$("$PY" -c 'import json,sys
print(next(f["level"] for f in json.load(sys.stdin)["findings"] if f["check"] == "nft-table"))' <<<"$out" 2>/dev/null)"
    row "doctor: IMDS through the gate" root "ok" "$("$PY" -c 'import json,sys
print(next(f["level"] for f in json.load(sys.stdin)["findings"] if f["check"] == "imds"))' <<<"$out" 2>/dev/null)"
}

# shellcheck shell=bash
# Scenario gcp: the emulator speaks Compute Engine's metadata server on
# 169.254.169.254, the VM runs `gatehouse run --cloud gcp` behind its
# firewall, and google-auth runs unchanged as the test users, with no
# endpoint override: `google.auth.default()`, `compute_engine.Credentials`
# and `IDTokenCredentials` (the metadata identity endpoint). As on GCE,
# `metadata.google.internal` resolves to 169.254.169.254 inside the VM
# (an /etc/hosts line of the VM namespace's own, `ip netns exec`'s
# /etc/netns/NS/hosts): the name google-auth asks for goes through the
# same firewall rule as the address it probes.

write_gcp_policy() {
    cat >"$1" <<EOF2
# gatehouse e2e policy for --cloud gcp (written by e2e/run.sh)
version = 1

[identities.app-sa]
kind = "gcp_service_account"
email = "app@gatehouse-demo.iam.gserviceaccount.com"
default = true

[[assignments]]
name = "everyone-reads-instance-metadata"
principal = "everyone"
role = "Instance Metadata Reader"

[[assignments]]
name = "e2e-allowed-tokens"
principal = "user:gh-allowed"
role = "Token Reader"
identities = ["app-sa"]
audiences = ["https://www.googleapis.com/auth/*", "https://api.example.com"]
EOF2
}

# gcp_hosts NS: metadata.google.internal is the metadata address in NS.
# GCP_NETNS_MADE: /etc/netns itself was made here (and goes again after).
gcp_hosts() {
    GCP_NETNS_MADE=0
    [[ -d /etc/netns ]] || GCP_NETNS_MADE=1
    mkdir -p "/etc/netns/$1"
    printf '127.0.0.1 localhost\n::1 localhost\n%s metadata.google.internal metadata\n' "$IMDS" \
        >"/etc/netns/$1/hosts"
}

# gcp_py NS USER MODE: "token <prefix>" / "id <aud>" / "none <error_type> quick|slow:<s>".
gcp_py() {
    local out
    out="$(in_ns "$1" "$2" "$VENV/bin/python" "$WORK/bin/gcp_client.py" "$3" 2>>"$WORK/clients.err")" || true
    echo "gcp $3 as $2: $out" >>"$WORK/clients.out"
    if [[ "$(json_get ok <<<"$out")" == True ]]; then
        if [[ "$3" == idtoken ]]; then
            echo "id $(json_get aud <<<"$out")"
        else
            echo "token $(json_get prefix <<<"$out")"
        fi
        return
    fi
    local took
    took="$(json_get took <<<"$out")"
    if "$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1] or 99) < 3 else 1)' "$took"; then
        echo "none $(json_get error_type <<<"$out") quick"
    else
        echo "none $(json_get error_type <<<"$out") slow:${took}s"
    fi
}

# gate_set ID CMD...: as with_gate, the gate's outcomes reduced to the set
# seen, in order (google-auth's request count is its own business).
gate_set() {
    local got
    got="$(with_gate "$@")"
    "$PY" -c 'import sys
head, _, outcomes = sys.argv[1].rpartition(" gate:")
seen = []
for o in outcomes.split(","):
    if o not in seen:
        seen.append(o)
print(head + " gate:" + ",".join(seen))' "$got"
}

# gcp_curl NS USER HOST PATH [HEADER]: the status of one GET.
gcp_curl() {
    local hdr=()
    [[ -z "${5:-}" ]] || hdr=(-H "$5")
    in_ns "$1" "$2" curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${hdr[@]}" "http://$3$4" || true
}

scenario_gcp() {
    local id="$1" vm
    vm="$(ns_vm "$id")"
    install -m 644 "$E2E/helpers/gcp_client.py" "$E2E/helpers/client_result.py" "$WORK/bin/"
    write_gcp_policy "$WORK/policy-gcp.toml"
    EMULATOR_EXTRA=(--cloud gcp)
    platform_up "$id"
    EMULATOR_EXTRA=()
    gcp_hosts "$vm"
    GATE_POLICY="$WORK/policy-gcp.toml"
    GATE_EXTRA=(--cloud gcp)
    gatehouse_up "$id"
    GATE_EXTRA=()
    GATE_POLICY=""
    local mode
    for mode in default compute; do
        row "google-auth $mode, no endpoint override" gh-allowed "token ya29 gate:allow" \
            "$(gate_set "$id" gcp_py "$vm" gh-allowed "$mode")"
        row "google-auth $mode, no endpoint override" gh-denied "none RefreshError quick gate:allow,deny" \
            "$(gate_set "$id" gcp_py "$vm" gh-denied "$mode")"
    done
    row "google-auth IDTokenCredentials (metadata)" gh-allowed "id https://api.example.com gate:allow" \
        "$(gate_set "$id" gcp_py "$vm" gh-allowed idtoken)"
    row "google-auth IDTokenCredentials (metadata)" gh-denied "none RefreshError quick gate:allow,deny" \
        "$(gate_set "$id" gcp_py "$vm" gh-denied idtoken)"
    # The name and the address both reach the gate; without the flavor
    # header the gate answers GCE's 403, and nothing reaches the emulator.
    local token=/computeMetadata/v1/instance/service-accounts/default/token
    row "curl metadata.google.internal token" gh-denied "403 imds+0" \
        "$(with_imds "$id" gcp_curl "$vm" gh-denied metadata.google.internal "$token" 'Metadata-Flavor: Google')"
    row "curl 169.254.169.254 token, no flavor" gh-allowed "403 imds+0" \
        "$(with_imds "$id" gcp_curl "$vm" gh-allowed "$IMDS" "$token")"
    rm -rf "/etc/netns/$vm"
    [[ "$GCP_NETNS_MADE" != 1 ]] || rmdir /etc/netns 2>/dev/null || true
}

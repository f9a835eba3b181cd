# shellcheck shell=bash
# Scenario aws: the emulator speaks EC2's IMDSv2 on 169.254.169.254, the VM
# runs `gatehouse run --cloud aws` behind its firewall, and AWS's own clients
# run unchanged as the test users, with no endpoint override: botocore's
# InstanceMetadataProvider, boto3's whole credential chain, and the AWS CLI
# v1 (`aws sts get-caller-identity`, which must fail only at the network —
# there is no STS here — after it found credentials).

write_aws_policy() {
    cat >"$1" <<EOF2
# gatehouse e2e policy for --cloud aws (written by e2e/run.sh)
version = 1

[identities.app-role]
kind = "aws_role"
role = "gatehouse-demo-role"

[[assignments]]
name = "everyone-reads-instance-metadata"
principal = "everyone"
role = "Instance Metadata Reader"

[[assignments]]
name = "e2e-allowed-credentials"
principal = "user:gh-allowed"
role = "Token Reader"
identities = ["app-role"]
EOF2
}

# aws_py NS USER MODE: "creds <method>" / "none <error_type> <seconds>s".
aws_py() {
    local out
    out="$(in_ns "$1" "$2" "$VENV/bin/python" "$WORK/bin/aws_client.py" "$3" 2>>"$WORK/clients.err")" || true
    echo "aws $3 as $2: $out" >>"$WORK/clients.out"
    if [[ "$(json_get ok <<<"$out")" == True ]]; then
        echo "creds $(json_get method <<<"$out") $(json_get key_prefix <<<"$out")"
        return
    fi
    # Quick: well under botocore's own 1 s timeout per attempt would matter.
    local took
    took="$(json_get took <<<"$out")"
    if "$PY" -c 'import sys; sys.exit(0 if float(sys.argv[1] or 99) < 3 else 1)' "$took"; then
        echo "none quick"
    else
        echo "none slow:${took}s"
    fi
}

# aws_cli NS USER: what `aws sts get-caller-identity` stopped at.
aws_cli() {
    local err
    err="$(in_ns "$1" "$2" "$VENV/bin/aws" sts get-caller-identity --region eu-west-1 \
        --cli-connect-timeout 2 --cli-read-timeout 2 2>&1 >/dev/null)" || true
    echo "aws cli as $2: $err" >>"$WORK/clients.out"
    case "$err" in
        *"Unable to locate credentials"*) echo "no-credentials" ;;
        *"Could not connect to the endpoint URL"*) echo "network-after-credentials" ;;
        *) echo "other" ;;
    esac
}

scenario_aws() {
    local id="$1" vm
    vm="$(ns_vm "$id")"
    install -m 644 "$E2E/helpers/aws_client.py" "$E2E/helpers/client_result.py" "$WORK/bin/"
    write_aws_policy "$WORK/policy-aws.toml"
    EMULATOR_EXTRA=(--cloud aws)
    platform_up "$id"
    EMULATOR_EXTRA=()
    GATE_POLICY="$WORK/policy-aws.toml"
    GATE_EXTRA=(--cloud aws)
    gatehouse_up "$id"
    GATE_EXTRA=()
    GATE_POLICY=""
    local mode
    for mode in botocore boto3; do
        row "aws $mode, no endpoint override" gh-allowed "creds iam-role ASIA gate:allow,allow,allow" \
            "$(with_gate "$id" aws_py "$vm" gh-allowed "$mode")"
        row "aws $mode, no endpoint override" gh-denied "none quick imds+0 gate:allow,deny" \
            "$(with_gate "$id" with_imds "$id" aws_py "$vm" gh-denied "$mode")"
    done
    row "aws cli v1 sts get-caller-identity" gh-allowed "network-after-credentials" "$(aws_cli "$vm" gh-allowed)"
    row "aws cli v1 sts get-caller-identity" gh-denied "no-credentials" "$(aws_cli "$vm" gh-denied)"
    # The firewall sends IMDSv2's own exchange to the gate: the session
    # token comes from the gate, and the emulator sees nothing.
    row "curl PUT /latest/api/token" gh-denied "200 imds+0" \
        "$(with_imds "$id" aws_put "$vm" gh-denied)"
}

# aws_put NS USER: the status of a session-token PUT to 169.254.169.254.
aws_put() {
    in_ns "$1" "$2" curl -s -o /dev/null -w '%{http_code}' -X PUT \
        -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "http://$IMDS/latest/api/token" || true
}

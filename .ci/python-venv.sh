#!/usr/bin/env bash
# Build the Python virtualenv that the gate's real-client tests run
# (crates/gate/tests/clients.rs) as other uids.
#
# Usage: .ci/python-venv.sh [DIR]        (default DIR=/opt/gatehouse-venv)
#
# Why Debian's /usr/bin/python3 and not whatever `python3` is on PATH: root's
# Python may live under /root (pyenv), which the test uids cannot enter, and a
# venv's interpreter is a symlink to the Python it was made from.
# Idempotent: when DIR already holds a venv built from the same pins, it only
# re-checks the imports and permissions.
set -euo pipefail

DIR="${1:-/opt/gatehouse-venv}"
PYTHON=/usr/bin/python3
# Pinned client versions (the ones imds-protocol.md was checked against).
PINS=(
    "azure-identity==1.27.0"
    "msal==1.39.0"
    "azure-core==1.41.0"
    "aiohttp==3.14.5"
    "requests==2.34.2"
    "jsonschema==4.26.0"
    # The OTLP receiver of crates/cli/tests/export.rs decodes the real protobuf.
    "opentelemetry-proto==1.45.2"
    # AWS: botocore (boto3's and the AWS CLI v1's credential chain).
    "awscli==1.46.2"
    "boto3==1.44.8"
    "botocore==1.44.8"
    # GCP: google-auth (what every Google Cloud Python library uses).
    "google-auth==2.62.2"
)
STAMP="$DIR/.gatehouse-pins"
WANT="$(printf '%s\n' "${PINS[@]}")"

check() {
    "$DIR/bin/python" -c 'import azure.identity, azure.identity.aio, msal, aiohttp, requests, jsonschema, opentelemetry.proto.collector.logs.v1.logs_service_pb2, boto3, botocore, awscli, google.auth, google.auth.compute_engine, google.auth.transport.requests' 2>/dev/null
}

if [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$WANT" ]] && check; then
    chmod -R a+rX "$DIR"
    echo "python venv ready: $DIR"
    exit 0
fi

if [[ ! -x "$PYTHON" ]]; then
    echo "error: $PYTHON not found (install Debian's python3)" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    if [[ "$(id -u)" -eq 0 ]]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y python3-venv || { apt-get update && apt-get install -y python3-venv; }
    else
        echo "error: python3-venv is missing; run as root or: apt-get install -y python3-venv" >&2
        exit 1
    fi
fi

umask 022
# --clear: a half-built or differently pinned venv is rebuilt from scratch.
"$PYTHON" -m venv --clear "$DIR"
"$DIR/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${PINS[@]}"
check || { echo "error: the venv at $DIR cannot import the clients" >&2; exit 1; }
printf '%s\n' "${PINS[@]}" > "$STAMP"
# Other uids run this interpreter: everything readable, directories enterable.
chmod -R a+rX "$DIR"
# Parent directories are not ours to open up: only say when one is closed.
dir="$(dirname "$(realpath "$DIR")")"
while [[ "$dir" != "/" ]]; do
    if [[ "$(( 0$(stat -c %a "$dir") & 01 ))" -eq 0 ]]; then
        echo "warning: $dir is not searchable by other users; they cannot run $DIR" >&2
    fi
    dir="$(dirname "$dir")"
done
echo "python venv built: $DIR"

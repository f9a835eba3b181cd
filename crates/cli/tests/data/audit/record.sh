#!/bin/bash
# Regenerates the recorded audit logs of this directory from real gate runs
# (the tests read them; they are committed so the tests need no root):
#
#   cargo build -p gatehouse && sudo bash crates/cli/tests/data/audit/record.sh
#
# Root: callers run as test uids (setpriv) and one in a unit's cgroup
# (/system.slice/hl-demo-app.service on the cgroup v2 mount), and python3
# in walinuxagent.service's, as the trusted Azure guest agent. Only loopback.
#   observe/audit.log.1, observe/audit.log   observe.toml (audit mode), rotated
#   enforce/audit.log                        enforce.toml (enforce mode)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${GATEHOUSE_BIN:-$(cd "$here/../../../../.." && pwd)/target/debug/gatehouse}
work=$(mktemp -d)
chmod 755 "$work"
port=${RECORD_PORT:-16991}
base="http://127.0.0.1:$port"
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
unit_cg="$cg2/system.slice/hl-demo-app.service"
agent_cg="$cg2/system.slice/walinuxagent.service"
gate=
cleanup() {
    [ -n "$gate" ] && kill "$gate" 2>/dev/null && wait "$gate" 2>/dev/null || true
    rmdir "$unit_cg" "$agent_cg" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

start() { # policy audit-path extra-args...
    local policy=$1 audit=$2
    shift 2
    "$bin" run --upstream emulator --policy "$policy" --listen "127.0.0.1:$port" \
        --audit "$audit" --no-upstream-mark --firewall off --caller-lookup sock-diag \
        --jit-db "$work/jit.db" --admin-socket "$work/admin.sock" "$@" 2>"$work/gate.err" &
    gate=$!
    for _ in $(seq 50); do
        curl -s -o /dev/null "$base/" && return 0
        sleep 0.1
    done
    cat "$work/gate.err" >&2
    exit 1
}
stop() { kill "$gate"; wait "$gate" || true; gate=; }

token() { # uid identity-client-id audience [runner...]
    local uid=$1 client=$2 aud=$3
    shift 3
    "$@" setpriv --reuid "$uid" --regid "$uid" --clear-groups \
        curl -s -o /dev/null -H 'Metadata: true' \
        "$base/metadata/identity/oauth2/token?api-version=2018-02-01&resource=$aud&client_id=$client"
}
instance() { # uid
    setpriv --reuid "$1" --regid "$1" --clear-groups \
        curl -s -o /dev/null -H 'Metadata: true' "$base/metadata/instance?api-version=2021-02-01"
}
in_cgroup() { # cgroup-dir command...: runs the command in that cgroup
    sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$@"
}
in_unit() { in_cgroup "$unit_cg" "$@"; }

system=1e5a6b7c-8d9e-4fa0-b1c2-d3e4f5a6b708
storage=2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809
vault=4b8d9eaf-b0c1-42d3-a4f5-a6b7c8d9e0fb
mkdir -p "$unit_cg" "$agent_cg"

rm -rf "$here/observe" "$here/enforce"
mkdir -p "$here/observe" "$here/enforce"
start "$here/observe.toml" "$work/observe.log" --audit-rotate-bytes 24000
for _ in 1 2 3 4; do token 46001 $storage https://storage.azure.com; done
token 46001 $storage https://storage.azure.com/
instance 46001
instance 46001
for _ in 1 2 3; do token 46002 $vault https://vault.azure.net; done
for _ in 1 2 3; do token 46003 $system https://management.azure.com/ in_unit; done
token 46003 $storage https://storage.azure.com in_unit
token 46004 $vault https://vault.azure.net
setpriv --reuid 46004 --regid 46004 --clear-groups "$bin" jit --socket "$work/admin.sock" \
    request --role 'Token Reader' --identity vault-reader --duration 30m --reason 'rotate a secret' >/dev/null
token 46004 $vault https://vault.azure.net
token 46004 $vault https://vault.azure.net
instance 0
# The Azure guest agent (a trusted service): root's python3 in its unit.
in_cgroup "$agent_cg" /usr/bin/python3 -c 'import sys, urllib.request as u
u.urlopen(u.Request(sys.argv[1], headers={"Metadata": "true"})).read()' \
    "$base/metadata/instance?api-version=2021-02-01"
setpriv --reuid 46001 --regid 46001 --clear-groups curl -s -o /dev/null "$base/metadata/instance?api-version=2021-02-01"
stop
cp "$work/observe.log".* "$work/observe.log" "$here/observe/" 2>/dev/null || cp "$work/observe.log" "$here/observe/"
for f in "$here/observe/"observe.log*; do mv "$f" "${f/observe.log/audit.log}"; done

rm -f "$work/jit.db"*
start "$here/enforce.toml" "$work/enforce.log"
token 46001 $storage https://storage.azure.com
token 46001 $storage https://storage.azure.com
token 46002 $vault https://vault.azure.net
token 46002 $storage https://storage.azure.com
token 46003 $system https://management.azure.com in_unit
stop
cp "$work/enforce.log" "$here/enforce/audit.log"
chmod 644 "$here"/observe/* "$here"/enforce/*
"$bin" audit verify "$here/observe/audit.log"
"$bin" audit verify "$here/enforce/audit.log"

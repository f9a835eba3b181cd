#!/usr/bin/env bash
# gatehouse benchmark: one command, one run, same machine, loopback only.
#
#   sudo bench/run.sh            # ~7 minutes on 2 cores (after the release build)
#
# Installs what it needs (Debian: nginx, wrk, jq, clang), builds gatehouse in release mode
# with the eBPF caller lookup (--features ebpf), then measures and prints tables:
#   (a) the IMDS emulator directly        (gatehouse emulate --no-rate-limits)
#   (b) nginx as a plain reverse proxy in front of it (keepalive upstream pool)
#   (c) gatehouse with its token cache
#   (d) gatehouse with --no-cache (and --no-upstream-limits: otherwise the limiter holds
#       it to IMDS's 20 requests/s and that, not the gate, is what would be measured)
# (c) and (d) each twice: --caller-lookup sock-diag and --caller-lookup ebpf (the gate's
# log must name the path it was given, or the bench stops). In keep-alive and
# new-connection-per-request mode, with 0 / 1,000 / 5,000 extra idle processes, for a
# policy on the uid and a policy on the executable's SHA-256; caller identification alone
# (both lookups); upstream calls for bursts of 500 clients; the gate's RSS.
#
# The eBPF gates' programs sit on the cgroup v2 root for the whole run, so every TCP
# connect on the machine (to (a), (b) and the sock-diag gates too) passes through them:
# a map lookup per program, a constant the sock-diag rows carry as well.
#
# Knobs (environment): BENCH_SECONDS (per wrk run, default 5), BENCH_CONNECTIONS
# (default 8), BENCH_PROCS (default "0 1000 5000"), BENCH_PORT_BASE (default 18900).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNECTIONS:-8}
PROC_COUNTS=${BENCH_PROCS:-"0 1000 5000"}
BASE=${BENCH_PORT_BASE:-18900}

EMU=$((BASE + 0))       # emulator, no rate limits
EMU_CTL=$((BASE + 1))
NGX=$((BASE + 2))
LOOKUPS="sock-diag ebpf"  # --caller-lookup of the (c) and (d) gates
gate_port() {  # gate_port TARGET POLICY LOOKUP: (c|d) (uid|hash) (sock-diag|ebpf) -> port
    local n=10
    [ "$1" = d ] && n=$((n + 2))
    [ "$2" = hash ] && n=$((n + 1))
    [ "$3" = ebpf ] && n=$((n + 4))
    echo $((BASE + n))   # sock-diag: BASE+10..13, ebpf: BASE+14..17
}
EMU_RL=$((BASE + 20))   # emulator with IMDS's rate limits, for the 50-key burst
EMU_RL_CTL=$((BASE + 21))
GATE_BURST=$((BASE + 22))

CLIENT_ID=2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809   # storage-writer in the demo VM
TOKEN_PATH="/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com&client_id=$CLIENT_ID"

die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (installs packages, reads every process's /proc)"

# --- install and build --------------------------------------------------------------
need=()
command -v nginx >/dev/null || need+=(nginx)
command -v wrk >/dev/null || need+=(wrk)
command -v jq >/dev/null || need+=(jq)
command -v clang >/dev/null || need+=(clang)   # compiles crates/sys/bpf/connect.bpf.c
if [ ${#need[@]} -gt 0 ]; then
    echo "bench: installing ${need[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
fi
echo "bench: building (release, --features ebpf)" >&2
(cd "$ROOT" && cargo build --release -q -p gatehouse --features ebpf && \
    cargo build --release -q -p gatehouse-sys --features ebpf --example identify_bench)
GH="$ROOT/target/release/gatehouse"
IDB="$ROOT/target/release/examples/identify_bench"

# --- scratch space and cleanup ------------------------------------------------------
TMP=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
chmod 700 "$TMP"
PIDS=()
IDLE_PGID=""
cleanup() {
    set +e
    [ -n "$IDLE_PGID" ] && kill -- "-$IDLE_PGID" 2>/dev/null
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n 20000

wait_port() {  # wait_port PORT: up to 10 s
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on 127.0.0.1:$1 (see $TMP/*.log)"
}

# --- configuration files -------------------------------------------------------------
WRK_HASH=$(sha256sum "$(command -v wrk)" | cut -d' ' -f1)
policy() {  # policy NAME PRINCIPAL
    cat >"$TMP/$1.toml" <<EOF
version = 1
[identities.storage-writer]
kind = "user"
client_id = "$CLIENT_ID"
object_id = "3a7c8d9e-afb0-41c2-93e4-f5a6b7c8d90a"
resource_id = "/subscriptions/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b/resourcegroups/gatehouse-demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/storage-writer"
[[assignments]]
name = "bench"
principal = "$2"
role = "Token Reader"
identities = ["storage-writer"]
audiences = ["*"]
EOF
}
policy uid "uid:0"
policy hash "exe:sha256:$WRK_HASH"

# The demo VM plus 50 audiences of our own, for the 50-key burst.
{
    echo 'tenant_id = "b5a9c1d2-3e4f-4a6b-8c7d-9e0f1a2b3c4d"'
    echo 'subscription_id = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"'
    echo 'resource_group = "gatehouse-demo"'
    printf 'extra_audiences = ['
    for i in $(seq -w 1 50); do printf '"api://bench-%s", ' "$i"; done
    echo ']'
    echo '[vm]'
    echo 'name = "demo-vm"'
    echo 'location = "westeurope"'
    echo 'vm_id = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"'
    echo 'vm_size = "Standard_D2s_v5"'
    echo '[[user_assigned]]'
    echo 'name = "storage-writer"'
    echo "client_id = \"$CLIENT_ID\""
    echo 'object_id = "3a7c8d9e-afb0-41c2-93e4-f5a6b7c8d90a"'
    echo 'resource_id = "/subscriptions/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b/resourcegroups/gatehouse-demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/storage-writer"'
} >"$TMP/emulator.toml"

cat >"$TMP/keys50.lua" <<EOF
local i = 0
request = function()
  i = i % 50 + 1
  local path = string.format("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=api://bench-%02d&client_id=$CLIENT_ID", i)
  return wrk.format("GET", path, { ["Metadata"] = "true" })
end
EOF

mkdir -p "$TMP/nginx/logs"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    upstream emulator {
        server 127.0.0.1:$EMU;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NGX;
        location / {
            proxy_pass http://emulator;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF

# --- start the targets -----------------------------------------------------------------
start() {  # start NAME CMD...: background, log to $TMP/NAME.log
    local name=$1; shift
    "$@" >"$TMP/$name.log" 2>&1 &
    PIDS+=($!)
    eval "PID_${name//-/_}=$!"
}
start emulator "$GH" emulate --config "$TMP/emulator.toml" --listen "127.0.0.1:$EMU" \
    --control "127.0.0.1:$EMU_CTL" --no-rate-limits
wait_port "$EMU"
start nginx nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf"
gate() {  # gate NAME PORT POLICY UPSTREAM_PORT EXTRA...
    local name=$1 port=$2 pol=$3 up=$4; shift 4
    mkdir -p "$TMP/audit-$name"
    start "$name" "$GH" run --upstream "http://127.0.0.1:$up" --policy "$TMP/$pol.toml" \
        --listen "127.0.0.1:$port" --audit "$TMP/audit-$name/audit.log" --no-upstream-mark "$@"
}
lookup_check() {  # lookup_check NAME LOOKUP: the gate's banner must name that path
    local log="$TMP/$1.log" want line
    case $2 in
        ebpf) want='^gatehouse: callers: eBPF ' ;;
        sock-diag) want='^gatehouse: callers: sock_diag and /proc$' ;;
        *) die "unknown lookup $2" ;;
    esac
    for _ in $(seq 100); do   # ≤ 10 s for the banner (or the gate's exit)
        grep -q '^gatehouse: callers:' "$log" && break
        sleep 0.1
    done
    line=$(grep -m1 '^gatehouse: callers:' "$log" || true)
    if ! grep -q "$want" <<<"$line"; then
        echo "bench: $1 was given --caller-lookup $2 but does not use it; its log:" >&2
        sed 's/^/bench:   /' "$log" >&2
        die "$1: wrong caller lookup (${line:-no \"gatehouse: callers:\" line})"
    fi
    echo "bench: $1: ${line#gatehouse: }" >&2
}
GATE_PORTS=()
for lookup in $LOOKUPS; do
    for target in c d; do
        extra=()
        [ "$target" = d ] && extra=(--no-cache --no-upstream-limits)
        for pol in uid hash; do
            gate "gate_${target}_${pol}_${lookup//-/_}" "$(gate_port "$target" "$pol" "$lookup")" \
                "$pol" "$EMU" --caller-lookup "$lookup" "${extra[@]}"
        done
    done
done
for lookup in $LOOKUPS; do
    for target in c d; do
        for pol in uid hash; do
            lookup_check "gate_${target}_${pol}_${lookup//-/_}" "$lookup"
            GATE_PORTS+=("$(gate_port "$target" "$pol" "$lookup")")
        done
    done
done
for p in "$NGX" "${GATE_PORTS[@]}"; do wait_port "$p"; done

# Every target must answer the token request with 200 before it is measured.
for p in "$EMU" "$NGX" "${GATE_PORTS[@]}"; do
    code=$(wrk -t1 -c1 -d1s -H 'Metadata: true' "http://127.0.0.1:$p$TOKEN_PATH" |
        awk '/Non-2xx/{print "non-2xx"}')
    [ -z "$code" ] || die "127.0.0.1:$p does not answer 200 (see $TMP/*.log)"
done

# --- idle processes ------------------------------------------------------------------
idle_start() {  # idle_start N: N sleeping processes in a process group of their own
    [ "$1" -gt 0 ] || return 0
    local max; max=$(cat /proc/sys/kernel/pid_max)
    local pids=(/proc/[0-9]*) have; have=${#pids[@]}
    if [ $((have + $1 + 2000)) -gt "$max" ]; then
        echo "bench: raising kernel.pid_max to $((have + $1 + 2000))" >&2
        echo $((have + $1 + 2000)) >/proc/sys/kernel/pid_max
    fi
    setsid bash -c "for ((i=0; i<$1; i++)); do sleep 86400 & done; exec sleep 86400" \
        </dev/null >/dev/null 2>&1 &
    IDLE_PGID=$!
    # Wait (≤ 60 s) until they exist.
    for _ in $(seq 600); do
        [ "$(pgrep -g "$IDLE_PGID" -c)" -gt "$1" ] && return 0
        sleep 0.1
    done
    die "could not start $1 idle processes"
}
idle_stop() {
    [ -n "$IDLE_PGID" ] || return 0
    kill -- "-$IDLE_PGID" 2>/dev/null || true
    for _ in $(seq 300); do
        pgrep -g "$IDLE_PGID" >/dev/null || break
        sleep 0.1
    done
    IDLE_PGID=""
}

# --- measurements ----------------------------------------------------------------------
RESULTS="$TMP/results.tsv"   # procs mode target lookup policy p50_us p99_us rps errors
IDENT="$TMP/ident.tsv"       # procs lookup path clients p50 p99 strategies
: >"$RESULTS"
: >"$IDENT"

to_us() {  # wrk latency (e.g. 812.00us, 1.23ms, 2.00s) -> microseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /s$/) m = 1000000; else m = 1
        printf "%d\n", n * m
    }'
}

measure() {  # measure PROCS MODE TARGET LOOKUP POLICY PORT
    local procs=$1 mode=$2 target=$3 lookup=$4 pol=$5 port=$6 extra=()
    [ "$mode" = close ] && extra=(-H 'Connection: close')
    local out
    out=$(wrk -t2 -c"$CONNS" -d"${SECONDS_PER_RUN}s" --latency -H 'Metadata: true' "${extra[@]}" \
        "http://127.0.0.1:$port$TOKEN_PATH")
    local p50 p99 rps errs
    p50=$(to_us "$(echo "$out" | awk '$1 == "50%" {print $2}')")
    p99=$(to_us "$(echo "$out" | awk '$1 == "99%" {print $2}')")
    rps=$(echo "$out" | awk '/^Requests\/sec/ {printf "%d", $2}')
    errs=$(echo "$out" | awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$procs" "$mode" "$target" "$lookup" "$pol" \
        "$p50" "$p99" "$rps" "$errs" >>"$RESULTS"
    printf 'bench: %5s procs %-9s %-2s %-9s %-4s p50 %6s us  p99 %6s us  %6s req/s  errors %s\n' \
        "$procs" "$mode" "$target" "$lookup" "$pol" "$p50" "$p99" "$rps" "$errs" >&2
}

for procs in $PROC_COUNTS; do
    idle_start "$procs"
    for mode in keepalive close; do
        measure "$procs" "$mode" a - - "$EMU"
        measure "$procs" "$mode" b - - "$NGX"
        for lookup in $LOOKUPS; do
            for target in c d; do
                for pol in uid hash; do
                    measure "$procs" "$mode" "$target" "$lookup" "$pol" "$(gate_port "$target" "$pol" "$lookup")"
                done
            done
        done
    done
    for lookup in $LOOKUPS; do
        for path in uid exe hash; do
            for clients in reconnect fresh; do
                line=$("$IDB" --lookup "$lookup" --path "$path" --clients "$clients" --connections 400)
                echo "bench: $procs procs identify $line" >&2
                echo "$line" | awk -v procs="$procs" '{
                    for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
                    s = $0; sub(/.*strategies=/, "", s)
                    printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", procs, f["lookup"], f["path"], f["clients"], f["p50_us"], f["p99_us"], s
                }' >>"$IDENT"
            done
        done
    done
    idle_stop
done

# --- bursts: upstream calls and RSS --------------------------------------------------
rss_kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
emu_token_calls() { curl -s "http://127.0.0.1:$1/stats" | jq '.by_endpoint.token // 0'; }
emu_429() { curl -s "http://127.0.0.1:$1/stats" | jq '.by_status["429"] // 0'; }

# One key: a fresh gate (empty cache) and 500 clients at once. The burst gates use the
# sock_diag lookup, as before the eBPF path existed (the figures here are about the cache
# and the limiter).
gate gate_burst1 "$GATE_BURST" uid "$EMU" --max-connections-per-uid 1024 --caller-lookup sock-diag
wait_port "$GATE_BURST"
# shellcheck disable=SC2154  # PID_* are set by start (eval)
BURST1_PID=$PID_gate_burst1
sleep 1
RSS_IDLE=$(rss_kb "$BURST1_PID" VmRSS)
curl -s -X POST "http://127.0.0.1:$EMU_CTL/reset" >/dev/null
wrk -t2 -c500 -d3s --timeout 10s -H 'Metadata: true' "http://127.0.0.1:$GATE_BURST$TOKEN_PATH" \
    >"$TMP/burst1.txt"
BURST1_CALLS=$(emu_token_calls "$EMU_CTL")
BURST1_RPS=$(awk '/^Requests\/sec/ {printf "%d", $2}' "$TMP/burst1.txt")
BURST1_ERR=$(awk '/Non-2xx/ {n += $NF} END {print n + 0}' "$TMP/burst1.txt")
RSS_HWM1=$(rss_kb "$BURST1_PID" VmHWM)
kill "$BURST1_PID"; wait "$BURST1_PID" 2>/dev/null || true

# 50 keys: the gate WITH its limiter in front of an emulator WITH IMDS's rate limits.
start emulator_rl "$GH" emulate --config "$TMP/emulator.toml" --listen "127.0.0.1:$EMU_RL" \
    --control "127.0.0.1:$EMU_RL_CTL"
wait_port "$EMU_RL"
gate gate_burst50 "$GATE_BURST" uid "$EMU_RL" --max-connections-per-uid 1024 --caller-lookup sock-diag
wait_port "$GATE_BURST"
# shellcheck disable=SC2154
BURST50_PID=$PID_gate_burst50
wrk -t2 -c500 -d6s --timeout 10s --latency -s "$TMP/keys50.lua" "http://127.0.0.1:$GATE_BURST/" \
    >"$TMP/burst50.txt"
BURST50_CALLS=$(emu_token_calls "$EMU_RL_CTL")
BURST50_429=$(emu_429 "$EMU_RL_CTL")
BURST50_ERR=$(awk '/Non-2xx/ {n += $NF} END {print n + 0}' "$TMP/burst50.txt")
BURST50_P99=$(to_us "$(awk '$1 == "99%" {print $2}' "$TMP/burst50.txt")")
RSS_HWM50=$(rss_kb "$BURST50_PID" VmHWM)

# --- tables --------------------------------------------------------------------------
echo
echo "## gatehouse benchmark — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r)"
echo
echo "wrk -t2 -c$CONNS -d${SECONDS_PER_RUN}s per row; latency in µs; uid = policy on uid:0, hash = policy"
echo "on exe:sha256 of wrk. (a) emulator, (b) nginx → emulator, (c) gate with cache,"
echo "(d) gate --no-cache --no-upstream-limits (with the limiter it would be held to 20 req/s)."
echo "lookup = the gate's --caller-lookup: sock-diag (sock_diag, and /proc for the hash policy) or"
echo "ebpf (the connect-time record of the connecting process); - for (a) and (b)."
echo "close = a new TCP connection per request (Connection: close). Every token is RSA-signed"
echo "by the emulator, so (a), (b) and (d) pay a signature per request; (c) serves cached tokens."
echo
echo "| procs | mode | target | lookup | policy | p50 µs | p99 µs | req/s | errors |"
echo "|---:|---|---|---|---|---:|---:|---:|---:|"
awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$RESULTS"
echo
echo "Ratios (target: c/b p50 ≤ 1.0, p99 ≤ 1.5, req/s ≥ 1.0; d/b p50 ≤ 1.3):"
echo
echo "| procs | mode | lookup | policy | c/b p50 | c/b p99 | c/b req/s | d/b p50 | c/a p50 |"
echo "|---:|---|---|---|---:|---:|---:|---:|---:|"
awk -F'\t' -v lookups="$LOOKUPS" '
    { k = $1 FS $2; t = k FS $3 FS $4 FS $5; p50[t] = $6; p99[t] = $7; rps[t] = $8; keys[k] = 1 }
    function r(x, y) { return (y > 0) ? sprintf("%.2f", x / y) : "-" }
    END {
        n = 0
        for (k in keys) order[++n] = k
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) {
            split(order[i], A, FS); split(order[j], B, FS)
            if (A[1] + 0 > B[1] + 0 || (A[1] == B[1] && A[2] < B[2])) { t = order[i]; order[i] = order[j]; order[j] = t }
        }
        nl = split(lookups, L, " ")
        for (i = 1; i <= n; i++) {
            k = order[i]; split(k, K, FS)
            a = k FS "a" FS "-" FS "-"; b = k FS "b" FS "-" FS "-"
            for (li = 1; li <= nl; li++) for (pi = 1; pi <= 2; pi++) {
                pol = (pi == 1) ? "uid" : "hash"
                c = k FS "c" FS L[li] FS pol; d = k FS "d" FS L[li] FS pol
                printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", K[1], K[2], L[li], pol,
                    r(p50[c], p50[b]), r(p99[c], p99[b]), r(rps[c], rps[b]), r(p50[d], p50[b]), r(p50[c], p50[a])
            }
        }
    }' "$RESULTS"
echo
echo "Caller identification alone (crates/sys/examples/identify_bench, 400 connections each;"
echo "lookup sock-diag = the kernel's socket table, then /proc searched for the holders; lookup"
echo "ebpf = the connect-time record of the process that connected, sock_diag when there is none;"
echo "uid = a policy on uids alone, exe = what the gate asks for today, hash = exe + SHA-256;"
echo "reconnect = one client process reconnecting, fresh = a new process per connection):"
echo
echo "| procs | lookup | path | clients | p50 µs | p99 µs | first holder found by |"
echo "|---:|---|---|---|---:|---:|---|"
awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$IDENT"
echo
echo "Bursts (gate with --max-connections-per-uid 1024 --caller-lookup sock-diag; the default of"
echo "64 per uid would refuse most of 500 clients of one uid):"
echo
echo "| burst | upstream token calls | 429 from the emulator | non-2xx to clients | notes |"
echo "|---|---:|---:|---:|---|"
echo "| 500 clients, 1 key, 3 s | $BURST1_CALLS | - | $BURST1_ERR | $BURST1_RPS req/s; target: exactly 1 call |"
echo "| 500 clients, 50 keys, 6 s | $BURST50_CALLS | $BURST50_429 | $BURST50_ERR | gate limiter on, emulator enforces 20/s + 5 concurrent; 0 × 429 = never over; p99 $BURST50_P99 µs |"
echo
echo "| gatehouse RSS | MB |"
echo "|---|---:|"
echo "| idle (VmRSS after start) | $(awk -v k="$RSS_IDLE" 'BEGIN {printf "%.1f", k / 1024}') |"
echo "| peak, 500-client burst on 1 key (VmHWM) | $(awk -v k="$RSS_HWM1" 'BEGIN {printf "%.1f", k / 1024}') |"
echo "| peak, 500-client burst on 50 keys (VmHWM) | $(awk -v k="$RSS_HWM50" 'BEGIN {printf "%.1f", k / 1024}') |"

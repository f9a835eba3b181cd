# shellcheck shell=bash
# Shared helpers: the result table, test users, running things in a
# namespace as a user, and reading what the platform saw.

PY=/usr/bin/python3          # Debian's: the test users can run it (root's pyenv is under /root)
CLIENT_TIMEOUT=25            # hard bound on any one client process
TEST_USERS=(gh-allowed gh-denied gh-gatehouse)
# The gate runs separated, as packaging/gatehouse.service runs it: an
# unprivileged worker (this user) and a root broker with three capabilities.
GATE_USER=gh-gatehouse
IMDS=169.254.169.254
IMDS6=fd00:ec2::254
WIRESERVER=168.63.129.16
STORAGE=https://storage.azure.com
STORAGE_WRITER=2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809
TOKEN_PATH="/metadata/identity/oauth2/token?api-version=2018-02-01&resource=$STORAGE&client_id=$STORAGE_WRITER"

# ---- the table ---------------------------------------------------------------

# Rows go to a file: scenarios run in subshells. Progress goes to fd 3 (the
# terminal's stderr, kept by run.sh).
ROWS_FILE=""

# row SCENARIO USER EXPECTED GOT: EXPECTED may list alternatives joined by " | ".
row() {
    local scenario="$1" user="$2" expected="$3" got="$4" alt verdict="MISMATCH"
    local IFS='|'
    for alt in $expected; do
        alt="${alt#"${alt%%[![:space:]]*}"}"; alt="${alt%"${alt##*[![:space:]]}"}"
        if [[ "$alt" == "$got" ]]; then verdict="ok"; fi
    done
    unset IFS
    printf '%s\t%s\t%s\t%s\t%s\n' "$scenario" "$user" "$expected" "$got" "$verdict" >>"$ROWS_FILE"
    printf '   %-44s %-11s %-28s -> %s%s\n' "$scenario" "$user" "$expected" "$got" \
        "$([[ "$verdict" == ok ]] || echo "   <-- MISMATCH")" >&3
}

# print_table: the table on stdout; returns the number of mismatches (capped).
print_table() {
    local scenario user expected got verdict rows=0 bad=0 line
    line="$(printf -- '-%.0s' $(seq 1 150))"
    printf '\n%-46s | %-11s | %-42s | %-30s | %s\n%s\n' scenario user expected got "" "$line"
    while IFS=$'\t' read -r scenario user expected got verdict; do
        rows=$((rows + 1))
        [[ "$verdict" == ok ]] || bad=$((bad + 1))
        printf '%-46s | %-11s | %-42s | %-30s | %s\n' "$scenario" "$user" "$expected" "$got" "$verdict"
    done <"$ROWS_FILE"
    printf '%s\n%d rows, %d mismatches\n' "$line" "$rows" "$bad"
    [[ $rows -gt 0 ]] || return 1
    return $((bad > 99 ? 99 : bad))
}

# ---- users ---------------------------------------------------------------------

# Idempotent: system users without a home or a login shell.
ensure_test_users() {
    local u
    for u in "${TEST_USERS[@]}"; do
        id -u "$u" >/dev/null 2>&1 && continue
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin --comment "gatehouse e2e test user" "$u"
    done
}

# ---- running things -------------------------------------------------------------

# in_ns NS USER CMD...: run CMD inside NS as USER ("root": as is) with a
# clean environment and a hard time bound.
in_ns() {
    local ns="$1" user="$2"
    shift 2
    local as=()
    if [[ "$user" != root ]]; then
        as=(setpriv --reuid="$(id -u "$user")" --regid="$(id -g "$user")" --init-groups)
    fi
    ip netns exec "$ns" timeout -k 5 "$CLIENT_TIMEOUT" "${as[@]}" \
        env -i PATH=/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 "$@"
}

# wait_for WHAT SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_for() {
    local what="$1" seconds="$2"
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "error: $what not ready within ${seconds}s" >&2
            return 1
        fi
        sleep 0.1
    done
}

# json_get FIELD: read one top-level field of the JSON object on stdin
# ("" when absent or not JSON).
json_get() {
    "$PY" -c 'import json,sys
try:
    v = json.loads(sys.stdin.read().strip().splitlines()[-1]).get(sys.argv[1], "")
except Exception:
    v = ""
print("" if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else v))' "$1"
}

# ---- what the platform saw ------------------------------------------------------

# imds_total ID: requests the emulator has read since it started.
imds_total() {
    ip netns exec "$(ns_plat "$1")" curl -sS --max-time 5 "http://127.0.0.1:16981/stats" | json_get total
}

# plat_count ID KEY: connections/datagrams platform_listeners.py counted (tcp_alt, udp_alt, stream, wireserver).
plat_count() {
    json_get "$2" <"$WORK/s$1/platform.json"
}

# curl_imds NS USER PATH: one curl to IMDS's address; prints the HTTP status,
# with " caller-unknown" when the gate said so, or refused/timeout/reset.
# The body (a token, when allowed) is never printed.
curl_imds() {
    local out rc=0 code body
    out="$(in_ns "$1" "$2" curl -sS --connect-timeout 5 --max-time 15 -H 'Metadata: true' \
        -w '\n%{http_code}' "http://$IMDS$3" 2>/dev/null)" || rc=$?
    case "$rc" in
        0) code="${out##*$'\n'}"; body="${out%$'\n'*}"
           if [[ "$body" == *"caller unknown"* ]]; then echo "$code caller-unknown"; else echo "$code"; fi ;;
        7) echo refused ;;
        28) echo timeout ;;
        52 | 56) echo reset ;;
        *) echo "curl-exit-$rc" ;;
    esac
}

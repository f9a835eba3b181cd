#!/usr/bin/env bash
# How fast `gatehouse audit show` filters a large log: writes a log of
# BENCH_RECORDS (default 1,000,000) records — the request records of the
# recorded real run (crates/cli/tests/data/audit/observe), re-chained with
# fresh seq, times and hashes — then times filters over it, printing one
# line per filter: records matched, wall and CPU seconds. A benchmark,
# not a test.
#
#   bash bench/audit-show.sh            # builds release if needed
#   GATEHOUSE_BIN=target/debug/gatehouse bash bench/audit-show.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${BENCH_RECORDS:-1000000}
BIN=${GATEHOUSE_BIN:-$ROOT/target/release/gatehouse}
if [ -z "${GATEHOUSE_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release -p gatehouse >&2)
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$work/audit.log"
# BENCH_LOG=PATH keeps the generated log there (and reuses it next time).
if [ -n "${BENCH_LOG:-}" ]; then log=$BENCH_LOG; fi
[ -s "$log" ] || python3 - "$ROOT/crates/cli/tests/data/audit/observe" "$log" "$N" <<'PY'
import hashlib, json, sys, datetime
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
events = []
for name in ("audit.log.1", "audit.log"):
    for line in open(f"{src}/{name}", "rb"):
        rec = json.loads(line)
        if rec["event"]["type"] == "request":
            # The event's bytes as stored: between `"event":` and `,"hash":`.
            start = line.index(b',"event":') + len(b',"event":')
            events.append(line[start:-76])
prev = "0" * 64
t0 = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)
with open(out, "wb") as f:
    for i in range(n):
        t = t0 + datetime.timedelta(milliseconds=i * 50)
        time = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
        prefix = b'{"seq":%d,"time":"%s","prev":"%s","event":' % (i + 1, time.encode(), prev.encode()) + events[i % len(events)]
        h = hashlib.sha256(prev.encode() + b"\n" + prefix).hexdigest()
        f.write(prefix + b',"hash":"' + h.encode() + b'"}\n')
        prev = h
PY
size=$(du -m "$log" | cut -f1)
echo "log: $N records, $size MiB ($("$BIN" --version))"
# Timed with output to /dev/null (wall and CPU seconds: on a shared machine
# CPU time is the steadier figure), then counted in a second, untimed run.
run() { # label, args...
    local label=$1 t count
    shift
    t=$( { TIMEFORMAT='%R %U %S'; time "$BIN" audit show "$log" --json "$@" >/dev/null; } 2>&1 )
    count=$("$BIN" audit show "$log" --json "$@" | wc -l)
    read -r real user sys <<<"$t"
    printf '%-56s %8d matched  %5.2f s wall  %5.2f s cpu\n' "$label" "$count" "$real" "$(echo "$user + $sys" | bc)"
}
run "--identity storage-writer" --identity storage-writer
run "--uid 46003 --audience https://management.azure.com" --uid 46003 --audience https://management.azure.com
run "--decision deny --since (last 10% of the log)" --decision deny --since "$(python3 -c "
import datetime; t=datetime.datetime(2026,12,1)+datetime.timedelta(milliseconds=$N*45); print(t.strftime('%Y-%m-%dT%H:%M:%SZ'))")"
run "--type jit_activated (none in this log)" --type jit_activated
run "--unit hl-demo-app.service" --unit hl-demo-app.service
run "no filter (every record printed)"

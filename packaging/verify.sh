#!/usr/bin/env bash
# Check the systemd units statically: install the binary where the units
# name it, then `systemd-analyze verify` them (syntax, directives, that
# ExecStart= exists, that the units they name resolve).
#
# systemd is not PID 1 here, so nothing is started: ordering (Before=/After=,
# Wants=/Requires=) is checked statically, not by booting.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${GATEHOUSE_BIN:-target/debug/gatehouse}"
if [ ! -x "$bin" ]; then
    echo "== cargo build -p gatehouse"
    cargo build -p gatehouse
fi
if ! command -v systemd-analyze >/dev/null; then
    echo "== apt-get install systemd (for systemd-analyze)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi

# The units name /usr/bin/gatehouse (where the Debian package puts it). If
# no package owns that path, put the built binary there for the check and
# take it away again afterwards; an installed package's binary is used as is.
if dpkg -S /usr/bin/gatehouse >/dev/null 2>&1; then
    echo "== /usr/bin/gatehouse belongs to the installed package; verifying against it"
else
    [ -e /usr/bin/gatehouse ] && { echo "verify.sh: /usr/bin/gatehouse exists and no package owns it; move it away" >&2; exit 1; }
    echo "== install $bin -> /usr/bin/gatehouse (the path the units name; removed at exit)"
    trap 'rm -f /usr/bin/gatehouse' EXIT
    install -m755 "$bin" /usr/bin/gatehouse
fi
/usr/bin/gatehouse firewall print >/dev/null

echo "== systemd-analyze verify packaging/*.service"
echo "   (systemd is not PID 1 here: ordering is checked statically, nothing is started)"
# --man=no: the pages Documentation= names are checked where they are
# installed (packaging/deb-test.sh); from the source tree they are not.
out="$(systemd-analyze verify --man=no packaging/*.service 2>&1)" || { echo "$out"; exit 1; }
# verify exits 0 on some warnings; treat any line about our units as a failure.
if printf '%s\n' "$out" | grep -E 'gatehouse(-firewall)?\.service' >/dev/null; then
    echo "$out"
    exit 1
fi
[ -n "$out" ] && printf 'systemd-analyze (not about our units):\n%s\n' "$out"
echo "ok: packaging/*.service verified"

#!/usr/bin/env bash
# The Debian package, end to end (CI stage; root):
#  1. build it twice from one commit (SOURCE_DATE_EPOCH, the gatehouse crate
#     rebuilt in between) and check both .debs hold the same files, modes,
#     times and bytes;
#  2. lintian: no error, no warning (each override in the package says why);
#     the copyright file parses as DEP-5 and names every crate linked in;
#  3. dpkg -i in a clean state, inside a network namespace of its own (the
#     maintainer scripts run nft); every file and mode landed; the units are
#     enabled but not started while the policy is the shipped default;
#     `gatehouse check --strict` passes on it; `systemd-analyze verify` on the
#     installed units;
#  4. an upgrade with an edited policy restarts the units; systemd is not PID 1
#     here, so deb-systemd-invoke cannot reach it, and the scripts must not
#     fail for that; what the restart does to a running gate is then done by
#     hand with the installed units' ExecStart= lines (packaging/deb-restart.sh:
#     tokens fetched again, the audit chain continued);
#  5. remove stops the units and deletes the nftables table; purge deletes
#     /var/lib/gatehouse and keeps /var/log/gatehouse.
# The machine is left as it was found (package purged, namespace deleted,
# the log directory and system user removed if this test created them).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

fail() { echo "deb-test: FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
# Each step's wall time, printed when the next one starts (and at the end):
# the release build dominates, so a slow run says which step was slow.
step_name="" step_start=$SECONDS
step() {
    [ -z "$step_name" ] || echo "time: $step_name: $((SECONDS - step_start)) s"
    step_name="$1" step_start=$SECONDS
    [ -z "$1" ] || echo "== $1"
}

[ "$(id -u)" -eq 0 ] || fail "needs root (dpkg -i, a network namespace)"
need=()
for p in lintian man-db groff-base systemd nftables iproute2 curl python3-debian; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
    step "apt-get install ${need[*]}"
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi

# A clean state: no gatehouse package, no leftovers that would change what
# the maintainer scripts do.
if dpkg-query -W -f='${Status}' gatehouse 2>/dev/null | grep -q "ok installed"; then
    fail "the gatehouse package is installed here; this test needs a machine without it"
fi
for path in /usr/bin/gatehouse /etc/gatehouse /var/lib/gatehouse /var/lib/gatehouse-keys; do
    [ ! -e "$path" ] || fail "$path exists; this test needs a machine without it"
done
had_log_dir=no; [ -e /var/log/gatehouse ] && had_log_dir=yes
had_user=no; getent passwd gatehouse >/dev/null && had_user=yes

ns="${E2E_NS_PREFIX:-gh}-deb"
tmp="$(mktemp -d)"
cleanup() {
    set +e
    if dpkg-query -W -f='${Status}' gatehouse 2>/dev/null | grep -q "installed"; then
        ip netns exec "$ns" dpkg --purge gatehouse >/dev/null 2>&1 || dpkg --purge gatehouse >/dev/null 2>&1
    fi
    ip netns del "$ns" 2>/dev/null
    rm -f /var/log/gatehouse/deb-test.marker
    [ "$had_log_dir" = no ] && rm -rf /var/log/gatehouse
    [ "$had_user" = no ] && getent passwd gatehouse >/dev/null && userdel gatehouse 2>/dev/null
    [ "$had_user" = no ] && getent group gatehouse >/dev/null && groupdel gatehouse 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# ---------------------------------------------------------------- 1. build
SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || echo 1700000000)"
export SOURCE_DATE_EPOCH
if [ -n "${DEB_TEST_REUSE:-}" ]; then
    # For working on the later steps: one .deb already built, no second
    # build. CI never sets this; the reproducibility check then proves nothing.
    step "build: SKIPPED, reusing $DEB_TEST_REUSE (DEB_TEST_REUSE; not a CI run)"
    cp "$DEB_TEST_REUSE" "$tmp/first.deb"
    cp "$DEB_TEST_REUSE" "$tmp/second.deb"
else
    step "build 1 (SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
    deb="$(bash packaging/build-deb.sh)"
    cp "$deb" "$tmp/first.deb"
    step "build 2 (the gatehouse crate rebuilt from scratch)"
    cargo clean --release -p gatehouse >/dev/null 2>&1
    deb="$(bash packaging/build-deb.sh)"
    cp "$deb" "$tmp/second.deb"
fi
for n in first second; do
    mkdir -p "$tmp/$n/data" "$tmp/$n/control"
    dpkg-deb -x "$tmp/$n.deb" "$tmp/$n/data"
    dpkg-deb -e "$tmp/$n.deb" "$tmp/$n/control"
    dpkg-deb -c "$tmp/$n.deb" >"$tmp/$n.list"
done
diff -u "$tmp/first.list" "$tmp/second.list" || fail "the two builds list different files, modes or times"
diff -r "$tmp/first/data" "$tmp/second/data" || fail "the two builds' files differ"
diff -r "$tmp/first/control" "$tmp/second/control" || fail "the two builds' control files differ"
ok "two builds: same files, modes, times and bytes ($(wc -l <"$tmp/first.list") entries)"
if cmp -s "$tmp/first.deb" "$tmp/second.deb"; then
    ok "the two .deb files are byte-identical ($(sha256sum "$tmp/first.deb" | cut -c1-16))"
else
    echo "note: the .deb files differ byte-wise, their contents do not"
fi
deb="$tmp/first.deb"

# ---------------------------------------------------------------- 2. lintian
step "lintian"
# (--show-overrides would count overridden tags as failures: list them apart)
lintian --show-overrides "$deb" || true
lintian --fail-on error,warning --info "$deb" || fail "lintian reports errors or warnings (above)"
ok "lintian: no error, no warning"
# The copyright file: machine-readable (python3-debian's strict DEP-5
# parser), and a paragraph for every crate `cargo tree` says is linked in.
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/doc/gatehouse/copyright >"$tmp/copyright"
features="${GATEHOUSE_DEB_FEATURES-ebpf}" # as packaging/build-deb.sh builds
cargo tree -p gatehouse ${features:+--features "$features"} \
    -e normal,no-proc-macro --prefix none --format '{p}' --offline --locked |
    sed -n 's/^\([^ ]*\) v\([^ ]*\)\( (\*)\)\{0,1\}$/\1-\2/p' | sort -u >"$tmp/linked"
[ "$(wc -l <"$tmp/linked")" -ge 50 ] || fail "cargo tree listed only $(wc -l <"$tmp/linked") crates"
/usr/bin/python3 - "$tmp/copyright" "$tmp/linked" <<'PY' || fail "the copyright file (above)"
import sys
from debian.copyright import Copyright
c = Copyright(open(sys.argv[1], encoding="utf-8"), strict=True)
named = {g[len("vendor/"):-2] for p in c.all_files_paragraphs() for g in p.files if g.startswith("vendor/") and g.endswith("/*")}
missing = [l.strip() for l in open(sys.argv[2]) if l.strip() and l.strip() not in named]
assert not missing, f"crates linked in but not in the copyright file: {missing}"
defined = {p.license.synopsis for p in c.all_license_paragraphs()} | {"Apache-2.0"}
for p in c.all_files_paragraphs():
    for word in p.license.synopsis.replace(",", " ").split(" or "):
        for name in word.split(" and "):
            assert name.strip() in defined, f"{p.files}: licence `{name.strip()}` has no License paragraph"
print(f"{len(named)} crates named, {len(defined)} licences")
PY
ok "copyright: DEP-5, every linked crate named ($(wc -l <"$tmp/linked") from cargo tree)"

# ------------------------------------------------------ 3. what the .deb holds
field() { dpkg-deb -f "$deb" "$1"; }
field Depends | grep -q 'nftables' || fail "Depends lacks nftables: $(field Depends)"
grep -qx /etc/gatehouse/policy.toml "$tmp/first/control/conffiles" ||
    fail "/etc/gatehouse/policy.toml is not a conffile"
# (mode, path) of every file that must be there
expected=(
    "-rwxr-xr-x ./usr/bin/gatehouse"
    "-rw-r--r-- ./lib/systemd/system/gatehouse.service"
    "-rw-r--r-- ./lib/systemd/system/gatehouse-firewall.service"
    "-rw-r--r-- ./usr/lib/sysusers.d/gatehouse.conf"
    "-rw-r--r-- ./usr/lib/tmpfiles.d/gatehouse.conf"
    "-rw-r--r-- ./etc/gatehouse/policy.toml"
    "-rw-r--r-- ./usr/share/gatehouse/default-policy.toml"
    "-rw-r--r-- ./usr/share/man/man1/gatehouse.1.gz"
    "-rw-r--r-- ./usr/share/man/man1/gatehouse-run.1.gz"
    "-rw-r--r-- ./usr/share/man/man1/gatehouse-firewall-remove.1.gz"
    "-rw-r--r-- ./usr/share/man/man5/gatehouse-policy.5.gz"
    "-rw-r--r-- ./usr/share/bash-completion/completions/gatehouse"
    "-rw-r--r-- ./usr/share/zsh/vendor-completions/_gatehouse"
    "-rw-r--r-- ./usr/share/fish/vendor_completions.d/gatehouse.fish"
    "-rw-r--r-- ./usr/share/doc/gatehouse/README.md"
    "-rw-r--r-- ./usr/share/doc/gatehouse/policy.md"
    "-rw-r--r-- ./usr/share/doc/gatehouse/jit.md"
    "-rw-r--r-- ./usr/share/doc/gatehouse/examples/policy.toml"
    "-rw-r--r-- ./usr/share/doc/gatehouse/copyright"
    "-rw-r--r-- ./usr/share/doc/gatehouse/changelog.Debian.gz"
)
for e in "${expected[@]}"; do
    mode="${e%% *}" path="${e#* }"
    awk -v m="$mode" -v p="$path" '$1 == m && ($2 == "root/root" || $2 == "0/0") && $6 == p { f = 1 } END { exit !f }' \
        "$tmp/first.list" || fail "the package lacks $path with mode $mode, owner root"
done
pages="$(grep -c '/usr/share/man/man1/gatehouse.*\.1\.gz$' "$tmp/first.list")"
[ "$pages" -ge 10 ] || fail "only $pages section-1 pages"
ok "the package holds every expected file ($pages section-1 man pages)"

# ----------------------------------------------------------------- 4. install
ip netns add "$ns"
ip -n "$ns" link set lo up
# Record what the maintainer scripts ask of systemd; the real
# deb-systemd-invoke still runs (and fails: systemd is not PID 1 here).
mkdir -p "$tmp/shim"
cat >"$tmp/shim/deb-systemd-invoke" <<EOF
#!/bin/sh
echo "\$*" >>"$tmp/invoked"
exec /usr/bin/deb-systemd-invoke "\$@"
EOF
chmod 755 "$tmp/shim/deb-systemd-invoke"
in_ns() { ip netns exec "$ns" env PATH="$tmp/shim:$PATH" "$@"; }

step "dpkg -i (first install, the shipped default policy)"
: >"$tmp/invoked"
in_ns dpkg -i "$deb" >"$tmp/install.out" 2>&1 || { cat "$tmp/install.out"; fail "dpkg -i failed"; }
cat "$tmp/install.out"
grep -q "enabled but not started" "$tmp/install.out" || fail "postinst did not say why it did not start"
if grep -Eq '^(start|restart)' "$tmp/invoked"; then
    fail "postinst started units under the default policy: $(cat "$tmp/invoked")"
fi
for link in /etc/systemd/system/multi-user.target.wants/gatehouse.service \
    /etc/systemd/system/sysinit.target.wants/gatehouse-firewall.service; do
    [ -L "$link" ] || fail "not enabled: $link"
done
ok "installed; both units enabled, neither started (the policy is the default)"

# Every file of the package landed with its mode, owner and bytes.
while read -r mode owner _ _ _ path rest; do
    p="${path#.}"
    [ -n "$p" ] && [ "$p" != / ] || continue
    case "$mode" in
    d*) [ -d "$p" ] || fail "missing directory $p"; continue ;;
    l*) [ -L "$p" ] || fail "missing link $p"; continue ;;
    esac
    got="$(stat -c '%A %u/%g' "$p" 2>/dev/null)" || fail "missing $p"
    [ "$got" = "$mode ${owner/root\/root/0/0}" ] || fail "$p is $got, the package says $mode $owner"
done <"$tmp/first.list"
[ -z "$(dpkg --verify gatehouse)" ] || fail "dpkg --verify: $(dpkg --verify gatehouse)"
getent passwd gatehouse >/dev/null || fail "no system user gatehouse (sysusers)"
for e in "drwxr-x--- gatehouse/gatehouse /var/log/gatehouse" "drwx------ gatehouse/gatehouse /var/lib/gatehouse" "drwx------ root/root /var/lib/gatehouse-keys"; do
    want="${e% *}" path="${e##* }"
    got="$(stat -c '%A %U/%G' "$path" 2>/dev/null)" || fail "no $path (tmpfiles)"
    [ "$got" = "$want" ] || fail "$path is $got, want $want"
done
ok "every file, mode and owner as packaged (dpkg --verify clean); user and directories made"

/usr/bin/gatehouse check --strict --policy /etc/gatehouse/policy.toml || fail "the shipped policy fails check --strict"
man -w gatehouse-policy >/dev/null || fail "man cannot find gatehouse-policy(5)"
man -w gatehouse-run >/dev/null || fail "man cannot find gatehouse-run(1)"
bash -c 'source /usr/share/bash-completion/completions/gatehouse && complete -p gatehouse' >/dev/null ||
    fail "the bash completion does not load"
ok "gatehouse check --strict passes on the shipped default; man pages and completion found"

step "systemd-analyze verify (installed units; systemd is not PID 1, nothing starts)"
out="$(systemd-analyze verify /lib/systemd/system/gatehouse.service /lib/systemd/system/gatehouse-firewall.service 2>&1)" ||
    { echo "$out"; fail "systemd-analyze verify"; }
if printf '%s\n' "$out" | grep -E 'gatehouse(-firewall)?\.service' >/dev/null; then
    echo "$out"
    fail "systemd-analyze verify complains about our units"
fi
ok "systemd-analyze verify: the installed units are clean"

# ----------------------------------------------------------------- 5. upgrade
step "dpkg -i again with an edited policy (an upgrade: restart)"
cp examples/policy.toml /etc/gatehouse/policy.toml
: >"$tmp/invoked"
in_ns dpkg -i --force-confold "$deb" >"$tmp/upgrade.out" 2>&1 ||
    { cat "$tmp/upgrade.out"; fail "the upgrade failed (systemd unreachable must not fail it)"; }
cat "$tmp/upgrade.out"
grep -qx "restart gatehouse-firewall.service gatehouse.service" "$tmp/invoked" ||
    fail "the upgrade did not restart the units: $(cat "$tmp/invoked")"
cmp -s examples/policy.toml /etc/gatehouse/policy.toml || fail "the upgrade overwrote the edited policy"
ok "upgrade: restart asked of systemd, its absence tolerated, the edited policy kept"

step "the restart by hand: the installed units' ExecStart=, stop, start (packaging/deb-restart.sh)"
bash packaging/deb-restart.sh "$ns" "$tmp" || fail "the gate across a restart (above)"

# --------------------------------------------------------- 6. remove, purge
step "dpkg -r (remove: stop, delete the firewall table)"
in_ns /usr/bin/gatehouse firewall apply >/dev/null
in_ns nft list table inet gatehouse >/dev/null || fail "no table to remove"
# Stand-ins for the audit log (evidence) and the JIT database (state).
marker=/var/log/gatehouse/deb-test.marker
runuser -u gatehouse -- sh -c "echo evidence >$marker; echo state >/var/lib/gatehouse/jit.db"
: >"$tmp/invoked"
in_ns dpkg -r gatehouse
grep -qx "stop gatehouse.service gatehouse-firewall.service" "$tmp/invoked" ||
    fail "remove did not stop the units: $(cat "$tmp/invoked")"
if in_ns nft list table inet gatehouse >/dev/null 2>&1; then
    fail "remove left the nftables table"
fi
[ ! -e /usr/bin/gatehouse ] || fail "remove left /usr/bin/gatehouse"
[ -f /etc/gatehouse/policy.toml ] || fail "remove deleted the conffile (only purge may)"
ok "remove: units stopped, table deleted, conffile kept"

step "dpkg --purge"
in_ns dpkg --purge gatehouse
[ ! -e /var/lib/gatehouse ] || fail "purge left /var/lib/gatehouse"
[ ! -e /var/lib/gatehouse-keys ] || fail "purge left /var/lib/gatehouse-keys"
[ -f "$marker" ] || fail "purge deleted what was in /var/log/gatehouse"
[ ! -e /etc/gatehouse ] || fail "purge left /etc/gatehouse"
for link in /etc/systemd/system/multi-user.target.wants/gatehouse.service \
    /etc/systemd/system/sysinit.target.wants/gatehouse-firewall.service; do
    [ ! -e "$link" ] && [ ! -L "$link" ] || fail "purge left $link"
done
if dpkg-query -W -f='${Status}' gatehouse 2>/dev/null | grep -q "installed"; then
    fail "still installed after purge"
fi
left="$(dpkg-query -W -f='${Status}' gatehouse 2>/dev/null || true)"
ok "purge: state gone, audit log kept, nothing else left ($left)"
step ""
echo "deb-test: all checks passed in $SECONDS s"

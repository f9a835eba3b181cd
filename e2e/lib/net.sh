# shellcheck shell=bash
# Topology of one scenario: three network namespaces, all made here and all
# removed by `net_down` (also from the EXIT trap).
#
#   gh-plat-ID  "the platform"   p0: 169.254.169.254/32, 169.254.10.1/30,
#                                    168.63.129.16/32 (a stand-in WireServer),
#                                    fd00:ec2::254/128, fd00:e2e::1/64
#      │ veth
#   gh-vm-ID    "the VM"         v0: 169.254.10.2/30  (route to .169.254 via p0),
#                                    fd00:e2e::2/64 (route to fd00:ec2::254 via p0)
#      │ veth                    c0: 169.254.11.1/30  (forwarding on)
#   gh-ctr-ID   "a container"    c1: 169.254.11.2/30  (default route via the VM)
#
# Only link-local addresses (and the WireServer's), only inside these namespaces: nothing here ever
# touches the host's own network namespace (the veths are created directly
# inside the namespaces and never appear in the host's).

# Namespaces made by this run, for the final clean-up.
NET_ALL=()

# E2E_NS_PREFIX keeps two runs on one machine (say, two worktrees) apart.
ns_plat() { echo "${E2E_NS_PREFIX:-gh}-plat-$1"; }
ns_vm() { echo "${E2E_NS_PREFIX:-gh}-vm-$1"; }
ns_ctr() { echo "${E2E_NS_PREFIX:-gh}-ctr-$1"; }

# net_up ID: build the three namespaces of scenario ID.
net_up() {
    local id="$1" plat vm ctr
    plat="$(ns_plat "$id")"; vm="$(ns_vm "$id")"; ctr="$(ns_ctr "$id")"
    local ns
    for ns in "$plat" "$vm" "$ctr"; do
        # A namespace left by a crashed earlier run with the same id goes first.
        ip netns del "$ns" 2>/dev/null || true
        ip netns add "$ns"
        NET_ALL+=("$ns")
        ip -n "$ns" link set lo up
    done
    ip link add p0 netns "$plat" type veth peer name v0 netns "$vm"
    ip link add c0 netns "$vm" type veth peer name c1 netns "$ctr"

    ip -n "$plat" addr add 169.254.169.254/32 dev p0
    ip -n "$plat" addr add 169.254.10.1/30 dev p0
    ip -n "$plat" addr add "$WIRESERVER/32" dev p0
    # IMDS's IPv6 address too (fd00:ec2::254, AWS's), on a ULA link.
    ip -n "$plat" addr add "$IMDS6/128" dev p0 nodad
    ip -n "$plat" addr add fd00:e2e::1/64 dev p0 nodad
    ip -n "$plat" link set p0 up
    ip -n "$plat" route add 169.254.11.0/30 via 169.254.10.2 dev p0

    ip -n "$vm" addr add 169.254.10.2/30 dev v0
    ip -n "$vm" addr add 169.254.11.1/30 dev c0
    ip -n "$vm" link set v0 up
    ip -n "$vm" link set c0 up
    ip -n "$vm" route add 169.254.169.254/32 via 169.254.10.1 dev v0
    ip -n "$vm" route add "$WIRESERVER/32" via 169.254.10.1 dev v0
    ip -n "$vm" addr add fd00:e2e::2/64 dev v0 nodad
    ip -n "$vm" route add "$IMDS6/128" via fd00:e2e::1 dev v0
    ip netns exec "$vm" sysctl -qw net.ipv4.ip_forward=1

    ip -n "$ctr" addr add 169.254.11.2/30 dev c1
    ip -n "$ctr" link set c1 up
    ip -n "$ctr" route add default via 169.254.11.1 dev c1
}

# net_down ID: end every process left in the scenario's namespaces (all of
# them started by this harness) and delete the namespaces with their veths.
net_down() {
    local id="$1" ns
    for ns in "$(ns_ctr "$id")" "$(ns_vm "$id")" "$(ns_plat "$id")"; do
        ns_kill_all "$ns"
        ip netns del "$ns" 2>/dev/null || true
        # A namespace's own /etc files (scenario gcp's hosts) go with it.
        rm -rf "/etc/netns/$ns"
    done
}

# ns_kill_all NS: SIGKILL the processes inside NS, by pid.
ns_kill_all() {
    local ns="$1" pid
    [[ -e "/run/netns/$ns" ]] || return 0
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
        kill -KILL "$pid" 2>/dev/null || true
    done
}

net_down_all() {
    local ns
    for ns in "${NET_ALL[@]}"; do
        ns_kill_all "$ns"
        ip netns del "$ns" 2>/dev/null || true
    done
}

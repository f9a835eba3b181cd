# shellcheck shell=bash
# Applying gatehouse's interception inside the VM namespace, the product's
# way: `gatehouse firewall apply`, then a gate given the same table options
# (its watcher keeps the table as it renders it).

GATE_PORT=16925
UPSTREAM_MARK=0x6761

# firewall_apply NS: intercept IMDS traffic inside NS (one nft transaction).
# Containers' IMDS connections are sent to the gate (which must deny them as
# unattributable) rather than refused at the border: the stronger test of
# "never IMDS directly". The gate listens on loopback, so the containers'
# interface (c0) needs route_localnet.
firewall_apply() {
    local ns="$1"
    ip netns exec "$ns" sysctl -qw net.ipv4.conf.c0.route_localnet=1
    # shellcheck disable=SC2046 # flags are words
    ip netns exec "$ns" "$GATEHOUSE" firewall apply $(firewall_flags) --policy "$WORK/policy.toml" >&2
}

# firewall_flags: the table's options, the same for `firewall apply|verify`
# and `run` (a gate given other options would "repair" the table to them).
firewall_flags() {
    echo "--containers redirect --listen 127.0.0.1:$GATE_PORT"
}

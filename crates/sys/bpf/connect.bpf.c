// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only
//
// gatehouse's connect-time caller records (the optional eBPF fast path of
// caller identification; see crates/sys/src/ebpf.rs and docs/architecture.md).
//
// Two programs, both attached to the root of the cgroup v2 hierarchy, so
// they see every process on the machine:
//
// - cgroup/sock_create notes, for each IPv4 TCP socket, which process made it
//   and when (`created`, LRU, by socket cookie).
// - cgroup/connect4 runs in the connecting task, before the kernel picks a
//   source port. For a destination listed in `targets` (the metadata address,
//   the gate's own listener) it records who is connecting: tgid, uid/gid,
//   cgroup, network namespace, CLOCK_BOOTTIME. Keyed by socket cookie in
//   `pending`. It never refuses a connection (returns 1 always).
// - sockops, on BPF_SOCK_OPS_TCP_CONNECT_CB (the source port is bound by
//   now, the SYN not yet sent), moves that record to `connects`, keyed by
//   what the gate sees on accept: (netns, source address and port,
//   original destination address and port). On the socket's TCP_CLOSE the
//   entry is removed again, but only if it is still this socket's (cookie).
//
// - raw tracepoints on sched_process_fork, sched_prepare_exec (6.10 and
//   later: before the new image is visible in /proc), sched_process_exec and
//   sched_process_exit keep `changed`: for each process, when it last forked
//   or began an exec (removed when it exits). A record is made only for a
//   socket its connector created, and carries the creation time: a connector
//   that forked or exec'd since may no longer be the only holder, or the same
//   image, so the gate does not take its record. A full `changed` sets `overflow`,
//   after which the gate takes no record at all.
//
// The gate takes a record only for the very socket the kernel has under the
// 4-tuple (sock_diag's cookie must be the record's) and the same uid; a
// miss, or anything it cannot confirm, sends it to the sock_diag path. The
// connection maps are LRU: a flood evicts old entries (a miss).
//
// Built only with the `ebpf` feature: clang -O2 -g -target bpf.

#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)BPF_FUNC_map_update_elem;
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_delete_elem;
static __u64 (*bpf_get_socket_cookie)(void *ctx) = (void *)BPF_FUNC_get_socket_cookie;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)BPF_FUNC_get_current_pid_tgid;
static __u64 (*bpf_get_current_uid_gid)(void) = (void *)BPF_FUNC_get_current_uid_gid;
static __u64 (*bpf_get_current_cgroup_id)(void) = (void *)BPF_FUNC_get_current_cgroup_id;
static __u64 (*bpf_get_netns_cookie)(void *ctx) = (void *)BPF_FUNC_get_netns_cookie;
static __u64 (*bpf_ktime_get_boot_ns)(void) = (void *)BPF_FUNC_ktime_get_boot_ns;
static long (*bpf_sock_ops_cb_flags_set)(struct bpf_sock_ops *skops, int flags) = (void *)BPF_FUNC_sock_ops_cb_flags_set;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ntohs16(x) ((__u16)__builtin_bswap16((__u16)(x)))
#define ntohl32(x) ((__u32)__builtin_bswap32((__u32)(x)))
#else
#define ntohs16(x) ((__u16)(x))
#define ntohl32(x) ((__u32)(x))
#endif

#define AF_INET 2

// A destination worth recording. Address in network order, port in host order.
struct target {
	__u32 addr;
	__u16 port;
	__u16 pad;
};

// Who connected (the map value). Addresses in network order, ports in host order.
struct record {
	__u64 pid_tgid;
	__u64 uid_gid;
	__u64 cgroup_id;
	__u64 netns;
	__u64 boot_ns;
	__u64 cookie;
	__u32 dst_addr;
	__u32 dst_port;
};

// What the gate sees: the client's source and its original destination.
struct conn_key {
	__u64 netns;
	__u32 src_addr;
	__u32 dst_addr;
	__u16 src_port;
	__u16 dst_port;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct target);
	__type(value, __u8);
} targets SEC(".maps");

// Who made a socket, and when.
struct creation {
	__u64 tgid;
	__u64 boot_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct creation);
} created SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct record);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct conn_key);
	__type(value, struct record);
} connects SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct conn_key);
} owned SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u64);
} changed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} overflow SEC(".maps");

SEC("cgroup/sock_create")
int gatehouse_sock_create(struct bpf_sock *sk)
{
	struct creation c = {};
	__u64 cookie;

	if (sk->family != AF_INET || sk->protocol != 6 /* IPPROTO_TCP */)
		return 1;
	cookie = bpf_get_socket_cookie(sk);
	c.tgid = bpf_get_current_pid_tgid() >> 32;
	c.boot_ns = bpf_ktime_get_boot_ns();
	bpf_map_update_elem(&created, &cookie, &c, BPF_ANY);
	return 1;
}

SEC("cgroup/connect4")
int gatehouse_connect4(struct bpf_sock_addr *ctx)
{
	struct target t = {};
	struct record r = {};
	struct creation *c;
	__u64 cookie;

	if (ctx->protocol != 6 /* IPPROTO_TCP */)
		return 1;
	cookie = bpf_get_socket_cookie(ctx);
	t.addr = ctx->user_ip4;
	t.port = ntohs16(ctx->user_port);
	if (!bpf_map_lookup_elem(&targets, &t)) {
		// A record of an earlier connect() of this socket that never reached
		// the SYN (TCP Fast Open without data, a failed bind) must not be
		// taken for this one.
		bpf_map_delete_elem(&pending, &cookie);
		return 1;
	}
	r.pid_tgid = bpf_get_current_pid_tgid();
	// Only a socket this process made itself, and since then is what counts:
	// a fork between socket() and connect() shares it too.
	c = bpf_map_lookup_elem(&created, &cookie);
	if (!c || c->tgid != (r.pid_tgid >> 32)) {
		bpf_map_delete_elem(&pending, &cookie);
		return 1;
	}
	r.boot_ns = c->boot_ns;
	r.uid_gid = bpf_get_current_uid_gid();
	r.cgroup_id = bpf_get_current_cgroup_id();
	r.netns = bpf_get_netns_cookie(ctx);
	r.cookie = cookie;
	r.dst_addr = t.addr;
	r.dst_port = t.port;
	bpf_map_update_elem(&pending, &cookie, &r, BPF_ANY);
	return 1;
}

SEC("sockops")
int gatehouse_sockops(struct bpf_sock_ops *skops)
{
	__u64 cookie;

	if (skops->op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
		struct record *r;
		struct record copy;
		struct conn_key key = {};

		cookie = bpf_get_socket_cookie(skops);
		r = bpf_map_lookup_elem(&pending, &cookie);
		if (!r)
			return 1;
		copy = *r;
		bpf_map_delete_elem(&pending, &cookie);
		if (skops->family != AF_INET)
			return 1;
		// The record must be of this very connection: the socket's peer is
		// the destination connect4 saw. (remote_port is the network-order
		// port in a 32-bit field, shifted up 16 on little-endian: ntohl gives
		// the port either way.)
		if (skops->remote_ip4 != copy.dst_addr || ntohl32(skops->remote_port) != copy.dst_port)
			return 1;
		key.netns = copy.netns;
		key.src_addr = skops->local_ip4;
		key.src_port = (__u16)skops->local_port;
		key.dst_addr = copy.dst_addr;
		key.dst_port = (__u16)copy.dst_port;
		bpf_map_update_elem(&connects, &key, &copy, BPF_ANY);
		bpf_map_update_elem(&owned, &cookie, &key, BPF_ANY);
		// Added to the flags other programs set, not in place of them.
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
		return 1;
	}
	if (skops->op == BPF_SOCK_OPS_STATE_CB && skops->args[1] == BPF_TCP_CLOSE) {
		struct conn_key *k;
		struct conn_key key;
		struct record *r;

		cookie = bpf_get_socket_cookie(skops);
		k = bpf_map_lookup_elem(&owned, &cookie);
		if (!k)
			return 1;
		key = *k;
		r = bpf_map_lookup_elem(&connects, &key);
		if (r && r->cookie == cookie)
			bpf_map_delete_elem(&connects, &key);
		bpf_map_delete_elem(&owned, &cookie);
	}
	return 1;
}

static inline void mark_changed(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 now = bpf_ktime_get_boot_ns();
	__u32 zero = 0;
	__u64 *full;

	if (bpf_map_update_elem(&changed, &tgid, &now, BPF_ANY) != 0) {
		full = bpf_map_lookup_elem(&overflow, &zero);
		if (full)
			*full = now;
	}
}

// The parent (current) forked: a child may share its sockets.
SEC("raw_tracepoint/sched_process_fork")
int gatehouse_fork(void *ctx)
{
	mark_changed();
	return 0;
}

// The process (current) is about to run a new image: marked before the image
// shows in /proc (exe, status, maps). Kernel 6.10 and later.
SEC("raw_tracepoint/sched_prepare_exec")
int gatehouse_prepare_exec(void *ctx)
{
	mark_changed();
	return 0;
}

// The process (current) runs a new image (also marks an exec by a thread
// whose connect landed after the prepare mark: de_thread waits for it).
SEC("raw_tracepoint/sched_process_exec")
int gatehouse_exec(void *ctx)
{
	mark_changed();
	return 0;
}

// The process is gone when its leader exits (threads exit on their own).
SEC("raw_tracepoint/sched_process_exit")
int gatehouse_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	if ((__u32)id == tgid)
		bpf_map_delete_elem(&changed, &tgid);
	return 0;
}

// Dual-licensed with the rest of gatehouse (Apache-2.0); the kernel is given the GPL.
char _license[] SEC("license") = "GPL";

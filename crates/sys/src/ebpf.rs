//! Connect-time caller records: the optional eBPF fast path of caller identification.
//!
//! `bpf/connect.bpf.c` (compiled with clang under the `ebpf` cargo feature, loaded with
//! aya) records, for each TCP connection to a listed destination, the connecting task's
//! tgid, uid/gid, cgroup, network namespace and boot time, keyed by what the gate sees on
//! accept: the client's source address and port and its original destination. The gate
//! looks that up (one `bpf()` syscall) instead of asking sock_diag and searching `/proc`
//! for the socket's holder.
//!
//! What a record proves, and what the identifier still checks before it takes one:
//! - the entry is written before the SYN leaves (and only if the socket's peer is the
//!   destination connect4 saw), removed when that socket closes, and only an entry of the
//!   gate's own network namespace is read (another namespace's addresses may collide);
//! - it must name the very socket sock_diag has under the 4-tuple (the socket cookie) and
//!   the same uid, so a stale or misplaced entry is never taken;
//! - the recorded pid is the process that called `connect()`. Process-event programs note
//!   every fork and exec: a connector that has done either since the connect is not taken
//!   (a child may hold the socket, or it runs another image). Its `/proc` directory is
//!   opened, and it is taken only if it started no later than the connect (a reused pid),
//!   is not a zombie, and still holds the socket in its fd table (checked before and
//!   after the reads): a connector that passed the socket on over `SCM_RIGHTS` and closed
//!   its copy is not the caller, and the holder search finds who is. Anything else falls
//!   back to the holder search, never to a guess. Not seen: a socket passed on while the
//!   connector keeps its copy (no program here sees an fd received; tracing programs
//!   cannot be loaded on every kernel that runs the rest). Then both lookups see one
//!   holder, the eBPF path the connector, the search whichever it reaches first;
//!   `--all-holders` (every process searched, records not used) sees them all.
//!
//! IPv4 only (IMDS has no IPv6 address); other families take the sock_diag path.

// The map layouts below are shared with `imp` (feature `ebpf`) and tested either way.
#![cfg_attr(
    not(feature = "ebpf"),
    allow(
        dead_code,
        reason = "the layouts are used by `imp`, built only with the feature"
    )
)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Why the eBPF path could not be set up. The gate then identifies callers with sock_diag.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    #[error("gatehouse was built without the `ebpf` feature")]
    NotBuilt,
    #[error(
        "no cgroup v2 hierarchy is mounted in this mount namespace (needed to attach the \
         connect-time programs); `ip netns exec` hides it by remounting /sys: enter only the \
         network namespace instead (`nsenter --net=/run/netns/NAME`)"
    )]
    NoCgroup2,
    #[error("{what}: {why}")]
    Setup { what: &'static str, why: String },
    #[error("self-test failed: {0}")]
    SelfTest(String),
}

/// One connect-time record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectRecord {
    /// Thread-group id (the process) of the task that connected, in the initial pid namespace.
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
    pub cgroup_id: u64,
    /// `CLOCK_BOOTTIME` when the connecting process made the socket, nanoseconds (a
    /// record is made only for a socket its connector made).
    pub boot_ns: u64,
    /// The client socket's cookie (never reused while the system runs).
    pub cookie: u64,
}

const KEY_LEN: usize = 24;
const RECORD_LEN: usize = 56;
const TARGET_LEN: usize = 8;

/// The map key the programs write: netns cookie, then source and destination address
/// (network order), source and destination port (host order), padding.
fn key(netns: u64, src: SocketAddrV4Parts, dst: SocketAddrV4Parts) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    let parts: [&[u8]; 5] = [
        &netns.to_ne_bytes(),
        &src.0.octets(),
        &dst.0.octets(),
        &src.1.to_ne_bytes(),
        &dst.1.to_ne_bytes(),
    ];
    let mut at = 0;
    for p in parts {
        if let Some(slot) = k.get_mut(at..at + p.len()) {
            slot.copy_from_slice(p);
        }
        at += p.len();
    }
    k
}

fn target(addr: Ipv4Addr, port: u16) -> [u8; TARGET_LEN] {
    let mut t = [0u8; TARGET_LEN];
    if let Some(slot) = t.get_mut(..4) {
        slot.copy_from_slice(&addr.octets());
    }
    if let Some(slot) = t.get_mut(4..6) {
        slot.copy_from_slice(&port.to_ne_bytes());
    }
    t
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map_or(0, u64::from_ne_bytes)
}

/// `struct record` of the C program: pid_tgid, uid_gid, cgroup_id, netns, boot_ns, cookie.
fn parse_record(v: &[u8; RECORD_LEN]) -> (ConnectRecord, u64) {
    let pid_tgid = u64_at(v, 0);
    let uid_gid = u64_at(v, 8);
    let record = ConnectRecord {
        pid: (pid_tgid >> 32) as u32,
        uid: (uid_gid & 0xffff_ffff) as u32,
        gid: (uid_gid >> 32) as u32,
        cgroup_id: u64_at(v, 16),
        boot_ns: u64_at(v, 32),
        cookie: u64_at(v, 40),
    };
    (record, u64_at(v, 24))
}

type SocketAddrV4Parts = (Ipv4Addr, u16);

fn v4(a: SocketAddr) -> Option<SocketAddrV4Parts> {
    match a.ip() {
        IpAddr::V4(ip) => Some((ip, a.port())),
        IpAddr::V6(ip) => ip.to_ipv4_mapped().map(|ip| (ip, a.port())),
    }
}

#[cfg(feature = "ebpf")]
mod imp;
#[cfg(feature = "ebpf")]
pub use imp::ConnectRecords;

/// Stand-in when built without the `ebpf` feature: it cannot be attached.
#[cfg(not(feature = "ebpf"))]
#[derive(Debug)]
pub struct ConnectRecords(std::convert::Infallible);

#[cfg(not(feature = "ebpf"))]
impl ConnectRecords {
    /// Always [`EbpfError::NotBuilt`].
    pub fn attach(_targets: &[SocketAddr]) -> Result<Self, EbpfError> {
        Err(EbpfError::NotBuilt)
    }

    pub fn lookup(&self, _src: SocketAddr, _dst: SocketAddr) -> Option<ConnectRecord> {
        match self.0 {}
    }

    pub fn add_target(&self, _addr: SocketAddr) -> Result<(), EbpfError> {
        match self.0 {}
    }

    pub fn unchanged_since(&self, _pid: u32, _since_ns: u64) -> bool {
        match self.0 {}
    }

    pub fn marked_unchanged_since(&self, _pid: u32, _since_ns: u64) -> bool {
        match self.0 {}
    }

    pub fn probe(&self) -> Result<(), EbpfError> {
        match self.0 {}
    }

    pub fn cgroup_root(&self) -> &str {
        match self.0 {}
    }
}

/// Whether this build carries the eBPF programs.
pub const BUILT: bool = cfg!(feature = "ebpf");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout_matches_the_c_struct() {
        let k = key(
            0x0102_0304_0506_0708,
            (Ipv4Addr::new(10, 0, 0, 2), 40000),
            (Ipv4Addr::new(169, 254, 169, 254), 80),
        );
        assert_eq!(&k[..8], &0x0102_0304_0506_0708u64.to_ne_bytes());
        assert_eq!(&k[8..12], &[10, 0, 0, 2]);
        assert_eq!(&k[12..16], &[169, 254, 169, 254]);
        assert_eq!(&k[16..18], &40000u16.to_ne_bytes());
        assert_eq!(&k[18..20], &80u16.to_ne_bytes());
        assert_eq!(&k[20..], &[0, 0, 0, 0]);
        assert_eq!(
            target(Ipv4Addr::new(127, 0, 0, 1), 8080)[..6],
            [127, 0, 0, 1, 0x90, 0x1f][..]
        );
    }

    #[test]
    fn record_layout_matches_the_c_struct() {
        let mut v = [0u8; RECORD_LEN];
        v[..8].copy_from_slice(&((4242u64 << 32) | 4243).to_ne_bytes());
        v[8..16].copy_from_slice(&((1001u64 << 32) | 1000).to_ne_bytes());
        v[16..24].copy_from_slice(&77u64.to_ne_bytes());
        v[24..32].copy_from_slice(&99u64.to_ne_bytes());
        v[32..40].copy_from_slice(&123_456u64.to_ne_bytes());
        v[40..48].copy_from_slice(&5u64.to_ne_bytes());
        let (r, netns) = parse_record(&v);
        assert_eq!(
            r,
            ConnectRecord {
                pid: 4242,
                uid: 1000,
                gid: 1001,
                cgroup_id: 77,
                boot_ns: 123_456,
                cookie: 5
            }
        );
        assert_eq!(netns, 99);
    }

    #[test]
    fn only_ipv4_and_mapped_addresses_have_records() {
        let mapped: SocketAddr = "[::ffff:10.0.0.2]:5".parse().unwrap();
        assert_eq!(v4(mapped), Some((Ipv4Addr::new(10, 0, 0, 2), 5)));
        assert_eq!(v4("[::1]:5".parse().unwrap()), None);
    }
}

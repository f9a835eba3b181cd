//! Caller identification: from a connection's 4-tuple to the processes holding its socket.
//!
//! The socket's uid and inode come from sock_diag; the inode is then matched against
//! `/proc/PID/fd/*` of candidate processes, cheapest candidates first (see [`Strategy`]).
//! Every fact about a process is read through its `/proc/PID` directory fd and the socket
//! is re-checked after the reads, so a process that exits (and whose PID is reused) in the
//! middle is dropped, never misread.
//!
//! Two shortcuts, both falling back to the above:
//! - a policy on uids alone needs no process: the sock_diag answer is the whole answer
//!   ([`Needs::wants_process`] false, [`Strategy::SocketOnly`]);
//! - with [`IdentifyOptions::connect_records`] (the `ebpf` feature), the process that
//!   connected was recorded at `connect()`; it is read directly, after checking it started
//!   before the connect ([`Strategy::ConnectRecord`]).

mod facts;
mod lookup;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::cache::{Bounded, RecentPids};
use crate::ebpf::{ConnectRecord, ConnectRecords};
use crate::exe::FileId;
use crate::net::sock_diag::{socket_owner, SysError};
use crate::procfs::ProcDir;

/// What the policy will look at; facts not needed are not read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Needs {
    /// Executable path, `FileId` and verification.
    pub exe: bool,
    /// SHA-256 of the executable (implies reading the exe).
    pub exe_hash: bool,
    /// cgroup path, systemd units, container id.
    pub cgroup: bool,
    /// Supplementary groups. (They come with `status`, which is always read, so this is
    /// free; it is kept so callers state what they use.)
    pub groups: bool,
    /// Find every holder of the socket, not just one (policy matches process attributes).
    pub all_holders: bool,
    /// A process behind the socket (pid, credentials, `comm`), even if none of its
    /// attributes is asked for. With this and every other field false, only the socket's
    /// uid is found: a policy on uids alone.
    pub process: bool,
}

impl Needs {
    /// Everything.
    pub fn all() -> Self {
        Self {
            exe: true,
            exe_hash: true,
            cgroup: true,
            groups: true,
            all_holders: true,
            process: true,
        }
    }

    /// One process behind the socket, with its credentials, and nothing else.
    pub fn one_process() -> Self {
        Self {
            process: true,
            ..Self::default()
        }
    }

    /// Whether any fact beyond the socket's uid is wanted.
    pub fn wants_process(&self) -> bool {
        self.process || self.exe || self.exe_hash || self.cgroup || self.groups || self.all_holders
    }
}

/// The default of [`IdentifyOptions::max_holders`].
pub const MAX_HOLDERS: usize = 64;

/// How many pids' socket fds [`Identifier`] remembers as hints.
const FD_HINTS: usize = 1024;

/// The first fd a process opens after its standard streams: where a client that opens one
/// connection (a CLI tool, a script) mostly has its socket.
const FIRST_FREE_FD: u32 = 3;

/// Tuning of [`Identifier`].
#[derive(Debug, Clone)]
pub struct IdentifyOptions {
    /// Where procfs is mounted. A pidfd is taken for each process only when this is
    /// `/proc` (pids elsewhere may belong to another pid namespace).
    pub proc_root: PathBuf,
    /// How many recently seen holder pids to try first.
    pub recent_pids: usize,
    /// How many pids below `ns_last_pid` to try second.
    pub newest_window: u32,
    /// How many executable hashes to keep (keyed by [`FileId`]).
    pub hash_cache: usize,
    /// With `needs.all_holders`, scan all of `/proc` for further holders instead of only the
    /// found holder's parent chain and descendants. Costs a full scan per request.
    pub exhaustive_holders: bool,
    /// Most holders one identification reports. More is an error (the caller
    /// is unknown), not a truncated list: a decision on some of the holders
    /// could miss the one that matters, and an unbounded list would not fit
    /// the privilege-separation broker's reply (one local user could fork
    /// a thousand children around one socket).
    pub max_holders: usize,
    /// Connect-time records (the eBPF fast path), tried before sock_diag. A miss, or a
    /// record whose process cannot be confirmed, falls back to sock_diag.
    pub connect_records: Option<Arc<ConnectRecords>>,
}

impl Default for IdentifyOptions {
    fn default() -> Self {
        Self {
            proc_root: PathBuf::from("/proc"),
            recent_pids: 64,
            newest_window: 128,
            hash_cache: 256,
            exhaustive_holders: false,
            max_holders: MAX_HOLDERS,
            connect_records: None,
        }
    }
}

/// Which step found the first holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Strategy {
    /// A pid that recently held a socket.
    Recent,
    /// One of the pids just below `ns_last_pid`.
    Newest,
    /// A process whose `/proc/PID` is owned by the socket's uid.
    SameUid,
    /// Every process.
    FullScan,
    /// No process was asked for: the socket's uid from sock_diag is the answer.
    SocketOnly,
    /// The connect-time record (eBPF) named the process that connected.
    ConnectRecord,
}

/// How the further holders were looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum HolderSearch {
    /// Not asked for (`needs.all_holders` false).
    Skipped,
    /// Parent chain and descendants of the found holder.
    Related,
    /// Every process (`IdentifyOptions::exhaustive_holders`).
    Exhaustive,
    /// The connect-time record's process is the caller; other holders are not looked for
    /// (see `ebpf.rs` for why the connector speaks for the socket).
    Connector,
}

/// How the caller was found, for the audit log and for speed work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LookupStats {
    pub strategy: Strategy,
    pub holder_search: HolderSearch,
    /// Processes whose fd table was examined.
    pub candidates: u32,
    /// Wall time of the whole identification, microseconds.
    pub micros: u64,
}

/// One process holding the client's socket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessFacts {
    pub pid: u32,
    pub ruid: u32,
    pub euid: u32,
    pub rgid: u32,
    pub egid: u32,
    pub groups: Vec<u32>,
    /// `readlink /proc/PID/exe` as the process's mount namespace names it; a
    /// ` (deleted)` suffix is kept and such a path is never verified.
    pub exe_path: Option<String>,
    /// Identity of the file actually mapped (fstat of the file opened via `/proc/PID/exe`).
    pub exe_file: Option<FileId>,
    /// `stat(exe_path)` in our mount namespace is the same (dev, ino) as `exe_file`. False
    /// for a bind mount in another mount namespace, a chroot, a deleted or replaced binary.
    pub exe_path_verified: bool,
    pub exe_sha256: Option<String>,
    pub cgroup: Option<String>,
    pub system_unit: Option<String>,
    pub user_unit: Option<String>,
    pub container_id: Option<String>,
    pub comm: Option<String>,
}

impl ProcessFacts {
    /// A process known by its ids alone: nothing about its executable,
    /// cgroup or name read yet.
    pub fn with_ids(
        pid: u32,
        ruid: u32,
        euid: u32,
        rgid: u32,
        egid: u32,
        groups: Vec<u32>,
    ) -> Self {
        ProcessFacts {
            pid,
            ruid,
            euid,
            rgid,
            egid,
            groups,
            exe_path: None,
            exe_file: None,
            exe_path_verified: false,
            exe_sha256: None,
            cgroup: None,
            system_unit: None,
            user_unit: None,
            container_id: None,
            comm: None,
        }
    }
}

/// Who is behind a client connection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallerFacts {
    /// The socket's owner per the kernel: decide on this uid. (With a connect record: the
    /// uid of the task that connected.)
    pub socket_uid: u32,
    /// 0 when a connect record answered (it knows the socket by cookie, not inode).
    pub socket_inode: u64,
    /// The found holder first, then any further holders (see [`Needs::all_holders`]).
    /// Holders whose uid differs from `socket_uid` deserve a flag in the audit.
    pub holders: Vec<ProcessFacts>,
    pub lookup: LookupStats,
}

impl CallerFacts {
    /// What a decision on uids alone needs: the socket's record (`owner`)
    /// and no process, found in `micros`.
    pub fn socket_only(owner: crate::SocketOwner, micros: u64) -> Self {
        CallerFacts {
            socket_uid: owner.uid,
            socket_inode: owner.inode,
            holders: Vec::new(),
            lookup: LookupStats {
                strategy: Strategy::SocketOnly,
                holder_search: HolderSearch::Skipped,
                candidates: 0,
                micros,
            },
        }
    }
}

/// Why a caller could not be identified.
#[derive(Debug, thiserror::Error)]
pub enum IdentifyError {
    #[error("socket lookup failed")]
    Socket(#[from] SysError),
    /// The kernel has no socket with that 4-tuple (closed, or not local).
    #[error("no local socket `{src}` -> `{dst}`")]
    NoSocket { src: SocketAddr, dst: SocketAddr },
    /// The socket exists but no process holds it (any more): the caller is unknown.
    #[error("no process holds socket inode {inode}")]
    NoProcess { inode: u64, socket_uid: u32 },
    #[error("listing processes failed")]
    Proc(#[source] std::io::Error),
    /// More processes hold the socket than [`IdentifyOptions::max_holders`].
    #[error("more than {limit} processes hold socket inode {inode}")]
    TooManyHolders { inode: u64, limit: usize },
}

/// Identifies callers; holds the caches. `Send + Sync`: share it through an `Arc`.
#[derive(Debug)]
pub struct Identifier {
    opts: IdentifyOptions,
    want_pidfd: bool,
    recent: Mutex<RecentPids>,
    hashes: Mutex<Bounded<FileId, String>>,
    /// Per pid, the fd through which it held the last socket it was found holding: tried
    /// first next time (a client that reconnects mostly gets the same fd number back). Only
    /// a hint: an fd is taken only when its link is the socket being looked up.
    fd_hints: Mutex<Bounded<u32, u32>>,
    /// Nanoseconds per `/proc/PID/stat` clock tick.
    ns_per_tick: u64,
}

impl Identifier {
    pub fn new(opts: IdentifyOptions) -> Self {
        Self {
            want_pidfd: opts.proc_root == std::path::Path::new("/proc"),
            recent: Mutex::new(RecentPids::new(opts.recent_pids)),
            hashes: Mutex::new(Bounded::new(opts.hash_cache)),
            fd_hints: Mutex::new(Bounded::new(FD_HINTS)),
            ns_per_tick: 1_000_000_000 / rustix::param::clock_ticks_per_second().max(1),
            opts,
        }
    }

    /// Who is behind the client connection `src` → `dst` (`src` = the peer seen on accept,
    /// `dst` = the original destination if redirected, else the listener's address).
    ///
    /// Without `needs.all_holders` one holder is reported. With it, the found holder's
    /// parent chain and all their descendants are checked too: that covers fork after
    /// connect and fd inheritance. An fd passed over `SCM_RIGHTS` to an unrelated process is
    /// only found with `IdentifyOptions::exhaustive_holders`.
    pub fn identify(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        needs: Needs,
    ) -> Result<CallerFacts, IdentifyError> {
        let started = Instant::now();
        let owner = socket_owner(src, dst)?.ok_or(IdentifyError::NoSocket { src, dst })?;
        let no_process = IdentifyError::NoProcess {
            inode: owner.inode,
            socket_uid: owner.uid,
        };
        if owner.inode == 0 {
            return Err(no_process);
        }
        if !needs.wants_process() {
            return Ok(CallerFacts::socket_only(owner, micros_since(started)));
        }
        // The exhaustive search is asked for to find holders no record can rule out
        // (an fd passed over SCM_RIGHTS): records are not used with it.
        let records = self
            .opts
            .connect_records
            .as_ref()
            .filter(|_| !self.opts.exhaustive_holders);
        if let Some(records) = records {
            if let Some(facts) = self.by_record(records, src, dst, owner, needs, started) {
                return Ok(facts);
            }
        }
        let mut search = lookup::Search::new(self, owner.inode, needs);
        let Some(found) = search.first_holder(owner.uid)? else {
            return Err(no_process);
        };
        let mut holders = vec![found.facts];
        // The search stops once it has found one more than may be reported.
        let more = self.opts.max_holders.saturating_sub(1);
        let holder_search = if !needs.all_holders {
            HolderSearch::Skipped
        } else if self.opts.exhaustive_holders {
            holders.extend(search.all_holders(more)?);
            HolderSearch::Exhaustive
        } else {
            holders.extend(search.related_holders(found.pid, found.ppid, more));
            HolderSearch::Related
        };
        if holders.len() > self.opts.max_holders {
            return Err(IdentifyError::TooManyHolders {
                inode: owner.inode,
                limit: self.opts.max_holders,
            });
        }
        if let Ok(mut recent) = self.recent.lock() {
            recent.forget(search.gone());
            for h in &holders {
                recent.touch(h.pid);
            }
        }
        self.remember_fd(found.pid, found.fd);
        Ok(CallerFacts {
            socket_uid: owner.uid,
            socket_inode: owner.inode,
            holders,
            lookup: LookupStats {
                strategy: found.strategy,
                holder_search,
                candidates: search.tried(),
                micros: micros_since(started),
            },
        })
    }

    /// The caller per a connect-time record, or `None` to fall back to the holder search.
    ///
    /// The record is taken only if it is of the very socket sock_diag found (same cookie,
    /// same uid), made by the process that connected, which has neither forked nor begun
    /// an exec since it made the socket (a child may hold the socket too; another image is
    /// not the one that connected), is not gone or a zombie, started no later than the
    /// socket was made, so it is not a reused pid, and still holds the socket (a sender
    /// that passed it over `SCM_RIGHTS` and closed its copy is not the caller). The
    /// fork/exec and holding checks are repeated after the reads, so a change during them
    /// is seen. Whatever fails, the holder search decides, as it would without records.
    ///
    /// `stat` counts start time in 10 ms ticks, rounded down: a process started in the
    /// same tick passes. For that to be a reused pid the connector would have to exit
    /// and the kernel hand its pid to a new process within those 10 ms, which needs the
    /// pid counter to have come round to it (32768 and more pids): not something a user
    /// can arrange in the initial pid namespace in that time.
    fn by_record(
        &self,
        records: &ConnectRecords,
        src: SocketAddr,
        dst: SocketAddr,
        owner: crate::net::sock_diag::SocketOwner,
        needs: Needs,
        started: Instant,
    ) -> Option<CallerFacts> {
        let record: ConnectRecord = records.lookup(src, dst)?;
        if record.cookie != owner.cookie || record.uid != owner.uid {
            return None;
        }
        // Repeated in full (with the overflow check) after the reads; `overflow` is never
        // cleared, so that one clean reading vouches for this one too.
        if !records.marked_unchanged_since(record.pid, record.boot_ns) {
            return None;
        }
        // No pidfd: the start-time check below is what binds the directory to the
        // connector, and reads through it fail once that process is gone.
        let dir = ProcDir::open(&self.opts.proc_root, record.pid, false).ok()?;
        if !started_by(dir.start_ticks().ok()?, self.ns_per_tick, record.boot_ns) {
            return None;
        }
        // The connector must still hold the socket: one that passed it on and closed
        // its copy is not the caller (the holder search finds who is). Confirmed again
        // after the reads, as on the search path. Which fd does not matter, only that one
        // is the socket: the likely ones are tried before the whole table is read.
        let (likely, n) = self.likely_fds(record.pid);
        let fd = dir
            .find_socket_fd_trying(owner.inode, likely.get(..n).unwrap_or_default())
            .ok()??;
        let holder = facts::read_holder(&dir, fd, owner.inode, needs, &self.hashes).ok()??;
        if !records.unchanged_since(record.pid, record.boot_ns) {
            return None;
        }
        self.remember_fd(record.pid, holder.fd);
        Some(CallerFacts {
            socket_uid: owner.uid,
            socket_inode: owner.inode,
            lookup: LookupStats {
                strategy: Strategy::ConnectRecord,
                holder_search: HolderSearch::Connector,
                candidates: 1,
                micros: micros_since(started),
            },
            holders: vec![holder.facts],
        })
    }
}

impl Identifier {
    /// The fd `pid` last held a socket through, if it was seen holding one.
    fn fd_hint(&self, pid: u32) -> Option<u32> {
        self.fd_hints.lock().ok().and_then(|h| h.get(&pid))
    }

    /// The fds of a connector to try first (`.0[..n]`): its last socket's fd, then
    /// [`FIRST_FREE_FD`].
    fn likely_fds(&self, pid: u32) -> ([u32; 2], usize) {
        match self.fd_hint(pid) {
            Some(fd) if fd != FIRST_FREE_FD => ([fd, FIRST_FREE_FD], 2),
            _ => ([FIRST_FREE_FD, 0], 1),
        }
    }

    fn remember_fd(&self, pid: u32, fd: u32) {
        if let Ok(mut hints) = self.fd_hints.lock() {
            hints.insert(pid, fd);
        }
    }
}

/// Whether a process that started `start_ticks` clock ticks after boot (as `stat` says,
/// rounded down) can be the one that connected `connect_ns` after boot.
fn started_by(start_ticks: u64, ns_per_tick: u64, connect_ns: u64) -> bool {
    start_ticks
        .checked_mul(ns_per_tick)
        .is_some_and(|start_ns| start_ns <= connect_ns)
}

fn micros_since(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::{started_by, Identifier, IdentifyOptions, Needs};

    /// An fd hint is only a hint: one naming another socket of the process (stale, or left
    /// by an earlier process with the same pid) is not taken; the socket's own fd is, and
    /// becomes the next hint.
    #[test]
    fn a_stale_fd_hint_is_not_taken() {
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let decoy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_served, _) = l.accept().unwrap();
        let me = std::process::id();
        let fd_of = |f: &dyn AsRawFd| u32::try_from(f.as_raw_fd()).unwrap();
        let id = Identifier::new(IdentifyOptions::default());
        id.remember_fd(me, fd_of(&decoy));
        let (src, dst) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        for _ in 0..2 {
            let facts = id.identify(src, dst, Needs::one_process()).unwrap();
            assert_eq!(facts.holders[0].pid, me, "{facts:?}");
            assert_eq!(id.fd_hint(me), Some(fd_of(&client)));
        }
    }

    /// PID reuse on the connect-record path: the process must have started no later than
    /// the connect (100 Hz ticks: 10 ms each, rounded down by the kernel).
    #[test]
    fn a_process_started_after_the_connect_is_not_the_connector() {
        const TICK: u64 = 10_000_000;
        let rows: &[(u64, u64, bool)] = &[
            // (start ticks, connect ns, may be the connector)
            (100, 1_000_000_000, true),
            (100, 1_000_000_001, true),
            // Same tick: the connect came within 10 ms of the start (a fresh `curl`).
            (100, 1_009_999_999, true),
            (101, 1_009_999_999, false),
            (5_000, 1_000_000_000, false),
            (0, 0, true),
            (u64::MAX, u64::MAX, false),
        ];
        for (start, connect, want) in rows {
            assert_eq!(
                started_by(*start, TICK, *connect),
                *want,
                "{start} {connect}"
            );
        }
    }
}

//! Loading, attaching and reading the connect-time programs (aya).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::Duration;

use aya::maps::{Array, HashMap, MapData, MapError};
use aya::programs::{CgroupAttachMode, CgroupSock, CgroupSockAddr, RawTracePoint, SockOps};
use aya::Ebpf;

use super::{
    key, parse_record, target, v4, ConnectRecord, EbpfError, KEY_LEN, RECORD_LEN, TARGET_LEN,
};

/// aya attaches with a BPF link (kernel 5.7 and later), which is always "multi": it runs
/// beside other programs on the cgroup and cannot be overridden below. The link API
/// refuses any flag (EINVAL), hence `Single`, the zero flags.
const ATTACH_MODE: CgroupAttachMode = CgroupAttachMode::Single;

/// The compiled programs (`build.rs`: clang -O2 -g -target bpf).
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/connect.bpf.o"));

/// The attached programs and their maps. Detached when dropped (the links are fds).
pub struct ConnectRecords {
    /// Owns the programs and their cgroup links; never touched after attach.
    _ebpf: Mutex<Ebpf>,
    connects: HashMap<MapData, [u8; KEY_LEN], [u8; RECORD_LEN]>,
    targets: Mutex<HashMap<MapData, [u8; TARGET_LEN], u8>>,
    /// Per process: when it last forked or exec'd (boot ns).
    changed: HashMap<MapData, u32, u64>,
    /// Non-zero once `changed` was full: no record can be trusted any more.
    overflow: Array<MapData, u64>,
    /// The gate's network namespace cookie, learnt from the self-test.
    netns: u64,
    cgroup_root: String,
}

impl std::fmt::Debug for ConnectRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRecords")
            .field("netns", &self.netns)
            .field("cgroup_root", &self.cgroup_root)
            .finish()
    }
}

fn setup(what: &'static str) -> impl Fn(String) -> EbpfError {
    move |why| EbpfError::Setup { what, why }
}

/// The map `name` of the loaded object, typed.
fn take_map<M>(ebpf: &mut Ebpf, name: &str) -> Result<M, EbpfError>
where
    M: TryFrom<aya::maps::Map, Error = MapError>,
{
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| setup("find a map")(name.to_owned()))?;
    M::try_from(map).map_err(|e| setup("open a map")(format!("`{name}`: {}", chain(&e))))
}

/// The program `name` of the loaded object, as its kind.
fn program<'a, P>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut P, EbpfError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| setup("find a program")(name.to_owned()))?;
    prog.try_into().map_err(|e: aya::programs::ProgramError| {
        setup("a program of another kind")(format!("`{name}`: {}", chain(&e)))
    })
}

/// An error and its sources, `: `-separated (aya keeps the errno in the source).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        // aya often repeats the cause in the error's own text.
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}

impl ConnectRecords {
    /// Loads the programs, attaches them to the root of the cgroup v2 hierarchy (in
    /// addition to any programs already there), records connections to `targets`
    /// (IPv4 only; others are ignored) and proves the whole path with a loopback
    /// connection of our own: its record must name this process, its uid and our network
    /// namespace. Needs `CAP_BPF` and `CAP_NET_ADMIN` (or `CAP_SYS_ADMIN`).
    pub fn attach(targets: &[SocketAddr]) -> Result<Self, EbpfError> {
        let cgroup_root = cgroup2_root().ok_or(EbpfError::NoCgroup2)?;
        let cgroup =
            File::open(&cgroup_root).map_err(|e| setup("open the cgroup v2 root")(chain(&e)))?;
        let mut ebpf = Ebpf::load(OBJECT).map_err(|e| setup("load the programs")(chain(&e)))?;

        let mut wanted: HashMap<MapData, [u8; TARGET_LEN], u8> = take_map(&mut ebpf, "targets")?;
        for t in targets.iter().filter_map(|a| v4(*a)) {
            wanted
                .insert(target(t.0, t.1), 1, 0)
                .map_err(|e| setup("fill map `targets`")(chain(&e)))?;
        }
        let connects = take_map(&mut ebpf, "connects")?;
        let changed = take_map(&mut ebpf, "changed")?;
        let overflow = take_map(&mut ebpf, "overflow")?;

        // The self-test listener's address is a target too, for as long as the test runs.
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| EbpfError::SelfTest(format!("listen on loopback: {e}")))?;
        let probe = listener
            .local_addr()
            .map_err(|e| EbpfError::SelfTest(chain(&e)))?;
        let probe_target = v4(probe).map(|(a, p)| target(a, p));
        if let Some(t) = probe_target {
            wanted
                .insert(t, 1, 0)
                .map_err(|e| setup("fill map `targets`")(chain(&e)))?;
        }

        // The process events first: a connect recorded before they run could
        // miss a fork or exec that follows it.
        for (name, tracepoint) in [
            ("gatehouse_fork", "sched_process_fork"),
            // Kernel 6.10 and later; without it an exec shows in /proc before it is
            // marked, so the eBPF path is not used at all.
            ("gatehouse_prepare_exec", "sched_prepare_exec"),
            ("gatehouse_exec", "sched_process_exec"),
            ("gatehouse_exit", "sched_process_exit"),
        ] {
            let prog: &mut RawTracePoint = program(&mut ebpf, name)?;
            prog.load()
                .map_err(|e| setup("verify a process-event program")(chain(&e)))?;
            prog.attach(tracepoint)
                .map_err(|e| setup("attach to a scheduler tracepoint (needs CAP_PERFMON; sched_prepare_exec needs kernel 6.10)")(chain(&e)))?;
        }
        // Then the socket programs, on the cgroup root.
        macro_rules! on_cgroup {
            ($kind:ty, $name:literal) => {{
                let prog: &mut $kind = program(&mut ebpf, $name)?;
                prog.load()
                    .map_err(|e| setup(concat!("verify program `", $name, "`"))(chain(&e)))?;
                prog.attach(&cgroup, ATTACH_MODE)
                    .map_err(|e| setup(concat!("attach program `", $name, "`"))(chain(&e)))?;
            }};
        }
        on_cgroup!(CgroupSock, "gatehouse_sock_create");
        on_cgroup!(CgroupSockAddr, "gatehouse_connect4");
        on_cgroup!(SockOps, "gatehouse_sockops");

        let mut records = ConnectRecords {
            _ebpf: Mutex::new(ebpf),
            connects,
            targets: Mutex::new(wanted),
            changed,
            overflow,
            netns: 0,
            cgroup_root,
        };
        let netns = self_test(&listener, &records);
        if let Some(t) = probe_target {
            // Best effort: a stale target only records a few more loopback connections.
            if let Ok(mut wanted) = records.targets.lock() {
                let _ = wanted.remove(&t);
            }
        }
        records.netns = netns?;
        Ok(records)
    }

    /// Whether process `pid` has neither forked nor exec'd since `since_ns` (boot ns), as
    /// far as the process-event programs know; `false` whenever that cannot be told.
    pub fn unchanged_since(&self, pid: u32, since_ns: u64) -> bool {
        match self.overflow.get(&0, 0) {
            Ok(0) => {}
            _ => return false,
        }
        self.marked_unchanged_since(pid, since_ns)
    }

    /// [`Self::unchanged_since`] without the overflow check (one `bpf()` call instead of
    /// two): what `changed` says, which is the whole answer only if no mark was lost.
    /// Meant for a first check that [`Self::unchanged_since`] repeats later: `overflow`
    /// is never cleared, so a later clean reading covers this one too.
    pub fn marked_unchanged_since(&self, pid: u32, since_ns: u64) -> bool {
        match self.changed.get(&pid, 0) {
            Err(MapError::KeyNotFound) => true,
            Ok(at) => at < since_ns,
            Err(_) => false,
        }
    }

    /// One lookup that must not fail for lack of privilege: run after the broker dropped
    /// its capabilities (reading a map needs only its fd on recent kernels, not on all).
    pub fn probe(&self) -> Result<(), EbpfError> {
        match self.overflow.get(&0, 0) {
            Ok(_) => Ok(()),
            Err(e) => Err(EbpfError::SelfTest(format!(
                "reading the maps: {}",
                chain(&e)
            ))),
        }
    }

    /// The record of the connection the gate accepted from `src`, originally for `dst`;
    /// `None` when there is none (not recorded, evicted, closed, IPv6, another network
    /// namespace).
    pub fn lookup(&self, src: SocketAddr, dst: SocketAddr) -> Option<ConnectRecord> {
        let k = key(self.netns, v4(src)?, v4(dst)?);
        let v = self.connects.get(&k, 0).ok()?;
        let (record, netns) = parse_record(&v);
        (netns == self.netns).then_some(record)
    }

    /// Records connections to `addr` too (IPv4 only; others are ignored).
    pub fn add_target(&self, addr: SocketAddr) -> Result<(), EbpfError> {
        let Some((a, p)) = v4(addr) else {
            return Ok(());
        };
        let mut wanted = self
            .targets
            .lock()
            .map_err(|_| setup("fill map `targets`")("poisoned".into()))?;
        wanted
            .insert(target(a, p), 1, 0)
            .map_err(|e| setup("fill map `targets`")(chain(&e)))
    }

    /// Where the programs are attached.
    pub fn cgroup_root(&self) -> &str {
        &self.cgroup_root
    }
}

/// Connects to our own listener and finds the record: it must exist, be in the map under
/// the key the gate will compute, and name this process. Returns our netns cookie.
fn self_test(listener: &TcpListener, records: &ConnectRecords) -> Result<u64, EbpfError> {
    let connects = &records.connects;
    let fail = |why: String| EbpfError::SelfTest(why);
    let addr = listener.local_addr().map_err(|e| fail(chain(&e)))?;
    let mut client = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| fail(format!("connect to {addr}: {e}")))?;
    let (mut served, peer) = listener.accept().map_err(|e| fail(chain(&e)))?;
    let cookie = rustix::net::sockopt::socket_cookie(&client).map_err(|e| fail(chain(&e)))?;
    // Find our record by cookie (the netns cookie, part of the key, is not known yet).
    let mut found = None;
    for item in connects.iter() {
        let Ok((_, v)) = item else { continue };
        let (record, netns) = parse_record(&v);
        if record.cookie == cookie {
            found = Some((record, netns));
            break;
        }
    }
    let (record, netns) = found.ok_or_else(|| {
        fail("no record of our own loopback connection (another program on the cgroup root may have refused it, or cgroup v2 is not where processes live)".into())
    })?;
    if record.pid != std::process::id() {
        return Err(fail(format!(
            "the record names pid {} but we are {} (the gate runs in a pid namespace of its own; pids in records are the initial namespace's)",
            record.pid,
            std::process::id()
        )));
    }
    let uid = rustix::process::getuid().as_raw();
    if record.uid != uid {
        return Err(fail(format!(
            "the record names uid {} but we are {uid}",
            record.uid
        )));
    }
    let k = key(
        netns,
        v4(peer).ok_or_else(|| fail("not IPv4".into()))?,
        v4(addr).ok_or_else(|| fail("not IPv4".into()))?,
    );
    let by_key = connects
        .get(&k, 0)
        .map_err(|e| fail(format!("lookup by 4-tuple: {e}")))?;
    if parse_record(&by_key).0.cookie != cookie {
        return Err(fail(
            "the record under our 4-tuple is another socket's".into(),
        ));
    }
    // The identifier matches records to sock_diag's cookie: the two must agree.
    match crate::net::sock_diag::socket_owner(peer, addr) {
        Ok(Some(owner)) if owner.cookie == cookie => {}
        other => {
            return Err(fail(format!(
                "sock_diag's cookie for our socket is not the record's: {other:?}"
            )))
        }
    }
    // A fork and exec of ours after the connect must show.
    let _ = std::process::Command::new("/bin/true")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if records.unchanged_since(record.pid, record.boot_ns) {
        return Err(fail(
            "a fork after the connect went unseen (the process-event programs are not running)"
                .into(),
        ));
    }
    // The record goes when the socket closes.
    let _ = client.write_all(b"x");
    let mut b = [0u8; 1];
    let _ = served.read(&mut b);
    drop(client);
    drop(served);
    for _ in 0..50 {
        if connects.get(&k, 0).is_err() {
            return Ok(netns);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err(fail(
        "the record outlived its socket (sockops state callbacks are not running)".into(),
    ))
}

/// The root of the cgroup v2 hierarchy: its mount point (`/sys/fs/cgroup` on a unified
/// system, `/sys/fs/cgroup/unified` on a hybrid one) from `/proc/self/mountinfo`, or, when
/// this mount namespace has none (`ip netns exec` remounts `/sys`), the one init sees,
/// reached through `/proc/1/root`.
fn cgroup2_root() -> Option<String> {
    let own = std::fs::read_to_string("/proc/self/mountinfo").ok();
    if let Some(mp) = own.as_deref().and_then(cgroup2_mount) {
        return Some(mp);
    }
    let init = std::fs::read_to_string("/proc/1/mountinfo").ok()?;
    cgroup2_mount(&init)
        .map(|mp| format!("/proc/1/root{mp}"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_dir()))
}

fn cgroup2_mount(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let fstype = right.split_whitespace().next()?;
        let mut fields = left.split_whitespace();
        let root = fields.nth(3)?;
        let mount_point = fields.next()?;
        (fstype == "cgroup2" && root == "/").then(|| mount_point.replace("\\040", " "))
    })
}

#[cfg(test)]
mod tests {
    use super::cgroup2_mount;

    #[test]
    fn the_cgroup2_root_mount_is_found() {
        let hybrid =
            "35 25 0:30 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw\n";
        let unified = "24 1 0:21 / /sys/fs/cgroup rw shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        let v1 = "36 25 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        let not_root = "40 25 0:30 /system.slice /mnt/x rw - cgroup2 cgroup2 rw\n";
        let rows: &[(String, Option<&str>)] = &[
            (hybrid.to_owned(), Some("/sys/fs/cgroup/unified")),
            (unified.to_owned(), Some("/sys/fs/cgroup")),
            (format!("{v1}{not_root}"), None),
            (format!("{v1}{not_root}{unified}"), Some("/sys/fs/cgroup")),
            (String::new(), None),
        ];
        for (text, want) in rows {
            assert_eq!(cgroup2_mount(text).as_deref(), *want, "{text}");
        }
    }
}

//! The gate's life as a service, deployed as the README says: `--user`, the
//! firewall applied (in a network namespace of the test's own), real
//! signals, and this test as systemd's notify socket. Reload good and bad
//! (by `gatehouse reload` and by SIGHUP to the pid file's pid), SIGTERM,
//! SIGKILL of either process, stale pid files. Needs root (skips loudly).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::separated::{
    children, ensure_worker_user, gone, status_field, WORKER_UID, WORKER_USER,
};
use common::{
    gatehouse, http_addr, privileged, start_until, storage_assignment, Running, CURL_STATUS,
    STORAGE_WRITER_IDENTITY,
};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const MARK: &str = "0x6761";
/// The bound the issue states for a stop, and for a crash taking the rest along.
const STOP_BOUND: Duration = Duration::from_secs(2);

fn policy(name: &str) -> String {
    format!(
        "{STORAGE_WRITER_IDENTITY}{}",
        storage_assignment(name, "uid:0")
    )
}

const BAD_POLICY: &str =
    "version = 1\n[[assignments]]\nname = \"broken\"\nrole = \"No Such Role\"\n";

/// A network namespace of this test's, deleted at the end.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("ghlc-{tag}-{}", std::process::id());
        common::netns_add(&name);
        let ns = Netns(name);
        // An interface with routes to IMDS (both addresses), as every VM
        // has: without one a connection to it fails before nftables sees
        // it, and the gate's start-up probe (rightly) refuses the start.
        // Its peer is in the namespace too: nothing answers there but the
        // gate.
        for args in [
            &["link", "add", "vm0", "type", "veth", "peer", "name", "vm1"][..],
            &["addr", "add", "169.254.0.2/16", "dev", "vm0"],
            &["-6", "addr", "add", "fd00:e2e::2/64", "dev", "vm0", "nodad"],
            &["link", "set", "vm0", "up"],
            &["link", "set", "vm1", "up"],
            &["-6", "route", "add", "fd00:ec2::254/128", "dev", "vm0"],
        ] {
            assert!(
                ns.command("ip").args(args).status().unwrap().success(),
                "ip {args:?}"
            );
        }
        ns
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program]);
        // Never the machine's /var/lib/gatehouse-keys.
        c.env("GATEHOUSE_AUDIT_KEY", common::test_audit_key());
        c
    }

    fn has_table(&self) -> bool {
        self.command("nft")
            .args(["list", "table", "inet", "gatehouse"])
            .output()
            .unwrap()
            .status
            .success()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// This test as systemd: the notify socket's reader.
struct Manager {
    socket: UnixDatagram,
    path: PathBuf,
    seen: Vec<String>,
}

impl Manager {
    fn new(dir: &Path) -> Manager {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Manager {
            socket,
            path,
            seen: Vec::new(),
        }
    }

    /// The datagrams until one has a line `line` (at most 20 s); returns it.
    fn until(&mut self, line: &str) -> String {
        self.until_with(line, "")
    }

    /// [`Manager::until`] a datagram that also contains `text`.
    fn until_with(&mut self, line: &str, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = vec![0u8; 4096];
        while Instant::now() < deadline {
            let Ok(n) = self.socket.recv(&mut buf) else {
                continue;
            };
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.seen.push(message.clone());
            if message.lines().any(|l| l == line) && message.contains(text) {
                return message;
            }
        }
        panic!("no `{line}` from the gate; saw {:?}", self.seen);
    }

    /// Every datagram seen so far, as their state lines (STATUS= left out).
    fn states(&self) -> Vec<String> {
        self.seen
            .iter()
            .flat_map(|m| m.lines().map(str::to_owned).collect::<Vec<_>>())
            .filter(|l| !l.starts_with("STATUS=") && !l.starts_with("MONOTONIC_USEC="))
            .filter(|l| l != "WATCHDOG=1")
            .collect()
    }
}

struct Deployed {
    dir: tempfile::TempDir,
    ns: Netns,
    _emulator: Running,
    emulator_addr: String,
}

impl Deployed {
    fn new(tag: &str) -> Deployed {
        ensure_worker_user();
        let dir = tempfile::tempdir().unwrap();
        common::readable_policy(dir.path(), &policy("root-gets-storage"));
        let audit_dir = dir.path().join("audit");
        std::fs::create_dir(&audit_dir).unwrap();
        std::os::unix::fs::chown(&audit_dir, Some(WORKER_UID), Some(WORKER_UID)).unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        let ns = Netns::new(tag);
        let bin = env!("CARGO_BIN_EXE_gatehouse");
        let started = start_until(
            ns.command(bin).args(["emulate", "--listen", "127.0.0.1:0"]),
            "IMDS on http://",
        );
        let emulator_addr = http_addr(&started.seen, "IMDS on http://");
        Deployed {
            dir,
            ns,
            _emulator: started.running,
            emulator_addr,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn pid_file(&self) -> PathBuf {
        self.path("run/gatehouse.pid")
    }

    /// `gatehouse run` as deployed (with `--user` when `separated`), the
    /// firewall applied and watched; its address once it listens.
    fn start(&self, separated: bool, manager: Option<&Manager>) -> (Running, String) {
        let mut cmd = self.command(separated, manager);
        let started = start_until(&mut cmd, "listening on http://");
        let addr = http_addr(&started.seen, "listening on http://");
        (started.running, addr)
    }

    /// The command [`Deployed::start`] runs.
    fn command(&self, separated: bool, manager: Option<&Manager>) -> Command {
        let bin = env!("CARGO_BIN_EXE_gatehouse");
        let mut cmd = self.ns.command(bin);
        cmd.arg("run");
        if separated {
            cmd.args(["--user", WORKER_USER]);
        }
        cmd.args([
            "--upstream",
            &format!("http://{}", self.emulator_addr),
            "--policy",
            self.path("policy.toml").to_str().unwrap(),
            "--audit",
            self.path("audit/audit.log").to_str().unwrap(),
            // The namespace is ours: the default port, which the table names.
            "--listen",
            "127.0.0.1:16925",
            "--upstream-mark",
            MARK,
            "--firewall",
            "watch",
            "--caller-lookup",
            "sock-diag",
            "--no-cache",
            "--pid-file",
            self.pid_file().to_str().unwrap(),
        ]);
        cmd.env_remove("NOTIFY_SOCKET");
        if let Some(m) = manager {
            // As systemd sets them for the main process with WatchdogSec=1s.
            cmd.env("NOTIFY_SOCKET", &m.path)
                .env("WATCHDOG_USEC", "1000000");
        }
        cmd
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.path("audit/audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect()
    }

    fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        self.audit()
            .into_iter()
            .filter(|r| r["event"]["type"] == kind)
            .map(|r| r["event"].clone())
            .collect()
    }

    fn reload(&self) -> Output {
        gatehouse()
            .args(["reload", "--pid-file", self.pid_file().to_str().unwrap()])
            .output()
            .unwrap()
    }

    fn token_status(&self, addr: &str) -> String {
        let url = format!("http://{addr}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com&client_id=2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809");
        let out = self
            .ns
            .command("/usr/bin/curl")
            .args(CURL_STATUS)
            .arg(&url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn write_policy(&self, text: &str) {
        std::fs::write(self.path("policy.toml"), text).unwrap();
    }

    fn pid_in_file(&self) -> u32 {
        std::fs::read_to_string(self.pid_file())
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn kill(signal: &str, pid: u32) {
    assert!(Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

/// How long until `done` holds (polled; at most 10 s, then a failure).
fn time_until(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if done() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting until {what}");
}

/// The gate's processes: (the pid file's process, the worker if separated, `nft monitor`).
fn processes(main: u32, separated: bool) -> (Option<u32>, u32) {
    let mut worker = None;
    let mut monitor = None;
    time_until("the gate's processes are up", || {
        let kids = children(main);
        worker = kids.iter().copied().find(|p| {
            status_field(*p, "Uid").is_some_and(|u| u.starts_with(&WORKER_UID.to_string()))
        });
        monitor = kids.iter().copied().find(|p| comm(*p) == "nft");
        monitor.is_some() && (worker.is_some() || !separated)
    });
    (worker, monitor.unwrap())
}

fn reload_and_stop_as_deployed(separated: bool) {
    let tag = if separated { "sep" } else { "one" };
    let d = Deployed::new(tag);
    let mut manager = Manager::new(d.dir.path());
    let (mut gate, addr) = d.start(separated, Some(&manager));
    let main = gate.0.id();
    assert_eq!(
        d.pid_in_file(),
        main,
        "the pid file names the process signals go to"
    );
    let (worker, monitor) = processes(main, separated);
    if separated {
        // The runtime that listens for signals was made before the
        // capability drop: no thread of the broker kept more than three.
        let caps = status_field(main, "CapEff").unwrap();
        for task in std::fs::read_dir(format!("/proc/{main}/task")).unwrap() {
            let tid = task.unwrap().file_name().into_string().unwrap();
            let status =
                std::fs::read_to_string(format!("/proc/{main}/task/{tid}/status")).unwrap();
            assert!(
                status.contains(&format!("CapEff:\t{caps}")),
                "thread {tid}: {status}"
            );
        }
        assert_eq!(
            u64::from_str_radix(&caps, 16).unwrap(),
            (1 << 2) | (1 << 12) | (1 << 19)
        );
    }

    // READY=1 once listening, the policy loaded and the table verified.
    let ready = manager.until("READY=1");
    assert!(d.ns.has_table(), "ready before the table is in place");
    assert_eq!(d.events("gate_started").len(), 1);
    assert!(ready.contains("STATUS=policy sha256 "), "{ready}");
    assert!(ready.contains("callers: sock_diag"), "{ready}");
    assert_eq!(d.token_status(&addr), "200");
    // WATCHDOG=1 from the request loop (every half WATCHDOG_USEC), with the count.
    let alive = manager.until_with("WATCHDOG=1", "1 requests served");
    assert!(alive.contains("STATUS=policy sha256 "), "{alive}");

    // `gatehouse reload`: a valid new policy is loaded, audited, and said.
    d.write_policy(&policy("root-gets-storage-v2"));
    let out = d.reload();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("policy loaded"), "{stdout}");
    let loaded = d.events("policy_loaded");
    assert_eq!(loaded.len(), 1);
    let v2 = loaded[0]["policy"].as_str().unwrap().to_owned();
    assert!(stdout.contains(&v2[..16]), "{stdout}");
    let reloading = manager.until("RELOADING=1");
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {reloading}"));
    assert!(usec.parse::<u64>().unwrap() > 0);
    let after = manager.until("READY=1");
    assert!(after.contains(&v2[..16]), "{after}");

    // An invalid one: refused with its reason, the last good one stays.
    d.write_policy(BAD_POLICY);
    let out = d.reload();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("reload refused"), "{stderr}");
    assert!(
        stderr.contains("No Such Role"),
        "the reason, in full: {stderr}"
    );
    assert!(
        stderr.contains(&v2[..16]),
        "names the policy kept: {stderr}"
    );
    let rejected = d.events("policy_rejected");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["kept"], v2.as_str());
    assert!(rejected[0]["reason"].as_str().unwrap().contains("error"));
    assert_eq!(d.token_status(&addr), "200", "the last good policy decides");
    manager.until("RELOADING=1");
    manager.until("READY=1");

    // SIGHUP to the pid file's pid, as `systemctl reload`'s kill -HUP does.
    d.write_policy(&policy("root-gets-storage-v3"));
    kill("-HUP", d.pid_in_file());
    time_until("SIGHUP loads the new policy", || {
        d.events("policy_loaded").len() == 2
    });
    manager.until("RELOADING=1");
    manager.until("READY=1");
    d.write_policy(BAD_POLICY);
    kill("-HUP", d.pid_in_file());
    time_until("SIGHUP refuses the bad policy", || {
        d.events("policy_rejected").len() == 2
    });
    manager.until("READY=1");
    assert_eq!(d.token_status(&addr), "200");

    let states = manager.states();
    let expected: Vec<&str> = ["READY=1"]
        .into_iter()
        .chain(std::iter::repeat_n(["RELOADING=1", "READY=1"], 4).flatten())
        .collect();
    assert_eq!(states, expected, "the notify sequence");

    // SIGTERM: everything gone within 2 s, a last audit line, the pid file
    // removed, the table left in place.
    kill("-TERM", main);
    let took = time_until("the gate stops", || gate.0.try_wait().unwrap().is_some());
    let status = gate.0.wait().unwrap();
    let all_gone = time_until("its processes are gone", || {
        gone(monitor) && worker.is_none_or(gone)
    });
    eprintln!("SIGTERM: the gate exited after {took:?}, its children were gone {all_gone:?} later");
    assert!(
        took.max(all_gone) <= STOP_BOUND,
        "stopped in {took:?}, children gone in {all_gone:?}"
    );
    assert!(status.success(), "a clean stop exits 0: {status}");
    manager.until("STOPPING=1");
    let audit = d.audit();
    // The very last record is the checkpoint signed over `gate_stopped`.
    let (checkpoint, stopped) = (&audit[audit.len() - 1], &audit[audit.len() - 2]);
    assert_eq!(checkpoint["event"]["type"], "checkpoint", "{checkpoint}");
    assert_eq!(checkpoint["event"]["head_seq"], stopped["seq"]);
    let last = &stopped["event"];
    assert_eq!(last["type"], "gate_stopped", "{last}");
    assert_eq!(last["reason"], "SIGTERM");
    assert!(!d.pid_file().exists(), "pid file removed");
    assert!(
        !d.path("run/gatehouse.sock").exists(),
        "control socket removed"
    );
    assert!(d.ns.has_table(), "the table stays, so IMDS stays closed");
    let verify = gatehouse()
        .args([
            "audit",
            "verify",
            d.path("audit/audit.log").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );

    // No gate: `gatehouse reload` fails and says so.
    let out = d.reload();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no gate answers"));
}

#[test]
fn separated_gate_reloads_and_stops_as_systemd_expects() {
    if !privileged("gatehouse run --user with the firewall in a namespace") {
        return;
    }
    reload_and_stop_as_deployed(true);
}

#[test]
fn single_process_gate_reloads_and_stops_as_systemd_expects() {
    if !privileged("gatehouse run with the firewall in a namespace") {
        return;
    }
    reload_and_stop_as_deployed(false);
}

#[test]
fn sigkill_of_the_broker_takes_the_worker_and_nft_monitor() {
    if !privileged("gatehouse run --user, SIGKILL") {
        return;
    }
    let d = Deployed::new("kb");
    let (mut gate, _addr) = d.start(true, None);
    let broker = gate.0.id();
    let (worker, monitor) = processes(broker, true);
    let worker = worker.unwrap();
    kill("-KILL", broker);
    let took = time_until("the worker and nft monitor are gone", || {
        gone(worker) && gone(monitor)
    });
    eprintln!("SIGKILL of the broker: worker and nft monitor gone after {took:?}");
    assert!(took <= STOP_BOUND, "{took:?}");
    let _ = gate.0.wait();
    assert!(d.ns.has_table(), "the table stays after a crash");

    // The pid file is stale now: `gatehouse reload` says no gate answers,
    // and the next start replaces it.
    assert!(d.pid_file().exists());
    let out = d.reload();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no gate answers"));
    let (again, _) = d.start(true, None);
    assert_eq!(d.pid_in_file(), again.0.id());
    let out = d.reload();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigkill_of_the_worker_ends_the_broker_with_an_error() {
    if !privileged("gatehouse run --user, SIGKILL") {
        return;
    }
    let d = Deployed::new("kw");
    let (mut gate, _addr) = d.start(true, None);
    let broker = gate.0.id();
    let (worker, monitor) = processes(broker, true);
    kill("-KILL", worker.unwrap());
    let took = time_until("the broker exits", || gate.0.try_wait().unwrap().is_some());
    let status = gate.0.wait().unwrap();
    let all_gone = time_until("nft monitor is gone", || gone(monitor));
    eprintln!("SIGKILL of the worker: broker gone after {took:?}, nft monitor {all_gone:?} later");
    assert!(took.max(all_gone) <= STOP_BOUND, "{took:?} {all_gone:?}");
    assert!(
        !status.success(),
        "a crashed worker is no clean stop: {status}"
    );
    assert!(d.ns.has_table());
}

#[test]
fn a_stale_pid_file_is_replaced_and_a_live_one_refuses_the_start() {
    if !privileged("gatehouse run --user") {
        return;
    }
    let d = Deployed::new("pid");
    // A pid that is not a gatehouse (this test), then one that is dead.
    for stale in [std::process::id(), 999_999_999] {
        std::fs::write(d.pid_file(), format!("{stale}\n")).unwrap();
        let (gate, _) = d.start(true, None);
        assert_eq!(d.pid_in_file(), gate.0.id(), "stale pid {stale} replaced");
        let mut gate = gate;
        kill("-TERM", gate.0.id());
        assert!(gate.0.wait().unwrap().success());
    }
    // A live gatehouse (the emulator's process) holds the pid file: refused.
    let emulator = d._emulator.0.id();
    let emulator_pid = children(emulator)
        .into_iter()
        .find(|p| comm(*p) == "gatehouse")
        .unwrap_or(emulator);
    assert_eq!(comm(emulator_pid), "gatehouse");
    std::fs::write(d.pid_file(), format!("{emulator_pid}\n")).unwrap();
    let bin = env!("CARGO_BIN_EXE_gatehouse");
    let out =
        d.ns.command(bin)
            .args([
                "run",
                "--user",
                WORKER_USER,
                "--upstream",
                &format!("http://{}", d.emulator_addr),
                "--policy",
                d.path("policy.toml").to_str().unwrap(),
                "--audit",
                d.path("audit/audit.log").to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--firewall",
                "off",
                "--no-upstream-mark",
                "--pid-file",
                d.pid_file().to_str().unwrap(),
            ])
            .output()
            .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("another gate"), "{stderr}");
    assert_eq!(
        d.pid_in_file(),
        emulator_pid,
        "a live gate's pid file is left alone"
    );
}

/// A start that must fail: its exit status and stderr (at most 30 s; a
/// gate that serves instead is killed and fails the test).
fn refused_start(mut cmd: Command) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the gate started (or hung) although its start-up probe should fail");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

/// The start-up probe (issue 17, item 7): once the gate listens and its
/// table is as rendered, a connection from uid nobody to 169.254.169.254:80
/// must reach it. It does here (audited `reaches_gate`); with another
/// agent's earlier DNAT, or a prohibit route with a mark exception in the
/// way, the table is still exactly as rendered but the start is refused,
/// naming what is in the way, and the audit says why. Alone and separated.
fn start_probe_refuses_a_gate_not_in_the_path(separated: bool) {
    let tag = if separated { "psep" } else { "pone" };
    let d = Deployed::new(tag);
    let (gate, addr) = d.start(separated, None);
    assert_eq!(d.token_status(&addr), "200");
    // Both addresses: IMDS's IPv6 one goes to the gate's [::1] listener.
    let probes = d.events("firewall_probed");
    assert_eq!(probes.len(), 2, "{probes:?}");
    for (p, target) in probes
        .iter()
        .zip(["169.254.169.254:80", "[fd00:ec2::254]:80"])
    {
        assert_eq!(p["verdict"], "reaches_gate", "{probes:?}");
        assert_eq!(p["target"], target);
        assert_eq!(p["uid"], 65534);
        assert_eq!(p["trigger"], "start");
    }
    let mut gate = gate;
    kill("-TERM", gate.0.id());
    assert!(gate.0.wait().unwrap().success());

    // Another agent's listener and its earlier DNAT (priority -150).
    let listener = start_until(
        d.ns.command("python3").args([
            "-c",
            "import socket\ns = socket.socket(); s.bind(('127.0.0.1', 9999)); s.listen(16); import sys; print('competitor up', file=sys.stderr, flush=True)\nwhile True: s.accept()[0].close()",
        ]),
        "competitor up",
    );
    let nft = |batch: &str| {
        use std::io::Write;
        let mut c =
            d.ns.command("nft")
                .args(["-f", "-"])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
        c.stdin.take().unwrap().write_all(batch.as_bytes()).unwrap();
        assert!(c.wait().unwrap().success(), "{batch}");
    };
    nft("table ip competitor {\n chain out {\n  type nat hook output priority -150; policy accept;\n  ip daddr 169.254.169.254 tcp dport 80 dnat to 127.0.0.1:9999\n }\n}\n");
    let before = d.events("firewall_probed").len();
    let (status, stderr) = refused_start(d.command(separated, None));
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("not by the gate's listener"), "{stderr}");
    assert!(
        stderr.contains("ip competitor"),
        "doctor's finding is named: {stderr}"
    );
    let probes = d.events("firewall_probed");
    assert_eq!(probes.len(), before + 2, "{probes:?}");
    assert_eq!(probes[before]["verdict"], "diverted", "{probes:?}");
    // The competitor redirects IPv4 only: the IPv6 probe still reaches the gate.
    assert_eq!(probes[before + 1]["verdict"], "reaches_gate", "{probes:?}");
    nft("delete table ip competitor\n");
    drop(listener);

    // systemd-imdsd's lockdown shape: everything without mark 0x1000 looks
    // up a table where IMDS is prohibited.
    let ip = |args: &[&str]| assert!(d.ns.command("ip").args(args).status().unwrap().success());
    ip(&[
        "route",
        "add",
        "prohibit",
        "169.254.169.254/32",
        "table",
        "4242",
    ]);
    ip(&[
        "rule", "add", "priority", "4242", "not", "fwmark", "0x1000", "lookup", "4242",
    ]);
    let (status, stderr) = refused_start(d.command(separated, None));
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("prohibit, unreachable or blackhole route"),
        "{stderr}"
    );
    assert!(
        stderr.contains("route `prohibit 169.254.169.254"),
        "doctor's finding is named: {stderr}"
    );
    let probes = d.events("firewall_probed");
    assert_eq!(probes[probes.len() - 2]["verdict"], "blocked", "{probes:?}");
    ip(&["rule", "del", "priority", "4242"]);
    ip(&["route", "flush", "table", "4242"]);

    // Nothing in the way any more: it starts again.
    let (mut gate, addr) = d.start(separated, None);
    assert_eq!(d.token_status(&addr), "200");
    let probes = d.events("firewall_probed");
    assert_eq!(probes[probes.len() - 2]["verdict"], "reaches_gate");
    assert_eq!(probes[probes.len() - 1]["verdict"], "reaches_gate");
    kill("-TERM", gate.0.id());
    assert!(gate.0.wait().unwrap().success());
}

/// IMDS's IPv6 address is intercepted like the IPv4 one (issue 17, item
/// 2): a connection to [fd00:ec2::254]:80 reaches the gate's [::1]
/// listener and is decided on the caller's uid (root allowed, nobody
/// denied, both audited with the caller's IPv6 address); with `--ipv6
/// refuse` it is refused and the gate does not listen on IPv6. Alone and
/// separated.
fn ipv6_imds_is_decided_by_the_gate(separated: bool) {
    let tag = if separated { "6sep" } else { "6one" };
    let d = Deployed::new(tag);
    let (mut gate, _addr) = d.start(separated, None);
    let url = "http://[fd00:ec2::254]/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com&client_id=2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809";
    let curl = |uid: &str| {
        let out =
            d.ns.command("setpriv")
                .args([
                    &format!("--reuid={uid}"),
                    &format!("--regid={uid}"),
                    "--clear-groups",
                ])
                .args([
                    "/usr/bin/curl",
                    "-gs",
                    "--max-time",
                    "10",
                    "-o",
                    "/dev/null",
                ])
                .args(["-H", "Metadata: true", "-w", "%{http_code}", url])
                .output()
                .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl("0"), "200");
    assert_eq!(curl("65534"), "403");
    let requests = d.events("request");
    let seen: Vec<(String, String)> = requests
        .iter()
        .map(|r| {
            (
                r["peer"].as_str().unwrap_or("").to_owned(),
                r["outcome"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen[0].0.starts_with("[fd00:e2e::2]:") && seen[0].1 == "allow",
        "{seen:?}"
    );
    assert!(
        seen[1].0.starts_with("[fd00:e2e::2]:") && seen[1].1 == "deny",
        "{seen:?}"
    );
    kill("-TERM", gate.0.id());
    assert!(gate.0.wait().unwrap().success());

    // `--ipv6 refuse`: refused before the gate, which has no IPv6 listener.
    let mut cmd = d.command(separated, None);
    cmd.args(["--ipv6", "refuse"]);
    let started = start_until(&mut cmd, "listening on http://");
    assert!(
        !started
            .seen
            .iter()
            .any(|l| l.contains("answered on http://[::1]")),
        "{:?}",
        started.seen
    );
    assert_eq!(curl("0"), "000", "refused: curl gets no status");
    assert_eq!(d.events("request").len(), 2, "nothing reached the gate");
    let mut gate = started.running;
    kill("-TERM", gate.0.id());
    assert!(gate.0.wait().unwrap().success());
}

#[test]
fn ipv6_imds_is_decided_by_a_separated_gate() {
    if !privileged("ipv6_imds_is_decided_by_a_separated_gate") {
        return;
    }
    ipv6_imds_is_decided_by_the_gate(true);
}

#[test]
fn ipv6_imds_is_decided_by_a_single_process_gate() {
    if !privileged("ipv6_imds_is_decided_by_a_single_process_gate") {
        return;
    }
    ipv6_imds_is_decided_by_the_gate(false);
}

#[test]
fn start_probe_refuses_a_separated_gate_not_in_the_path() {
    if !privileged("start_probe_refuses_a_separated_gate_not_in_the_path") {
        return;
    }
    start_probe_refuses_a_gate_not_in_the_path(true);
}

#[test]
fn start_probe_refuses_a_single_process_gate_not_in_the_path() {
    if !privileged("start_probe_refuses_a_single_process_gate_not_in_the_path") {
        return;
    }
    start_probe_refuses_a_gate_not_in_the_path(false);
}

/// Where IPv6 is off (here: on the namespace's loopback interface), the
/// gate says so instead of failing mysteriously: `--ipv6 intercept` stops
/// the start naming IPv6 and `--ipv6 refuse`; the default (`auto`) renders
/// the refusing table, has no IPv6 listener and probes IPv4 only.
#[test]
fn with_ipv6_off_the_gate_says_so() {
    if !privileged("with_ipv6_off_the_gate_says_so") {
        return;
    }
    let d = Deployed::new("no6");
    assert!(d
        .ns
        .command("sysctl")
        .args(["-qw", "net.ipv6.conf.lo.disable_ipv6=1"])
        .status()
        .unwrap()
        .success());
    let mut cmd = d.command(false, None);
    cmd.args(["--ipv6", "intercept"]);
    let (status, stderr) = refused_start(cmd);
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot listen on [::1]:16925")
            && stderr.contains("IPv6 is not enabled on the loopback interface here")
            && stderr.contains("--ipv6 refuse"),
        "{stderr}"
    );

    let mut cmd = d.command(false, None);
    let started = start_until(&mut cmd, "listening on http://");
    assert!(
        !started.seen.iter().any(|l| l.contains("[::1]")),
        "{:?}",
        started.seen
    );
    let table =
        d.ns.command("nft")
            .args(["list", "table", "inet", "gatehouse"])
            .output()
            .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("IPv6 IMDS: unmarked tcp is refused")
            && !table.contains("ip6 daddr fd00:ec2::254 tcp dport 80"),
        "{table}"
    );
    let probes = d.events("firewall_probed");
    assert_eq!(probes.len(), 1, "{probes:?}");
    assert_eq!(probes[0]["target"], "169.254.169.254:80");
    let mut gate = started.running;
    kill("-TERM", gate.0.id());
    assert!(gate.0.wait().unwrap().success());
}

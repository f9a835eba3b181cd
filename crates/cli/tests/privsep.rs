//! `gatehouse run --user`: the worker parses requests unprivileged, the
//! broker identifies callers and opens marked upstream connections, and
//! neither outlives the other. Needs root (skips loudly otherwise).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::separated::{
    children, ensure_worker_user, gone, hex_field, status_field, wait_until, WORKER_UID,
    WORKER_USER,
};
use common::{
    gatehouse, http_addr, privileged, start_until, storage_assignment, Running, CURL_STATUS,
    STORAGE_WRITER_IDENTITY,
};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

const ALLOWED_UID: u32 = 46097;
const DENIED_UID: u32 = 46098;
const MARK: &str = "0x6761";
/// CAP_DAC_READ_SEARCH (2), CAP_NET_ADMIN (12), CAP_SYS_PTRACE (19).
const BROKER_CAPS: u64 = (1 << 2) | (1 << 12) | (1 << 19);

fn policy_text() -> String {
    format!(
        "{STORAGE_WRITER_IDENTITY}{}",
        storage_assignment("one-uid-gets-storage", "uid:46097")
    )
}

/// Start `gatehouse <args>`, wait for a stderr line containing `marker`,
/// return the process, the text after `http://` on that line, and the rest
/// of stderr.
fn start(args: &[&str], marker: &str) -> (Running, String, Receiver<String>) {
    let started = start_until(gatehouse().args(args), marker);
    let addr = http_addr(&started.seen, marker);
    (started.running, addr, started.rest)
}

/// curl as `uid`; (status, curl's pid).
fn curl_as(uid: u32, url: &str) -> (u16, u32) {
    let child = Command::new("/usr/bin/curl")
        .args(CURL_STATUS)
        .arg(url)
        .uid(uid)
        .gid(uid)
        .env("HOME", "/")
        .current_dir("/")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap(),
        pid,
    )
}

/// A gate separated with `--user` in front of `emulator`, its worker's pid.
fn separated_gate(dir: &Path, emulator: &str) -> (Running, String, u32) {
    let (gate, addr, worker, _) = separated_gate_with(dir, emulator, &[]);
    (gate, addr, worker)
}

/// [`separated_gate`] with `extra` arguments; also the stderr lines up to the banner.
fn separated_gate_with(
    dir: &Path,
    emulator: &str,
    extra: &[&str],
) -> (Running, String, u32, Vec<String>) {
    let policy = dir.join("policy.toml");
    let audit = dir.join("audit").join("audit.log");
    let started = start_until(
        gatehouse()
            .args([
                "run",
                "--user",
                WORKER_USER,
                "--upstream",
                &format!("http://{emulator}"),
                "--policy",
                policy.to_str().unwrap(),
                "--audit",
                audit.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--upstream-mark",
                MARK,
                "--firewall",
                "off",
                "--no-cache",
            ])
            .args(extra),
        "listening on http://",
    );
    let addr = http_addr(&started.seen, "listening on http://");
    let gate = started.running;
    let broker = gate.0.id();
    let mut workers = Vec::new();
    wait_until("the worker is up", || {
        workers = children(broker);
        workers.len() == 1
    });
    (gate, addr, workers[0], started.seen)
}

fn setup() -> (tempfile::TempDir, Running, String) {
    ensure_worker_user();
    let dir = tempfile::tempdir().unwrap();
    common::readable_policy(dir.path(), &policy_text());
    let audit_dir = dir.path().join("audit");
    std::fs::create_dir(&audit_dir).unwrap();
    std::os::unix::fs::chown(&audit_dir, Some(WORKER_UID), Some(WORKER_UID)).unwrap();
    std::fs::set_permissions(&audit_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let (emulator, emulator_addr, _rest) =
        start(&["emulate", "--listen", "127.0.0.1:0"], "IMDS on http://");
    (dir, emulator, emulator_addr)
}

#[test]
fn the_separated_gate_decides_through_its_broker_and_keeps_privileges_apart() {
    if !privileged("gatehouse run --user starts processes as another user") {
        return;
    }
    let (dir, _emulator, emulator_addr) = setup();
    // `--all-holders`: the policy names a uid only, which needs no process;
    // this test wants the broker to find the processes too.
    let (gate, addr, worker, _) =
        separated_gate_with(dir.path(), &emulator_addr, &["--all-holders"]);
    let broker = gate.0.id();

    // Who holds what.
    assert_eq!(
        status_field(worker, "Uid")
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        vec!["46099"; 4]
    );
    assert_eq!(
        status_field(worker, "Groups").unwrap(),
        "",
        "supplementary groups cleared"
    );
    assert_eq!(
        hex_field(worker, "CapEff"),
        0,
        "the worker has no capabilities"
    );
    assert_eq!(hex_field(worker, "CapPrm"), 0);
    assert_eq!(status_field(worker, "NoNewPrivs").as_deref(), Some("1"));
    assert_eq!(
        hex_field(broker, "CapEff"),
        BROKER_CAPS,
        "the broker keeps exactly three"
    );
    assert_eq!(hex_field(broker, "CapPrm"), BROKER_CAPS);
    assert_eq!(
        hex_field(broker, "CapBnd"),
        BROKER_CAPS,
        "and cannot regain more"
    );
    assert_eq!(hex_field(broker, "CapAmb"), 0);

    // Decisions on callers of other uids, identified through the broker.
    let token = format!(
        "http://{addr}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com&client_id=2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809"
    );
    let (allowed, allowed_pid) = curl_as(ALLOWED_UID, &token);
    assert_eq!(allowed, 200, "uid {ALLOWED_UID} is granted the token");
    let (denied, denied_pid) = curl_as(DENIED_UID, &token);
    assert_eq!(denied, 403, "uid {DENIED_UID} is not");

    // The upstream connection (kept alive in the worker's pool) came from
    // the broker and carries the mark.
    let port = emulator_addr.rsplit(':').next().unwrap();
    let ss = Command::new("ss")
        .args(["-tnep", &format!("dport = :{port}")])
        .output()
        .unwrap();
    let ss = String::from_utf8_lossy(&ss.stdout);
    let worker_line = ss
        .lines()
        .find(|l| l.contains(&format!("pid={worker},")))
        .unwrap_or_else(|| panic!("no upstream connection of the worker:\n{ss}"));
    assert!(
        worker_line.contains("fwmark:0x6761"),
        "unmarked: {worker_line}"
    );

    // The audit lines name the right processes.
    let log = std::fs::read_to_string(dir.path().join("audit/audit.log")).unwrap();
    let caller_of = |pid: u32| {
        log.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|r| r["event"]["caller"]["pid"] == serde_json::json!(pid))
            .unwrap_or_else(|| panic!("no audit line for pid {pid}:\n{log}"))
    };
    let allowed_line = caller_of(allowed_pid);
    assert_eq!(allowed_line["event"]["caller"]["uid"], ALLOWED_UID);
    assert_eq!(allowed_line["event"]["caller"]["exe"], "/usr/bin/curl");
    let denied_line = caller_of(denied_pid);
    assert_eq!(denied_line["event"]["caller"]["uid"], DENIED_UID);
    assert_eq!(denied_line["event"]["caller"]["exe"], "/usr/bin/curl");
    assert_ne!(
        allowed_line["event"]["outcome"],
        denied_line["event"]["outcome"]
    );
    let meta = std::fs::metadata(dir.path().join("audit/audit.log")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&meta),
        WORKER_UID,
        "the worker writes the log"
    );
}

#[test]
fn neither_process_outlives_the_other() {
    if !privileged("gatehouse run --user starts processes as another user") {
        return;
    }
    let (dir, _emulator, emulator_addr) = setup();

    // kill -9 of the worker: the broker exits.
    let (mut gate, _addr, worker) = separated_gate(dir.path(), &emulator_addr);
    Command::new("kill")
        .args(["-9", &worker.to_string()])
        .status()
        .unwrap();
    wait_until("the broker exits after its worker", || {
        gate.0.try_wait().unwrap().is_some()
    });

    // kill -9 of the broker: the worker exits, and nothing serves.
    let (gate, addr, worker) = separated_gate(dir.path(), &emulator_addr);
    let broker = gate.0.id();
    Command::new("kill")
        .args(["-9", &broker.to_string()])
        .status()
        .unwrap();
    wait_until("the worker exits after its broker", || gone(worker));
    // The leader shows as a zombie while the worker's other threads are
    // still tearing down and the listener is not yet closed: wait for that
    // too (bounded) rather than race it.
    wait_until(&format!("no orphan left listening on {addr}"), || {
        std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(1))
            .is_err()
    });
    drop(gate);
}

/// The broker identifies callers by the path it was told, and says so. A token under
/// a policy on uids needs only the socket's uid on either path; instance metadata (which
/// a trusted service may read) needs the process: from its connect record with eBPF.
#[test]
fn the_broker_finds_callers_by_the_lookup_it_was_told() {
    if !privileged("gatehouse run --user --caller-lookup: starts processes as another user") {
        return;
    }
    let (dir, _emulator, emulator_addr) = setup();
    let token = |addr: &str| {
        format!("http://{addr}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com&client_id=2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809")
    };
    let instance = |addr: &str| format!("http://{addr}/metadata/instance?api-version=2021-02-01");
    // (lookup, banner, how an instance request's caller is found)
    let searched: &[&str] = &["Recent", "Newest", "SameUid", "FullScan"];
    let mut rows = vec![("sock-diag", "callers: sock_diag and /proc", searched)];
    if cfg!(feature = "ebpf") {
        rows.push(("ebpf", "callers: eBPF connect records", &["ConnectRecord"]));
    } else {
        eprintln!(
            "*** the eBPF path is not built (run with --all-features or --features ebpf) ***"
        );
    }
    for (lookup, banner, instance_found_by) in rows {
        let (_gate, addr, _worker, seen) =
            separated_gate_with(dir.path(), &emulator_addr, &["--caller-lookup", lookup]);
        assert!(
            seen.iter().any(|l| l.contains(banner)),
            "{lookup}: {seen:?}"
        );
        assert_eq!(curl_as(ALLOWED_UID, &token(&addr)).0, 200, "{lookup}");
        assert_eq!(curl_as(DENIED_UID, &token(&addr)).0, 403, "{lookup}");
        // No assignment covers instance metadata, and curl is no trusted service.
        assert_eq!(curl_as(ALLOWED_UID, &instance(&addr)).0, 403, "{lookup}");
        let audit = std::fs::read_to_string(dir.path().join("audit").join("audit.log")).unwrap();
        let decided: Vec<serde_json::Value> = audit
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|l| l["event"]["outcome"].is_string())
            .collect();
        let last = &decided[decided.len() - 3..];
        for (line, uid) in last[..2].iter().zip([ALLOWED_UID, DENIED_UID]) {
            assert_eq!(
                line["event"]["caller"]["lookup"], "SocketOnly",
                "{lookup}: {line}"
            );
            assert_eq!(line["event"]["caller"]["uid"], uid, "{lookup}: {line}");
        }
        let found_by = last[2]["event"]["caller"]["lookup"]
            .as_str()
            .unwrap_or("-")
            .to_owned();
        assert!(
            instance_found_by.contains(&found_by.as_str()),
            "{lookup}: {}",
            last[2]
        );
        assert_eq!(
            last[2]["event"]["caller"]["exe"], "/usr/bin/curl",
            "{lookup}: {}",
            last[2]
        );
        assert_eq!(
            last[2]["event"]["caller"]["uid"], ALLOWED_UID,
            "{lookup}: {}",
            last[2]
        );
    }
}

#[test]
fn the_worker_serves_metrics_and_status_after_dropping_privileges() {
    if !privileged("gatehouse run --user starts processes as another user") {
        return;
    }
    let (dir, _emulator, emulator_addr) = setup();
    // The admin socket goes where the worker may create it: its audit directory.
    let socket = dir.path().join("audit").join("admin.sock");
    let db = dir.path().join("audit").join("jit.db");
    let (_gate, addr, worker, seen) = separated_gate_with(
        dir.path(),
        &emulator_addr,
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--admin-socket",
            socket.to_str().unwrap(),
            "--jit-db",
            db.to_str().unwrap(),
        ],
    );
    let metrics = http_addr(&seen, "metrics:")
        .trim_end_matches("/metrics")
        .to_owned();
    let url = format!(
        "http://{addr}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com&client_id=2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809"
    );
    assert_eq!(curl_as(ALLOWED_UID, &url).0, 200);
    assert_eq!(curl_as(DENIED_UID, &url).0, 403);
    // The worker (no capabilities) holds the metrics socket, not the broker.
    let port = metrics.rsplit_once(':').unwrap().1.parse::<u16>().unwrap();
    let inode = listening_inode(port).expect("the metrics port is listening");
    assert!(
        holds_socket(worker, inode),
        "the worker does not hold the metrics listener"
    );
    let (_, text) = common::scrape(&metrics);
    let allowed = r#"gatehouse_requests_total{endpoint="token",decision="allow",rule="one-uid-gets-storage"}"#;
    let denied = r#"gatehouse_requests_total{endpoint="token",decision="deny",rule="default"}"#;
    assert_eq!(common::sample(&text, allowed), Some(1.0), "{text}");
    assert_eq!(common::sample(&text, denied), Some(1.0), "{text}");
    let out = gatehouse()
        .args(["status", "--json", "--socket", socket.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["callers"]["lookup"], "broker");
    assert_eq!(s["pid"], worker);
    assert_eq!(s["upstream"]["last_error"], serde_json::Value::Null);
}

/// The inode of the TCP socket listening on 127.0.0.1:`port` (/proc/net/tcp).
fn listening_inode(port: u16) -> Option<u64> {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/tcp")
        .ok()?
        .lines()
        .skip(1)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(1) == Some(&want.as_str()) && f.get(3) == Some(&"0A"))
                .then(|| f.get(9)?.parse().ok())
                .flatten()
        })
}

fn holds_socket(pid: u32, inode: u64) -> bool {
    let want = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(Result::ok)
                .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy() == want))
        })
        .unwrap_or(false)
}

//! What the gate sends upstream, and what it does when upstream or the
//! audit log fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const INSTANCE: &str = "/metadata/instance?api-version=2021-02-01";

fn everyone_instance() -> String {
    format!(
        "{IDENTITIES}\n[[assignments]]\nname = \"all\"\nprincipal = \"everyone\"\nrole = \"Instance Metadata Reader\"\n"
    )
}

/// A gate letting everyone read instance metadata, in front of `base`
/// (no emulator).
fn start_before(base: &str) -> Harness {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    Harness::start_upstream(&everyone_instance(), base, rt, None)
}

/// Make the emulator behind `h` answer with `faults`.
fn set_faults(h: &Harness, faults: gatehouse_emulator::Faults) {
    h.emulator.as_ref().unwrap().set_faults(faults);
}

/// The emulator answers the next request with 429, `Retry-After: 7` and
/// `body`.
fn throttle_once(h: &Harness, body: Option<String>) {
    set_faults(
        h,
        gatehouse_emulator::Faults {
            forced: vec![gatehouse_emulator::ForcedStatus {
                endpoint: None,
                status: 429,
                body,
                retry_after_secs: Some(7),
                count: Some(1),
            }],
            ..Default::default()
        },
    );
}

/// The head of the gate's answer to an instance metadata request from
/// this process.
fn answer_head(h: &Harness) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "-H", "Metadata: true"])
        .arg(format!("http://{}{INSTANCE}", h.addr))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A one-shot upstream that records the request head it gets.
fn recording_upstream() -> (String, mpsc::Receiver<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_owned());
        }
        let body = "{\"compute\":{}}";
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nX-Upstream-Secret: s\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        tx.send(head).unwrap();
    });
    (base, rx)
}

#[test]
fn upstream_sees_only_what_was_decided() {
    if !privileged("upstream_sees_only_what_was_decided") {
        return;
    }
    let (base, heads) = recording_upstream();
    let h = start_before(&base);
    let r = h.curl_with(
        UID_A,
        "/metadata//instance/./?api-version=2021-02-01&format=json",
        &[
            "-H",
            "Metadata: true",
            "-H",
            "Connection: keep-alive, X-Hop",
            "-H",
            "X-Hop: 1",
            "-H",
            "Proxy-Authorization: Basic eDp5",
            "-H",
            "Authorization: Bearer not-for-imds",
            "-H",
            "Forwarded: for=10.0.0.9",
            "-H",
            "Cookie: c=1",
            "-H",
            "TE: trailers",
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, "{\"compute\":{}}", "the body comes back unchanged");
    let head = heads.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        head[0], "GET /metadata/instance?api-version=2021-02-01&format=json HTTP/1.1",
        "{head:?}"
    );
    let names: Vec<String> = head[1..]
        .iter()
        .map(|l| l.split(':').next().unwrap().to_ascii_lowercase())
        .collect();
    for name in &names {
        assert!(
            ["host", "metadata"].contains(&name.as_str()),
            "header `{name}` went upstream: {head:?}"
        );
    }
    assert!(
        head.iter()
            .any(|l| l.eq_ignore_ascii_case("metadata: true")),
        "{head:?}"
    );
}

#[test]
fn an_unreachable_imds_gets_a_quick_imds_shaped_503() {
    if !privileged("an_unreachable_imds_gets_a_quick_imds_shaped_503") {
        return;
    }
    let h = Harness::start(&everyone_instance());
    set_faults(
        &h,
        gatehouse_emulator::Faults {
            outage: true,
            ..Default::default()
        },
    );
    let started = Instant::now();
    let r = h.curl(UID_A, INSTANCE);
    assert!(started.elapsed() < Duration::from_secs(5), "never a hang");
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"], "service_unavailable");
    assert_eq!(h.decision(&r.decision_id())["event"]["outcome"], "error");

    // Nothing listening at all: the same.
    let h = start_before(&dead_base());
    let r = h.curl(UID_A, INSTANCE);
    assert_eq!(r.status, 503, "{}", r.body);
}

#[test]
fn throttling_is_passed_on_with_retry_after() {
    if !privileged("throttling_is_passed_on_with_retry_after") {
        return;
    }
    let h = Harness::start(&everyone_instance());
    throttle_once(&h, Some("{\"error\":\"too_many_requests\"}".into()));
    let r = h.curl(UID_A, INSTANCE);
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.body, "{\"error\":\"too_many_requests\"}");
    throttle_once(&h, None);
    let headers = answer_head(&h).to_ascii_lowercase();
    assert!(headers.starts_with("http/1.1 429"), "{headers}");
    assert!(headers.contains("retry-after: 7"), "{headers}");
    // The fault applied once; the next request is served.
    assert!(answer_head(&h).starts_with("HTTP/1.1 200"));
}

/// Unmounts the tmpfs on drop.
struct Mount(std::path::PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_audit_disk_denies_instead_of_serving_unrecorded() {
    if !privileged("a_full_audit_disk_denies_instead_of_serving_unrecorded") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("audit");
    std::fs::create_dir(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(ok.success(), "mounting a small tmpfs");
    let _mount = Mount(mnt.clone());

    let h = Harness::start_with_audit(&everyone_instance(), &mnt.join("audit.log"));
    assert_eq!(h.curl(UID_A, INSTANCE).status, 200);

    // Fill the disk.
    let filler = mnt.join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=4k", "count=1000"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    // The audit file's last page may still have room for a line or two;
    // after that, every request is refused — none is served unrecorded.
    let mut served = 1;
    let refused = loop {
        let r = h.curl(UID_A, INSTANCE);
        match r.status {
            200 => served += 1,
            503 => break r,
            other => panic!("unexpected {other}: {}", r.body),
        }
        assert!(served < 20, "the full disk never refused a request");
    };
    assert!(!refused.body.contains("compute"), "{}", refused.body);
    assert!(refused.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("audit"));
    let text = std::fs::read_to_string(&h.audit_path).unwrap();
    let recorded = text
        .lines()
        .filter(|l| l.contains("\"outcome\":\"allow\""))
        .count();
    assert_eq!(recorded, served, "every served request has its audit line");

    // Space again: served and recorded again, and the chain still verifies.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(h.curl(UID_A, INSTANCE).status, 200);
    gatehouse_audit::verify(std::slice::from_ref(&h.audit_path)).unwrap();
}

/// The limit holds across serving threads: each accepts from the same
/// listener, and one uid's connections are counted once for all of them.
#[test]
fn one_uid_flooding_the_gate_does_not_starve_another() {
    if !privileged("one_uid_flooding_the_gate_does_not_starve_another") {
        return;
    }
    for threads in [1, 2, 3] {
        let h = Harness::start_opts(
            &everyone_instance(),
            Opts {
                threads,
                ..Opts::default()
            },
        );
        // Root (this test process) opens more idle connections than one uid
        // may hold; the excess is closed at once instead of waiting in line.
        let limit = gatehouse_gate::server::MAX_CONNECTIONS_PER_UID;
        let mut idle = Vec::new();
        for _ in 0..limit + 20 {
            idle.push(std::net::TcpStream::connect(h.addr).unwrap());
        }
        std::thread::sleep(Duration::from_millis(300));
        let mut closed = 0;
        for s in &idle {
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            let mut buf = [0u8; 1];
            if matches!(std::io::Read::read(&mut &*s, &mut buf), Ok(0)) {
                closed += 1;
            }
        }
        assert_eq!(
            closed, 20,
            "{threads} threads: exactly the excess over {limit} is turned away"
        );
        // Another uid is served at once.
        let started = Instant::now();
        assert_eq!(h.curl(UID_A, INSTANCE).status, 200, "{threads} threads");
        assert!(started.elapsed() < Duration::from_secs(3));
        drop(idle);
    }
}

#[test]
fn a_client_that_hangs_up_mid_request_is_still_audited() {
    if !privileged("a_client_that_hangs_up_mid_request_is_still_audited") {
        return;
    }
    let h = Harness::start(&everyone_instance());
    set_faults(
        &h,
        gatehouse_emulator::Faults {
            latency_ms: 800,
            ..Default::default()
        },
    );
    {
        let mut s = std::net::TcpStream::connect(h.addr).unwrap();
        write!(
            s,
            "GET {INSTANCE} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n\r\n"
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        s.shutdown(std::net::Shutdown::Both).unwrap();
    }
    // The upstream call was under way when the client left: it completes
    // and is recorded, never lost.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let requests: Vec<_> = h
            .audit()
            .into_iter()
            .filter(|r| r["event"]["type"] == "request")
            .collect();
        if let Some(r) = requests.first() {
            assert_eq!(r["event"]["upstream"]["status"], 200, "{r}");
            break;
        }
        assert!(Instant::now() < deadline, "the request was never audited");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_approval_is_recorded_before_it_is_forwarded() {
    if !privileged("an_approval_is_recorded_before_it_is_forwarded") {
        return;
    }
    let mut config = gatehouse_emulator::EmulatorConfig::demo();
    config.scheduled_events.push(
        serde_json::from_value(serde_json::json!({
            "event_id": "E1", "event_type": "Reboot", "resources": ["demo-vm"]
        }))
        .unwrap(),
    );
    let policy = format!(
        "{IDENTITIES}\n[[assignments]]\nname = \"approver\"\nprincipal = \"uid:{UID_A}\"\nrole = \"Scheduled Events Approver\"\n"
    );
    let h = Harness::start_with(&policy, config);
    let target = "/metadata/scheduledevents?api-version=2020-07-01";
    let before = h.curl(UID_A, target);
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(before.json()["Events"].as_array().unwrap().len(), 1);
    let approve = h.curl_with(
        UID_A,
        target,
        &[
            "-H",
            "Metadata: true",
            "-H",
            "Content-Type: application/json",
            "-X",
            "POST",
            "-d",
            r#"{"StartRequests":[{"EventId":"E1"}]}"#,
        ],
    );
    assert_eq!(approve.status, 200, "{}", approve.body);
    let records = h.audit();
    let forwarding = records
        .iter()
        .position(|r| r["event"]["type"] == "forwarding")
        .expect("an intent record");
    let id = records[forwarding]["event"]["decision"].clone();
    let done = records
        .iter()
        .position(|r| r["event"]["type"] == "request" && r["event"]["decision"] == id)
        .unwrap();
    assert!(
        forwarding < done,
        "the approval is recorded before it is forwarded"
    );
    assert_eq!(
        records[done]["event"]["request"]["action"],
        "Gatehouse/scheduledEvents/approve/action"
    );
    assert_eq!(
        h.curl(UID_A, target).json()["Events"]
            .as_array()
            .unwrap()
            .len(),
        0,
        "approved"
    );
    // Another uid may not approve.
    let denied = h.curl_with(
        UID_B,
        target,
        &["-H", "Metadata: true", "-X", "POST", "-d", "{}"],
    );
    assert_eq!(denied.status, 403);
}

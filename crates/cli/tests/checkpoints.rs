//! Audit checkpoints in the deployed shape: `gatehouse run --user`, the
//! broker holding the key (root's, 0600, unreadable by the worker), a
//! checkpoint at the interval and one after `gate_stopped` on SIGTERM;
//! then, off the box, `gatehouse audit key` and `audit verify --against`
//! with its exit codes. Needs root (skips loudly otherwise).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::separated::{children, ensure_worker_user, wait_until, WORKER_UID, WORKER_USER};
use common::{
    gatehouse, http_addr, privileged, start_until, storage_assignment, STORAGE_WRITER_IDENTITY,
};
use serde_json::Value;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

fn policy_text() -> String {
    format!(
        "{STORAGE_WRITER_IDENTITY}{}",
        storage_assignment("one-uid-gets-storage", "uid:46097")
    )
}

/// The Ed25519 base point: a valid public key that signed nothing here.
const OTHER_KEY: &str = "ed25519:5866666666666666666666666666666666666666666666666666666666666666";

fn records(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn verify(log: &std::path::Path, evidence: &std::path::Path, key: &str) -> (i32, String) {
    let out = gatehouse()
        .args(["audit", "verify", log.to_str().unwrap(), "--against"])
        .arg(evidence)
        .args(["--key", key])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_separated_gate_signs_checkpoints_with_the_brokers_key_and_they_verify_off_the_box() {
    if !privileged("gatehouse run --user starts processes as another user") {
        return;
    }
    ensure_worker_user();
    let dir = tempfile::tempdir().unwrap();
    let policy = common::readable_policy(dir.path(), &policy_text());
    let audit_dir = dir.path().join("audit");
    std::fs::create_dir(&audit_dir).unwrap();
    std::os::unix::fs::chown(&audit_dir, Some(WORKER_UID), Some(WORKER_UID)).unwrap();
    std::fs::set_permissions(&audit_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let log = audit_dir.join("audit.log");
    let key = dir.path().join("keys").join("audit.key");

    let emulator = start_until(
        gatehouse().args(["emulate", "--listen", "127.0.0.1:0"]),
        "IMDS on http://",
    );
    let emulator_addr = http_addr(&emulator.seen, "IMDS on http://");
    let started = start_until(
        gatehouse().args([
            "run",
            "--user",
            WORKER_USER,
            "--upstream",
            &format!("http://{emulator_addr}"),
            "--policy",
            policy.to_str().unwrap(),
            "--audit",
            log.to_str().unwrap(),
            "--audit-key",
            key.to_str().unwrap(),
            "--checkpoint-every",
            "1",
            "--listen",
            "127.0.0.1:0",
            "--firewall",
            "off",
            "--no-upstream-mark",
        ]),
        "listening on http://",
    );
    assert!(
        started
            .seen
            .iter()
            .any(|l| l.contains("created the audit checkpoint key")),
        "{:?}",
        started.seen
    );
    let addr = http_addr(&started.seen, "listening on http://");
    let mut gate = started.running;
    let broker = gate.0.id();
    wait_until("the worker is up", || children(broker).len() == 1);

    // The key: root's, 0600, and the worker's user cannot read it.
    let meta = std::fs::metadata(&key).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o600));
    let read_as_worker = Command::new("/bin/cat")
        .arg(&key)
        .uid(WORKER_UID)
        .gid(WORKER_UID)
        .output()
        .unwrap();
    assert!(
        !read_as_worker.status.success(),
        "the worker's user read the key"
    );

    let url = format!("http://{addr}/metadata/instance?api-version=2021-02-01");
    for _ in 0..3 {
        let status = Command::new("/usr/bin/curl")
            .args(["-s", "-o", "/dev/null", "-H", "Metadata: true", &url])
            .status()
            .unwrap();
        assert!(status.success());
    }
    // A checkpoint within the interval (1 s), well inside 10 s.
    wait_until("a periodic checkpoint", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("\"type\":\"checkpoint\""))
    });
    Command::new("kill")
        .args(["-TERM", &broker.to_string()])
        .status()
        .unwrap();
    wait_until("the gate stops", || gate.0.try_wait().unwrap().is_some());

    // The last record is a checkpoint of the `gate_stopped` record.
    let text = std::fs::read_to_string(&log).unwrap();
    let all = records(&text);
    let last = &all[all.len() - 1];
    let stopped = &all[all.len() - 2];
    assert_eq!(last["event"]["type"], "checkpoint", "{last}");
    assert_eq!(stopped["event"]["type"], "gate_stopped", "{stopped}");
    assert_eq!(last["event"]["head_seq"], stopped["seq"]);
    assert_eq!(last["event"]["head_hash"], stopped["hash"]);

    // Off the box: the public key, and the exported records as evidence.
    let out = gatehouse()
        .args(["audit", "key", "--audit-key", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(public.starts_with("ed25519:"), "{public}");
    assert!(public.contains(" SHA256:"), "{public}");
    assert_eq!(last["event"]["key_id"], public.split(' ').nth(1).unwrap());
    let collected = dir.path().join("collected.jsonl");
    std::fs::write(&collected, &text).unwrap();

    let (code, said) = verify(&log, &collected, &public);
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("ok:"), "{said}");
    let (code, said) = verify(&log, &collected, OTHER_KEY);
    assert_eq!(code, 3, "another key's evidence is refused: {said}");
    assert!(said.contains("not by the key given"), "{said}");

    // Root cuts the last records (the stop and its checkpoint): detected.
    let kept: String = text
        .lines()
        .take(all.len() - 2)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&log, kept).unwrap();
    let (code, said) = verify(&log, &collected, &public);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("truncation"), "{said}");
    drop(emulator);
    std::thread::sleep(Duration::from_millis(10));
}

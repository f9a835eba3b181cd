//! Real Azure client libraries through the gate: azure-identity (sync and
//! async), msal and `DefaultAzureCredential`, each run as a test uid from the
//! venv that `.ci/python-venv.sh` builds, pointed at the gate with
//! `AZURE_POD_IDENTITY_AUTHORITY_HOST` and no retries.
//!
//! What a client prints is one JSON line from `tests/clients/client.py`; the
//! token never leaves the client, only its length.

// Helpers outside `#[test]` functions are test code too: a failed step must
// fail the test loudly. (This also covers the shared harness in `common`.)
#![allow(
    clippy::disallowed_methods,
    reason = "tests seed manual clocks and check answers against the wall clock"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration-test helpers: failing loudly is the point"
)]

mod common;
use common::*;

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STORAGE: &str = "https://storage.azure.com";
/// Every mode of client.py; the probe only makes sense for an allowed caller.
const ALL_MODES: [&str; 4] = ["identity-sync", "identity-async", "msal", "default-probe"];
const DENIED_MODES: [&str; 3] = ["identity-sync", "identity-async", "msal"];
/// One client run, Python start-up included, must finish within this.
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);

fn policy() -> String {
    let a_storage = a_storage();
    format!(
        r#"{IDENTITIES}
{a_storage}"#
    )
}

/// The venv's interpreter, or `None` (after saying so loudly) when the venv
/// is missing; under GATEHOUSE_REQUIRE_PRIVILEGED=1 a missing venv fails.
fn venv_python(test: &str) -> Option<PathBuf> {
    let venv = std::env::var_os("GATEHOUSE_VENV")
        .map_or_else(|| PathBuf::from("/opt/gatehouse-venv"), PathBuf::from);
    let python = venv.join("bin/python");
    if python.exists() {
        return Some(python);
    }
    let msg = format!(
        "SKIPPED (python venv missing: run .ci/python-venv.sh): {test} — no {}",
        python.display()
    );
    if std::env::var("GATEHOUSE_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!("{msg} — GATEHOUSE_REQUIRE_PRIVILEGED=1 forbids skipping");
    }
    eprintln!("\n*** {msg} ***\n");
    None
}

/// Root, a venv and the script in a place other uids can read.
struct Clients {
    python: PathBuf,
    /// What the kernel reports as the running executable: the venv's
    /// `python` is a symlink to Debian's `/usr/bin/python3.X`.
    exe: String,
    dir: tempfile::TempDir,
}

impl Clients {
    fn setup(test: &str) -> Option<Clients> {
        if !privileged(test) {
            return None;
        }
        let python = venv_python(test)?;
        let exe = std::fs::canonicalize(&python)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // The repository may sit under /root, closed to the test uids.
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = dir.path().join("client.py");
        std::fs::copy(
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/client.py"),
            &script,
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
        Some(Clients { python, exe, dir })
    }

    /// Run client.py in `mode` as `uid` against the gate; its JSON line and pid.
    fn run(&self, h: &Harness, uid: u32, mode: &str) -> (Value, u32) {
        let mut cmd = Command::new(&self.python);
        cmd.arg(self.dir.path().join("client.py"))
            .args([mode, STORAGE, STORAGE_WRITER])
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/tmp")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env(
                "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                format!("http://{}", h.addr),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // As root, std drops the supplementary groups when uid is set.
            .uid(uid)
            .gid(uid);
        let mut child = cmd.spawn().unwrap();
        let pid = child.id();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > CLIENT_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{mode} as uid {uid}: no answer within {CLIENT_DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{mode} as uid {uid} exited {}: {stdout}\n{stderr}",
            out.status
        );
        let line = stdout
            .lines()
            .last()
            .unwrap_or_else(|| panic!("{mode}: no output\n{stderr}"));
        let json: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{mode}: not JSON ({e}): {line}\n{stderr}"));
        (json, pid)
    }
}

/// The audit records of one client process.
/// `--all-holders`: the policy names uids only, which needs no process, but these
/// tests check that each audit line names the client process that asked.
fn all_holders() -> Opts {
    Opts {
        all_holders: true,
        ..Opts::default()
    }
}

fn records_of(h: &Harness, pid: u32) -> Vec<Value> {
    h.audit()
        .into_iter()
        .filter(|r| r["event"]["caller"]["pid"] == pid)
        .collect()
}

/// The decision id a gatehouse denial carries: `... (decision ID)`.
fn decision_in(message: &str) -> String {
    let start = message
        .find("(decision ")
        .unwrap_or_else(|| panic!("no decision id in {message}"))
        + "(decision ".len();
    let rest = &message[start..];
    rest[..rest.find(')').unwrap()].to_owned()
}

#[test]
fn an_allowed_uid_gets_a_token_from_every_client() {
    let Some(clients) = Clients::setup("an_allowed_uid_gets_a_token_from_every_client") else {
        return;
    };
    let h = Harness::start_opts(&policy(), all_holders());
    for mode in ALL_MODES {
        let (out, pid) = clients.run(&h, UID_A, mode);
        assert_eq!(out["ok"], true, "{mode}: {out}");
        assert!(out["token_len"].as_u64().unwrap() > 100, "{mode}: {out}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let expires_on = out["expires_on"].as_u64().unwrap();
        assert!(
            expires_on > now + 3600,
            "{mode}: a managed-identity token lives for hours: {out}"
        );
        // No retries: one token request, answered 200 (the probe aside).
        let last = out["responses"]
            .as_array()
            .unwrap()
            .last()
            .cloned()
            .unwrap();
        assert_eq!(last["status"], 200, "{mode}: {out}");
        assert_eq!(last["metadata"], true, "{mode}: {out}");

        let records = records_of(&h, pid);
        let allowed: Vec<&Value> = records
            .iter()
            .filter(|r| r["event"]["outcome"] == "allow")
            .collect();
        assert_eq!(
            allowed.len(),
            1,
            "{mode}: one allowed request from pid {pid}: {records:?}"
        );
        let caller = &allowed[0]["event"]["caller"];
        assert_eq!(caller["uid"], UID_A, "{mode}");
        assert_eq!(
            caller["exe"],
            clients.exe.as_str(),
            "{mode}: the venv's python, symlinks resolved"
        );
        assert_eq!(allowed[0]["event"]["decided_by"][0], "a-storage", "{mode}");
        assert_eq!(
            allowed[0]["event"]["request"]["identity"], "storage-writer",
            "{mode}"
        );
    }
}

#[test]
fn default_credential_probe_gets_a_fast_400_then_a_token() {
    let Some(clients) = Clients::setup("default_credential_probe_gets_a_fast_400_then_a_token")
    else {
        return;
    };
    let h = Harness::start_opts(&policy(), all_holders());
    let (out, _pid) = clients.run(&h, UID_A, "default-probe");
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(
        out["probed"], true,
        "the probe ran and found an endpoint: {out}"
    );
    let responses = out["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 2, "a probe, then the token request: {out}");
    // The probe carries no Metadata header: IMDS's 400, well inside the
    // client's 1 s probe budget.
    assert_eq!(responses[0]["status"], 400, "{out}");
    assert_eq!(responses[0]["metadata"], false, "{out}");
    assert!(
        responses[0]["ms"].as_u64().unwrap() < 1000,
        "the probe's 400 comes back within its 1 s budget: {out}"
    );
    assert_eq!(responses[1]["status"], 200, "{out}");
    assert_eq!(responses[1]["metadata"], true, "{out}");
}

#[test]
fn a_denied_uid_gets_a_credential_error_with_the_gatehouse_reason() {
    let Some(clients) =
        Clients::setup("a_denied_uid_gets_a_credential_error_with_the_gatehouse_reason")
    else {
        return;
    };
    let h = Harness::start_opts(&policy(), all_holders());
    for mode in DENIED_MODES {
        let (out, pid) = clients.run(&h, UID_B, mode);
        assert_eq!(out["ok"], false, "{mode}: {out}");
        let message = out["message"].as_str().unwrap();
        assert!(
            message.contains("gatehouse:"),
            "{mode}: the reason reaches the user: {message}"
        );
        assert!(message.contains("access_denied"), "{mode}: {message}");
        let error_type = out["error_type"].as_str().unwrap();
        let credential_error = [
            "ClientAuthenticationError",
            "CredentialUnavailableError",
            "access_denied",
        ];
        assert!(
            credential_error.contains(&error_type),
            "{mode}: a credential error, not a crash: {out}"
        );
        // A 403 is final: the client asked once.
        let statuses: Vec<&Value> = out["responses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["status"])
            .collect();
        assert_eq!(statuses, [403], "{mode}: {out}");

        let id = decision_in(message);
        let record = h.decision(&id);
        assert_eq!(record["event"]["outcome"], "deny", "{mode}");
        assert_eq!(record["event"]["caller"]["uid"], UID_B, "{mode}");
        assert_eq!(record["event"]["caller"]["pid"], pid, "{mode}");
        assert_eq!(
            record["event"]["caller"]["exe"],
            clients.exe.as_str(),
            "{mode}"
        );
        assert_eq!(
            record["event"]["request"]["identity"], "storage-writer",
            "{mode}"
        );
        assert!(
            !message.contains("a-storage"),
            "{mode}: a denial never names others' assignments: {message}"
        );
    }
}

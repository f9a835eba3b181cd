//! The `gatehouse` binary as an operator uses it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::{
    assert_audit_verifies, assert_success, banner_url, http_addr, start_until_line, Running,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn gatehouse() -> Command {
    common::gatehouse()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Start `gatehouse run` and wait for its banner; returns the address.
fn start_gate(args: &[&str]) -> (Running, String, Vec<String>) {
    start_gate_in(&std::env::current_dir().unwrap(), args)
}

fn start_gate_in(cwd: &Path, args: &[&str]) -> (Running, String, Vec<String>) {
    let emulator = args.contains(&"emulator");
    let started = start_until_line(
        gatehouse().current_dir(cwd).arg("run").args(args),
        |line| {
            line.contains("audit:   gatehouse audit verify")
                || line.contains("audit log:") && !emulator
        },
        "the audit banner",
    );
    let addr = http_addr(&started.seen, "listening on http://");
    (started.running, addr, started.seen)
}

/// A try-it gate (`gatehouse run --upstream emulator`) started from the
/// repository, its audit log in a directory of its own.
struct TryIt {
    _gate: Running,
    addr: String,
    lines: Vec<String>,
    audit: PathBuf,
    _dir: tempfile::TempDir,
}

/// Start the try-it gate with `before` (e.g. `--cloud gcp`) and the
/// repository's `policy`.
fn try_it(before: &[&str], policy: &str) -> TryIt {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.log");
    let audit_s = audit.to_str().unwrap().to_owned();
    let mut args = before.to_vec();
    args.extend_from_slice(&[
        "--upstream",
        "emulator",
        "--policy",
        policy,
        "--listen",
        "127.0.0.1:0",
        "--audit",
        &audit_s,
    ]);
    let (gate, addr, lines) = start_gate_in(&repo(), &args);
    TryIt {
        _gate: gate,
        addr,
        lines,
        audit,
        _dir: dir,
    }
}

fn curl(url: &str) -> (u16, String) {
    curl_header("Metadata: true", url)
}

/// GET `url` with `header`: (status, body).
fn curl_header(header: &str, url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-H", header, "-w", "\n%{http_code}", url])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = s.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_owned())
}

#[test]
fn run_without_an_upstream_refuses_and_says_why() {
    let out = gatehouse()
        .args(["run", "--policy", "examples/policy.toml"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no upstream named"), "{err}");
    assert!(
        err.contains("--upstream imds") && err.contains("--upstream emulator"),
        "{err}"
    );
    let out = gatehouse()
        .args(["run", "--upstream", "imdss"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_malformed_policy_lists_every_error_and_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("bad.toml");
    std::fs::write(
        &policy,
        "version = 1\n\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:x\"\nrole = \"Token Reader\"\nidentities = [\"ghost\"]\naudiences = [\"*\"]\n\n[[assignments]]\nname = \"a\"\nprincipal = \"wizard:merlin\"\nrole = \"No Such Role\"\n",
    )
    .unwrap();
    let out = gatehouse()
        .args(["check", "--policy"])
        .arg(&policy)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "bad.toml:5:",
        "bad.toml:7:",
        "bad.toml:11:",
        "bad.toml:12:",
        "bad.toml:13:",
    ] {
        assert!(err.contains(needle), "missing {needle} in:\n{err}");
    }
    // Each error once, then the count.
    let listed = err.lines().filter(|l| l.contains(": error: ")).count();
    assert!(
        err.trim_end().ends_with(&format!("{listed} errors")),
        "{err}"
    );
    let mut seen = std::collections::HashSet::new();
    for line in err.lines().filter(|l| l.contains(": error: ")) {
        assert!(seen.insert(line), "printed twice: {line}\n{err}");
    }
    let out = gatehouse()
        .args([
            "run",
            "--upstream",
            "http://127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
            "--policy",
        ])
        .arg(&policy)
        .arg("--audit")
        .arg(dir.path().join("audit.log"))
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:5:") && err.contains("bad.toml:13:"),
        "{err}"
    );
    assert!(err.contains("did not start"), "{err}");
}

#[test]
fn the_example_policies_check_clean() {
    for example in [
        "examples/policy.toml",
        "examples/jit.toml",
        "examples/conditions.toml",
        "examples/rollout.toml",
    ] {
        let out = gatehouse()
            .args(["check", "--policy", example])
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The README's try-it command, as printed: one curl allowed, one denied,
/// and the audit log verifies.
#[test]
fn try_it_mode_works_as_the_readme_says() {
    // The README's command, from the repository, with its relative policy path.
    let gate = try_it(&[], "examples/policy.toml");
    let (addr, lines, audit) = (&gate.addr, &gate.lines, &gate.audit);
    let (allowed_status, allowed_body) = curl(&banner_url(lines, "allowed:"));
    assert_eq!(allowed_status, 200, "{allowed_body}");
    assert!(allowed_body.contains("access_token"));
    let (denied_status, denied_body) = curl(&banner_url(lines, "denied:"));
    assert_eq!(denied_status, 403, "{denied_body}");
    assert!(denied_body.contains("gatehouse: "), "{denied_body}");
    let (s, _) = curl(&format!(
        "http://{addr}/metadata/instance?api-version=2021-02-01"
    ));
    assert_eq!(s, 200);

    assert_audit_verifies(audit);
}

/// The README's try-it for `--cloud gcp`: the banner's curls, with GCE's
/// flavor header, one allowed and one denied; the example policy checks
/// clean for its cloud.
#[test]
fn try_it_mode_works_for_gcp() {
    let check = gatehouse()
        .args([
            "check",
            "--cloud",
            "gcp",
            "--policy",
            "examples/gcp/policy.toml",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_success(&check);
    let gate = try_it(&["--cloud", "gcp"], "examples/gcp/policy.toml");
    let (addr, lines, audit) = (&gate.addr, &gate.lines, &gate.audit);
    assert!(lines.iter().any(|l| l.contains("(gcp)")), "{lines:?}");
    let gcp_curl = |url: &str| curl_header("Metadata-Flavor: Google", url);
    let (allowed_status, allowed_body) = gcp_curl(&banner_url(lines, "allowed:"));
    assert_eq!(allowed_status, 200, "{allowed_body}");
    assert!(allowed_body.contains("access_token"), "{allowed_body}");
    let (denied_status, denied_body) = gcp_curl(&banner_url(lines, "denied:"));
    assert_eq!(denied_status, 403, "{denied_body}");
    assert_eq!(
        curl(&format!("http://{addr}/computeMetadata/v1/instance/id")).0,
        403,
        "no flavor header"
    );
    assert_audit_verifies(audit);
}

#[test]
fn reload_through_the_pid_file() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let examples = std::fs::read_to_string(repo().join("examples/policy.toml")).unwrap();
    std::fs::write(&policy, &examples).unwrap();
    let pid_file = dir.path().join("gate.pid");
    let audit = dir.path().join("audit.log");
    let (_gate, addr, _) = start_gate(&[
        "--upstream",
        "emulator",
        "--listen",
        "127.0.0.1:0",
        "--policy",
        policy.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        "--audit",
        audit.to_str().unwrap(),
    ]);
    let instance = format!("http://{addr}/metadata/instance?api-version=2021-02-01");
    assert_eq!(curl(&instance).0, 200);
    // Drop the assignment that lets everyone read instance metadata.
    let without = examples.replace("principal = \"everyone\"", "principal = \"uid:4242\"");
    std::fs::write(&policy, without).unwrap();
    let out = gatehouse()
        .args(["reload", "--pid-file"])
        .arg(&pid_file)
        .output()
        .unwrap();
    assert_success(&out);
    let deadline = Instant::now() + Duration::from_secs(10);
    while curl(&instance).0 != 403 {
        assert!(
            Instant::now() < deadline,
            "the reload did not take effect: {}",
            std::fs::read_to_string(&audit).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(&audit).unwrap();
    assert!(log.contains("\"policy_loaded\""), "{log}");
}

#[test]
fn audit_verify_names_the_edited_deleted_or_swapped_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    {
        let log =
            gatehouse_audit::AuditLog::open(&path, gatehouse_audit::Options::default()).unwrap();
        for i in 0..6 {
            log.append(
                "2026-11-25T14:00:00.000Z",
                &gatehouse_audit::Event::JitPruned {
                    requests: i,
                    finished_before: "2026-11-25T13:00:00.000Z".into(),
                },
            )
            .unwrap();
        }
    }
    let pristine = std::fs::read_to_string(&path).unwrap();
    let verify = |text: &str| {
        std::fs::write(&path, text).unwrap();
        let out = gatehouse()
            .args(["audit", "verify", "--single"])
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(verify(&pristine).0, Some(0));

    let lines: Vec<&str> = pristine.lines().collect();
    let join = |ls: Vec<&str>| ls.join("\n") + "\n";
    let edited = pristine.replacen("\"requests\":3", "\"requests\":7", 1);
    let mut deleted = lines.clone();
    deleted.remove(2);
    let mut swapped = lines.clone();
    swapped.swap(3, 4);
    // A record outside the schema, its chain intact: written through the
    // library, as a rewriter with the file would.
    let extra = dir.path().join("extra.log");
    {
        let log =
            gatehouse_audit::AuditLog::open(&extra, gatehouse_audit::Options::default()).unwrap();
        let good = gatehouse_audit::Event::PolicyLoaded { policy: "h".into() };
        log.append("2026-11-25T14:00:00.000Z", &good).unwrap();
        let unknown = serde_json::json!({"type": "policy_loaded", "policy": "h", "token": "x"});
        log.append("2026-11-25T14:00:00.001Z", &unknown).unwrap();
    }
    let unknown = std::fs::read_to_string(&extra).unwrap();
    for (what, text, line) in [
        ("a field the schema does not know", unknown, 2),
        ("edited", edited, 4),
        ("deleted", join(deleted), 3),
        ("swapped", join(swapped), 4),
    ] {
        let (code, err) = verify(&text);
        assert_eq!(code, Some(1), "{what}: {err}");
        assert!(
            err.contains(&format!("line {line}")),
            "{what} should name line {line}: {err}"
        );
    }
}

#[test]
fn audit_schema_prints_the_json_schema_of_a_record_line() {
    let out = gatehouse().args(["audit", "schema"]).output().unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema, gatehouse_audit::json_schema());
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert!(schema["$defs"]["Event"]["oneOf"].as_array().unwrap().len() >= 23);
}

#[test]
fn caller_lookup_flags_that_cannot_work_are_refused_with_a_way_out() {
    // `gatehouse run` with eBPF caller lookup and `extra`: refused at
    // start (exit 2); what it said.
    let refused = |extra: &[&str]| {
        let out = common::gatehouse()
            .args(["run", "--upstream", "emulator"])
            .args(extra)
            .args(["--caller-lookup", "ebpf", "--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{err}");
        err
    };
    let err = refused(&["--all-holders"]);
    assert!(err.contains("contradict"), "{err}");
    if !cfg!(feature = "ebpf") {
        let err = refused(&[]);
        assert!(err.contains("--features ebpf"), "{err}");
    }
}

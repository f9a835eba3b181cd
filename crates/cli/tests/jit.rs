//! `gatehouse jit` against a running `gatehouse run`, driven as several
//! users: the admin socket knows each caller from the kernel (SO_PEERCRED),
//! so what each may do follows from who they are, not from what they send.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::{
    assert_audit_verifies, assert_success, gatehouse, http_addr, privileged, start_until,
    storage_assignment, Running, STORAGE_WRITER_IDENTITY,
};
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

const REQUESTER: u32 = 46001;
const OUTSIDER: u32 = 46002;
const APPROVER: u32 = 46003;
const SECADMINS: u32 = 46100;
const STORAGE_WRITER: &str = "2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809";

fn policy() -> String {
    let assignment = storage_assignment("requester-storage-jit", &format!("uid:{REQUESTER}"));
    format!(
        r#"{STORAGE_WRITER_IDENTITY}{assignment}eligible = true
max_duration = "1h"
approvers = ["gid:{SECADMINS}"]
"#
    )
}

struct Gate {
    _child: Running,
    addr: String,
    socket: PathBuf,
    audit: PathBuf,
    _dir: tempfile::TempDir,
}

fn start(dir: tempfile::TempDir) -> Gate {
    // The test users must reach the socket.
    let policy_path = common::readable_policy(dir.path(), &policy());
    let socket = dir.path().join("admin.sock");
    let audit = dir.path().join("audit.log");
    let mut cmd = gatehouse();
    cmd.args([
        "run",
        "--upstream",
        "emulator",
        "--listen",
        "127.0.0.1:0",
        "--policy",
    ])
    .arg(&policy_path)
    .arg("--audit")
    .arg(&audit)
    .arg("--jit-db")
    .arg(dir.path().join("jit.db"))
    .arg("--admin-socket")
    .arg(&socket);
    let started = start_until(&mut cmd, "audit:   gatehouse audit verify");
    let lines = &started.seen;
    assert!(
        lines.iter().any(|l| l.contains("just-in-time:")),
        "no JIT line: {lines:?}"
    );
    let addr = http_addr(lines, "listening on http://");
    let running = started.running;
    Gate {
        _child: running,
        addr,
        socket,
        audit,
        _dir: dir,
    }
}

/// `gatehouse jit --json ARGS` as uid/gid; (exit code, answer).
fn jit(g: &Gate, uid: u32, gid: u32, args: &[&str]) -> (i32, Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.arg("jit")
        .arg("--socket")
        .arg(&g.socket)
        .arg("--json")
        .args(args)
        .env_clear();
    if uid != 0 {
        cmd.uid(uid).gid(gid);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&text).unwrap_or_else(|_| {
        panic!(
            "not JSON from uid {uid}: {text} / {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

fn kind(v: &Value) -> &str {
    v["error"]["kind"].as_str().unwrap_or("")
}

fn token_as(g: &Gate, uid: u32) -> u16 {
    let url = format!(
        "http://{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com&client_id={STORAGE_WRITER}",
        g.addr
    );
    let out = Command::new("/usr/bin/curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Metadata: true",
            &url,
        ])
        .uid(uid)
        .gid(uid)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).parse().unwrap()
}

#[test]
fn the_admin_socket_decides_by_who_connects() {
    if !privileged("the_admin_socket_decides_by_who_connects") {
        return;
    }
    let g = start(tempfile::tempdir().unwrap());

    // Who the gate takes each caller for comes from the kernel.
    let (code, me) = jit(&g, REQUESTER, REQUESTER, &["whoami"]);
    assert_eq!(
        (code, me["whoami"]["uid"].as_u64()),
        (0, Some(u64::from(REQUESTER)))
    );
    let (_, approver) = jit(&g, APPROVER, SECADMINS, &["whoami"]);
    assert!(approver["whoami"]["gids"]
        .as_array()
        .unwrap()
        .contains(&Value::from(SECADMINS)));
    // A supplementary group counts too (SO_PEERGROUPS: the kernel's record).
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={OUTSIDER}"),
            &format!("--regid={OUTSIDER}"),
            &format!("--groups={SECADMINS}"),
            env!("CARGO_BIN_EXE_gatehouse"),
            "jit",
            "--json",
            "--socket",
        ])
        .arg(&g.socket)
        .arg("whoami")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let gids = v["whoami"]["gids"].as_array().unwrap();
    assert!(
        gids.contains(&Value::from(SECADMINS)) && gids.contains(&Value::from(OUTSIDER)),
        "{v}"
    );

    assert_eq!(token_as(&g, REQUESTER), 403, "eligible only: no token yet");

    // Only a principal holding a matching eligible assignment may ask.
    let ask = [
        "request",
        "--role",
        "Token Reader",
        "--identity",
        "storage-writer",
        "--duration",
        "3h",
        "--reason",
        "restore",
    ];
    let (code, v) = jit(&g, OUTSIDER, OUTSIDER, &ask);
    assert_eq!((code, kind(&v)), (1, "not_eligible"), "{v}");
    let (code, v) = jit(&g, REQUESTER, REQUESTER, &ask);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["record"]["state"], "pending");
    assert_eq!(
        v["record"]["duration_secs"], 3600,
        "capped at the maximum: {v}"
    );
    let id = v["record"]["id"].as_str().unwrap().to_owned();

    // The requester cannot approve, even holding the approvers' group; an
    // outsider cannot; an approver can.
    let (_, v) = jit(&g, REQUESTER, SECADMINS, &["approve", &id]);
    assert_eq!(kind(&v), "self_approval", "{v}");
    let (_, v) = jit(&g, OUTSIDER, OUTSIDER, &["approve", &id]);
    assert_eq!(kind(&v), "not_an_approver", "{v}");

    // Listing: an outsider sees none of it; the approver sees it pending.
    let (_, v) = jit(&g, OUTSIDER, OUTSIDER, &["list"]);
    assert_eq!(v["records"].as_array().unwrap().len(), 0, "{v}");
    let (_, v) = jit(&g, APPROVER, SECADMINS, &["list", "--pending"]);
    assert_eq!(v["records"][0]["id"], id.as_str(), "{v}");

    let (code, v) = jit(&g, APPROVER, SECADMINS, &["approve", &id]);
    assert_eq!(
        (code, v["record"]["state"].as_str()),
        (0, Some("active")),
        "{v}"
    );
    assert_eq!(token_as(&g, REQUESTER), 200, "the grant is honoured");
    assert_eq!(token_as(&g, OUTSIDER), 403, "for its principal only");

    // Revocation: not by an outsider; by the requester, at once.
    let (_, v) = jit(&g, OUTSIDER, OUTSIDER, &["revoke", &id]);
    assert_eq!(kind(&v), "not_allowed", "{v}");
    let (code, v) = jit(
        &g,
        REQUESTER,
        REQUESTER,
        &["revoke", &id, "--reason", "done"],
    );
    assert_eq!(
        (code, v["record"]["state"].as_str()),
        (0, Some("revoked")),
        "{v}"
    );
    assert_eq!(
        token_as(&g, REQUESTER),
        403,
        "revoked: the next request is decided without it"
    );

    // Every step is in the audit chain, with who did it.
    let text = std::fs::read_to_string(&g.audit).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            l["event"]["type"]
                .as_str()
                .or(l["type"].as_str())
                .map(str::to_owned)
        })
        .collect();
    for want in [
        "jit_requested",
        "jit_approved",
        "jit_activated",
        "jit_revoked",
    ] {
        assert!(kinds.iter().any(|k| k == want), "no {want} in {kinds:?}");
    }
    assert_audit_verifies(&g.audit);
}

#[test]
fn jit_without_a_gate_says_where_it_looked() {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["jit", "--socket", "/nonexistent/admin.sock", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/admin.sock") && err.contains("gatehouse run"),
        "{err}"
    );
}

struct Netns(String);

impl Netns {
    /// A network namespace named `prefix-PID`, deleted on drop.
    fn add(prefix: &str) -> Netns {
        let ns = Netns(format!("{prefix}-{}", std::process::id()));
        assert!(Command::new("ip")
            .args(["netns", "add", &ns.0])
            .status()
            .unwrap()
            .success());
        ns
    }

    /// `gatehouse firewall apply --policy POLICY EXTRA` in the namespace,
    /// from the SSH session `ssh_connection` if one is given.
    fn apply(
        &self,
        policy: &std::path::Path,
        extra: &[&str],
        ssh_connection: Option<&str>,
    ) -> std::process::Output {
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.0,
            env!("CARGO_BIN_EXE_gatehouse"),
            "firewall",
            "apply",
            "--policy",
        ])
        .arg(policy)
        .args(extra);
        if let Some(ssh) = ssh_connection {
            cmd.env("SSH_CONNECTION", ssh);
        }
        cmd.output().unwrap()
    }
}

/// The SSH session the lockout tests run in.
const SESSION: Option<&str> = Some("203.0.113.9 50022 10.0.0.5 22");

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn port_policy(break_glass: &str) -> String {
    format!(
        r#"version = 1
[jit]
break_glass = [{break_glass}]

[[jit_port]]
name = "ssh"
port = 22
sources = ["0.0.0.0/0"]
requesters = ["uid:0"]
approvers = ["gid:{SECADMINS}"]
"#
    )
}

/// `firewall apply` from an SSH session refuses a table that would keep
/// that session's client from connecting again — unless its address is in
/// the break-glass range. Run in a namespace of the test's own.
#[test]
fn apply_refuses_to_lock_out_the_session_it_runs_in() {
    if !privileged("apply_refuses_to_lock_out_the_session_it_runs_in") {
        return;
    }
    let ns = Netns::add("ghjit-lock");
    let dir = tempfile::tempdir().unwrap();
    let apply = |policy: &str, extra: &[&str]| {
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, policy).unwrap();
        ns.apply(&path, extra, SESSION)
    };
    let out = apply(&port_policy(""), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("203.0.113.9")
            && err.contains("break_glass")
            && err.contains("--allow-lockout"),
        "{err}"
    );
    let listed = Command::new("ip")
        .args(["netns", "exec", &ns.0, "nft", "list", "tables"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains("gatehouse"),
        "nothing was applied"
    );

    assert_success(&apply(&port_policy("\"203.0.113.0/24\""), &[]));
    assert_success(&apply(&port_policy(""), &["--allow-lockout"]));
}

/// `firewall apply` recreates the table; the open ports of a running gate
/// are put back, so an operator who came in through one is not locked out.
#[test]
fn apply_keeps_open_ports() {
    if !privileged("apply_keeps_open_ports") {
        return;
    }
    let ns = Netns::add("ghjit-keep");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    std::fs::write(&path, port_policy("")).unwrap();
    assert_success(&ns.apply(&path, &["--allow-lockout"], None));
    let nft = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", &ns.0, "nft"])
            .args(args)
            .output()
            .unwrap()
    };
    assert!(nft(&[
        "add",
        "element",
        "inet",
        "gatehouse",
        "jit4",
        "{ 203.0.113.9 . tcp . 22 timeout 10m }"
    ])
    .status
    .success());
    // The operator's own element lets the apply through, and survives it.
    assert_success(&ns.apply(&path, &[], SESSION));
    let listed =
        String::from_utf8_lossy(&nft(&["list", "set", "inet", "gatehouse", "jit4"]).stdout)
            .into_owned();
    assert!(listed.contains("203.0.113.9"), "{listed}");
}

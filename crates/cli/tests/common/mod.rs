//! What the binary's tests share: a child that dies with the test, the
//! root-or-loud-skip check, and starting `gatehouse` until a stderr line.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step must fail the test loudly"
)]

pub mod separated;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A child process, killed and reaped when the test ends (or fails).
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The head of a policy: version 1 and the emulator demo's `storage-writer`
/// identity.
pub const STORAGE_WRITER_IDENTITY: &str = r#"
version = 1

[identities.storage-writer]
kind = "user"
client_id = "2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809"
object_id = "3a7c8d9e-afb0-41c2-93e4-f5a6b7c8d90a"
resource_id = "/subscriptions/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b/resourcegroups/gatehouse-demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/storage-writer"
"#;

/// `[[assignments]]` `name`: `principal` may read the `storage-writer`
/// identity's tokens for Azure Storage (a policy's tail after
/// [`STORAGE_WRITER_IDENTITY`]).
pub fn storage_assignment(name: &str, principal: &str) -> String {
    format!(
        r#"
[[assignments]]
name = "{name}"
principal = "{principal}"
role = "Token Reader"
identities = ["storage-writer"]
audiences = ["https://storage.azure.com"]
"#
    )
}

/// curl's arguments before the URL for an IMDS request (`Metadata: true`)
/// that prints only the answer's status code.
pub const CURL_STATUS: [&str; 7] = [
    "-s",
    "-o",
    "/dev/null",
    "-H",
    "Metadata: true",
    "-w",
    "%{http_code}",
];

/// True when running as root; otherwise a loud skip — or a failure under
/// `GATEHOUSE_REQUIRE_PRIVILEGED=1`.
pub fn privileged(test: &str) -> bool {
    if gatehouse_sys::effective_uid() == 0 {
        return true;
    }
    if std::env::var("GATEHOUSE_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!("needs root: {test} — GATEHOUSE_REQUIRE_PRIVILEGED=1 forbids skipping");
    }
    eprintln!("\n*** SKIPPED (needs root): {test} ***\n");
    false
}

/// A started `gatehouse`: the stderr lines up to the awaited one, and the rest.
pub struct Started {
    pub running: Running,
    pub seen: Vec<String>,
    pub rest: Receiver<String>,
}

/// Start `gatehouse ARGS` and read its stderr until a line containing
/// `marker` (at most 60 s).
pub fn start_until(cmd: &mut Command, marker: &str) -> Started {
    start_until_line(cmd, |line| line.contains(marker), marker)
}

/// Start `gatehouse ARGS` and read its stderr until a line for which `stop`
/// holds (at most 60 s; then a failure naming `awaited`). Stderr keeps being
/// drained afterwards: a closed pipe would make the gate's own writes fail.
pub fn start_until_line(cmd: &mut Command, stop: impl Fn(&str) -> bool, awaited: &str) -> Started {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let running = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[gatehouse] {line}");
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        let found = stop(&line);
        seen.push(line);
        if found {
            return Started {
                running,
                seen,
                rest: rx,
            };
        }
    }
    panic!("`{awaited}` never appeared: {seen:?}");
}

/// `gatehouse` itself.
pub fn gatehouse() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    // The gate's audit checkpoint key: one per test uid under the target
    // directory, never the machine's /var/lib/gatehouse.
    cmd.env("GATEHOUSE_AUDIT_KEY", test_audit_key());
    cmd
}

/// Where the tests' gates keep their checkpoint key (one per uid: the key
/// must belong to the user that signs with it).
pub fn test_audit_key() -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("audit-key-{uid}"))
        .join("audit.key")
}

/// The address after `http://` on the first of `lines` that contains `on`.
pub fn http_addr(lines: &[String], on: &str) -> String {
    let line = lines
        .iter()
        .find(|l| l.contains(on))
        .unwrap_or_else(|| panic!("no `{on}` line: {lines:?}"));
    line.split("http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// The URL a try-it banner's curl line labelled `label` (`allowed:`,
/// `denied:`) asks for: its second single-quoted word.
pub fn banner_url(lines: &[String], label: &str) -> String {
    let line = lines
        .iter()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("{label} in {lines:?}"));
    line.split('\'').nth(3).unwrap().to_owned()
}

/// `GET /metrics` from a metrics listener at `addr` (HOST:PORT): (content
/// type, body).
pub fn scrape(addr: &str) -> (String, String) {
    scrape_as(
        addr,
        "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
    )
}

/// [`scrape`] with this `Accept` header.
pub fn scrape_as(addr: &str, accept: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    (ctype, body.to_owned())
}

/// The value of the sample `name{labels}` exactly as exposed (labels in
/// the order the gate writes them), if present. Fails on a malformed line.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name == series).then(|| value.parse::<f64>().unwrap())
        })
}

/// Fails unless the finished command succeeded, showing its stderr.
#[track_caller]
pub fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fails unless `gatehouse audit verify LOG` accepts the log, showing what
/// it said.
#[track_caller]
pub fn assert_audit_verifies(log: &std::path::Path) {
    let out = gatehouse()
        .args(["audit", "verify"])
        .arg(log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Create the network namespace `name` afresh (a leftover of an earlier
/// run deleted first) with its loopback up.
pub fn netns_add(name: &str) {
    let _ = Command::new("ip")
        .args(["netns", "delete", name])
        .stderr(Stdio::null())
        .status();
    assert!(Command::new("ip")
        .args(["netns", "add", name])
        .status()
        .unwrap()
        .success());
    assert!(Command::new("ip")
        .args(["netns", "exec", name, "ip", "link", "set", "lo", "up"])
        .status()
        .unwrap()
        .success());
}

/// Open `dir` to every user (mode 0755) and write `text` to its
/// `policy.toml`, readable by all (0644): for gates whose worker or test
/// users run as other uids. Returns the policy's path.
pub fn readable_policy(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, text).unwrap();
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o644)).unwrap();
    policy
}

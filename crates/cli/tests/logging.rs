//! Where the gate's own log goes: JSON lines with `--log-format json`, and
//! the journal's native protocol when stderr is systemd's journal stream.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::{banner_url, gatehouse, start_until, Running};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The try-it gate's arguments (emulator upstream, the example policy).
fn try_it_args(audit: &Path) -> Vec<String> {
    [
        "run",
        "--upstream",
        "emulator",
        "--policy",
        "examples/policy.toml",
        "--listen",
        "127.0.0.1:0",
        "--audit",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([audit.to_str().unwrap().to_owned()])
    .collect()
}

fn curl(url: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-H", "Metadata: true"])
        .args(["-w", "%{http_code}", url])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).parse().unwrap()
}

#[test]
fn json_log_lines_parse_and_carry_the_decision_fields_but_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = gatehouse();
    cmd.current_dir(repo())
        .arg("--log-format")
        .arg("json")
        .args(try_it_args(&dir.path().join("audit.log")))
        // allowed requests log at debug
        .env("GATEHOUSE_LOG", "debug")
        .env_remove("JOURNAL_STREAM");
    let started = start_until(&mut cmd, "audit:   gatehouse audit verify");
    assert_eq!(curl(&banner_url(&started.seen, "allowed:")), 200);
    assert_eq!(curl(&banner_url(&started.seen, "denied:")), 403);

    let mut events = Vec::new();
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && events.len() < 2 {
        let Ok(line) = started.rest.recv_timeout(Duration::from_millis(500)) else {
            continue;
        };
        lines.push(line.clone());
        // The banner is text for the person who started the gate; every
        // log event is one JSON object.
        if !line.starts_with('{') {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{v}");
        if v["target"] == "gatehouse::decision" {
            events.push(v);
        }
    }
    drop(started.running);
    let all = lines.join("\n");
    assert!(
        !all.contains("access_token") && !all.contains("eyJ"),
        "{all}"
    );
    assert_eq!(events.len(), 2, "{all}");
    let uid = u64::from(gatehouse_sys::effective_uid());
    // (outcome, level, status, message)
    let want = [
        ("allow", "DEBUG", 200, "request allowed"),
        ("deny", "INFO", 403, "request denied"),
    ];
    for (ev, (outcome, level, status, message)) in events.iter().zip(want) {
        assert_eq!(ev["outcome"], outcome, "{ev}");
        assert_eq!(ev["level"], level, "{ev}");
        assert_eq!(ev["status"], status, "{ev}");
        assert_eq!(ev["message"], message, "{ev}");
        assert_eq!(ev["endpoint"], "token", "{ev}");
        assert_eq!(ev["caller_uid"], uid, "{ev}");
        let id = ev["decision"].as_str().unwrap();
        assert!(
            id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{ev}"
        );
        // the same id names the decision's audit line
        let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
        assert!(audit.contains(&format!("\"decision\":\"{id}\"")), "{id}");
    }
}

/// One journal entry in the native protocol: `NAME=value\n`, or for values
/// with a newline `NAME\n` + little-endian u64 length + value + `\n`.
fn journal_fields(mut d: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while !d.is_empty() {
        let nl = d.iter().position(|&b| b == b'\n').unwrap();
        let head = &d[..nl];
        if let Some(eq) = head.iter().position(|&b| b == b'=') {
            out.push((
                String::from_utf8_lossy(&head[..eq]).into_owned(),
                String::from_utf8_lossy(&head[eq + 1..]).into_owned(),
            ));
            d = &d[nl + 1..];
        } else {
            let len = u64::from_le_bytes(d[nl + 1..nl + 9].try_into().unwrap()) as usize;
            let value = &d[nl + 9..nl + 9 + len];
            out.push((
                String::from_utf8_lossy(head).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ));
            d = &d[nl + 9 + len + 1..];
        }
    }
    out
}

/// tracing-journald always sends to /run/systemd/journal/socket, so the
/// test gives the gate a private mount namespace in which that path is a
/// bind mount of a socket the test listens on (root: `unshare --mount`).
/// Started the way systemd starts it: stderr a stream whose device:inode is
/// in `JOURNAL_STREAM`.
#[test]
fn under_systemd_the_decisions_go_to_the_journal_with_fields_and_priorities() {
    if !common::privileged("journald: a private mount namespace for the journal socket") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("journal.sock");
    let journal = UnixDatagram::bind(&sock_path).unwrap();
    journal
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let stderr_path = dir.path().join("stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let meta = stderr.metadata().unwrap();
    let script = "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && \
                  touch /run/systemd/journal/socket && \
                  mount --bind \"$0\" /run/systemd/journal/socket && exec \"$@\"";
    let child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .arg(&sock_path)
        .arg(env!("CARGO_BIN_EXE_gatehouse"))
        .args(try_it_args(&dir.path().join("audit.log")))
        .current_dir(repo())
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env("GATEHOUSE_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let running = Running(child);

    // The banner is plain stderr (the journal stream, under systemd).
    let deadline = Instant::now() + Duration::from_secs(60);
    let banner = loop {
        let text = std::fs::read_to_string(&stderr_path).unwrap();
        if text.contains("audit:   gatehouse audit verify") {
            break text;
        }
        assert!(Instant::now() < deadline, "no banner: {text}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let lines: Vec<String> = banner.lines().map(str::to_owned).collect();
    assert_eq!(curl(&banner_url(&lines, "allowed:")), 200);
    assert_eq!(curl(&banner_url(&lines, "denied:")), 403);

    let mut entries = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(n) = journal.recv(&mut buf) {
            if n > 0 {
                entries.push(journal_fields(&buf[..n]));
            }
        } else if entries.iter().any(|e| {
            e.iter()
                .any(|(k, v)| k == "GATEHOUSE_OUTCOME" && v == "deny")
        }) {
            break;
        }
    }
    drop(running);
    let field =
        |e: &[(String, String)], k: &str| e.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let denied = entries
        .iter()
        .find(|e| field(e, "GATEHOUSE_OUTCOME").as_deref() == Some("deny"))
        .unwrap_or_else(|| panic!("no denial in the journal: {entries:?}"));
    let uid = gatehouse_sys::effective_uid().to_string();
    // (field, value)
    let want = [
        ("MESSAGE", "request denied"),
        ("PRIORITY", "5"),
        ("SYSLOG_IDENTIFIER", "gatehouse"),
        ("TARGET", "gatehouse::decision"),
        ("GATEHOUSE_ENDPOINT", "token"),
        ("GATEHOUSE_STATUS", "403"),
        ("GATEHOUSE_CALLER_UID", uid.as_str()),
    ];
    for (k, v) in want {
        assert_eq!(field(denied, k).as_deref(), Some(v), "{k} in {denied:?}");
    }
    let id = field(denied, "GATEHOUSE_DECISION").unwrap();
    assert_eq!(id.len(), 12, "{id}");
    // Allowed requests log at debug: filtered out at `info`.
    assert!(
        !entries
            .iter()
            .any(|e| field(e, "GATEHOUSE_OUTCOME").as_deref() == Some("allow")),
        "{entries:?}"
    );
    // Nothing secret, and the log did not also go to stderr.
    let everything = format!("{entries:?}");
    assert!(!everything.contains("access_token") && !everything.contains("eyJ"));
    let text = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(!text.contains("request denied"), "{text}");
}

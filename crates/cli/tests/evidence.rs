//! Least privilege from evidence: `audit show`, `audit report`, `policy
//! suggest`, `check --replay` and `policy diff`, over the audit logs of a
//! real gate run recorded in tests/data/audit (record.sh makes them).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/audit")
}

fn observed() -> String {
    data().join("observe/audit.log").display().to_string()
}

fn gatehouse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .output()
        .expect("run gatehouse")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Bad inputs derived from the recorded log: what each must be called.
struct Bad {
    dir: tempfile::TempDir,
}

impl Bad {
    fn new() -> Bad {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<String> = std::fs::read_to_string(data().join("observe/audit.log.1"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        let write = |name: &str, body: String| std::fs::write(dir.path().join(name), body).unwrap();
        // A torn last line, as a crash leaves it.
        let cut = &lines[4][..lines[4].len() / 2];
        write("torn.log", format!("{}\n{}\n{cut}", lines[0], lines[1]));
        // A line cut short in the middle of the file.
        write("cut.log", format!("{}\n{cut}\n{}\n", lines[0], lines[2]));
        // A record of a newer schema: a field this version does not know.
        let newer = lines[3].replacen("\"decision\":", "\"attestation\":\"v2\",\"decision\":", 1);
        write(
            "newer.log",
            format!("{}\n{}\n{newer}\n", lines[0], lines[1]),
        );
        // A record type this version does not know.
        let kind = lines[3].replacen("\"type\":\"request\"", "\"type\":\"request_v2\"", 1);
        write("kind.log", format!("{}\n{kind}\n", lines[0]));
        // Not an audit log at all.
        std::fs::copy(data().join("observe.toml"), dir.path().join("policy.log")).unwrap();
        Bad { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// (file, line, what the error must say).
    fn cases(&self) -> Vec<(String, u64, &'static str)> {
        vec![
            (self.path("torn.log"), 3, "truncated record"),
            (self.path("cut.log"), 2, "malformed record"),
            (self.path("newer.log"), 3, "newer schema"),
            (self.path("kind.log"), 2, "newer schema"),
            (self.path("policy.log"), 1, "not a gatehouse audit log"),
        ]
    }
}

/// Runs `args` (with `{}` standing for the bad file) on each bad input:
/// exit 2, one error naming the file and line, no panic.
fn refuses_bad_input(args: &[&str]) {
    let bad = Bad::new();
    for (file, line, what) in bad.cases() {
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "{}" { file.as_str() } else { a })
            .collect();
        let out = gatehouse(&args);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {t}");
        assert!(
            t.contains(&format!("`{file}` line {line}: ")) && t.contains(what),
            "{args:?} must name {file} line {line} ({what}): {t}"
        );
        assert!(!t.contains("panicked"), "{t}");
    }
}

#[test]
fn show_filters_the_recorded_run() {
    let log = observed();
    // (filters, records shown, what each must have)
    type Check = fn(&serde_json::Value) -> bool;
    let rows: &[(&[&str], usize, Check)] = &[
        (&[], 26, |_| true),
        (&["--single"], 5, |_| true),
        (&["--type", "request"], 20, |r| {
            r["event"]["type"] == "request"
        }),
        (&["--type", "jit_requested,jit_activated"], 2, |r| {
            r["event"]["type"].as_str().unwrap().starts_with("jit_")
        }),
        (&["--uid", "46001"], 7, |r| {
            r["event"]["caller"]["uid"] == 46001
        }),
        (&["--user", "root"], 1, |r| r["event"]["caller"]["uid"] == 0),
        (&["--unit", "hl-demo-app.service"], 4, |r| {
            r["event"]["caller"]["unit"] == "hl-demo-app.service"
        }),
        (&["--exe", "/usr/bin/curl", "--uid", "46002"], 3, |_| true),
        (&["--identity", "vault-reader"], 9, |_| true),
        // Compared normalised: the trailing `/` and case do not matter.
        (&["--audience", "https://Storage.azure.com/"], 6, |_| true),
        (&["--audience", "https://management.azure.com"], 3, |_| true),
        (&["--decision", "allow"], 5, |r| {
            r["event"]["decision_detail"]["would_deny"] == false
        }),
        (
            &["--decision", "deny", "--identity", "vault-reader"],
            1,
            |_| true,
        ),
        (&["--decision", "rejected"], 2, |r| {
            r["event"]["outcome"] == "rejected"
        }),
        (&["--decision", "error"], 0, |_| true),
        (
            &[
                "--since",
                "2026-12-03T17:18:32.400Z",
                "--until",
                "2026-12-03T17:18:32.500Z",
            ],
            5,
            |_| true,
        ),
        (
            &["--since", "2026-12-03T17:18:32.502Z", "--type", "rotated"],
            1,
            |_| true,
        ),
        (&["--until", "2026-01-01T00:00:00Z"], 0, |_| true),
        (
            &["--since", "1d", "--until", "2026-01-01T00:00:00Z"],
            0,
            |_| true,
        ),
    ];
    for (filters, count, check) in rows {
        let mut args = vec!["audit", "show", log.as_str(), "--json"];
        args.extend_from_slice(filters);
        let out = gatehouse(&args);
        assert!(out.status.success(), "{filters:?}: {}", text(&out));
        let records = json_lines(&out);
        assert_eq!(records.len(), *count, "{filters:?}: {}", stdout(&out));
        for r in &records {
            assert!(check(r), "{filters:?}: {r}");
        }
    }
}

#[test]
fn show_prints_a_table_by_default() {
    let out = gatehouse(&[
        "audit",
        "show",
        &observed(),
        "--unit",
        "hl-demo-app.service",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let t = stdout(&out);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 5, "{t}");
    assert!(
        lines[0].starts_with("TIME") && lines[0].contains("IDENTITY"),
        "{t}"
    );
    assert!(
        lines[1].contains("hl-demo-app.service") && lines[1].contains("would deny"),
        "{t}"
    );
    let none = gatehouse(&["audit", "show", &observed(), "--uid", "4"]);
    assert!(
        text(&none).contains("no matching records"),
        "{}",
        text(&none)
    );
}

#[test]
fn show_refuses_bad_input_naming_file_and_line() {
    refuses_bad_input(&["audit", "show", "{}", "--single"]);
    refuses_bad_input(&["audit", "show", "{}", "--single", "--json"]);
    let out = gatehouse(&["audit", "show", &observed(), "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("`yesterday`"), "{}", text(&out));
}

#[test]
fn show_follows_the_log_across_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let options = gatehouse_audit::Options {
        rotate_bytes: Some(600),
        ..Default::default()
    };
    let log = gatehouse_audit::AuditLog::open(&path, options).unwrap();
    let loaded = |n: usize| gatehouse_audit::Event::PolicyLoaded {
        policy: format!("{n:064}"),
    };
    log.append("2026-12-03T10:00:00.000Z", &loaded(0)).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "audit",
            "show",
            "--json",
            "--follow",
            "--type",
            "policy_loaded",
        ])
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    // Appended while it runs, rotating twice or more on the way.
    for n in 1..6 {
        std::thread::sleep(Duration::from_millis(150));
        log.append("2026-12-03T10:00:01.000Z", &loaded(n)).unwrap();
    }
    assert!(gatehouse_audit::rotation_set(&path).unwrap().len() >= 3);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while seen.len() < 6 && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            seen.push(v["event"]["policy"].as_str().unwrap().to_owned());
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let want: Vec<String> = (0..6).map(|n| format!("{n:064}")).collect();
    assert_eq!(seen, want, "every record once, in order, across rotation");
    std::io::stdout().flush().unwrap();
}

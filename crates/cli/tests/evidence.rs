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

mod common;

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
        (&[], 27, |_| true),
        (&["--single"], 6, |_| true),
        (&["--type", "request"], 21, |r| {
            r["event"]["type"] == "request"
        }),
        (&["--type", "jit_requested,jit_activated"], 2, |r| {
            r["event"]["type"].as_str().unwrap().starts_with("jit_")
        }),
        (&["--uid", "46001"], 7, |r| {
            r["event"]["caller"]["uid"] == 46001
        }),
        (&["--user", "root"], 2, |r| r["event"]["caller"]["uid"] == 0),
        (&["--unit", "hl-demo-app.service"], 4, |r| {
            r["event"]["caller"]["unit"] == "hl-demo-app.service"
        }),
        (&["--exe", "/usr/bin/curl", "--uid", "46002"], 3, |_| true),
        (&["--identity", "vault-reader"], 9, |_| true),
        // Compared normalised: the trailing `/` and case do not matter.
        (&["--audience", "https://Storage.azure.com/"], 6, |_| true),
        (&["--audience", "https://management.azure.com"], 3, |_| true),
        (&["--decision", "allow"], 6, |r| {
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
                "2026-12-03T17:39:25.700Z",
                "--until",
                "2026-12-03T17:39:25.800Z",
            ],
            4,
            |_| true,
        ),
        (
            &["--since", "2026-12-03T17:39:25.916Z", "--type", "rotated"],
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

fn enforced() -> String {
    data().join("enforce/audit.log").display().to_string()
}

fn policy_file(name: &str) -> String {
    data().join(name).display().to_string()
}

/// The unit the recorded run placed a caller in, installed for as long as
/// the guard lives, so `check --strict` sees the principal exists (as it
/// would on the machine that recorded the log).
struct UnitFile(PathBuf);

impl UnitFile {
    fn install() -> Option<UnitFile> {
        if !common::privileged("suggested policy passes check --strict") {
            return None;
        }
        let path = PathBuf::from("/etc/systemd/system/hl-demo-app.service");
        std::fs::create_dir_all("/etc/systemd/system").unwrap();
        std::fs::write(&path, "[Service]\nExecStart=/usr/bin/curl\n").unwrap();
        Some(UnitFile(path))
    }
}

impl Drop for UnitFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write_temp(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

/// The `[[assignments]]` of a policy text, each as (principal, identities,
/// audiences, has a condition), without the kept eligible ones.
fn assignments(policy: &str) -> Vec<(String, String, String, bool)> {
    let doc: toml::Table = policy.parse().unwrap();
    doc.get("assignments")
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter(|a| a.get("eligible").is_none())
                .map(|a| {
                    let s = |k: &str| a.get(k).map(ToString::to_string).unwrap_or_default();
                    (
                        s("principal"),
                        s("identities"),
                        s("audiences"),
                        a.get("condition").is_some(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

const CURL: &str = "exe:sha256:27125f0331490b7fbf4da11f2bd913ce1b94e071367b2fa8e535ce8c5526e29c";

#[test]
fn suggest_grants_what_the_recorded_run_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    type Want = &'static [(&'static str, &'static str, &'static str, bool)];
    // (log, policy, extra args, the assignments it must suggest)
    let rows: &[(String, &str, &[&str], Want)] = &[
        (
            observed(),
            "observe.toml",
            &[],
            &[
                // Narrowest first: the unit, then the executable (pinned to
                // its uids by a condition); 46004's request before its
                // activation stays just in time; trailing `/` normalised.
                (
                    "unit:hl-demo-app.service",
                    "[\"storage-writer\"]",
                    "[\"https://storage.azure.com\"]",
                    true,
                ),
                (
                    "unit:hl-demo-app.service",
                    "[\"system\"]",
                    "[\"https://management.azure.com\"]",
                    true,
                ),
                (
                    CURL,
                    "[\"storage-writer\"]",
                    "[\"https://storage.azure.com\"]",
                    true,
                ),
                (
                    CURL,
                    "[\"vault-reader\"]",
                    "[\"https://vault.azure.net\"]",
                    true,
                ),
                (CURL, "", "", true),
            ],
        ),
        (
            observed(),
            "observe.toml",
            &["--any-audience"],
            &[
                (
                    "unit:hl-demo-app.service",
                    "[\"storage-writer\"]",
                    "[\"*\"]",
                    true,
                ),
                ("unit:hl-demo-app.service", "[\"system\"]", "[\"*\"]", true),
                (CURL, "[\"storage-writer\"]", "[\"*\"]", true),
                (CURL, "[\"vault-reader\"]", "[\"*\"]", true),
                (CURL, "", "", true),
            ],
        ),
        (
            // Enforce mode on uids alone: the record names the uid only.
            enforced(),
            "enforce.toml",
            &[],
            &[
                (
                    "uid:46001",
                    "[\"storage-writer\"]",
                    "[\"https://storage.azure.com\"]",
                    false,
                ),
                (
                    "uid:46002",
                    "[\"storage-writer\"]",
                    "[\"https://storage.azure.com\"]",
                    false,
                ),
                (
                    "uid:46002",
                    "[\"vault-reader\"]",
                    "[\"https://vault.azure.net\"]",
                    false,
                ),
            ],
        ),
    ];
    let _unit = UnitFile::install();
    for (i, (log, policy, extra, want)) in rows.iter().enumerate() {
        let policy = policy_file(policy);
        let mut args = vec![
            "policy",
            "suggest",
            "--from-audit",
            log,
            "--policy",
            &policy,
        ];
        args.extend_from_slice(extra);
        let out = gatehouse(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        let suggested = stdout(&out);
        let got = assignments(&suggested);
        let want: Vec<(String, String, String, bool)> = want
            .iter()
            .map(|(p, i, a, c)| (format!("\"{p}\""), i.to_string(), a.to_string(), *c))
            .collect();
        assert_eq!(got, want, "{args:?}:\n{suggested}");
        // Every suggestion says what evidence it stands on.
        assert_eq!(
            suggested.matches("# evidence: ").count(),
            want.len(),
            "{suggested}"
        );
        if extra.is_empty() {
            assert!(
                !suggested.contains("\"*\""),
                "never widens by itself: {suggested}"
            );
        }
        let file = write_temp(&dir, &format!("suggested-{i}.toml"), &suggested);
        let strict = if _unit.is_some() || !suggested.contains("unit:") {
            vec!["check", "--strict", "--policy", &file]
        } else {
            vec!["check", "--policy", &file]
        };
        let check = gatehouse(&strict);
        assert!(
            check.status.success(),
            "{strict:?}: {}\n{suggested}",
            text(&check)
        );
        // Replayed against what it was learnt from, nothing allowed breaks.
        let replay = gatehouse(&["check", "--policy", &file, "--replay", log, "--json"]);
        assert!(replay.status.success(), "{}\n{suggested}", text(&replay));
        let r: serde_json::Value = serde_json::from_str(&stdout(&replay)).unwrap();
        assert_eq!(r["allow_to_deny"], 0, "{r}");
    }
}

#[test]
fn suggest_patch_adds_only_what_the_policy_does_not_allow() {
    let dir = tempfile::tempdir().unwrap();
    let current = std::fs::read_to_string(data().join("enforce.toml")).unwrap();
    let path = write_temp(&dir, "policy.toml", &current);
    let suggest_patch = || {
        gatehouse(&[
            "policy",
            "suggest",
            "--from-audit",
            &enforced(),
            "--policy",
            &path,
            "--patch",
        ])
    };
    let out = suggest_patch();
    assert!(out.status.success(), "{}", text(&out));
    let patch = stdout(&out);
    assert!(
        patch.starts_with(&format!("--- a/{path}\n+++ b/{path}\n@@ ")),
        "{patch}"
    );
    // Apply it with patch(1), as an operator would.
    let mut child = Command::new("patch")
        .args(["-s", &path])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(patch.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "{patch}");
    let patched = std::fs::read_to_string(&path).unwrap();
    assert!(patched.starts_with(&current), "only appends: {patched}");
    let got = assignments(&patched);
    assert_eq!(
        got.len(),
        3,
        "a-storage kept, two added for uid 46002: {patched}"
    );
    assert!(
        got.iter()
            .all(|(p, ..)| p == "\"uid:46001\"" || p == "\"uid:46002\""),
        "{got:?}"
    );
    let check = gatehouse(&["check", "--strict", "--policy", &path]);
    assert!(check.status.success(), "{}", text(&check));
    // Nothing left to add the second time.
    let again = suggest_patch();
    assert!(
        again.status.success() && stdout(&again).is_empty(),
        "{}",
        text(&again)
    );
    assert!(text(&again).contains("already allows"), "{}", text(&again));
}

#[test]
fn suggest_refuses_bad_input_naming_file_and_line() {
    let policy = policy_file("observe.toml");
    refuses_bad_input(&[
        "policy",
        "suggest",
        "--single",
        "--policy",
        &policy,
        "--from-audit",
        "{}",
    ]);
}

#[test]
fn replay_shows_what_a_candidate_changes() {
    // (candidate, log, exit, allow→deny, deny→allow, a change that must be listed)
    type Listed = (&'static str, &'static str, &'static str);
    let rows: &[(&str, String, i32, u64, u64, Listed)] = &[
        // The policy the log was made under: nothing changes.
        ("enforce.toml", enforced(), 0, 0, 0, ("", "", "")),
        // The observe policy grants uid 46001 nothing: its allows break.
        (
            "observe.toml",
            enforced(),
            1,
            2,
            1,
            ("allow", "deny", "a-storage"),
        ),
        // Enforcing the enforce policy on the audit-mode run: 46002's
        // standing grant and 46004's grant are gone, 46001's appears.
        (
            "enforce.toml",
            observed(),
            1,
            5,
            5,
            ("allow", "deny", "d-vault-jit (jit jit-723e6b7f8274)"),
        ),
        (
            "enforce.toml",
            observed(),
            1,
            5,
            5,
            ("deny", "allow", "no assignment allows this request"),
        ),
        // The observe policy itself: the audit run's allows and would-denies
        // stand (the JIT grant counts at the recorded times).
        ("observe.toml", observed(), 0, 0, 0, ("", "", "")),
    ];
    for (candidate, log, code, a2d, d2a, (before, after, was)) in rows {
        let policy = policy_file(candidate);
        let out = gatehouse(&["check", "--policy", &policy, "--replay", log, "--json"]);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{candidate} {log}: {}",
            text(&out)
        );
        let r: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(
            (&r["allow_to_deny"], &r["deny_to_allow"]),
            (&(*a2d).into(), &(*d2a).into()),
            "{r}"
        );
        let changes = r["changes"].as_array().unwrap();
        if !before.is_empty() {
            assert!(
                changes
                    .iter()
                    .any(|c| c["before"] == *before && c["after"] == *after && c["was"] == *was),
                "{candidate} {log}: {r:#}"
            );
        }
        // Grouped: counts add up to the totals.
        let sum: u64 = changes.iter().map(|c| c["count"].as_u64().unwrap()).sum();
        assert_eq!(sum, a2d + d2a, "{r:#}");
        // The human form says the same.
        let human = gatehouse(&["check", "--policy", &policy, "--replay", log]);
        assert_eq!(human.status.code(), Some(*code));
        assert!(
            stdout(&human).contains(&format!("{a2d} allow → deny, {d2a} deny → allow")),
            "{}",
            text(&human)
        );
    }
}

#[test]
fn replay_refuses_bad_input_naming_file_and_line() {
    let policy = policy_file("enforce.toml");
    let bad = Bad::new();
    // Replay reads rotation sets; a single bad file is its own set.
    for (file, line, what) in bad.cases() {
        let out = gatehouse(&["check", "--policy", &policy, "--replay", &file]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{t}");
        assert!(
            t.contains(&format!("`{file}` line {line}: ")) && t.contains(what),
            "{t}"
        );
    }
}

fn report(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["audit", "report", "--json"];
    all.extend_from_slice(args);
    let out = gatehouse(&all);
    assert!(out.status.success(), "{all:?}: {}", text(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn report_summarises_the_recorded_run() {
    let observe = policy_file("observe.toml");
    let enforce = policy_file("enforce.toml");
    type Check = fn(&serde_json::Value) -> Result<(), String>;
    fn expect(ok: bool, what: &str, r: &serde_json::Value) -> Result<(), String> {
        if ok {
            Ok(())
        } else {
            Err(format!("{what}: {r:#}"))
        }
    }
    let (obs, enf) = (observed(), enforced());
    let rows: &[(Vec<&str>, Check)] = &[
        (vec![&obs, "--policy", &observe], |r| {
            let usage = r["usage"].as_array().unwrap();
            let storage = usage
                .iter()
                .find(|u| u["identity"] == "storage-writer")
                .unwrap();
            expect(
                storage["audience"] == "https://storage.azure.com"
                    && storage["principals"][0]["caller"] == "uid 46001 exe /usr/bin/curl"
                    && storage["principals"][0]["requests"] == 5
                    && storage["principals"][0]["would_deny"] == 5,
                "46001's five storage tokens (one asked with a trailing `/`)",
                r,
            )?;
            expect(
                r["unused_assignments"] == serde_json::json!(["observe-callers", "idle-storage"]),
                "the idle grant is a candidate for removal; b-vault and the JIT one were used",
                r,
            )?;
            let denied = r["denied"].as_array().unwrap();
            expect(
                denied.len() == 4
                    && denied[0]["caller"] == "uid 46001 exe /usr/bin/curl"
                    && denied[0]["requests"] == 7,
                "denials grouped by caller, most first",
                r,
            )?;
            expect(
                r["jit"]
                    == serde_json::json!([{"assignment": "d-vault-jit", "requested": 1,
                        "approved": 1, "denied": 0, "activated": 1, "used": 2}]),
                "one activation, used twice",
                r,
            )?;
            expect(
                r["trusted_services"]
                    == serde_json::json!([{"service": "azure-linux-agent", "requests": 1,
                        "callers": ["uid 0 (root) unit walinuxagent.service exe /usr/bin/python3.11"]}]),
                "the guest agent's exception",
                r,
            )
        }),
        (vec![&enf, "--policy", &enforce], |r| {
            expect(
                r["unused_assignments"] == serde_json::json!([])
                    && r["denied"][0]["caller"] == "uid 46002"
                    && r["denied"][0]["requests"] == 2
                    && r["usage"][0]["principals"][0]["requests"] == 2
                    && r["jit"] == serde_json::json!([]),
                "enforce mode: 46001 served twice, 46002 refused twice",
                r,
            )
        }),
        // A period: from the activation on, only what follows counts.
        (vec![&obs, "--since", "2026-12-03T17:39:25.719Z"], |r| {
            expect(
                r["jit"][0]["requested"] == 1
                    && r["jit"][0]["used"] == 2
                    && r["denied"].as_array().unwrap().len() == 1
                    && r["unused_assignments"].is_null()
                    && r["since"] == "2026-12-03T17:39:25.719Z",
                "only the period",
                r,
            )
        }),
        (vec![&obs, "--until", "2026-01-01T00:00:00Z"], |r| {
            expect(
                r["records"] == 0 && r["usage"] == serde_json::json!([]),
                "an empty period",
                r,
            )
        }),
    ];
    for (args, check) in rows {
        let r = report(args);
        check(&r).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    }
}

#[test]
fn report_prints_tables_and_markdown() {
    let observe = policy_file("observe.toml");
    let table = gatehouse(&["audit", "report", &observed(), "--policy", &observe]);
    let t = stdout(&table);
    assert!(table.status.success(), "{}", text(&table));
    for want in [
        "Tokens served, by identity and audience",
        "idle-storage",
        "Denied (or would be denied), by caller",
        "d-vault-jit",
        "azure-linux-agent",
    ] {
        assert!(t.contains(want), "{want}: {t}");
    }
    let md = gatehouse(&["audit", "report", &observed(), "--format", "markdown"]);
    let m = stdout(&md);
    assert!(md.status.success(), "{}", text(&md));
    assert!(m.starts_with("# gatehouse access report"), "{m}");
    assert!(
        m.contains(
            "| identity | audience | caller | requests | would deny |\n|---|---|---|---|---|\n"
        ),
        "{m}"
    );
    assert!(m.contains("## Just-in-time grants"), "{m}");
}

#[test]
fn report_refuses_bad_input_naming_file_and_line() {
    refuses_bad_input(&["audit", "report", "--single", "{}"]);
}

#[test]
fn diff_says_what_changes_in_meaning() {
    let dir = tempfile::tempdir().unwrap();
    let observe = policy_file("observe.toml");
    let enforce = policy_file("enforce.toml");
    let suggested = gatehouse(&[
        "policy",
        "suggest",
        "--from-audit",
        &observed(),
        "--policy",
        &observe,
    ]);
    let suggested = write_temp(&dir, "suggested.toml", &stdout(&suggested));
    // enforce.toml reordered and renamed, its audience respelt: the same.
    let respelt = std::fs::read_to_string(data().join("enforce.toml"))
        .unwrap()
        .replace("name = \"a-storage\"", "name = \"storage-for-a\"")
        .replace(
            "[\"https://storage.azure.com\"]",
            "[\"https://Storage.azure.com/.default\"]",
        )
        .replace("[identities.vault-reader]", "[identities.vault]");
    let respelt = write_temp(&dir, "respelt.toml", &respelt);
    // (old, new, exit, lines that must be printed, lines that must not)
    type Row<'a> = (&'a str, &'a str, i32, &'a [&'a str], &'a [&'a str]);
    let rows: &[Row] = &[
        (&enforce, &enforce, 0, &[], &[]),
        (&enforce, &respelt, 0, &[], &[]),
        (
            &observe,
            &suggested,
            1,
            &[
                "+ unit:hl-demo-app.service may Gatehouse/token/read as system for https://management.azure.com (when `@Principal[uid] NumericEquals 46003`)",
                "- uid:46009 may no longer Gatehouse/token/read as storage-writer for https://storage.azure.com (was always)",
                "~ mode token: audit → enforce",
            ],
            // The just-in-time assignment is kept as it was.
            &["d-vault-jit", "just in time"],
        ),
        (
            &enforce,
            &observe,
            1,
            &[
                "- uid:46001 may no longer Gatehouse/token/read as storage-writer for https://storage.azure.com (was always)",
                "+ uid:46004 may ask for Gatehouse/token/read as vault-reader for https://vault.azure.net just in time (for up to 1h, with a justification, approved automatically)",
            ],
            &[],
        ),
    ];
    for (old, new, code, must, must_not) in rows {
        let out = gatehouse(&["policy", "diff", old, new]);
        let t = stdout(&out);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "{old} {new}: {}",
            text(&out)
        );
        for line in *must {
            assert!(
                t.lines().any(|l| l == *line),
                "{old} → {new} must print `{line}`:\n{t}"
            );
        }
        for word in *must_not {
            assert!(
                !t.contains(word),
                "{old} → {new} must not mention `{word}`:\n{t}"
            );
        }
        if *code == 0 {
            assert!(t.is_empty(), "{t}");
        }
        let json = gatehouse(&["policy", "diff", old, new, "--json"]);
        assert_eq!(
            json_lines(&json).len(),
            t.lines().count(),
            "{}",
            text(&json)
        );
    }
    let bad = write_temp(&dir, "bad.toml", "version = 1\n[[assignments]]\nname = 1\n");
    let out = gatehouse(&["policy", "diff", &enforce, &bad]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("does not load"), "{}", text(&out));
}

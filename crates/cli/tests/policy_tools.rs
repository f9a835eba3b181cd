//! `gatehouse check` and `gatehouse explain` on the example policies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn gatehouse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .output()
        .expect("run gatehouse")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn policy_file(body: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("tempfile");
    std::fs::write(f.path(), body).expect("write policy");
    f
}

#[test]
fn every_example_policy_passes_check_strict() {
    let mut checked = 0;
    for entry in std::fs::read_dir(examples()).expect("examples dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        // Not policies: the emulator's configuration, the daemon settings.
        if !name.ends_with(".toml") || name == "emulator.toml" || name == "gatehouse.toml" {
            continue;
        }
        let p = path.to_str().expect("utf-8 path");
        let out = gatehouse(&["check", "--strict", "--policy", p]);
        assert_eq!(out.status.code(), Some(0), "{name}:\n{}", text(&out));
        checked += 1;
    }
    assert!(
        checked >= 3,
        "expected the example policies, found {checked}"
    );
}

#[test]
fn the_example_settings_pass_check() {
    let settings = examples().join("gatehouse.toml");
    let policy = examples().join("policy.toml");
    let out = gatehouse(&[
        "check",
        "--strict",
        "--settings",
        settings.to_str().expect("utf-8 path"),
        "--policy",
        policy.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("1 export sink(s): local"),
        "{}",
        text(&out)
    );
}

#[test]
fn check_reports_every_error_with_position_and_exits_2() {
    let f = policy_file(
        "version = 1\n[[assignments]]\nname = \"a\"\nprincipal = \"uid:1\"\nrole = \"Instance Metadata Reader\"\ncondition = '''@Principal[user] DateTimeEquals '2025-01-01T00:00:00Z' AND @Principal[nope] StringEquals 'x' '''\n[[assignments]]\nname = \"b\"\nprincipal = \"uid:1\"\nrole = \"Instance Metadata Reader\"\ncondition = \"@Principal[user] StringEquals 'a' AND @Principal[uid] NumericEquals 1 OR true BoolEquals true\"\n",
    );
    let p = f.path().to_str().expect("path");
    let out = gatehouse(&["check", "--policy", p]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains(&format!(
            "{p}:6:16: error: condition: `DateTimeEquals` compares datetime values"
        )),
        "{all}"
    );
    assert!(
        all.contains(&format!(
            "{p}:6:75: error: condition: unknown attribute `@Principal[nope]`"
        )),
        "{all}"
    );
    assert!(all.contains("mixed without parentheses"), "{all}");
    assert!(all.contains("^"), "a caret line: {all}");

    let out = gatehouse(&["check", "--json", "--policy", p]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["ok"], false);
    assert_eq!(v["errors"], 3, "{v}");
    assert_eq!(v["diagnostics"][0]["line"], 6);
}

#[test]
fn warnings_exit_1_only_with_strict() {
    let f = policy_file(
        "version = 1\n[identities.system]\nkind = \"system\"\n[[assignments]]\nname = \"ghost\"\nprincipal = \"user:no-such-user-here\"\nrole = \"Token Reader\"\nidentities = [\"*\"]\naudiences = [\"*\"]\n",
    );
    let p = f.path().to_str().expect("path");
    let out = gatehouse(&["check", "--policy", p]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains(&format!(
            "{p}:6:13: warning: user `no-such-user-here` does not exist on this machine"
        )),
        "{all}"
    );
    assert!(all.contains("any identity and any audience"), "{all}");
    assert_eq!(
        gatehouse(&["check", "--strict", "--policy", p])
            .status
            .code(),
        Some(1)
    );
    let out = gatehouse(&["check", "--strict", "--json", "--policy", p]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (v["ok"].as_bool(), v["warnings"].as_u64()),
        (Some(true), Some(2)),
        "{v}"
    );
}

fn explain(policy: &str, extra: &[&str]) -> Output {
    let path = examples().join(policy);
    let mut args = vec!["explain", "--policy", path.to_str().expect("path")];
    args.extend_from_slice(extra);
    gatehouse(&args)
}

#[test]
fn explain_shows_conditions_and_their_attribute_values() {
    let token = [
        "--as",
        "www-data",
        "--action",
        "Gatehouse/token/read",
        "--identity",
        "storage-writer",
        "--audience",
        "https://storage.azure.com/",
    ];
    let day = [&token[..], &["--at", "2025-06-02T10:00:00Z"]].concat();
    let out = explain("conditions.toml", &day);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("assignment `web-storage-office-hours`: allows"),
        "{all}"
    );
    assert!(
        all.contains("@Resource[tags:team<$key_case_sensitive$>] = 'web'"),
        "{all}"
    );
    assert!(
        all.contains("@Environment[UtcNow] = '2025-06-02T10:00:00.0000000Z'"),
        "{all}"
    );
    assert!(all.contains("decision: allow"), "{all}");

    let night = [&token[..], &["--at", "2025-06-02T22:00:00Z"]].concat();
    let out = explain("conditions.toml", &night);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("condition: false") && all.contains("decision: deny"),
        "{all}"
    );
}

#[test]
fn explain_names_the_deny_assignment() {
    let out = explain(
        "conditions.toml",
        &[
            "--as",
            "www-data",
            "--action",
            "Gatehouse/token/read",
            "--identity",
            "system",
            "--audience",
            "https://management.azure.com",
        ],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("deny assignment `management-is-root-only` applies"),
        "{all}"
    );
}

#[test]
fn explain_audit_mode_and_pid() {
    let out = explain(
        "rollout.toml",
        &["--uid", "4242", "--action", "Gatehouse/instance/read"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("mode: audit") && all.contains("would deny (audit)"),
        "{all}"
    );

    let me = std::process::id().to_string();
    let out = explain(
        "policy.toml",
        &["--pid", &me, "--action", "Gatehouse/instance/read"],
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains(&format!("process: pid {me} exe /")), "{all}");
    assert!(all.contains("everyone-reads-instance-metadata"), "{all}");

    let bad = explain(
        "policy.toml",
        &["--uid", "1", "--action", "Gatehouse/nothing"],
    );
    assert_eq!(bad.status.code(), Some(2));
}

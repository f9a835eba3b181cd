//! `gatehouse check --format sarif`: the log validates against the SARIF
//! 2.1.0 JSON schema (tests/data, from OASIS) with Python's `jsonschema`,
//! and carries each finding with its rule and span. The validator must
//! also refuse a log made invalid on purpose, so a broken check cannot pass.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::gatehouse;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/sarif-schema-2.1.0.json"
);

/// `GATEHOUSE_PYTHON`, else the project's venv: a Python with `jsonschema`.
fn python() -> PathBuf {
    std::env::var_os("GATEHOUSE_PYTHON").map_or_else(
        || PathBuf::from("/opt/gatehouse-venv/bin/python"),
        PathBuf::from,
    )
}

/// Validates `log` against the schema; Err(the validator's words).
fn validate(log: &Path) -> Result<(), String> {
    let out = Command::new(python())
        .args([
            "-c",
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft4Validator.check_schema(schema)\n\
             errors = list(jsonschema.Draft4Validator(schema).iter_errors(json.load(open(sys.argv[2]))))\n\
             print('\\n'.join(f'{list(e.path)}: {e.message}' for e in errors))\n\
             sys.exit(1 if errors else 0)",
            SCHEMA,
        ])
        .arg(log)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python().display()));
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !said.contains("ModuleNotFoundError"),
        "{} has no `jsonschema`: set GATEHOUSE_PYTHON to a Python that has it\n{said}",
        python().display()
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(said)
    }
}

const WARNINGS: &str = r#"version = 1

[identities.system]
kind = "system"

[[assignments]]
name = "never"
principal = "uid:10"
role = "Instance Metadata Reader"
condition = '''@Principal[uid] NumericEquals 11'''

[[assignments]]
name = "narrow"
principal = "uid:10"
role = "Token Reader"
identities = ["system"]
audiences = ["https://storage.azure.com"]

[[assignments]]
name = "broad"
principal = "everyone"
role = "Token Reader"
identities = ["system"]
audiences = ["https://storage.azure.com", "https://vault.azure.net"]
"#;

const ERRORS: &str =
    "version = 1\n[[assignments]]\nname = \"x\"\nprincipal = \"uid:abc\"\nrole = \"Nope\"\n";

fn sarif(dir: &Path, name: &str, text: &str, strict: bool) -> (i32, PathBuf, Value) {
    let policy = dir.join(name);
    std::fs::write(&policy, text).unwrap();
    let mut cmd = gatehouse();
    cmd.args(["check", "--format", "sarif", "--policy"])
        .arg(&policy);
    if strict {
        cmd.arg("--strict");
    }
    let out = cmd.output().unwrap();
    assert!(out.stderr.is_empty(), "sarif goes to stdout only: {out:?}");
    let log = dir.join(format!("{name}.sarif"));
    std::fs::write(&log, &out.stdout).unwrap();
    (
        out.status.code().unwrap(),
        log,
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

#[test]
fn check_writes_sarif_that_the_schema_accepts() {
    let dir = tempfile::tempdir().unwrap();
    // (policy, strict, exit code, [(rule, level, line)])
    type Want = &'static [(&'static str, &'static str, u64)];
    let cases: &[(&str, &str, bool, i32, Want)] = &[
        (
            "warnings.toml",
            WARNINGS,
            true,
            1,
            &[
                ("always-false", "warning", 10),
                ("redundant", "warning", 12),
            ],
        ),
        (
            "warnings-lax.toml",
            WARNINGS,
            false,
            0,
            &[("redundant", "warning", 12)],
        ),
        (
            "errors.toml",
            ERRORS,
            false,
            2,
            &[("error", "error", 4), ("error", "error", 5)],
        ),
        ("clean.toml", "version = 1\n", true, 0, &[]),
    ];
    for (name, text, strict, code, want) in cases {
        let (got_code, log, sarif) = sarif(dir.path(), name, text, *strict);
        assert_eq!(got_code, *code, "{name}: {sarif}");
        if let Err(e) = validate(&log) {
            panic!("{name}: not valid SARIF 2.1.0:\n{e}\n{sarif}");
        }
        let run = &sarif["runs"][0];
        let results = run["results"].as_array().unwrap();
        for (rule, level, line) in *want {
            assert!(
                results.iter().any(|r| r["ruleId"] == *rule
                    && r["level"] == *level
                    && r["locations"][0]["physicalLocation"]["region"]["startLine"] == *line),
                "{name}: no {rule} {level} at line {line}: {results:?}"
            );
        }
        for r in results {
            let index = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(run["tool"]["driver"]["rules"][index]["id"], r["ruleId"]);
            let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap();
            assert!(uri.starts_with("file:///") && uri.ends_with(name), "{uri}");
        }
        if want.is_empty() {
            assert!(results.is_empty(), "{name}: {results:?}");
        }
    }

    // The validator is not a rubber stamp: a level SARIF does not define
    // and a missing `version` are refused.
    let (_, log, mut bad) = sarif(dir.path(), "again.toml", WARNINGS, false);
    bad["runs"][0]["results"][0]["level"] = Value::String("fatal".into());
    std::fs::write(&log, bad.to_string()).unwrap();
    assert!(
        validate(&log).is_err(),
        "an invalid level passed the schema"
    );
    let (_, log, mut bad) = sarif(dir.path(), "again2.toml", WARNINGS, false);
    bad.as_object_mut().unwrap().remove("version");
    std::fs::write(&log, bad.to_string()).unwrap();
    assert!(
        validate(&log).is_err(),
        "a log without a version passed the schema"
    );
}

//! Table of tamperings and what `verify` must say about each.

mod common;

use common::*;
use gatehouse_audit::{verify_chain, Problem, RecordError, VerifyReport, GENESIS};
use serde_json::json;

type Mutation = fn(&mut Vec<Vec<u8>>);

enum Want {
    Ok {
        records: u64,
        genesis: bool,
    },
    Fail {
        line: u64,
        problem: fn(&Problem) -> bool,
    },
}

#[test]
fn tamper_table() {
    let cases: Vec<(&str, Mutation, Want)> = vec![
        (
            "untouched",
            |_| {},
            Want::Ok {
                records: 10,
                genesis: true,
            },
        ),
        (
            "edit one byte of a field",
            |l| {
                let s = String::from_utf8(l[4].clone())
                    .unwrap()
                    .replace("\"n\":5", "\"n\":6");
                l[4] = s.into_bytes();
            },
            Want::Fail {
                line: 5,
                problem: |p| matches!(p, Problem::Record(RecordError::HashMismatch)),
            },
        ),
        (
            "edit the time",
            |l| {
                let s = String::from_utf8(l[2].clone())
                    .unwrap()
                    .replace("05:06:03", "05:06:04");
                l[2] = s.into_bytes();
            },
            Want::Fail {
                line: 3,
                problem: |p| matches!(p, Problem::Record(RecordError::HashMismatch)),
            },
        ),
        (
            "delete a middle line",
            |l| {
                l.remove(4);
            },
            Want::Fail {
                line: 5,
                problem: |p| {
                    *p == Problem::SeqGap {
                        expected: 5,
                        found: 6,
                    }
                },
            },
        ),
        (
            "swap two lines",
            |l| l.swap(3, 4),
            Want::Fail {
                line: 4,
                problem: |p| {
                    *p == Problem::SeqGap {
                        expected: 4,
                        found: 5,
                    }
                },
            },
        ),
        (
            "duplicate a line",
            |l| {
                let dup = l[4].clone();
                l.insert(5, dup);
            },
            Want::Fail {
                line: 6,
                problem: |p| {
                    *p == Problem::SeqBackwards {
                        expected: 6,
                        found: 5,
                    }
                },
            },
        ),
        (
            // Undetectable from the file alone: documented in the crate doc.
            "delete the last line",
            |l| {
                l.pop();
            },
            Want::Ok {
                records: 9,
                genesis: true,
            },
        ),
        (
            // Likewise undetectable, but the report says the start is missing.
            "delete the first line",
            |l| {
                l.remove(0);
            },
            Want::Ok {
                records: 9,
                genesis: false,
            },
        ),
        (
            "torn tail",
            |l| {
                let last = l.last_mut().unwrap();
                last.truncate(last.len() / 2);
            },
            Want::Fail {
                line: 10,
                problem: |p| matches!(p, Problem::TornTail { bytes } if *bytes > 0),
            },
        ),
        (
            "forged line with the right seq but wrong prev",
            |l| {
                let wrong_prev = hash_of(&l[8]);
                l.push(forge(
                    11,
                    &wrong_prev,
                    &json!({"type": "decision", "outcome": "allow"}),
                ));
            },
            Want::Fail {
                line: 11,
                problem: |p| *p == Problem::PrevMismatch,
            },
        ),
        (
            "replaced line, re-hashed, same seq",
            |l| {
                let prev = hash_of(&l[5]);
                l[6] = forge(7, &prev, &json!({"type": "decision", "outcome": "deny"}));
            },
            Want::Fail {
                line: 8,
                problem: |p| *p == Problem::PrevMismatch,
            },
        ),
        (
            "forged genesis",
            |l| l[0] = forge(1, &"1".repeat(64), &json!({})),
            Want::Fail {
                line: 1,
                problem: |p| {
                    matches!(
                        p,
                        Problem::BadGenesis {
                            seq: 1,
                            genesis_prev: false
                        }
                    )
                },
            },
        ),
        (
            "garbage line",
            |l| l[2] = b"hello\n".to_vec(),
            Want::Fail {
                line: 3,
                problem: |p| matches!(p, Problem::Record(RecordError::Malformed(_))),
            },
        ),
        (
            "extra key beside the hashed ones",
            |l| {
                let s = String::from_utf8(l[1].clone()).unwrap().replacen(
                    "{\"seq\":2,",
                    "{\"seq\":2,\"x\":0,",
                    1,
                );
                l[1] = s.into_bytes();
            },
            Want::Fail {
                line: 2,
                problem: |p| matches!(p, Problem::Record(RecordError::Malformed(_))),
            },
        ),
    ];
    for (name, mutate, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = write_log(dir.path(), 10);
        let mut l = lines(&path);
        mutate(&mut l);
        write_lines(&path, &l);
        let got = verify_chain(std::slice::from_ref(&path));
        match (want, got) {
            (Want::Ok { records, genesis }, Ok(report)) => {
                assert_eq!(report.records, records, "{name}");
                assert_eq!(report.starts_at_genesis(), genesis, "{name}");
            }
            (Want::Fail { line, problem }, Err(failure)) => {
                assert_eq!(failure.file, path, "{name}");
                assert_eq!(failure.line, line, "{name}: {failure}");
                assert!(problem(&failure.problem), "{name}: {failure}");
                assert!(
                    failure.to_string().contains(&format!("line {line}")),
                    "{name}: {failure}"
                );
            }
            (_, got) => panic!("{name}: unexpected {got:?}"),
        }
    }
}

#[test]
fn report_of_an_untouched_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 3);
    let report = verify_chain(std::slice::from_ref(&path)).unwrap();
    let last = lines(&path).pop().unwrap();
    assert_eq!(
        report,
        VerifyReport {
            files: 1,
            records: 3,
            first_seq: Some(1),
            last_seq: Some(3),
            last_hash: Some(hash_of(&last)),
            first_prev: Some(GENESIS.to_owned()),
        }
    );
    assert!(
        report
            .to_string()
            .contains("starts at the first record ever written"),
        "{report}"
    );
}

#[test]
fn empty_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 0);
    assert_eq!(verify_chain(&[path]).unwrap().records, 0);
    let missing = dir.path().join("nope");
    let failure = verify_chain(&[missing]).unwrap_err();
    assert!(matches!(failure.problem, Problem::Io(_)), "{failure}");
}

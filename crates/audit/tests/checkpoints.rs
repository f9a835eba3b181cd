//! `verify_against`: a log checked against checkpoints collected off the
//! machine. Each tampering a root attacker can do to the files — cut the
//! end, rewrite a record and recompute the chain, delete a rotated file —
//! is detected from the evidence alone; a good log passes; evidence signed
//! by another key is refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step must fail the test loudly"
)]

use std::path::{Path, PathBuf};

use gatehouse_audit::{
    verify_against, AgainstFailure, AuditLog, CheckpointKey, Event, EvidenceError, Options,
    Tampering,
};
use proptest::prelude::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

const SEED: [u8; 32] = [7; 32];
const OTHER_SEED: [u8; 32] = [9; 32];

fn time(i: u64) -> String {
    format!("2026-03-04T05:{:02}:{:02}.000Z", (i / 60) % 60, i % 60)
}

/// A log at `dir/audit.log` with `n` policy records and a checkpoint after
/// every `every`-th; rotating at `rotate` bytes (keeping `keep`).
fn build(dir: &Path, n: u64, every: u64, rotate: Option<u64>, keep: usize) -> PathBuf {
    let path = dir.join("audit.log");
    let opts = Options {
        rotate_bytes: rotate,
        keep,
        ..Options::default()
    };
    let log = AuditLog::open(&path, opts).unwrap();
    let key = CheckpointKey::from_seed(&SEED);
    for i in 1..=n {
        log.append(
            &time(i),
            &Event::PolicyLoaded {
                policy: format!("{i:064x}"),
            },
        )
        .unwrap();
        if i % every == 0 {
            let head = log.head().unwrap().unwrap();
            let cp = key.sign(head.seq, &head.hash, &time(i), log.rotated_kept());
            log.append(&time(i), &Event::Checkpoint(Box::new(cp)))
                .unwrap();
        }
    }
    path
}

/// Every file of the set, oldest first.
fn files(path: &Path) -> Vec<PathBuf> {
    gatehouse_audit::rotation_set(path).unwrap()
}

/// Every record line of the set, as exported (oldest first).
fn all_lines(path: &Path) -> Vec<String> {
    files(path)
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Shipped {
    /// Every record line, as the exporter sends them.
    Records,
    /// Only the checkpoints' events, one JSON object a line.
    CheckpointsOnly,
    /// RFC 5424 syslog lines with the record as the message.
    Syslog,
}

fn evidence(path: &Path, shipped: Shipped) -> String {
    let lines = all_lines(path);
    let out: Vec<String> = match shipped {
        Shipped::Records => lines,
        Shipped::CheckpointsOnly => lines
            .iter()
            .filter_map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (v["event"]["type"] == "checkpoint").then(|| v["event"].to_string())
            })
            .collect(),
        Shipped::Syslog => lines
            .iter()
            .map(|l| format!("<86>1 2026-03-04T05:06:07.000Z vm gatehouse 1 audit [gatehouse@32473 seq=\"1\"] {l}"))
            .collect(),
    };
    out.join("\n") + "\n"
}

fn seq_of(line: &str) -> u64 {
    serde_json::from_str::<Value>(line).unwrap()["seq"]
        .as_u64()
        .unwrap()
}

/// Rewrites the record `seq` (its policy hash) and recomputes the chain
/// from there on, in every file: what root can do without the key.
fn rewrite_and_rechain(path: &Path, seq: u64) {
    let mut prev: Option<String> = None;
    for file in files(path) {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut out = String::new();
        for line in text.lines() {
            let mut v: Value = serde_json::from_str(line).unwrap();
            let s = v["seq"].as_u64().unwrap();
            if s == seq {
                v["event"] = serde_json::json!({"type": "policy_loaded", "policy": "f".repeat(64)});
            }
            if s < seq {
                prev = Some(v["hash"].as_str().unwrap().to_owned());
                out.push_str(line);
                out.push('\n');
                continue;
            }
            let p = prev
                .clone()
                .unwrap_or_else(|| v["prev"].as_str().unwrap().to_owned());
            let prefix = format!(
                "{{\"seq\":{s},\"time\":{},\"prev\":\"{p}\",\"event\":{}",
                v["time"], v["event"]
            );
            let hash = hex::encode(Sha256::digest(format!("{p}\n{prefix}")));
            out.push_str(&format!("{prefix},\"hash\":\"{hash}\"}}\n"));
            prev = Some(hash);
        }
        std::fs::write(&file, out).unwrap();
    }
}

/// Removes every record from `seq` on (cutting the files).
fn truncate_from(path: &Path, seq: u64) {
    for file in files(path) {
        let text = std::fs::read_to_string(&file).unwrap();
        let kept: String = text
            .lines()
            .filter(|l| seq_of(l) < seq)
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&file, kept).unwrap();
    }
}

fn last_attested(path: &Path) -> u64 {
    all_lines(path)
        .iter()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["event"]["head_seq"].as_u64()
        })
        .max()
        .unwrap()
}

type Outcome = Result<(), fn(&AgainstFailure) -> bool>;

fn tampered(f: &AgainstFailure, what: fn(&Tampering) -> bool) -> bool {
    matches!(f, AgainstFailure::Tampered(t) if what(t))
}

#[test]
fn tamper_table() {
    type Setup = fn(&Path);
    // 40 records and a checkpoint after every 5th, rotating every ~3 KiB:
    // several rotated files. The evidence is collected before the tampering.
    let cases: Vec<(&str, Setup, Outcome)> = vec![
        ("untouched", |_| {}, Ok(())),
        (
            "truncate: the last checkpoint and what it attests cut off",
            |p| truncate_from(p, last_attested(p)),
            Err(|f| tampered(f, |t| matches!(t, Tampering::Truncated { .. }))),
        ),
        (
            "truncate: only what came after the last checkpoint (not detectable)",
            |p| truncate_from(p, last_attested(p) + 2),
            Ok(()),
        ),
        (
            "rewrite record 7 and recompute the chain",
            |p| rewrite_and_rechain(p, 7),
            Err(|f| {
                tampered(
                    f,
                    |t| matches!(t, Tampering::Rewritten { at, first_changed, .. } if first_changed.seq <= 7 && at.seq >= 7),
                )
            }),
        ),
        (
            "delete a rotated file in the middle",
            |p| std::fs::remove_file(p.with_file_name("audit.log.2")).unwrap(),
            Err(|f| {
                tampered(
                    f,
                    |t| matches!(t, Tampering::MissingFile { missing, .. } if missing.ends_with("audit.log.2")),
                )
            }),
        ),
        (
            "delete the oldest rotated file",
            |p| {
                let oldest = files(p).remove(0);
                std::fs::remove_file(oldest).unwrap();
            },
            Err(|f| tampered(f, |t| matches!(t, Tampering::OlderFilesMissing { .. }))),
        ),
        (
            "delete a rotated file and renumber the older ones",
            |p| {
                std::fs::remove_file(p.with_file_name("audit.log.2")).unwrap();
                let mut n = 3;
                while p.with_file_name(format!("audit.log.{n}")).exists() {
                    std::fs::rename(
                        p.with_file_name(format!("audit.log.{n}")),
                        p.with_file_name(format!("audit.log.{}", n - 1)),
                    )
                    .unwrap();
                    n += 1;
                }
            },
            Err(|f| tampered(f, |t| matches!(t, Tampering::Chain(_)))),
        ),
    ];
    for shipped in [Shipped::Records, Shipped::CheckpointsOnly, Shipped::Syslog] {
        for (name, setup, want) in &cases {
            let dir = tempfile::tempdir().unwrap();
            let path = build(dir.path(), 40, 5, Some(3000), 10);
            assert!(files(&path).len() >= 4, "{name}: too few files to test");
            let collected = evidence(&path, shipped);
            setup(&path);
            let key = CheckpointKey::from_seed(&SEED).public();
            let got = verify_against(&path, &collected, &key);
            match (want, &got) {
                (Ok(()), Ok(_)) => {}
                (Err(check), Err(f)) => {
                    assert!(check(f), "{name} ({shipped:?}): wrong finding: {f}")
                }
                _ => panic!("{name} ({shipped:?}): got {got:?}"),
            }
        }
    }
}

/// A log of 40 records (a checkpoint every 5, rotated at `rotate` bytes),
/// its evidence collected as `shipped`, then record `seq` rewritten with
/// the chain mended: the verification against the evidence names the
/// rewrite, as (where it was found, the first record that differs, the
/// whole finding).
fn rewrite_found(rotate: Option<u64>, shipped: Shipped, seq: u64) -> (u64, u64, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), 40, 5, rotate, 10);
    let collected = evidence(&path, shipped);
    rewrite_and_rechain(&path, seq);
    let key = CheckpointKey::from_seed(&SEED).public();
    let failure = verify_against(&path, &collected, &key).unwrap_err();
    let AgainstFailure::Tampered(t) = &failure else {
        panic!("{failure}")
    };
    let Tampering::Rewritten {
        at, first_changed, ..
    } = &**t
    else {
        panic!("{t}")
    };
    (at.seq, first_changed.seq, t.to_string())
}

#[test]
fn with_every_record_shipped_the_first_changed_record_is_named_exactly() {
    let (at, first_changed, t) = rewrite_found(Some(3000), Shipped::Records, 7);
    assert_eq!((at, first_changed), (7, 7), "{t}");
    assert!(t.contains("seq 7"), "{t}");
    assert!(t.contains("first record that differs"), "{t}");
}

#[test]
fn with_checkpoints_alone_the_range_of_the_first_changed_record_is_named() {
    let (at, first_changed, t) = rewrite_found(None, Shipped::CheckpointsOnly, 8);
    // Checkpoints attest record 5 (at seq 6), then 11 (5 records and a
    // checkpoint later): the change is after 5, at or before 11.
    assert_eq!(first_changed, 6, "{t}");
    assert!((8..=12).contains(&at), "{t}");
}

#[test]
fn evidence_that_cannot_be_trusted_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), 12, 4, None, 10);
    let good = evidence(&path, Shipped::CheckpointsOnly);
    let other = CheckpointKey::from_seed(&OTHER_SEED);
    let forged = other.sign(3, &"a".repeat(64), &time(3), None);
    let forged_line = serde_json::to_string(&Event::Checkpoint(Box::new(forged))).unwrap();
    let first: Value = serde_json::from_str(good.lines().next().unwrap()).unwrap();
    let mut altered = first.clone();
    altered["head_hash"] = Value::String("b".repeat(64));
    let mut relabelled = serde_json::from_str::<Value>(&forged_line).unwrap();
    relabelled["key_id"] = first["key_id"].clone();
    type Check = fn(&EvidenceError) -> bool;
    let cases: Vec<(&str, String, Check)> = vec![
        (
            "signed by another key",
            format!("{good}{forged_line}\n"),
            |e| matches!(e, EvidenceError::OtherKey { line: 4, .. }),
        ),
        (
            "another key's signature under this key's id",
            format!("{good}{relabelled}\n"),
            |e| matches!(e, EvidenceError::BadSignature { line: 4 }),
        ),
        ("a signed field altered", format!("{altered}\n"), |e| {
            matches!(e, EvidenceError::BadSignature { line: 1 })
        }),
        (
            "no checkpoint at all",
            "hello\n{\"seq\":1}\n".to_owned(),
            |e| matches!(e, EvidenceError::NoCheckpoints { .. }),
        ),
        (
            "a checkpoint that is not one",
            "{\"type\":\"checkpoint\",\"head_seq\":\"x\"}\n".to_owned(),
            |e| matches!(e, EvidenceError::Malformed { line: 1, .. }),
        ),
    ];
    let key = CheckpointKey::from_seed(&SEED).public();
    assert!(verify_against(&path, &good, &key).is_ok());
    for (name, text, check) in cases {
        match verify_against(&path, &text, &key) {
            Err(AgainstFailure::Evidence(e)) => assert!(check(&e), "{name}: {e}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn a_rewrite_signed_again_with_the_stolen_key_contradicts_the_exported_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), 12, 4, None, 10);
    let before = evidence(&path, Shipped::CheckpointsOnly);
    rewrite_and_rechain(&path, 2);
    // Root read the key and signs the rewritten head; that checkpoint is
    // exported too, beside the ones that left before.
    let rewritten = all_lines(&path);
    let record_4: Value = serde_json::from_str(&rewritten[3]).unwrap();
    let key = CheckpointKey::from_seed(&SEED);
    let resigned = key.sign(4, record_4["hash"].as_str().unwrap(), &time(20), None);
    let text = format!(
        "{before}{}\n",
        serde_json::to_string(&Event::Checkpoint(Box::new(resigned))).unwrap()
    );
    match verify_against(&path, &text, &key.public()) {
        Err(AgainstFailure::Evidence(EvidenceError::Conflict { seq: 4, .. })) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_forged_exported_record_is_ignored_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), 12, 4, None, 10);
    let mut text = evidence(&path, Shipped::Records);
    // Anyone may write to syslog: a record line for seq 3 that chains to
    // nothing signed is no evidence (and raises no false alarm).
    let fake = format!(
        "{{\"seq\":3,\"time\":\"{}\",\"prev\":\"{}\",\"event\":{{\"type\":\"policy_loaded\",\"policy\":\"x\"}},\"hash\":\"{}\"}}\n",
        time(3),
        "0".repeat(64),
        "c".repeat(64)
    );
    text.push_str(&fake);
    let key = CheckpointKey::from_seed(&SEED).public();
    let report = verify_against(&path, &text, &key).unwrap();
    assert_eq!(report.checkpoints, 3);
    assert!(report.matched >= 3);
}

#[test]
fn key_file_is_created_0600_and_refused_when_loose_or_foreign() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/audit.key");
    let (key, created) = CheckpointKey::load_or_create(&path).unwrap();
    assert!(created);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (again, created) = CheckpointKey::load_or_create(&path).unwrap();
    assert!(!created);
    assert_eq!(key.public(), again.public());
    // The public half printed, parsed back, with and without its fingerprint.
    let printed = format!("{} {}", key.public(), key.public().key_id());
    assert_eq!(
        gatehouse_audit::PublicKey::parse(&printed).unwrap(),
        key.public()
    );
    assert!(gatehouse_audit::PublicKey::parse(&format!("{} SHA256:00", key.public())).is_err());
    // Nothing secret in the Debug output.
    let text = std::fs::read_to_string(&path).unwrap();
    let seed = text.split_whitespace().last().unwrap();
    assert!(!format!("{key:?}").contains(seed));

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = CheckpointKey::load_or_create(&path).unwrap_err();
    assert!(
        matches!(err, gatehouse_audit::KeyError::Mode { mode: 0o640, .. }),
        "{err}"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let err = CheckpointKey::load_or_create(&path).unwrap_err();
        assert!(
            matches!(err, gatehouse_audit::KeyError::Owner { owner: 65534, .. }),
            "{err}"
        );
    } else {
        eprintln!("SKIPPED: the foreign-owner case needs root");
        assert!(std::env::var_os("GATEHOUSE_REQUIRE_PRIVILEGED").is_none());
    }
    std::fs::write(dir.path().join("garbage"), "x").unwrap();
    std::fs::set_permissions(
        dir.path().join("garbage"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    assert!(matches!(
        CheckpointKey::load_or_create(&dir.path().join("garbage")).unwrap_err(),
        gatehouse_audit::KeyError::Format { .. }
    ));
}

#[derive(Debug, Clone)]
enum Tamper {
    Truncate(u64),
    Rewrite(u64),
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Against a naive model: a tampering of record k (cutting from k, or
    /// rewriting k and everything after) is detected exactly when a
    /// checkpoint had attested k or a later record; otherwise the log
    /// verifies as before.
    #[test]
    fn a_tampering_is_detected_iff_a_checkpoint_covers_it(
        n in 3u64..30,
        every in 1u64..7,
        tamper in prop_oneof![(1u64..40).prop_map(Tamper::Truncate), (1u64..40).prop_map(Tamper::Rewrite)],
        records in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = build(dir.path(), n, every, None, 10);
        let shipped = if records { Shipped::Records } else { Shipped::CheckpointsOnly };
        let collected = evidence(&path, shipped);
        let total = all_lines(&path).len() as u64;
        let attested = all_lines(&path)
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).unwrap()["event"]["head_seq"].as_u64())
            .max();
        let k = match tamper {
            Tamper::Truncate(k) | Tamper::Rewrite(k) => k,
        };
        prop_assume!(k <= total);
        match tamper {
            Tamper::Truncate(k) => truncate_from(&path, k),
            Tamper::Rewrite(k) => rewrite_and_rechain(&path, k),
        }
        let key = CheckpointKey::from_seed(&SEED).public();
        let got = verify_against(&path, &collected, &key);
        match attested {
            None => {
                let refused = matches!(got, Err(AgainstFailure::Evidence(EvidenceError::NoCheckpoints { .. })));
                prop_assert!(refused, "{:?}", got);
            }
            Some(m) if k <= m => prop_assert!(matches!(got, Err(AgainstFailure::Tampered(_))), "{:?} k={} m={}: {:?}", tamper, k, m, got),
            Some(_) => prop_assert!(got.is_ok(), "{:?}: {:?}", tamper, got),
        }
    }
}

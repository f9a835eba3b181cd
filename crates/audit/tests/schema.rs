//! The typed events read back every record an earlier gatehouse wrote.
//!
//! `data/written-before-typed-events.log` was written by the gate before its
//! records became one type (gate start, allowed, cached and denied token
//! requests, a refused request, instance metadata, a good and a bad reload,
//! just-in-time requests auto-approved, activated, denied and revoked).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed step must fail the test loudly"
)]

use gatehouse_audit::{verify, verify_chain, Event, Problem};
use serde_json::Value;
use std::path::PathBuf;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/written-before-typed-events.log")
}

#[test]
fn a_log_written_before_the_events_were_typed_still_verifies() {
    let report = verify(&[fixture()]).unwrap();
    assert_eq!(report.records, 18);
    assert!(report.starts_at_genesis());
}

#[test]
fn every_old_record_reads_as_an_event_and_loses_nothing() {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        let event: Event = serde_json::from_value(record["event"].clone()).unwrap();
        kinds.insert(event.kind());
        // Written again, the event is the same JSON value (key order aside).
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            record["event"],
            "{line}"
        );
    }
    let expected = [
        "gate_started",
        "jit_activated",
        "jit_auto_approved",
        "jit_requested",
        "jit_revoked",
        "policy_loaded",
        "policy_rejected",
        "request",
    ];
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), expected);
}

#[test]
fn a_record_the_schema_does_not_know_fails_verify_but_not_the_chain_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = gatehouse_audit::AuditLog::open(&path, gatehouse_audit::Options::default()).unwrap();
    log.append(
        "2026-01-01T00:00:00.000Z",
        &Event::PolicyLoaded { policy: "h".into() },
    )
    .unwrap();
    log.append(
        "2026-01-01T00:00:00.001Z",
        &serde_json::json!({"type": "policy_loaded", "policy": "h", "extra": 1}),
    )
    .unwrap();
    let failure = verify(std::slice::from_ref(&path)).unwrap_err();
    assert_eq!(failure.line, 2);
    assert!(matches!(failure.problem, Problem::Event(_)), "{failure}");
    assert!(
        failure.to_string().contains("unknown field `extra`"),
        "{failure}"
    );
    assert_eq!(verify_chain(&[path]).unwrap().records, 2);
}

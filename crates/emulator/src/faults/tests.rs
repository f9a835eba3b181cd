use std::time::Duration;

use super::{Faults, FaultsError, ForcedStatus};
use crate::endpoint::Endpoint;

fn forced(endpoint: Option<Endpoint>, status: u16, count: Option<u32>) -> ForcedStatus {
    ForcedStatus {
        endpoint,
        status,
        body: None,
        retry_after_secs: None,
        count,
    }
}

#[test]
fn counted_fault_runs_out() {
    let mut faults = Faults {
        forced: vec![forced(Some(Endpoint::Token), 500, Some(2))],
        ..Faults::default()
    };
    assert!(faults.take_forced(Endpoint::Instance).is_none());
    assert_eq!(faults.take_forced(Endpoint::Token).unwrap().status, 500);
    assert_eq!(faults.take_forced(Endpoint::Token).unwrap().status, 500);
    assert!(faults.take_forced(Endpoint::Token).is_none());
    assert!(faults.forced.is_empty());
}

#[test]
fn uncounted_fault_stays_and_first_match_wins() {
    let mut faults = Faults {
        forced: vec![
            forced(Some(Endpoint::Versions), 404, None),
            forced(None, 410, None),
        ],
        ..Faults::default()
    };
    for _ in 0..3 {
        assert_eq!(faults.take_forced(Endpoint::Versions).unwrap().status, 404);
        assert_eq!(faults.take_forced(Endpoint::Token).unwrap().status, 410);
    }
}

#[test]
fn latency_adds_up() {
    let faults: Faults =
        serde_json::from_str(r#"{"latency_ms":5,"endpoint_latency_ms":{"token":10}}"#).unwrap();
    assert_eq!(faults.latency(Endpoint::Token), Duration::from_millis(15));
    assert_eq!(faults.latency(Endpoint::Instance), Duration::from_millis(5));
}

#[test]
fn validation_and_schema() {
    let bad = Faults {
        forced: vec![forced(None, 42, None)],
        ..Faults::default()
    };
    assert_eq!(bad.validate(), Err(FaultsError::Status(42)));
    assert!(serde_json::from_str::<Faults>(r#"{"outage":true,"bogus":1}"#).is_err());
    let parsed: Faults = serde_json::from_str(
        r#"{"forced":[{"endpoint":"token","status":429,"retry_after_secs":3,"count":1}]}"#,
    )
    .unwrap();
    assert_eq!(parsed.forced[0].retry_after_secs, Some(3));
    parsed.validate().unwrap();
}

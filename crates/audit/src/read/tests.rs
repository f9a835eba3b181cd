use super::*;
use crate::record::{encode, GENESIS};

fn line(event: &str) -> Vec<u8> {
    let mut l = encode(7, "2026-12-03T10:00:00.000Z", GENESIS, event.as_bytes())
        .unwrap()
        .line;
    l.pop();
    l
}

#[test]
fn raw_reads_seq_time_and_type_by_position() {
    let l = line(r#"{"type":"policy_loaded","policy":"ab"}"#);
    let r = raw(&l).unwrap();
    assert_eq!(
        (r.seq, r.time, r.kind),
        (7, "2026-12-03T10:00:00.000Z", "policy_loaded")
    );
    assert_eq!(
        r.event().unwrap(),
        Event::PolicyLoaded {
            policy: "ab".into()
        }
    );
    assert!(r.contains(&Needle::new(b"\"ab\"")));
    assert!(!r.contains(&Needle::new(b"\"abc\"")));
}

#[test]
fn a_request_reads_the_same_by_the_fast_path() {
    let event = Event::Request(Box::new(crate::RequestRecord {
        decision: "d1".into(),
        peer: "127.0.0.1:1".into(),
        caller: None,
        request: crate::RequestFacts {
            method: "GET".into(),
            ..Default::default()
        },
        outcome: crate::Outcome::Rejected,
        reason: "MissingMetadata".into(),
        decided_by: vec![],
        decision_detail: None,
        upstream: None,
        status: 400,
        latency_us: 5,
        policy: "ab".into(),
    }));
    let json = serde_json::to_string(&event).unwrap();
    let l = line(&json);
    assert_eq!(raw(&l).unwrap().event().unwrap(), event);
    // A second `type` is a field the record does not know, either way.
    let twice = line(&json.replacen("\"decision\"", "\"type\":\"x\",\"decision\"", 1));
    assert!(matches!(
        raw(&twice).unwrap().event(),
        Err(ReadProblem::Newer(_))
    ));
}

#[test]
fn bad_lines_say_what_is_wrong() {
    let good = line(r#"{"type":"policy_loaded","policy":"ab"}"#);
    let newer = line(r#"{"type":"policy_loaded","policy":"ab","signed_by":"x"}"#);
    let unknown = line(r#"{"type":"quantum_event"}"#);
    type Want = fn(&ReadProblem) -> bool;
    let cases: Vec<(&[u8], Want)> = vec![
        (b"hello world", |p| matches!(p, ReadProblem::NotALog(_))),
        (b"", |p| matches!(p, ReadProblem::NotALog(_))),
        (&good[..good.len() - 20], |p| {
            matches!(p, ReadProblem::Malformed(_))
        }),
        (&good[..40], |p| matches!(p, ReadProblem::Malformed(_))),
        (&newer, |p| matches!(p, ReadProblem::Newer(_))),
        (&unknown, |p| matches!(p, ReadProblem::Newer(_))),
    ];
    for (input, want) in cases {
        let got = raw(input).and_then(|r| r.event());
        assert!(
            got.as_ref().is_err_and(want),
            "{:?}: {got:?}",
            String::from_utf8_lossy(input)
        );
    }
}

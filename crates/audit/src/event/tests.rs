use super::*;
use serde_json::{json, Value};

fn jit_event() -> JitEvent {
    JitEvent {
        jit_event: 3,
        id: "jit-1".into(),
        at: "2026-01-01T00:00:00.000Z".into(),
        actor: Some(Principal {
            uid: Some(1000),
            name: "alice".into(),
        }),
        detail: JitDetail::Event(EventDetail {
            reason: Some("r".into()),
            ..EventDetail::default()
        }),
        request: None,
    }
}

/// One of each variant.
fn one_of_each() -> Vec<Event> {
    let request = RequestRecord {
        decision: "0123456789ab".into(),
        peer: "127.0.0.1:1".into(),
        caller: None,
        request: RequestFacts {
            method: "GET".into(),
            ..RequestFacts::default()
        },
        outcome: Outcome::Rejected,
        reason: "bad".into(),
        decided_by: vec![],
        decision_detail: None,
        upstream: None,
        status: 400,
        latency_us: 1,
        policy: "00".into(),
    };
    let forwarding = ForwardingRecord {
        decision: "0123456789ab".into(),
        caller: None,
        request: RequestFacts::default(),
        decided_by: vec!["a".into()],
    };
    let mut all = vec![
        Event::GateStarted {
            upstream: "emulator".into(),
            policy_path: "p".into(),
            policy: "h".into(),
        },
        Event::GateStopped {
            reason: "SIGTERM".into(),
            requests_served: 3,
        },
        Event::PolicyLoaded { policy: "h".into() },
        Event::PolicyRejected {
            reason: "r".into(),
            kept: "h".into(),
        },
        Event::Request(Box::new(request)),
        Event::Forwarding(Box::new(forwarding)),
        Event::Rotated {
            previous_file: None,
            previous_last_seq: 4,
        },
        Event::TornTailRepaired { bytes: 3 },
        Event::FirewallVerified {
            trigger: "start".into(),
        },
        Event::FirewallRepaired {
            trigger: "periodic".into(),
            differences: vec!["x".into()],
            remaining: vec![],
        },
        Event::FirewallRepairFailed {
            trigger: "start".into(),
            error: "e".into(),
        },
        Event::FirewallMonitorLost { error: "e".into() },
        Event::FirewallProbed {
            trigger: "start".into(),
            target: "169.254.169.254:80".into(),
            uid: 65534,
            verdict: "reaches_gate".into(),
            message: "m".into(),
            holds: true,
        },
        Event::JitPruned {
            requests: 2,
            finished_before: "t".into(),
        },
        Event::JitPortsSynced {
            why: "start".into(),
            added: 1,
            removed: 0,
            kept: 0,
        },
        Event::JitSignedRequestRefused {
            source: "192.0.2.1".into(),
            kind: "k".into(),
            message: "m".into(),
            signer: None,
        },
        Event::JitSessionsCut {
            id: "jit-1".into(),
            source: "192.0.2.1".into(),
            port: 22,
            protocol: "tcp".into(),
            sockets: 1,
        },
        Event::JitPortsChangedNeedRestart {},
        Event::Checkpoint(Box::new(crate::event::checkpoint::Checkpoint {
            head_seq: 7,
            head_hash: "0".repeat(64),
            signed_at: "2026-12-03T18:00:00.000Z".into(),
            rotated_kept: Some(3),
            key_id: "SHA256:x".into(),
            signature: "0".repeat(128),
        })),
    ];
    for kind in [
        "requested",
        "approved",
        "auto_approved",
        "denied",
        "activated",
        "revoked",
        "expired",
        "lapsed",
    ] {
        all.extend(Event::jit(kind, jit_event()));
    }
    all
}

#[test]
fn every_variant_round_trips_under_its_own_type_name() {
    let all = one_of_each();
    assert_eq!(all.len(), 27);
    assert_eq!(KINDS.len(), all.len());
    for event in all {
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(value["type"], json!(event.kind()), "{value}");
        assert!(KINDS.contains(&event.kind()), "{}", event.kind());
        let back: Event = serde_json::from_value(value).unwrap();
        assert_eq!(back, event);
    }
    assert!(Event::jit("unheard_of", jit_event()).is_none());
}

#[test]
fn what_the_schema_does_not_know_is_refused() {
    let rows: &[(&str, Value)] = &[
        (
            "unknown type",
            json!({"type": "decision", "outcome": "allow"}),
        ),
        ("no type", json!({"policy": "h"})),
        (
            "extra field",
            json!({"type": "policy_loaded", "policy": "h", "token": "x"}),
        ),
        (
            "extra field, fieldless type",
            json!({"type": "jit_ports_changed_need_restart", "x": 1}),
        ),
        (
            "missing field",
            json!({"type": "policy_rejected", "reason": "r"}),
        ),
        (
            "wrong field type",
            json!({"type": "torn_tail_repaired", "bytes": "3"}),
        ),
        (
            "unknown outcome",
            json!({
            "type": "request", "decision": "d", "peer": "p", "caller": null,
            "request": {"method": "GET"}, "outcome": "maybe", "reason": "r",
            "decided_by": [], "decision_detail": null, "upstream": null,
            "status": 200, "latency_us": 1, "policy": "h"}),
        ),
        (
            "extra field in a nested record",
            json!({
            "type": "request", "decision": "d", "peer": "p", "caller": null,
            "request": {"method": "GET", "cookie": "c"}, "outcome": "allow", "reason": "r",
            "decided_by": [], "decision_detail": null, "upstream": null,
            "status": 200, "latency_us": 1, "policy": "h"}),
        ),
        (
            "extra field in a jit detail",
            json!({
            "type": "jit_denied", "jit_event": 1, "id": "i", "at": "t", "actor": null,
            "detail": {"reason": "r", "secret": "s"}}),
        ),
    ];
    for (why, value) in rows {
        assert!(
            serde_json::from_value::<Event>(value.clone()).is_err(),
            "{why}: {value} was accepted"
        );
    }
}

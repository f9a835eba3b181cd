use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::time::{format_ms, parse_ms, to_ms};
use super::*;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[test]
fn formats_and_parses_known_instants() {
    let rows = [
        (0i64, "1970-01-01T00:00:00.000Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (1_795_618_869_123, "2026-11-25T15:01:09.123Z"),
        (4_102_444_799_999, "2099-12-31T23:59:59.999Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ];
    for (ms, text) in rows {
        assert_eq!(format_ms(ms), text);
        assert_eq!(parse_ms(text), Some(ms), "{text}");
    }
}

#[test]
fn refuses_other_spellings() {
    for text in [
        "",
        "2026-11-25T15:01:09Z",
        "2026-11-25T15:01:09.123+00:00",
        "2026-02-30T00:00:00.000Z",
        "2026-13-01T00:00:00.000Z",
        "2026-11-25T24:00:00.000Z",
        "2026-11-25 15:01:09.123Z",
    ] {
        assert_eq!(parse_ms(text), None, "{text}");
    }
}

#[test]
fn refuses_times_out_of_range() {
    assert!(matches!(
        to_ms(UNIX_EPOCH - Duration::from_secs(1)),
        Err(StoreError::InvalidTime(_))
    ));
    assert!(matches!(
        to_ms(at(300_000_000_000)),
        Err(StoreError::InvalidTime(_))
    ));
}

fn record(state: State) -> Record {
    Record {
        id: "jit-0123456789ab".into(),
        request: NewRequest {
            kind: Kind::Port,
            requester: Requester {
                uid: None,
                name: "alice@example".into(),
            },
            role: None,
            assignment: None,
            identity: None,
            audience: None,
            port: Some(22),
            protocol: Some("tcp".into()),
            source: Some("192.0.2.7".into()),
            duration_secs: 3600,
            requested_secs: 7200,
            reason: Some("deploy".into()),
            ticket: None,
            via: "signed-request".into(),
        },
        state,
        created: at(1000),
        lapses: at(1000 + PENDING_LIFETIME_SECS),
        decided_by: None,
        decided_at: None,
        decision_reason: None,
        starts: Some(at(2000)),
        expires: Some(at(5600)),
        revoked_by: None,
        revoked_at: None,
    }
}

#[test]
fn state_at_judges_by_time() {
    let lapse = 1000 + PENDING_LIFETIME_SECS;
    let rows = [
        (State::Pending, 1000, State::Pending),
        (State::Pending, lapse - 1, State::Pending),
        (State::Pending, lapse, State::Lapsed),
        (State::Active, 2000, State::Active),
        (State::Active, 5599, State::Active),
        (State::Active, 5600, State::Expired),
        (State::Revoked, 9_999_999, State::Revoked),
        (State::Denied, 9_999_999, State::Denied),
        (State::Expired, 3000, State::Expired),
        (State::Lapsed, 3000, State::Lapsed),
    ];
    for (stored, now, want) in rows {
        assert_eq!(record(stored).state_at(at(now)), want, "{stored} at {now}");
    }
}

#[test]
fn record_json_is_flat_with_rfc3339_times() {
    let rec = record(State::Active);
    let json = serde_json::to_value(&rec).unwrap();
    assert_eq!(json["kind"], "port");
    assert_eq!(json["state"], "active");
    assert_eq!(json["port"], 22);
    assert_eq!(json["created"], "1970-01-01T00:16:40.000Z");
    assert_eq!(json["revoked_at"], serde_json::Value::Null);
    let back: Record = serde_json::from_value(json).unwrap();
    assert_eq!(back, rec);
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

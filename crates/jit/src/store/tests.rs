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
            common: Common {
                requester: Requester {
                    uid: None,
                    name: "alice@example".into(),
                },
                duration_secs: 3600,
                requested_secs: 7200,
                reason: Some("deploy".into()),
                ticket: None,
                via: "signed-request".into(),
            },
            target: Target::Port {
                name: "ssh".into(),
                port: 22,
                protocol: Protocol::Tcp,
                source: "192.0.2.7".parse().unwrap(),
            },
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

/// The JSON every earlier version wrote: all nine target fields beside
/// `kind`, `null` where the kind does not use them, in the same order.
#[test]
fn record_json_keeps_the_flat_request_fields() {
    let json = serde_json::to_string(&record(State::Active).request).unwrap();
    assert_eq!(
        json,
        r#"{"kind":"port","requester":{"uid":null,"name":"alice@example"},"role":null,"assignment":"ssh","identity":null,"audience":null,"port":22,"protocol":"tcp","source":"192.0.2.7","duration_secs":3600,"requested_secs":7200,"reason":"deploy","ticket":null,"via":"signed-request"}"#
    );
}

/// A flat request must have what its kind needs and nothing of the other
/// kind; the reason names the first thing wrong.
#[test]
fn incomplete_requests_are_refused_on_read() {
    let port = serde_json::to_value(&record(State::Active).request).unwrap();
    let role = serde_json::json!({
        "kind": "role", "requester": {"uid": 1000, "name": "alice"},
        "role": "Reader", "assignment": "a1", "identity": "storage-writer",
        "audience": null, "port": null, "protocol": null, "source": null,
        "duration_secs": 60, "requested_secs": 60, "reason": null, "ticket": null,
        "via": "admin-socket"
    });
    let with = |base: &serde_json::Value, key: &str, v: serde_json::Value| {
        let mut x = base.clone();
        x[key] = v;
        x
    };
    let null = serde_json::Value::Null;
    let cases = [
        (role.clone(), None),
        (port.clone(), None),
        (with(&role, "role", null.clone()), Some("names no role")),
        (
            with(&role, "assignment", null.clone()),
            Some("names no assignment"),
        ),
        (
            with(&role, "identity", null.clone()),
            Some("names no identity"),
        ),
        (with(&role, "port", 22.into()), Some("has a port")),
        (
            with(
                &role,
                "requester",
                serde_json::json!({"uid": null, "name": "x"}),
            ),
            Some("no local requester"),
        ),
        (with(&port, "port", null.clone()), Some("names no port")),
        (
            with(&port, "protocol", null.clone()),
            Some("names no protocol"),
        ),
        (
            with(&port, "protocol", "sctp".into()),
            Some("unknown variant"),
        ),
        (with(&port, "source", null.clone()), Some("names no source")),
        (
            with(&port, "source", "not-an-ip".into()),
            Some("invalid IP"),
        ),
        (
            with(&port, "assignment", null.clone()),
            Some("names no `[[jit_port]]`"),
        ),
        (
            with(&port, "identity", "i".into()),
            Some("has a role, identity"),
        ),
    ];
    for (json, want) in cases {
        let got = serde_json::from_value::<NewRequest>(json.clone());
        match (want, got) {
            (None, Ok(r)) => assert_eq!(serde_json::to_value(&r).unwrap(), json),
            (Some(why), Err(e)) => assert!(e.to_string().contains(why), "{why}: {e}"),
            (want, got) => panic!("{json}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

// The calendar is jiff's; these pin what the store makes of it (they were
// the tests of the hand-written `gatehouse-civil`, now of its users).

/// (days since 1970-01-01, the date's text).
const KNOWN_DAYS: &[(i64, &str)] = &[
    (0, "1970-01-01"),
    (-1, "1969-12-31"),
    (-719_528, "0000-01-01"),
    (-719_468, "0000-03-01"),
    (10_956, "1999-12-31"),
    (11_016, "2000-02-29"),
    (11_017, "2000-03-01"),
    (19_782, "2024-02-29"),
    (47_540, "2100-02-28"),
    (47_541, "2100-03-01"),
    (2_932_896, "9999-12-31"),
];

const MS_PER_DAY: i64 = 86_400_000;

#[test]
fn known_dates_both_ways() {
    for &(days, date) in KNOWN_DAYS {
        let text = format!("{date}T00:00:00.000Z");
        assert_eq!(format_ms(days * MS_PER_DAY), text, "{days}");
        assert_eq!(parse_ms(&text), Some(days * MS_PER_DAY), "{text}");
    }
}

#[test]
fn every_997th_day_from_year_0_to_9999_round_trips() {
    let (first, last) = (-719_528i64, 2_932_896i64);
    let mut previous = String::new();
    for days in (first..=last).step_by(997).chain([last]) {
        let ms = days * MS_PER_DAY + 45_296_789; // 12:34:56.789
        let text = format_ms(ms);
        assert!(text.ends_with("T12:34:56.789Z"), "{text}");
        assert_eq!(parse_ms(&text), Some(ms), "{text}");
        assert!(previous < text, "dates must increase with days: {days}");
        previous = text;
    }
}

#[test]
fn consecutive_days_are_consecutive_dates_across_400_years() {
    // One full era, day by day: each date is the day after the one before.
    let date = |days: i64| -> (u32, u32, u32) {
        let t = format_ms(days * MS_PER_DAY);
        let n = |r: std::ops::Range<usize>| t.get(r).unwrap().parse::<u32>().unwrap();
        (n(0..4), n(5..7), n(8..10))
    };
    let valid = |(y, m, d): (u32, u32, u32)| {
        parse_ms(&format!("{y:04}-{m:02}-{d:02}T00:00:00.000Z")).is_some()
    };
    let mut days = parse_ms("1600-01-01T00:00:00.000Z").unwrap() / MS_PER_DAY;
    let mut current = date(days);
    while current.0 < 2000 {
        days += 1;
        let next = date(days);
        let (y, m, d) = current;
        let expected = if valid((y, m, d + 1)) {
            (y, m, d + 1)
        } else if m < 12 {
            (y, m + 1, 1)
        } else {
            (y + 1, 1, 1)
        };
        assert_eq!(next, expected, "day {days}");
        current = next;
    }
}

#[test]
fn invalid_dates_are_refused() {
    // Month 0 and 13, day 0 and 32, 29 February off leap years (including
    // centuries not divisible by 400), the 31st of 30-day months, and times
    // of day that do not exist.
    let rows = [
        "2024-00-01",
        "2024-13-01",
        "2024-01-00",
        "2024-01-32",
        "2024-02-30",
        "2023-02-29",
        "2100-02-29",
        "1900-02-29",
        "2024-04-31",
        "2024-06-31",
        "2024-09-31",
        "2024-11-31",
    ];
    for date in rows {
        assert_eq!(parse_ms(&format!("{date}T00:00:00.000Z")), None, "{date}");
    }
    for time in ["24:00:00", "23:60:00", "23:59:60"] {
        assert_eq!(parse_ms(&format!("2024-01-01T{time}.000Z")), None, "{time}");
    }
    assert!(parse_ms("2000-02-29T00:00:00.000Z").is_some());
    assert!(parse_ms("2024-12-31T23:59:59.999Z").is_some());
}

#[test]
fn extreme_millisecond_counts_do_not_panic() {
    for ms in [i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX] {
        let text = format_ms(ms);
        assert!(text.ends_with('Z') && text.contains('T'), "{text}");
    }
    assert_eq!(format_ms(-1), "1969-12-31T23:59:59.999Z");
}

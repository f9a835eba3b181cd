use super::*;
use serde_json::json;

fn obj(v: Value) -> Vec<u8> {
    assert!(v.is_object());
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn times() {
    let cases = [
        ("2025-01-31T23:59:59.123Z", true),
        ("2025-12-01T00:00:60.000Z", true),
        ("2025-01-31T23:59:59Z", false),
        ("2025-01-31T23:59:59.123+00:00", false),
        ("2025-13-01T00:00:00.000Z", false),
        ("2025-00-01T00:00:00.000Z", false),
        ("2025-01-32T00:00:00.000Z", false),
        ("2025-01-01T24:00:00.000Z", false),
        ("2025-01-01 00:00:00.000Z", false),
        ("2025-01-01T00:00:00.000z", false),
        ("", false),
    ];
    for (time, want) in cases {
        assert_eq!(is_valid_time(time), want, "{time}");
    }
}

#[test]
fn encode_then_check_round_trips() {
    let event = obj(json!({"z": 1, "a": "x\ny", "n": 1.5e300}));
    let enc = encode(7, "2025-01-01T00:00:00.000Z", GENESIS, &event).unwrap();
    assert_eq!(enc.line.last(), Some(&b'\n'));
    assert_eq!(enc.line.iter().filter(|b| **b == b'\n').count(), 1);
    let body = enc.line.strip_suffix(b"\n").unwrap();
    let rec = check(body).unwrap();
    assert_eq!(
        rec,
        Record {
            seq: 7,
            prev: GENESIS.to_owned(),
            hash: enc.hash.clone(),
            event: json!({"z": 1, "a": "x\ny", "n": 1.5e300}),
        }
    );
    // The documented formula, computed independently of `encode`.
    let text = std::str::from_utf8(body).unwrap();
    let prefix = &text[..text.find(",\"hash\":").unwrap()];
    let mut h = Sha256::new();
    h.update(format!("{GENESIS}\n{prefix}"));
    assert_eq!(hex::encode(h.finalize()), enc.hash);
    assert!(text.starts_with("{\"seq\":7,\"time\":\"2025-01-01T00:00:00.000Z\",\"prev\":\""));
}

#[test]
fn check_rejects() {
    let enc = encode(
        1,
        "2025-01-01T00:00:00.000Z",
        GENESIS,
        &obj(json!({"k": "v"})),
    )
    .unwrap();
    let good = String::from_utf8(enc.line.strip_suffix(b"\n").unwrap().to_vec()).unwrap();
    let upper = good.replace(&enc.hash, &enc.hash.to_uppercase());
    let extra = good.replacen("{\"seq\":1,", "{\"seq\":1,\"x\":1,", 1);
    let edited = good.replace("\"v\"", "\"w\"");
    let cases: Vec<(&str, String, bool)> = vec![
        ("uppercase hash", upper, false),
        ("extra field", extra, false),
        ("edited value", edited, true),
        ("empty", String::new(), false),
        ("not json", "{\"seq\":".to_owned() + &"x".repeat(80), false),
    ];
    for (name, line, want_hash_mismatch) in cases {
        let err = check(line.as_bytes()).unwrap_err();
        assert_eq!(
            err == RecordError::HashMismatch,
            want_hash_mismatch,
            "{name}: {err}"
        );
    }
}

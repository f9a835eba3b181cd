//! Any single-byte change anywhere in a log makes verification fail.

mod common;

use gatehouse_audit::{verify_chain, AuditLog, Options};
use proptest::prelude::*;
use serde_json::json;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn any_single_byte_change_is_detected(
        events in prop::collection::vec(("\\PC{0,20}", any::<i64>(), any::<bool>()), 1..8),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(&path, Options::default()).unwrap();
        for (i, (text, number, flag)) in events.iter().enumerate() {
            log.append(&common::time(i as u64), &json!({"text": text, "n": number, "flag": flag})).unwrap();
        }
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        prop_assert!(verify_chain(std::slice::from_ref(&path)).is_ok());
        let at = position.index(bytes.len());
        bytes[at] ^= flip;
        std::fs::write(&path, &bytes).unwrap();
        prop_assert!(verify_chain(std::slice::from_ref(&path)).is_err(), "byte {} ^ {:#x} went unnoticed", at, flip);
    }
}

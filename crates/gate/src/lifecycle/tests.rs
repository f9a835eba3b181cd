#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

use super::*;

const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn outcomes_say_what_is_in_force() {
    let cases = [
        (
            ReloadOutcome::Loaded {
                policy: HASH.to_owned(),
            },
            "policy loaded (sha256 0123456789abcdef)",
        ),
        (
            ReloadOutcome::Kept {
                policy: HASH.to_owned(),
                reason: "policy has 2 error(s)".to_owned(),
                details: "policy.toml:3:1: ...".to_owned(),
            },
            "reload refused: policy has 2 error(s); the previous policy (sha256 0123456789abcdef) stays in force",
        ),
        (
            ReloadOutcome::Unanswered {
                reason: "the worker did not answer within 10 s".to_owned(),
            },
            "no answer from the gate: the worker did not answer within 10 s",
        ),
    ];
    for (outcome, said) in cases {
        assert_eq!(outcome.describe(), said);
        let reply = ControlReply { reload: outcome };
        let text = serde_json::to_string(&reply).unwrap();
        assert_eq!(serde_json::from_str::<ControlReply>(&text).unwrap(), reply);
    }
}

#[test]
fn the_control_socket_takes_one_request_and_nothing_else() {
    let cases: [(&str, bool); 5] = [
        (r#""reload""#, true),
        (r#""stop""#, false),
        (r#"{"reload":{}}"#, false),
        (r#"{"reload":null,"x":1}"#, false),
        ("", false),
    ];
    for (text, ok) in cases {
        assert_eq!(
            serde_json::from_str::<ControlRequest>(text).is_ok(),
            ok,
            "{text}"
        );
    }
    let reply = r#"{"reload":{"loaded":{"policy":"ab"}},"extra":1}"#;
    assert!(serde_json::from_str::<ControlReply>(reply).is_err());
}

#[test]
fn the_status_line_is_one_short_line() {
    let line = status_line(HASH, "sock_diag", 42);
    assert_eq!(
        line,
        "policy sha256 0123456789abcdef; callers: sock_diag; 42 requests served"
    );
    assert!(!line.contains('\n'));
    assert_eq!(
        status_line("short", "eBPF connect records", 0),
        "policy sha256 short; callers: eBPF connect records; 0 requests served"
    );
}

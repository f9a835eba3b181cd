use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use super::{split, KnockError, PortRequest};

fn request() -> PortRequest {
    PortRequest {
        port: 22,
        protocol: "tcp".into(),
        source: "203.0.113.7".parse().unwrap(),
        duration_secs: 3600,
        reason: "deploy the 4.2 hotfix = urgent".into(),
        ticket: Some("OPS-1234".into()),
        nonce: "5f0c8e7d9a1b2c3d4e5f60718293a4b5".into(),
        timestamp: 1_767_225_600,
        host: Some("vm-7.example.com".into()),
    }
}

const MESSAGE: &str = "gatehouse-jit-request v1\n\
port=22\n\
protocol=tcp\n\
source=203.0.113.7\n\
duration_secs=3600\n\
reason=deploy the 4.2 hotfix = urgent\n\
ticket=OPS-1234\n\
nonce=5f0c8e7d9a1b2c3d4e5f60718293a4b5\n\
timestamp=1767225600\n\
host=vm-7.example.com\n";

#[test]
fn message_is_the_documented_text() {
    assert_eq!(request().message(), MESSAGE);
    assert_eq!(PortRequest::parse_message(MESSAGE).unwrap(), request());
    let bare = PortRequest {
        ticket: None,
        host: None,
        ..request()
    };
    assert!(!bare.message().contains("ticket=") && !bare.message().contains("host="));
    assert_eq!(PortRequest::parse_message(&bare.message()).unwrap(), bare);
}

#[test]
fn new_makes_a_fresh_valid_request() {
    let now = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let source: IpAddr = "::ffff:198.51.100.2".parse().unwrap();
    let a = PortRequest::new(22, "tcp", source, 60, "why", None, None, now);
    let b = PortRequest::new(22, "tcp", source, 60, "why", None, None, now);
    assert_ne!(a.nonce, b.nonce);
    assert_eq!(a.timestamp, 1_767_225_600);
    assert_eq!(
        a.source,
        "198.51.100.2".parse::<IpAddr>().unwrap(),
        "mapped address becomes IPv4"
    );
    a.validate().unwrap();
}

#[test]
fn validate_refuses_what_would_read_differently() {
    for bad in [
        PortRequest {
            reason: "ok\nticket=X".into(),
            ticket: None,
            ..request()
        },
        PortRequest {
            reason: String::new(),
            ..request()
        },
        PortRequest {
            reason: "a\u{1b}[31m".into(),
            ..request()
        },
        PortRequest {
            ticket: Some(String::new()),
            ..request()
        },
        PortRequest {
            protocol: "sctp".into(),
            ..request()
        },
        PortRequest {
            port: 0,
            ..request()
        },
        PortRequest {
            duration_secs: 0,
            ..request()
        },
        PortRequest {
            nonce: "ABC".into(),
            ..request()
        },
        PortRequest {
            host: Some("a b".into()),
            ..request()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

/// One-line edits of the good message and the problem each must report.
#[test]
fn parse_message_is_strict() {
    for (from, to, line, needle) in [
        (
            "gatehouse-jit-request v1",
            "gatehouse-jit-request v2",
            1,
            "unsupported request version",
        ),
        ("gatehouse-jit-request v1", "hello", 1, "first line"),
        ("port=22", "port=022", 2, "port number"),
        ("port=22", "port=+22", 2, "port number"),
        ("port=22", "port=65536", 2, "port number"),
        ("port=22", "port=0", 2, "port number"),
        ("port=22", "prot=22", 2, "unknown key `prot`"),
        ("protocol=tcp", "protocol=TCP", 3, "`tcp` or `udp`"),
        (
            "source=203.0.113.7",
            "source=::ffff:203.0.113.7",
            4,
            "IPv4-mapped",
        ),
        ("source=203.0.113.7", "source=2001:DB8::1", 4, "canonical"),
        ("source=203.0.113.7", "source=2001:db8:0::1", 4, "canonical"),
        ("source=203.0.113.7", "source=0.0.0.0", 4, "single host"),
        ("source=203.0.113.7", "source=224.0.0.1", 4, "single host"),
        (
            "source=203.0.113.7",
            "source=example.com",
            4,
            "IPv4 or IPv6",
        ),
        ("duration_secs=3600", "duration_secs=2592001", 5, "30 days"),
        (
            "duration_secs=3600",
            "duration_secs=18446744073709551616",
            5,
            "30 days",
        ),
        (
            "reason=deploy the 4.2 hotfix = urgent",
            "reason=",
            6,
            "1 to 512",
        ),
        (
            "reason=deploy the 4.2 hotfix = urgent",
            "reason=a\u{7f}",
            6,
            "control",
        ),
        (
            "reason=deploy the 4.2 hotfix = urgent",
            "reason=a\u{202e}b",
            6,
            "control",
        ),
        (
            "reason=deploy the 4.2 hotfix = urgent",
            "reason=a\rb",
            6,
            "control",
        ),
        ("ticket=OPS-1234", "ticket=", 7, "1 to 128"),
        (
            "ticket=OPS-1234",
            "ticket=OPS-1234\nticket=OPS-2",
            8,
            "duplicate or out of order",
        ),
        (
            "nonce=5f0c8e7d9a1b2c3d4e5f60718293a4b5",
            "nonce=5F0C8E7D9A1B2C3D4E5F60718293A4B5",
            8,
            "lowercase hex",
        ),
        (
            "nonce=5f0c8e7d9a1b2c3d4e5f60718293a4b5",
            "nonce=5f0c",
            8,
            "lowercase hex",
        ),
        ("timestamp=1767225600", "timestamp=-1", 9, "Unix seconds"),
        (
            "timestamp=1767225600",
            "",
            9,
            "expected `timestamp=`, found a line without `=`",
        ),
        ("host=vm-7.example.com", "host=vm 7", 10, "host name"),
        (
            "host=vm-7.example.com",
            "host=vm\nextra=1",
            11,
            "unknown key `extra`",
        ),
        (
            "host=vm-7.example.com",
            "host=vm\nport=22",
            11,
            "duplicate or out of order",
        ),
        (
            "protocol=tcp\nsource=203.0.113.7",
            "source=203.0.113.7\nprotocol=tcp",
            3,
            "expected `protocol=`",
        ),
    ] {
        let text = MESSAGE.replacen(from, to, 1);
        match PortRequest::parse_message(&text) {
            Err(KnockError::Message { line: l, problem }) => {
                assert!(
                    problem.contains(needle) && l == line,
                    "{to:?}: want line {line} `{needle}`, got line {l}: {problem}"
                )
            }
            other => panic!("{to:?}: want an error, got {other:?}"),
        }
    }
}

#[test]
fn parse_message_wants_the_exact_ending() {
    for (text, needle) in [
        (MESSAGE.trim_end_matches('\n').to_owned(), "line break"),
        (format!("{MESSAGE}\n"), "unexpected line without `=`"),
        (MESSAGE.replace('\n', "\r\n"), "first line"),
        (
            "gatehouse-jit-request v1\nport=22\n".to_owned(),
            "missing `protocol=`",
        ),
        (String::new(), "line break"),
    ] {
        let e = PortRequest::parse_message(&text).unwrap_err();
        assert!(e.to_string().contains(needle), "{text:?}: {e}");
        assert_eq!(e.kind(), "bad_message");
    }
}

#[test]
fn reason_length_counts_characters() {
    let ok = PortRequest {
        reason: "é".repeat(512),
        ..request()
    };
    ok.validate().unwrap();
    let long = PortRequest {
        reason: "a".repeat(513),
        ..request()
    };
    assert!(long.validate().is_err());
}

#[test]
fn framing() {
    const SIG: &str = "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n";
    for (packet, expected) in [
        (format!("{MESSAGE}{SIG}"), Ok(MESSAGE.len())),
        (format!("{MESSAGE}{}", SIG.trim_end()), Ok(MESSAGE.len())),
        (SIG.to_owned(), Err("starts with the signature")),
        (MESSAGE.to_owned(), Err("no `-----BEGIN")),
        (String::new(), Err("no `-----BEGIN")),
        (format!("{MESSAGE}{SIG}extra"), Err("does not end with")),
        (format!("{MESSAGE}{SIG}{SIG}"), Err("more than one")),
        (
            format!("{}{SIG}", MESSAGE.trim_end()),
            Err("no `-----BEGIN"),
        ),
    ] {
        match (split(packet.as_bytes()), expected) {
            (Ok((message, _)), Ok(len)) => assert_eq!(message.len(), len),
            (Err(KnockError::Framing { problem }), Err(needle)) => {
                assert!(problem.contains(needle), "{packet:?}: {problem}")
            }
            (got, want) => panic!("{packet:?}: got {got:?}, want {want:?}"),
        }
    }
}

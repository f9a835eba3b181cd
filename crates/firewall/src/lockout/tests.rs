use super::*;
use crate::ruleset::JitPorts;
use std::time::Duration;

fn options(break_glass: &[&str]) -> Options {
    Options {
        jit: Some(JitPorts {
            ports: vec![(Protocol::Tcp, 22), (Protocol::Udp, 60001)],
            break_glass: break_glass.iter().map(|n| n.parse().unwrap()).collect(),
        }),
        ..crate::ruleset::tests::options()
    }
}

fn opened(source: &str, proto: Protocol, port: u16) -> Element {
    Element {
        source: source.parse().unwrap(),
        proto,
        port,
        expires_in: Duration::from_secs(600),
    }
}

#[test]
fn lockout_table() {
    let open_22 = [opened("203.0.113.7", Protocol::Tcp, 22)];
    let open_other = [
        opened("203.0.113.7", Protocol::Tcp, 2222),
        opened("203.0.113.7", Protocol::Udp, 22),
        opened("203.0.113.8", Protocol::Tcp, 22),
    ];
    // (SSH_CONNECTION, break-glass, current elements, locked out?)
    type Case<'a> = (Option<&'a str>, &'a [&'a str], &'a [Element], bool);
    let cases: &[Case] = &[
        (None, &[], &[], false),
        (Some(""), &[], &[], false),
        (Some("203.0.113.7 50000 10.0.0.4 22"), &[], &[], true),
        (
            Some("203.0.113.7 50000 10.0.0.4 22"),
            &["203.0.113.0/24"],
            &[],
            false,
        ),
        (
            Some("203.0.113.7 50000 10.0.0.4 22"),
            &["198.51.100.0/24"],
            &[],
            true,
        ),
        (Some("203.0.113.7 50000 10.0.0.4 22"), &[], &open_22, false),
        (
            Some("203.0.113.7 50000 10.0.0.4 22"),
            &[],
            &open_other,
            true,
        ),
        // not a protected port, or protected only for udp
        (Some("203.0.113.7 50000 10.0.0.4 2200"), &[], &[], false),
        (Some("203.0.113.7 50000 10.0.0.4 60001"), &[], &[], false),
        // v4-mapped and v6 clients
        (
            Some("::ffff:203.0.113.7 50000 ::ffff:10.0.0.4 22"),
            &["203.0.113.7/32"],
            &[],
            false,
        ),
        (
            Some("::ffff:203.0.113.7 50000 ::ffff:10.0.0.4 22"),
            &[],
            &open_22,
            false,
        ),
        (
            Some("2001:db8::5 50000 2001:db8::1 22"),
            &["2001:db8::/64"],
            &[],
            false,
        ),
        (
            Some("2001:db8::5 50000 2001:db8::1 22"),
            &["203.0.113.0/24"],
            &[],
            true,
        ),
        (
            Some("fe80::5%eth0 50000 fe80::1%eth0 22"),
            &["fe80::/10"],
            &[],
            false,
        ),
        // not an SSH_CONNECTION: reported
        (Some("garbage"), &["0.0.0.0/0"], &[], true),
        (Some("203.0.113.7 50000 10.0.0.4"), &[], &[], true),
        (Some("203.0.113.7 x 10.0.0.4 22"), &[], &[], true),
        (Some("203.0.113.7 50000 10.0.0.4 70000"), &[], &[], true),
    ];
    for (conn, break_glass, current, want) in cases {
        let got = would_lock_out(&options(break_glass), *conn, current);
        assert_eq!(
            got.is_some(),
            *want,
            "{conn:?} {break_glass:?} {current:?}: {got:?}"
        );
    }
}

#[test]
fn message_says_who_and_how_to_fix() {
    let msg = would_lock_out(&options(&[]), Some("203.0.113.7 50000 10.0.0.4 22"), &[]).unwrap();
    for needle in [
        "`203.0.113.7`",
        "port 22",
        "[jit] break_glass",
        "--allow-lockout",
        "open port 22",
    ] {
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
}

#[test]
fn without_jit_nothing_locks_out() {
    let opts = Options {
        jit: None,
        ..options(&[])
    };
    assert_eq!(
        would_lock_out(&opts, Some("203.0.113.7 50000 10.0.0.4 22"), &[]),
        None
    );
}

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "test code: a failed step must fail the test loudly"
)]

use super::*;

/// The child's line, and whether the gate's listener holds the other end,
/// give one verdict each: only a connection found at the listener holds.
#[test]
fn each_probe_outcome_has_its_verdict() {
    let gate: SocketAddr = "127.0.0.1:16925".parse().unwrap();
    let cases: [(&str, bool, Verdict, &str); 9] = [
        (
            "connected 169.254.10.2:40000",
            true,
            Verdict::ReachesGate,
            "reached the gate's listener",
        ),
        (
            "connected 169.254.10.2:40000",
            false,
            Verdict::Diverted,
            "earlier nft or iptables DNAT",
        ),
        (
            "error refused Connection refused (os error 111)",
            false,
            Verdict::Refused,
            "no gate listens on 127.0.0.1:16925",
        ),
        (
            "error timeout connection timed out",
            false,
            Verdict::TimedOut,
            "got no answer",
        ),
        (
            "error blocked Permission denied (os error 13)",
            false,
            Verdict::Blocked("Permission denied (os error 13)".into()),
            "systemd-imdsd's lockdown",
        ),
        (
            "error noroute Network is unreachable (os error 101)",
            false,
            Verdict::NoRoute("Network is unreachable (os error 101)".into()),
            "found no route",
        ),
        (
            "error failed Address in use",
            false,
            Verdict::Failed("Address in use".into()),
            "could not be made",
        ),
        (
            "",
            false,
            Verdict::Failed("the probe printed ``".into()),
            "could not be made",
        ),
        (
            "connected nonsense",
            true,
            Verdict::Failed("the probe printed `connected nonsense`".into()),
            "could not be made",
        ),
    ];
    for (line, at_gate, want, says) in cases {
        let got = judge(&parse_line(line), at_gate);
        assert_eq!(got, want, "{line:?} at_gate={at_gate}");
        assert_eq!(got.holds(), want == Verdict::ReachesGate, "{line:?}");
        let message = got.message(PROBE_UID, IMDS_TARGET, gate);
        assert!(message.contains(says), "{line:?}: {message}");
        assert!(
            message.contains("169.254.169.254:80"),
            "{line:?}: {message}"
        );
    }
}

/// Every verdict has its own audit word, and the start-up probe's record
/// carries it with the target and the uid.
#[test]
fn each_verdict_has_its_own_audit_word() {
    let verdicts = [
        Verdict::ReachesGate,
        Verdict::Diverted,
        Verdict::Refused,
        Verdict::TimedOut,
        Verdict::Blocked(String::new()),
        Verdict::NoRoute(String::new()),
        Verdict::Failed(String::new()),
    ];
    let words: std::collections::BTreeSet<&str> = verdicts.iter().map(Verdict::label).collect();
    assert_eq!(words.len(), verdicts.len(), "{words:?}");
    let probe = StartProbe {
        target: IMDS_TARGET,
        gate: "127.0.0.1:16925".parse().unwrap(),
        uid: PROBE_UID,
        verdict: Verdict::Diverted,
        trigger: "start",
    };
    match probe.audit_record() {
        gatehouse_audit::Event::FirewallProbed {
            trigger,
            target,
            uid,
            verdict,
            message,
            holds,
        } => {
            assert_eq!(
                (
                    trigger.as_str(),
                    target.as_str(),
                    uid,
                    verdict.as_str(),
                    holds
                ),
                ("start", "169.254.169.254:80", PROBE_UID, "diverted", false)
            );
            assert!(message.contains("not by the gate's listener"), "{message}");
        }
        other => panic!("not a probe record: {other:?}"),
    }
}

/// The redirect lands a wildcard listener's connections on loopback.
#[test]
fn the_probe_looks_for_the_gate_where_the_redirect_lands() {
    let cases = [
        ("127.0.0.1:16925", "127.0.0.1:16925"),
        ("0.0.0.0:16925", "127.0.0.1:16925"),
        ("[::]:16925", "[::1]:16925"),
        ("[::1]:16925", "[::1]:16925"),
        ("10.0.0.4:80", "10.0.0.4:80"),
    ];
    for (gate, want) in cases {
        let got = reached_at(gate.parse().unwrap());
        assert_eq!(got, want.parse::<SocketAddr>().unwrap(), "{gate}");
    }
}

/// Which probes say the gate is in the path: only one that reached it,
/// except that no route to IMDS's IPv6 address at all is no way around the
/// gate either (IPv6 without a route there). The IPv6 probe looks for the
/// gate at [::1].
#[test]
fn a_probe_holds_when_it_reached_the_gate_or_ipv6_has_no_route() {
    let no_route = Verdict::NoRoute("Network is unreachable".into());
    let cases = [
        (IMDS_TARGET, Verdict::ReachesGate, true),
        (IMDS_TARGET, no_route.clone(), false),
        (IMDS_TARGET, Verdict::Diverted, false),
        (IMDS6_TARGET, Verdict::ReachesGate, true),
        (IMDS6_TARGET, no_route, true),
        (IMDS6_TARGET, Verdict::Refused, false),
        (
            IMDS6_TARGET,
            Verdict::Blocked("Permission denied".into()),
            false,
        ),
    ];
    for (target, verdict, holds) in cases {
        let p = StartProbe {
            target,
            gate: "127.0.0.1:16925".parse().unwrap(),
            uid: PROBE_UID,
            verdict: verdict.clone(),
            trigger: "start",
        };
        assert_eq!(p.holds(), holds, "{target} {verdict:?}");
    }
    let options = |ipv6| gatehouse_firewall::Options {
        listen: "127.0.0.1:16925".parse().unwrap(),
        mark: 1,
        wireserver: true,
        containers: gatehouse_firewall::Containers::Drop,
        ipv6,
        jit: None,
    };
    let intercept = targets(&options(gatehouse_firewall::Ipv6::Intercept));
    let want: Vec<(SocketAddr, SocketAddr)> = vec![
        (IMDS_TARGET, "127.0.0.1:16925".parse().unwrap()),
        (IMDS6_TARGET, "[::1]:16925".parse().unwrap()),
    ];
    assert_eq!(intercept, want);
    assert_eq!(
        targets(&options(gatehouse_firewall::Ipv6::Refuse)),
        want[..1]
    );
}

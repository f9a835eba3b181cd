#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed step must fail the test loudly"
)]

use super::*;

/// The child's line, and whether the gate's listener holds the other end,
/// give one verdict each: only a connection found at the listener holds.
#[test]
fn each_probe_outcome_has_its_verdict() {
    let gate: SocketAddrV4 = "127.0.0.1:16925".parse().unwrap();
    let cases: [(&str, bool, Verdict, &str); 8] = [
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
        let message = got.message(gate);
        assert!(message.contains(says), "{line:?}: {message}");
    }
}

//! Just-in-time tables: durations, loader errors, activation and port
//! planning, approvals, and decisions with grants.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::*;

const H: u64 = 3600;
const M: u64 = 60;

/// 2025-06-02T10:00:00Z, inside the business-hours window below.
fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_748_858_400)
}

fn at(offset_secs: i64) -> SystemTime {
    let base = t0();
    if offset_secs >= 0 {
        base + Duration::from_secs(offset_secs.unsigned_abs())
    } else {
        base - Duration::from_secs(offset_secs.unsigned_abs())
    }
}

const POLICY: &str = r#"version = 1
[identities.system]
kind = "system"
[identities.storage]
kind = "user"
client_id = "2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809"
[identities.vault]
kind = "user"
client_id = "4b8d9eaf-b0c1-42d3-a4f5-a6b7c8d9e0fb"

[jit]
break_glass = ["192.0.2.0/24", "2001:db8::/32"]

[[roles]]
name = "Storage Debugger"
actions = ["Gatehouse/token/read", "Gatehouse/instance/read"]

[[assignments]]
name = "ops-storage"
principal = "group:ops"
role = "Token Reader"
identities = ["storage"]
audiences = ["https://storage.azure.com", "https://*.blob.core.windows.net"]
eligible = true
max_duration = "2h"
approvers = ["group:secadmins", "user:bob", "uid:1001"]

[[assignments]]
name = "ops-vault"
principal = "group:ops"
role = "token reader"
identities = ["vault"]
audiences = ["https://vault.azure.net"]
eligible = true
require_ticket = true
approvers = ["group:secadmins"]

[[assignments]]
name = "dev-auto"
principal = "user:dev"
role = "Storage Debugger"
identities = ["storage"]
audiences = ["*"]
eligible = true
require_justification = false
auto_approve = true

[[assignments]]
name = "oncall-hours"
principal = "uid:2000"
role = "Token Reader"
identities = ["system"]
audiences = ["*"]
eligible = true
approvers = ["group:secadmins"]
auto_approve_condition = "@Environment[UtcNow] DateTimeGreaterThanEquals '2025-06-02T08:00:00Z' AND @Environment[UtcNow] DateTimeLessThan '2025-06-02T18:00:00Z'"

[[assignments]]
name = "ops-unit-only"
principal = "group:ops"
role = "Token Reader"
identities = ["system"]
audiences = ["*"]
eligible = true
approvers = ["group:secadmins"]
condition = "@Principal[unit] StringEquals 'ops.service'"

[[assignments]]
name = "standing"
principal = "uid:3000"
role = "Token Reader"
identities = ["system"]
audiences = ["*"]

[[deny_assignments]]
name = "no-storage-for-1666"
principals = ["uid:1666"]
actions = ["Gatehouse/token/read"]
identities = ["storage"]

[[jit_port]]
name = "ssh"
port = 22
sources = ["0.0.0.0/0", "::/0"]
requesters = ["group:ops", "signer:alice@example.com"]
approvers = ["group:secadmins"]

[[jit_port]]
name = "lab"
port = 3389
protocol = "udp"
sources = ["10.0.0.0/8", "fd00::/8"]
max_duration = "1h"
requesters = ["uid:1001"]
auto_approve = true
"#;

fn policy() -> Policy {
    match parse("jit.toml", POLICY) {
        Ok(p) => p,
        Err(d) => panic!("policy did not load:\n{d}"),
    }
}

fn person(uid: u32, user: &str, groups: &[&str]) -> Caller {
    Caller {
        uid: Some(uid),
        user: Some(user.into()),
        gids: vec![uid],
        group_names: groups.iter().map(|g| (*g).to_owned()).collect(),
        processes: Vec::new(),
    }
}

fn alice() -> Caller {
    person(1001, "alice", &["ops"])
}
fn bob() -> Caller {
    person(1002, "bob", &[])
}
fn carol() -> Caller {
    person(1003, "carol", &["secadmins", "ops"])
}
fn mallory() -> Caller {
    person(1666, "mallory", &["ops"])
}
fn dev() -> Caller {
    person(1500, "dev", &[])
}
fn oncall() -> Caller {
    person(2000, "oncall", &[])
}

#[test]
fn durations_parse_and_format() {
    let ok: &[(&str, u64, &str)] = &[
        ("90s", 90, "90s"),
        ("30m", 30 * M, "30m"),
        ("1h", H, "1h"),
        ("1h30m", H + 30 * M, "1h30m"),
        ("1d", 24 * H, "24h"),
        ("1d2h3m4s", 26 * H + 3 * M + 4, "93784s"),
        ("45m", 45 * M, "45m"),
        ("0s", 0, "0s"),
    ];
    for (text, secs, formatted) in ok {
        let d = parse_duration(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(d, Duration::from_secs(*secs), "{text}");
        assert_eq!(format_duration(d), *formatted, "{text}");
        assert_eq!(
            parse_duration(&format_duration(d)),
            Ok(d),
            "{text} round trip"
        );
    }
    for bad in [
        "",
        "1",
        "h",
        "1x",
        "30m1h",
        "1h1h",
        "1 h",
        "-1h",
        "1.5h",
        "99999999999999999999d",
        "1H",
    ] {
        let e = parse_duration(bad)
            .err()
            .unwrap_or_else(|| panic!("`{bad}` should not parse"));
        assert!(
            e.to_string().contains("e.g. `90s`, `30m`, `1h30m` or `1d`"),
            "{bad}: {e}"
        );
    }
    assert_eq!(MAX_GRANT, Duration::from_secs(24 * H));
}

#[test]
fn protocol_text() {
    assert_eq!(Protocol::Tcp.to_string(), "tcp");
    assert_eq!("UDP".parse::<Protocol>(), Ok(Protocol::Udp));
    assert!("sctp".parse::<Protocol>().is_err());
}

#[test]
fn loads_with_defaults() {
    let p = policy();
    let a = |n: &str| {
        p.assignments()
            .find(|a| a.name == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n}"))
    };
    let e = a("ops-vault")
        .eligible
        .unwrap_or_else(|| panic!("eligible"));
    assert_eq!(e.max_duration, Duration::from_secs(8 * H));
    assert!(e.require_justification && e.require_ticket);
    assert_eq!(e.auto_approve, AutoApprove::Never);
    assert_eq!(
        a("ops-storage").eligible.map(|e| e.approvers.len()),
        Some(3)
    );
    assert_eq!(
        a("dev-auto").eligible.map(|e| e.auto_approve),
        Some(AutoApprove::Always)
    );
    assert!(matches!(
        a("oncall-hours").eligible.map(|e| e.auto_approve),
        Some(AutoApprove::When(_))
    ));
    assert_eq!(a("standing").eligible, None);
    assert_eq!(
        p.break_glass()
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["192.0.2.0/24", "2001:db8::/32"]
    );
    let ssh = p
        .jit_port(22, Protocol::Tcp)
        .cloned()
        .unwrap_or_else(|| panic!("ssh"));
    assert_eq!(
        (ssh.name.as_str(), ssh.max_duration, ssh.auto_approve),
        ("ssh", Duration::from_secs(3 * H), false)
    );
    assert_eq!(
        ssh.requesters,
        [
            Requester::Local(Principal::Group("ops".into())),
            Requester::Signer("alice@example.com".into())
        ]
    );
    assert!(p.jit_port(22, Protocol::Udp).is_none());
    assert_eq!(
        p.jit_port(3389, Protocol::Udp).map(|l| l.max_duration),
        Some(Duration::from_secs(H))
    );
    assert_eq!(p.jit_ports().len(), 2);
}

/// (text, `line:col`, message part, help part).
type ErrorCase = (String, &'static str, &'static str, &'static str);

fn assignment_case(lines: &str) -> String {
    // Lines 1-8; the case's lines start at line 9.
    format!("version = 1\n[identities.system]\nkind = \"system\"\n[[assignments]]\nname = \"a\"\nrole = \"Token Reader\"\nidentities = [\"*\"]\naudiences = [\"*\"]\n{lines}")
}

fn port_case(lines: &str) -> String {
    // `[[jit_port]]` on line 2; the case's lines start at line 4.
    format!("version = 1\n[[jit_port]]\nname = \"ssh\"\n{lines}")
}

const PORT_OK: &str = "port = 22\nsources = [\"0.0.0.0/0\"]\nrequesters = [\"group:ops\"]\napprovers = [\"group:secadmins\"]\n";

#[test]
fn loader_errors() {
    let cases: Vec<ErrorCase> = vec![
        (assignment_case("principal = \"uid:1\"\nmax_duration = \"1h\"\n"), "10:1", "`max_duration` is only allowed on an eligible assignment", "add `eligible = true`"),
        (assignment_case("principal = \"uid:1\"\neligible = false\napprovers = [\"uid:2\"]\n"), "11:1", "`approvers` is only allowed on an eligible assignment", "remove the key"),
        (assignment_case("principal = \"unit:x.service\"\neligible = true\nauto_approve = true\n"), "9:13", "principal must be a person, not `unit:x.service`", "admin socket"),
        (assignment_case("principal = \"uid:1\"\neligible = true\nauto_approve = true\nmax_duration = \"25h\"\n"), "12:16", "`max_duration` `25h` is out of range", "at most 24h"),
        (assignment_case("principal = \"uid:1\"\neligible = true\nauto_approve = true\nmax_duration = \"0s\"\n"), "12:16", "`max_duration` `0s` is out of range", "more than 0s"),
        (assignment_case("principal = \"uid:1\"\neligible = true\nauto_approve = true\nmax_duration = \"1x\"\n"), "12:16", "invalid duration `1x`", ""),
        (assignment_case("principal = \"uid:1\"\neligible = true\napprovers = [\"exe:/bin/x\"]\n"), "11:14", "`approvers` must name people, not `exe:/bin/x`", "uid:"),
        (assignment_case("principal = \"uid:1\"\neligible = true\napprovers = []\n"), "4:1", "eligible assignment `a` has no `approvers` and no auto-approval: nobody could approve it", "auto_approve = true"),
        (assignment_case("principal = \"uid:1\"\neligible = true\nauto_approve = false\nauto_approve_condition = \"@Principal[uid] NumericEquals 1\"\n"), "11:16", "`auto_approve = false` contradicts `auto_approve_condition`", "remove `auto_approve`"),
        (assignment_case("principal = \"uid:1\"\neligible = true\nauto_approve_condition = \"@Principal[nope] StringEquals 'x'\"\n"), "11:27", "condition: unknown attribute `@Principal[nope]`", ""),
        (assignment_case("principal = \"uid:1\"\neligible = true\nauto_approve_condition = \"\"\n"), "11:26", "empty condition", "auto_approve = true"),
        (assignment_case("principal = \"uid:1\"\neligible = \"yes\"\n"), "10:12", "`eligible` must be `true` or `false`, found string", ""),
        (assignment_case("principal = \"uid:1\"\neligible = true\nauto_approve = true\nrequire_tiket = true\n"), "12:1", "unknown key `require_tiket` in assignment", "did you mean `require_ticket`?"),
        (port_case("port = 0\nsources = [\"0.0.0.0/0\"]\nrequesters = [\"group:ops\"]\nauto_approve = true\n"), "4:8", "port 0 cannot be opened", "1 to 65535"),
        (port_case("port = 70000\nsources = [\"0.0.0.0/0\"]\nrequesters = [\"group:ops\"]\nauto_approve = true\n"), "4:8", "port `70000` is out of range", "1 to 65535"),
        (port_case("port = \"22\"\nsources = [\"0.0.0.0/0\"]\nrequesters = [\"group:ops\"]\nauto_approve = true\n"), "4:8", "`port` must be an integer, found string", ""),
        (port_case("port = 22\nsources = [\"192.0.2.1/24\"]\nrequesters = [\"group:ops\"]\nauto_approve = true\n"), "5:12", "address range `192.0.2.1/24` has host bits set", "write the network `192.0.2.0/24`, or `192.0.2.1/32`"),
        (port_case("port = 22\nsources = [\"2001:db8::1/32\"]\nrequesters = [\"group:ops\"]\nauto_approve = true\n"), "5:12", "has host bits set", "`2001:db8::/32`"),
        (port_case("port = 22\nsources = [\"300.1.1.1/8\"]\nrequesters = [\"group:ops\"]\nauto_approve = true\n"), "5:12", "invalid address range `300.1.1.1/8`", "CIDR"),
        (port_case("port = 22\nsources = [\"::ffff:10.0.0.0/104\"]\nrequesters = [\"group:ops\"]\nauto_approve = true\n"), "5:12", "IPv4-mapped", "IPv4 range"),
        (port_case("port = 22\nsources = []\nrequesters = [\"group:ops\"]\nauto_approve = true\n"), "5:11", "`sources` is empty", ""),
        (port_case("port = 22\nrequesters = [\"group:ops\"]\nauto_approve = true\n"), "2:1", "missing `sources` in jit port", ""),
        (port_case(&format!("{PORT_OK}max_duration = \"1m\"\n")), "8:16", "`max_duration` `1m` is out of range", "between 5m and 24h"),
        (port_case(&format!("{PORT_OK}max_duration = \"2d\"\n")), "8:16", "`max_duration` `48h` is out of range", "between 5m and 24h"),
        (port_case("port = 22\nsources = [\"0.0.0.0/0\"]\nrequesters = []\nauto_approve = true\n"), "6:14", "`requesters` is empty: nobody could ask for this port", "signer:"),
        (port_case("port = 22\nsources = [\"0.0.0.0/0\"]\nrequesters = [\"unit:a.service\"]\nauto_approve = true\n"), "6:15", "`requesters` must name people, not `unit:a.service`", ""),
        (port_case("port = 22\nsources = [\"0.0.0.0/0\"]\nrequesters = [\"signer:\"]\nauto_approve = true\n"), "6:15", "invalid signer ``", "allowed-signers"),
        (port_case("port = 22\nsources = [\"0.0.0.0/0\"]\nrequesters = [\"group:ops\"]\n"), "2:1", "jit port `ssh` has no `approvers` and `auto_approve` is off: nobody could approve it", "auto_approve = true"),
        (port_case(&format!("{PORT_OK}protocol = \"sctp\"\n")), "8:12", "unknown protocol `sctp`", ""),
        (port_case(&format!("{PORT_OK}souces = []\n")), "8:1", "unknown key `souces` in jit port", "did you mean `sources`?"),
        (port_case(&format!("{PORT_OK}[[jit_port]]\nname = \"ssh2\"\n{PORT_OK}")), "10:8", "port 22/tcp is already declared by jit port `ssh`", "first declared on line 4"),
        (port_case(&format!("{PORT_OK}[[jit_port]]\nname = \"ssh\"\nport = 23\nsources = [\"0.0.0.0/0\"]\nrequesters = [\"uid:1\"]\nauto_approve = true\n")), "9:8", "duplicate jit port name `ssh`", "first used on line 3"),
        ("version = 1\n[jit]\nbreak_glass = [\"10.0.0.1/8\"]\n".into(), "3:16", "address range `10.0.0.1/8` has host bits set", "`10.0.0.0/8`"),
        ("version = 1\n[jit]\nbreakglass = []\n".into(), "3:1", "unknown key `breakglass` in `[jit]`", "did you mean `break_glass`?"),
    ];
    for (text, want_at, msg, help) in &cases {
        let diags = match parse("p.toml", text) {
            Ok(_) => panic!("expected an error at {want_at} containing {msg:?} in:\n{text}"),
            Err(d) => d,
        };
        let found = diags.iter().any(|d| {
            format!("{}:{}", d.line, d.column) == *want_at
                && d.message.contains(msg)
                && d.help.as_deref().unwrap_or_default().contains(help)
        });
        assert!(found, "no error at {want_at} containing {msg:?} (help {help:?}) in:\n{diags}\n--- text:\n{text}");
    }
}

#[test]
fn loader_accepts() {
    let cases = [
        // Same port, other protocol; a bare address is a host range.
        port_case(&format!("{PORT_OK}[[jit_port]]\nname = \"ssh-udp\"\nport = 22\nprotocol = \"udp\"\nsources = [\"192.0.2.7\", \"2001:db8::1\"]\nrequesters = [\"signer:bob\"]\nauto_approve = true\n")),
        assignment_case("principal = \"group:ops\"\neligible = true\nauto_approve_condition = \"@Principal[uid] NumericEquals 1\"\n"),
        assignment_case("principal = \"uid:1\"\neligible = true\nauto_approve = true\nauto_approve_condition = \"@Principal[uid] NumericEquals 1\"\nmax_duration = \"24h\"\n"),
        assignment_case("principal = \"uid:1\"\neligible = false\n"),
    ];
    for text in &cases {
        if let Err(d) = parse("p.toml", text) {
            panic!("should load:\n{d}\n--- text:\n{text}");
        }
    }
    let p = parse("p", &cases[0]).unwrap_or_else(|d| panic!("{d}"));
    let hosts: Vec<String> = p
        .jit_port(22, Protocol::Udp)
        .map(|u| u.sources.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    assert_eq!(hosts, ["192.0.2.7/32", "2001:db8::1/128"]);
}

fn ask<'a>(
    who: &'a Caller,
    role: &'a str,
    identity: &'a str,
    audience: Option<&'a str>,
    secs: u64,
) -> ActivationAsk<'a> {
    ActivationAsk {
        requester: who,
        role,
        identity,
        audience,
        duration: Duration::from_secs(secs),
        reason: Some("incident 42"),
        ticket: None,
        at: t0(),
    }
}

/// Expected plan: (assignment, duration secs, capped, auto_approved), or a refusal kind.
enum Want {
    Plan(&'static str, u64, bool, bool),
    Refused(&'static str),
}

#[test]
fn plan_activation_table() {
    let p = policy();
    let (a, d, o, b, svc, nobody) = (
        alice(),
        dev(),
        oncall(),
        bob(),
        person(3000, "svc", &[]),
        Caller::default(),
    );
    let storage = Some("https://STORAGE.azure.com/.default");
    let cases: Vec<(&str, ActivationAsk<'_>, Want)> = vec![
        (
            "eligible, normalised audience",
            ask(&a, "Token Reader", "storage", storage, H),
            Want::Plan("ops-storage", H, false, false),
        ),
        (
            "role case-insensitive, wildcard audience",
            ask(
                &a,
                "token READER",
                "storage",
                Some("https://acct.blob.core.windows.net"),
                H,
            ),
            Want::Plan("ops-storage", H, false, false),
        ),
        (
            "no audience: the assignment's audiences",
            ask(&a, "Token Reader", "storage", None, H),
            Want::Plan("ops-storage", H, false, false),
        ),
        (
            "capped at max_duration",
            ask(&a, "Token Reader", "storage", storage, 5 * H),
            Want::Plan("ops-storage", 2 * H, true, false),
        ),
        (
            "zero duration",
            ask(&a, "Token Reader", "storage", storage, 0),
            Want::Refused("zero_duration"),
        ),
        (
            "audience outside scope",
            ask(
                &a,
                "Token Reader",
                "storage",
                Some("https://management.azure.com"),
                H,
            ),
            Want::Refused("not_eligible"),
        ),
        (
            "identity outside scope",
            ask(&d, "Storage Debugger", "system", None, H),
            Want::Refused("not_eligible"),
        ),
        (
            "not in the principal",
            ask(&b, "Token Reader", "storage", storage, H),
            Want::Refused("not_eligible"),
        ),
        (
            "standing assignment is not eligible",
            ask(&svc, "Token Reader", "system", None, H),
            Want::Refused("not_eligible"),
        ),
        (
            "other role",
            ask(&a, "Metadata Owner", "storage", storage, H),
            Want::Refused("not_eligible"),
        ),
        (
            "unknown identity",
            ask(&a, "Token Reader", "nope", None, H),
            Want::Refused("unknown_identity"),
        ),
        (
            "pattern audience",
            ask(
                &a,
                "Token Reader",
                "storage",
                Some("https://*.blob.core.windows.net"),
                H,
            ),
            Want::Refused("invalid_audience"),
        ),
        (
            "justification required",
            ActivationAsk {
                reason: None,
                ..ask(&a, "Token Reader", "storage", storage, H)
            },
            Want::Refused("justification_required"),
        ),
        (
            "blank justification",
            ActivationAsk {
                reason: Some("  "),
                ..ask(&a, "Token Reader", "storage", storage, H)
            },
            Want::Refused("justification_required"),
        ),
        (
            "justification on two lines",
            ActivationAsk {
                reason: Some("a\nb"),
                ..ask(&a, "Token Reader", "storage", storage, H)
            },
            Want::Refused("invalid_justification"),
        ),
        (
            "ticket required",
            ask(
                &a,
                "Token Reader",
                "vault",
                Some("https://vault.azure.net"),
                H,
            ),
            Want::Refused("ticket_required"),
        ),
        (
            "ticket given",
            ActivationAsk {
                ticket: Some("CHG-7"),
                ..ask(
                    &a,
                    "Token Reader",
                    "vault",
                    Some("https://vault.azure.net"),
                    H,
                )
            },
            Want::Plan("ops-vault", H, false, false),
        ),
        (
            "auto-approve always, no justification needed",
            ActivationAsk {
                reason: None,
                ..ask(&d, "storage debugger", "storage", None, 30 * M)
            },
            Want::Plan("dev-auto", 30 * M, false, true),
        ),
        (
            "auto-approve when: inside hours",
            ask(&o, "Token Reader", "system", Some("https://x.example"), H),
            Want::Plan("oncall-hours", H, false, true),
        ),
        (
            "auto-approve when: outside hours",
            ActivationAsk {
                at: at(9 * H as i64),
                ..ask(&o, "Token Reader", "system", Some("https://x.example"), H)
            },
            Want::Plan("oncall-hours", H, false, false),
        ),
        (
            "auto-approve when: before hours",
            ActivationAsk {
                at: at(-3 * H as i64),
                ..ask(&o, "Token Reader", "system", None, H)
            },
            Want::Plan("oncall-hours", H, false, false),
        ),
        (
            "unknown caller",
            ask(&nobody, "Token Reader", "storage", storage, H),
            Want::Refused("caller_unknown"),
        ),
    ];
    for (what, a, want) in &cases {
        let got = p.plan_activation(a);
        match (want, &got) {
            (Want::Plan(name, secs, capped, auto), Ok(plan)) => {
                let expect = Activation {
                    assignment: (*name).into(),
                    role: plan.role.clone(),
                    duration: Duration::from_secs(*secs),
                    capped: *capped,
                    auto_approved: *auto,
                };
                assert_eq!(plan, &expect, "{what}");
                assert!(
                    plan.role == "Token Reader" || plan.role == "Storage Debugger",
                    "{what}: canonical role {}",
                    plan.role
                );
            }
            (Want::Refused(kind), Err(r)) => {
                assert_eq!(r.kind.as_str(), *kind, "{what}: {r}");
                assert!(
                    r.message.contains(": "),
                    "{what}: the message says what to do: {r}"
                );
            }
            (_, got) => panic!("{what}: unexpected {got:?}"),
        }
    }
}

#[test]
fn may_approve_activation_table() {
    let p = policy();
    type Case = (
        &'static str,
        &'static str,
        Caller,
        u32,
        Result<(), &'static str>,
    );
    let cases: Vec<Case> = vec![
        ("group approver", "ops-storage", carol(), 1001, Ok(())),
        ("user approver", "ops-storage", bob(), 1001, Ok(())),
        (
            "uid approver for someone else",
            "ops-storage",
            alice(),
            1003,
            Ok(()),
        ),
        (
            "self approval, even as an approver",
            "ops-storage",
            alice(),
            1001,
            Err("self_approval"),
        ),
        (
            "self approval first, even for an unknown assignment",
            "nope",
            carol(),
            1003,
            Err("self_approval"),
        ),
        (
            "not an approver",
            "ops-vault",
            bob(),
            1001,
            Err("not_an_approver"),
        ),
        (
            "not an approver (requester's peer)",
            "ops-storage",
            mallory(),
            1001,
            Err("not_an_approver"),
        ),
        (
            "standing assignment",
            "standing",
            carol(),
            1001,
            Err("not_eligible"),
        ),
        (
            "unknown assignment",
            "nope",
            carol(),
            1001,
            Err("not_eligible"),
        ),
        (
            "auto-only assignment has no approvers",
            "dev-auto",
            carol(),
            1500,
            Err("not_an_approver"),
        ),
        (
            "unknown approver",
            "ops-storage",
            Caller::default(),
            1001,
            Err("caller_unknown"),
        ),
    ];
    for (what, assignment, approver, requester, want) in cases {
        let got = p
            .may_approve_activation(assignment, &approver, requester)
            .map_err(|r| r.kind.as_str());
        assert_eq!(got, want, "{what}");
    }
    let msg = p
        .may_approve_activation("ops-vault", &bob(), 1001)
        .err()
        .map(|r| r.message)
        .unwrap_or_default();
    assert!(
        msg.contains("ask one of its approvers: `group:secadmins`"),
        "{msg}"
    );
}

fn port_ask<'a>(
    requester: PortRequester<'a>,
    port: u16,
    protocol: Protocol,
    source: &str,
    secs: u64,
) -> PortAsk<'a> {
    PortAsk {
        requester,
        port,
        protocol,
        source: source
            .parse::<IpAddr>()
            .unwrap_or_else(|e| panic!("{source}: {e}")),
        duration: Duration::from_secs(secs),
        reason: Some("deploy"),
        at: t0(),
    }
}

#[test]
fn plan_port_table() {
    use PortRequester::{Local, Signer};
    let p = policy();
    let (a, b, lookalike) = (alice(), bob(), person(77, "alice@example.com", &[]));
    type Case<'a> = (
        &'static str,
        PortAsk<'a>,
        Result<(&'static str, u64, bool, bool), &'static str>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "local requester, v4",
            port_ask(Local(&a), 22, Protocol::Tcp, "203.0.113.9", H),
            Ok(("ssh", H, false, false)),
        ),
        (
            "signer, v6",
            port_ask(
                Signer("alice@example.com"),
                22,
                Protocol::Tcp,
                "2001:db8::9",
                H,
            ),
            Ok(("ssh", H, false, false)),
        ),
        (
            "capped at 3h default",
            port_ask(Local(&a), 22, Protocol::Tcp, "203.0.113.9", 24 * H),
            Ok(("ssh", 3 * H, true, false)),
        ),
        (
            "shorter than 5m is fine",
            port_ask(Local(&a), 22, Protocol::Tcp, "203.0.113.9", 60),
            Ok(("ssh", 60, false, false)),
        ),
        (
            "auto-approved port, capped at 1h",
            port_ask(Local(&a), 3389, Protocol::Udp, "10.1.2.3", 2 * H),
            Ok(("lab", H, true, true)),
        ),
        (
            "v4-mapped v6 source is v4",
            port_ask(Local(&a), 3389, Protocol::Udp, "::ffff:10.1.2.3", H),
            Ok(("lab", H, false, true)),
        ),
        (
            "v6 inside",
            port_ask(Local(&a), 3389, Protocol::Udp, "fd00::1", H),
            Ok(("lab", H, false, true)),
        ),
        (
            "v4 outside",
            port_ask(Local(&a), 3389, Protocol::Udp, "192.168.1.1", H),
            Err("source_not_allowed"),
        ),
        (
            "v6 outside",
            port_ask(Local(&a), 3389, Protocol::Udp, "2001:db8::1", H),
            Err("source_not_allowed"),
        ),
        (
            "unspecified source",
            port_ask(Local(&a), 22, Protocol::Tcp, "0.0.0.0", H),
            Err("source_not_allowed"),
        ),
        (
            "multicast source",
            port_ask(Local(&a), 22, Protocol::Tcp, "ff02::1", H),
            Err("source_not_allowed"),
        ),
        (
            "local not a requester",
            port_ask(Local(&b), 22, Protocol::Tcp, "203.0.113.9", H),
            Err("not_a_requester"),
        ),
        (
            "unknown signer",
            port_ask(
                Signer("eve@example.com"),
                22,
                Protocol::Tcp,
                "203.0.113.9",
                H,
            ),
            Err("not_a_requester"),
        ),
        (
            "signer name is not a local user",
            port_ask(Signer("alice"), 22, Protocol::Tcp, "203.0.113.9", H),
            Err("not_a_requester"),
        ),
        (
            "local user named like a signer",
            port_ask(Local(&lookalike), 22, Protocol::Tcp, "203.0.113.9", H),
            Err("not_a_requester"),
        ),
        (
            "signer only local for lab",
            port_ask(
                Signer("alice@example.com"),
                3389,
                Protocol::Udp,
                "10.1.2.3",
                H,
            ),
            Err("not_a_requester"),
        ),
        (
            "unknown port",
            port_ask(Local(&a), 2222, Protocol::Tcp, "203.0.113.9", H),
            Err("unknown_port"),
        ),
        (
            "wrong protocol",
            port_ask(Local(&a), 22, Protocol::Udp, "203.0.113.9", H),
            Err("unknown_port"),
        ),
        (
            "zero duration",
            port_ask(Local(&a), 22, Protocol::Tcp, "203.0.113.9", 0),
            Err("zero_duration"),
        ),
    ];
    for (what, ask, want) in &cases {
        let got = p.plan_port(ask);
        match (want, got) {
            (Ok((name, secs, capped, auto)), Ok(plan)) => {
                let expect = PortPlan {
                    name: (*name).into(),
                    duration: Duration::from_secs(*secs),
                    capped: *capped,
                    auto_approved: *auto,
                };
                assert_eq!(plan, expect, "{what}");
            }
            (Err(kind), Err(r)) => assert_eq!(r.kind.as_str(), *kind, "{what}: {r}"),
            (_, got) => panic!("{what}: unexpected {got:?}"),
        }
    }
}

#[test]
fn may_approve_port_table() {
    let p = policy();
    type Case = (
        &'static str,
        u16,
        Protocol,
        Caller,
        Option<u32>,
        Result<(), &'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "group approver, local requester",
            22,
            Protocol::Tcp,
            carol(),
            Some(1001),
            Ok(()),
        ),
        (
            "group approver, signed request",
            22,
            Protocol::Tcp,
            carol(),
            None,
            Ok(()),
        ),
        (
            "self approval",
            22,
            Protocol::Tcp,
            carol(),
            Some(1003),
            Err("self_approval"),
        ),
        (
            "not an approver",
            22,
            Protocol::Tcp,
            alice(),
            Some(1003),
            Err("not_an_approver"),
        ),
        (
            "auto-approved port has no approvers",
            3389,
            Protocol::Udp,
            carol(),
            Some(1001),
            Err("not_an_approver"),
        ),
        (
            "unknown port",
            23,
            Protocol::Tcp,
            carol(),
            Some(1001),
            Err("unknown_port"),
        ),
        (
            "unknown approver",
            22,
            Protocol::Tcp,
            Caller::default(),
            None,
            Err("caller_unknown"),
        ),
    ];
    for (what, port, proto, approver, requester, want) in cases {
        assert_eq!(
            p.may_approve_port(port, proto, &approver, requester)
                .map_err(|r| r.kind.as_str()),
            want,
            "{what}"
        );
    }
}

fn grant(id: &str, assignment: &str, uid: u32, identity: &str, audience: Option<&str>) -> Grant {
    Grant {
        id: id.into(),
        assignment: assignment.into(),
        uid,
        identity: identity.into(),
        audience: audience.map(str::to_owned),
        starts: t0(),
        expires: at(H as i64),
    }
}

const STORAGE: &str = "https://storage.azure.com";

fn token(identity: &'static str, audience: &'static str, offset: i64) -> Request<'static> {
    Request::new(Action::TokenRead)
        .identity(Some(identity))
        .audience(Some(audience))
        .at(at(offset))
}

#[test]
fn decide_with_grants() {
    let p = policy();
    let g = grant("g1", "ops-storage", 1001, "storage", Some(STORAGE));
    let with_unit = {
        let mut c = alice();
        c.processes = vec![Process {
            pid: 7,
            uid: 1001,
            unit: Some("ops.service".into()),
            ..Process::default()
        }];
        c
    };
    // (what, caller, request, grants, allowed by, or the denial's reason)
    type Case = (
        &'static str,
        Caller,
        Request<'static>,
        Vec<Grant>,
        Result<&'static str, Reason>,
    );
    let cases: Vec<Case> = vec![
        (
            "grant honoured",
            alice(),
            token("storage", STORAGE, 600),
            vec![g.clone()],
            Ok("ops-storage (jit g1)"),
        ),
        (
            "at starts",
            alice(),
            token("storage", STORAGE, 0),
            vec![g.clone()],
            Ok("ops-storage (jit g1)"),
        ),
        (
            "eligible alone grants nothing",
            alice(),
            token("storage", STORAGE, 600),
            vec![],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "wrong uid",
            carol(),
            token("storage", STORAGE, 600),
            vec![g.clone()],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "before starts",
            alice(),
            token("storage", STORAGE, -1),
            vec![g.clone()],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "at expires",
            alice(),
            token("storage", STORAGE, H as i64),
            vec![g.clone()],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "after expires",
            alice(),
            token("storage", STORAGE, 2 * H as i64),
            vec![g.clone()],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "no time",
            alice(),
            Request {
                now: None,
                ..token("storage", STORAGE, 600)
            },
            vec![g.clone()],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "other identity than the grant's",
            alice(),
            token("vault", "https://vault.azure.net", 600),
            vec![g.clone()],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "other audience than the grant's",
            alice(),
            token("storage", "https://a.blob.core.windows.net", 600),
            vec![g.clone()],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "grant without audience: the assignment's",
            alice(),
            token("storage", "https://a.blob.core.windows.net", 600),
            vec![grant("g2", "ops-storage", 1001, "storage", None)],
            Ok("ops-storage (jit g2)"),
        ),
        (
            "grant without audience: still scoped",
            alice(),
            token("storage", "https://management.azure.com", 600),
            vec![grant("g2", "ops-storage", 1001, "storage", None)],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "identity outside the assignment (policy changed)",
            alice(),
            token("vault", "https://vault.azure.net", 600),
            vec![grant(
                "g3",
                "ops-storage",
                1001,
                "vault",
                Some("https://vault.azure.net"),
            )],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "audience outside the assignment (policy changed)",
            alice(),
            token("storage", "https://management.azure.com", 600),
            vec![grant(
                "g4",
                "ops-storage",
                1001,
                "storage",
                Some("https://management.azure.com"),
            )],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "grant for a standing assignment",
            alice(),
            token("system", "x", 600),
            vec![grant("g5", "standing", 1001, "system", None)],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "grant for a vanished assignment",
            alice(),
            token("storage", STORAGE, 600),
            vec![grant("g6", "gone", 1001, "storage", Some(STORAGE))],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "deny assignment still wins",
            mallory(),
            token("storage", STORAGE, 600),
            vec![grant("g7", "ops-storage", 1666, "storage", Some(STORAGE))],
            Err(Reason::ExplicitDeny),
        ),
        (
            "role still applies",
            alice(),
            Request {
                now: Some(at(600)),
                ..Request::new(Action::InstanceRead)
            },
            vec![g.clone()],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "condition still applies: false",
            alice(),
            token("system", "x", 600),
            vec![grant("g8", "ops-unit-only", 1001, "system", None)],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "condition still applies: true",
            with_unit,
            token("system", "x", 600),
            vec![grant("g8", "ops-unit-only", 1001, "system", None)],
            Ok("ops-unit-only (jit g8)"),
        ),
        (
            "standing unaffected",
            person(3000, "svc", &[]),
            token("system", "x", 600),
            vec![g.clone()],
            Ok("standing"),
        ),
        (
            "holder left the group since the approval",
            person(1001, "alice", &[]),
            token("storage", STORAGE, 600),
            vec![g.clone()],
            Err(Reason::NoMatchingAssignment),
        ),
        (
            "a long grant inside the current maximum",
            alice(),
            token("storage", STORAGE, (3 * H / 2) as i64),
            vec![Grant {
                expires: at(10 * H as i64),
                ..g.clone()
            }],
            Ok("ops-storage (jit g1)"),
        ),
        (
            "a long grant past the current maximum (2h)",
            alice(),
            token("storage", STORAGE, 2 * H as i64),
            vec![Grant {
                expires: at(10 * H as i64),
                ..g.clone()
            }],
            Err(Reason::NoMatchingAssignment),
        ),
    ];
    for (what, caller, request, grants, want) in &cases {
        let d = p.decide_with(caller, request, grants);
        assert_eq!(
            d,
            p.decide_naive_with(caller, request, grants),
            "{what}: indexed and naive differ"
        );
        match want {
            Ok(by) => {
                assert!(d.is_allowed(), "{what}: {d:?}");
                assert_eq!(d.decided_by(), [by.to_string()], "{what}");
            }
            Err(reason) => {
                assert!(!d.is_allowed(), "{what}: {d:?}");
                assert_eq!(d.reason(), *reason, "{what}");
            }
        }
        if grants.is_empty() {
            assert_eq!(
                d,
                p.decide(caller, request),
                "{what}: decide is decide_with no grants"
            );
        }
    }
}

#[test]
fn standing_only_policy_unaffected_by_grants() {
    let text = "version = 1\n[identities.system]\nkind = \"system\"\n[[assignments]]\nname = \"s\"\nprincipal = \"uid:1001\"\nrole = \"Token Reader\"\nidentities = [\"system\"]\naudiences = [\"*\"]\n";
    let p = parse("p", text).unwrap_or_else(|d| panic!("{d}"));
    let grants = [
        grant("g", "s", 1001, "system", None),
        grant("h", "x", 1002, "system", None),
    ];
    for c in [alice(), bob(), carol()] {
        for r in [
            token("system", "x", 600),
            Request::new(Action::InstanceRead),
        ] {
            assert_eq!(p.decide_with(&c, &r, &grants), p.decide(&c, &r));
        }
    }
}

#[test]
fn eligible_assignments_are_not_standing_anywhere() {
    let p = policy();
    // Every caller, every action, no grants: only `standing` ever allows.
    for c in [
        alice(),
        bob(),
        carol(),
        dev(),
        oncall(),
        mallory(),
        person(3000, "svc", &[]),
    ] {
        for action in Action::ALL {
            for r in [
                Request::new(action).at(t0()),
                Request {
                    identity: Some("storage"),
                    audience: Some(STORAGE),
                    ..Request::new(action).at(t0())
                },
            ] {
                let d = p.decide(&c, &r);
                assert_eq!(d, p.decide_naive(&c, &r));
                assert!(
                    !d.is_allowed() || d.decided_by() == ["standing".to_string()],
                    "{c:?} {r:?}: {d:?}"
                );
            }
        }
    }
}

#[test]
fn lints_treat_eligible_as_not_standing() {
    let text = format!(
        "version = 1\n[identities.system]\nkind = \"system\"\n{}{}",
        "[[assignments]]\nname = \"c\"\nprincipal = \"uid:1\"\nrole = \"Instance Metadata Reader\"\ncondition = \"@Principal[uid] NumericEquals 1\"\n",
        "[[assignments]]\nname = \"e\"\nprincipal = \"uid:1\"\nrole = \"Instance Metadata Reader\"\neligible = true\nauto_approve = true\n"
    );
    let p = parse("p", &text).unwrap_or_else(|d| panic!("{d}"));
    let w = p.lint("p", &text, &crate::lint::tests::AnyMachine);
    assert!(!w.iter().any(|d| d.message.contains("bypassed")), "{w}");
}

#[test]
fn refusal_display_names_kind() {
    let r = JitRefusal {
        kind: JitRefusalKind::SelfApproval,
        message: "you cannot approve your own request: ask another approver".into(),
    };
    assert_eq!(
        r.to_string(),
        "you cannot approve your own request: ask another approver (self_approval)"
    );
}

/// `as_str`/`Display` and serde spell every kind the same (the admin API
/// writes one, the CLI and e2e read the other).
#[test]
fn refusal_kinds_spell_the_same_everywhere() {
    for kind in JitRefusalKind::ALL {
        let wire = toml::Value::try_from(kind).unwrap();
        assert_eq!(wire.as_str(), Some(kind.as_str()), "{kind:?}");
        assert_eq!(kind.to_string(), kind.as_str());
    }
}

/// The protocol's serde form is its `Display` form and `FromStr` reads it.
#[test]
fn protocol_spells_the_same_everywhere() {
    for (p, text, number) in [(Protocol::Tcp, "tcp", 6), (Protocol::Udp, "udp", 17)] {
        let wire = toml::Value::try_from(p).unwrap();
        assert_eq!(wire.as_str(), Some(text));
        assert_eq!(p.to_string(), text);
        assert_eq!(text.parse::<Protocol>(), Ok(p));
        assert_eq!(p.number(), number);
    }
}

#[test]
fn documented_example_loads() {
    let doc = include_str!("../../../../docs/policy.md");
    let section = doc
        .split("## Just-in-time access")
        .nth(1)
        .unwrap_or_default();
    let example = section
        .split("```toml\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .unwrap_or_default();
    assert!(example.contains("[[jit_port]]"), "no example found");
    let text = format!("version = 1\n[identities.storage-writer]\nkind = \"user\"\nclient_id = \"2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809\"\n{example}");
    let p = parse("docs", &text).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(p.jit_ports().len(), 1);
    assert!(p.assignments().all(|a| a.eligible.is_some()));
}

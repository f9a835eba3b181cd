use super::*;
use crate::jit::Protocol;
use crate::ruleset::JitPorts;

/// The gate's defaults: listening on 127.0.0.1:16925, mark 0x6761, the
/// WireServer guarded, containers dropped, IPv6 intercepted, no JIT ports.
pub(crate) fn options() -> Options {
    Options {
        listen: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 16925),
        mark: 0x6761,
        wireserver: true,
        containers: Containers::Drop,
        ipv6: Ipv6::Intercept,
        jit: None,
    }
}

const DEFAULT_GOLDEN: &str = r#"# the nftables table of gatehouse; `gatehouse firewall apply` sends exactly this to `nft -f -`
table inet gatehouse
delete table inet gatehouse
table inet gatehouse {
	chain nat-output {
		type nat hook output priority -100; policy accept;
		ip daddr 169.254.169.254 tcp dport 80 meta mark != 0x00006761 redirect to :16925 comment "local IMDS connections go to the gate"
		ip daddr 169.254.169.254 tcp dport 80 meta skuid != 0 redirect to :16925 comment "marked but not root's: to the gate too"
		ip6 daddr fd00:ec2::254 tcp dport 80 meta mark != 0x00006761 redirect to :16925 comment "local IPv6 IMDS connections go to the gate at [::1]"
		ip6 daddr fd00:ec2::254 tcp dport 80 meta skuid != 0 redirect to :16925 comment "IPv6: marked but not root's: to the gate too"
	}

	chain output {
		type filter hook output priority 0; policy accept;
		ip daddr 127.0.0.1 tcp dport 16925 ip saddr != 127.0.0.0/8 ct status ! dnat reject with tcp reset comment "no direct connection to the gate from a non-loopback address"
		ip6 daddr ::1 tcp dport 16925 ip6 saddr != ::1 ct status ! dnat reject with tcp reset comment "no direct IPv6 connection to the gate from a non-loopback address"
		ip daddr 169.254.169.254 meta mark != 0x00006761 meta l4proto tcp reject with tcp reset comment "after nat: unmarked tcp still to IMDS is refused"
		ip daddr 169.254.169.254 meta skuid != 0 meta l4proto tcp reject with tcp reset comment "after nat: tcp still to IMDS not from root is refused"
		ip daddr 169.254.169.254 meta mark != 0x00006761 drop comment "after nat: anything else unmarked to IMDS is dropped"
		ip daddr 169.254.169.254 meta skuid != 0 drop comment "after nat: anything else to IMDS not from root is dropped"
		ip6 daddr fd00:ec2::254 meta mark != 0x00006761 meta l4proto tcp reject with tcp reset comment "after nat: unmarked tcp still to IPv6 IMDS is refused"
		ip6 daddr fd00:ec2::254 meta skuid != 0 meta l4proto tcp reject with tcp reset comment "after nat: tcp still to IPv6 IMDS not from root is refused"
		ip6 daddr fd00:ec2::254 meta mark != 0x00006761 drop comment "after nat: anything else unmarked to IPv6 IMDS is dropped"
		ip6 daddr fd00:ec2::254 meta skuid != 0 drop comment "after nat: anything else to IPv6 IMDS not from root is dropped"
		ip6 daddr ::ffff:169.254.169.254 drop comment "IPv4-mapped IMDS on the IPv6 wire is dropped"
		ip daddr 168.63.129.16 meta skuid != 0 drop comment "only root (and so the gate) may reach the WireServer"
	}

	chain forward {
		type filter hook forward priority 0; policy accept;
		ip daddr 169.254.169.254 meta l4proto tcp reject with tcp reset comment "forwarded tcp to IMDS is refused"
		ip daddr 169.254.169.254 drop comment "anything else forwarded to IMDS is dropped"
		ip6 daddr fd00:ec2::254 meta l4proto tcp reject with tcp reset comment "forwarded tcp to IPv6 IMDS is refused"
		ip6 daddr fd00:ec2::254 drop comment "anything else forwarded to IPv6 IMDS is dropped"
		ip6 daddr ::ffff:169.254.169.254 drop comment "forwarded IPv4-mapped IMDS is dropped"
		ip daddr 168.63.129.16 drop comment "nothing forwarded may reach the WireServer"
	}

	chain input-after-nat {
		type filter hook input priority 110; policy accept;
		ip daddr 127.0.0.1 tcp dport 16925 ct status snat reject with tcp reset comment "a connection to the gate whose source port NAT changed is refused"
		ip6 daddr ::1 tcp dport 16925 ct status snat reject with tcp reset comment "an IPv6 connection to the gate whose source port NAT changed is refused"
	}
}
"#;

const REDIRECT_NO_WIRESERVER_GOLDEN: &str = r#"# the nftables table of gatehouse; `gatehouse firewall apply` sends exactly this to `nft -f -`
table inet gatehouse
delete table inet gatehouse
table inet gatehouse {
	chain nat-output {
		type nat hook output priority -100; policy accept;
		ip daddr 169.254.169.254 tcp dport 80 meta mark != 0x00000007 redirect to :8080 comment "local IMDS connections go to the gate"
		ip daddr 169.254.169.254 tcp dport 80 meta skuid != 0 redirect to :8080 comment "marked but not root's: to the gate too"
	}

	chain nat-prerouting {
		type nat hook prerouting priority -100; policy accept;
		iifname != "lo" ip daddr 169.254.169.254 tcp dport 80 dnat ip to 127.0.0.1:8080 comment "IMDS connections from containers go to the gate"
	}

	chain input {
		type filter hook input priority 0; policy accept;
		iifname != "lo" ip daddr 127.0.0.1 tcp dport 8080 ct original ip daddr 169.254.169.254 accept comment "containers reach the gate only through the redirect"
		iifname != "lo" ip daddr 127.0.0.0/8 drop comment "route_localnet opens no other loopback service"
	}

	chain output {
		type filter hook output priority 0; policy accept;
		ip daddr 127.0.0.1 tcp dport 8080 ip saddr != 127.0.0.0/8 ct status ! dnat reject with tcp reset comment "no direct connection to the gate from a non-loopback address"
		ip daddr 169.254.169.254 meta mark != 0x00000007 meta l4proto tcp reject with tcp reset comment "after nat: unmarked tcp still to IMDS is refused"
		ip daddr 169.254.169.254 meta skuid != 0 meta l4proto tcp reject with tcp reset comment "after nat: tcp still to IMDS not from root is refused"
		ip daddr 169.254.169.254 meta mark != 0x00000007 drop comment "after nat: anything else unmarked to IMDS is dropped"
		ip daddr 169.254.169.254 meta skuid != 0 drop comment "after nat: anything else to IMDS not from root is dropped"
		ip6 daddr fd00:ec2::254 meta mark != 0x00000007 meta l4proto tcp reject with tcp reset comment "IPv6 IMDS: unmarked tcp is refused (the gate answers on IPv4)"
		ip6 daddr fd00:ec2::254 meta skuid != 0 meta l4proto tcp reject with tcp reset comment "IPv6 IMDS: tcp not from root is refused"
		ip6 daddr fd00:ec2::254 meta mark != 0x00000007 drop comment "IPv6 IMDS: anything else unmarked is dropped"
		ip6 daddr fd00:ec2::254 meta skuid != 0 drop comment "IPv6 IMDS: anything else not from root is dropped"
		ip6 daddr ::ffff:169.254.169.254 drop comment "IPv4-mapped IMDS on the IPv6 wire is dropped"
	}

	chain forward {
		type filter hook forward priority 0; policy accept;
		ip daddr 169.254.169.254 meta l4proto tcp reject with tcp reset comment "forwarded tcp to IMDS is refused"
		ip daddr 169.254.169.254 drop comment "anything else forwarded to IMDS is dropped"
		ip6 daddr fd00:ec2::254 meta l4proto tcp reject with tcp reset comment "forwarded tcp to IPv6 IMDS is refused"
		ip6 daddr fd00:ec2::254 drop comment "anything else forwarded to IPv6 IMDS is dropped"
		ip6 daddr ::ffff:169.254.169.254 drop comment "forwarded IPv4-mapped IMDS is dropped"
	}

	chain input-after-nat {
		type filter hook input priority 110; policy accept;
		ip daddr 127.0.0.1 tcp dport 8080 ct status snat reject with tcp reset comment "a connection to the gate whose source port NAT changed is refused"
	}
}
"#;

#[test]
fn default_batch_is_golden() {
    assert_eq!(Ruleset::new(&options()).unwrap().batch(), DEFAULT_GOLDEN);
}

#[test]
fn redirect_without_wireserver_is_golden() {
    let o = Options {
        listen: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080),
        mark: 7,
        wireserver: false,
        containers: Containers::Redirect,
        ipv6: Ipv6::Refuse,
        jit: None,
    };
    assert_eq!(
        Ruleset::new(&o).unwrap().batch(),
        REDIRECT_NO_WIRESERVER_GOLDEN
    );
}

/// (listen address, containers) → how the output and prerouting rules
/// reach the gate.
#[test]
fn the_way_to_the_gate_depends_on_the_listener() {
    let table: [(&str, Containers, &str, Option<&str>, bool); 4] = [
        (
            "127.0.0.1:1",
            Containers::Drop,
            "redirect to :1",
            None,
            false,
        ),
        (
            "0.0.0.0:2",
            Containers::Redirect,
            "redirect to :2",
            Some("redirect to :2"),
            false,
        ),
        (
            "10.1.2.3:3",
            Containers::Redirect,
            "dnat ip to 10.1.2.3:3",
            Some("dnat ip to 10.1.2.3:3"),
            false,
        ),
        (
            "127.0.0.1:4",
            Containers::Redirect,
            "redirect to :4",
            Some("dnat ip to 127.0.0.1:4"),
            true,
        ),
    ];
    for (listen, containers, output, prerouting, guard) in table {
        let o = Options {
            listen: listen.parse().unwrap(),
            containers,
            ..options()
        };
        let r = Ruleset::new(&o).unwrap();
        let find = |name: &str| r.chains.iter().find(|c| c.name == name);
        let first = |name: &str| find(name).map(|c| c.rules[0].statement.text());
        assert_eq!(first("nat-output").as_deref(), Some(output), "{listen}");
        assert_eq!(first("nat-prerouting").as_deref(), prerouting, "{listen}");
        assert_eq!(find("input").is_some(), guard, "{listen}: loopback guard");
    }
}

#[test]
fn zero_mark_and_port_are_refused() {
    assert_eq!(
        Ruleset::new(&Options {
            mark: 0,
            ..options()
        }),
        Err(OptionsError::ZeroMark)
    );
    let o = Options {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..options()
    };
    assert_eq!(Ruleset::new(&o), Err(OptionsError::ZeroPort));
}

#[test]
fn remove_touches_only_our_table() {
    assert_eq!(
        remove_batch(),
        "table inet gatehouse\ndelete table inet gatehouse\n"
    );
}

#[test]
fn rule_json_has_comment_and_expressions_in_order() {
    let r = Ruleset::new(&options()).unwrap();
    let json = r.chains[0].rules[0].json();
    assert_eq!(json["comment"], "local IMDS connections go to the gate");
    let expr = json["expr"].as_array().unwrap();
    assert_eq!(expr.len(), 4);
    assert_eq!(expr[2]["match"]["op"], "!=");
    assert_eq!(expr[2]["match"]["right"], 0x6761);
    assert_eq!(expr[3], serde_json::json!({"redirect": {"port": 16925}}));
}

/// A packet as the output hooks see it: its mark and its socket's owner
/// (`None`: no full socket, e.g. a RST the kernel sends by itself).
struct Packet {
    daddr: std::net::IpAddr,
    dport: u16,
    tcp: bool,
    mark: u32,
    skuid: Option<u32>,
}

/// Whether every match of `rule` holds for `p` (only the matches the output
/// chains use; `meta skuid` does not match at all without a socket).
fn holds(rule: &Rule, p: &Packet) -> bool {
    rule.matches.iter().all(|m| match m {
        Match::Daddr(a) => p.daddr == std::net::IpAddr::V4(*a),
        Match::Daddr6(a) => p.daddr == std::net::IpAddr::V6(*a),
        Match::TcpDport(port) => p.tcp && p.dport == *port,
        Match::L4protoTcp => p.tcp,
        Match::MarkIsNot(mark) => p.mark != *mark,
        Match::SkuidIsNot(uid) => p.skuid.is_some_and(|u| u != *uid),
        other => panic!("no model for {other:?}"),
    })
}

/// The statement of the first rule of chain `name` that holds for `p`.
fn verdict(r: &Ruleset, name: &str, p: &Packet) -> Option<Statement> {
    let chain = r.chains.iter().find(|c| c.name == name).unwrap();
    chain
        .rules
        .iter()
        .find(|rule| holds(rule, p))
        .map(|rule| rule.statement.clone())
}

/// (mark, socket owner) → is a TCP packet to IMDS:80 redirected by nat, and
/// (were it not) refused after nat? Only the gate's mark on a root socket
/// passes both; CAP_NET_RAW can set the mark, so the mark alone does not.
#[test]
fn only_a_marked_root_socket_reaches_imds() {
    for ipv6 in [Ipv6::Intercept, Ipv6::Refuse] {
        only_a_marked_root_socket_reaches_imds_with(ipv6);
    }
}

fn only_a_marked_root_socket_reaches_imds_with(ipv6: Ipv6) {
    let r = Ruleset::new(&Options { ipv6, ..options() }).unwrap();
    let table: [(u32, Option<u32>, bool); 7] = [
        (0, Some(1000), false),
        (0, Some(0), false),
        (0x6761, Some(0), true),
        (0x6761, Some(65534), false),
        (0x6761, Some(1000), false),
        (0x1, Some(0), false),
        // no socket: only the mark decides, as before the uid check
        (0x6761, None, true),
    ];
    // IPv6 IMDS is redirected like IPv4 IMDS when intercepted (to the
    // gate's [::1] listener); refused after nat either way, to all but the
    // gate's own sockets.
    let addresses: [(std::net::IpAddr, bool); 2] =
        [(IMDS.into(), true), (IMDS6.into(), ipv6 == Ipv6::Intercept)];
    for ((mark, skuid, passes), (daddr, redirected)) in table
        .into_iter()
        .flat_map(|t| addresses.into_iter().map(move |a| (t, a)))
    {
        for (dport, nat_applies) in [(80, redirected), (443, false)] {
            let p = Packet {
                daddr,
                dport,
                tcp: true,
                mark,
                skuid,
            };
            let nat = verdict(&r, "nat-output", &p);
            let filter = verdict(&r, "output", &p);
            if nat_applies {
                assert_eq!(
                    nat.is_none(),
                    passes,
                    "nat: {daddr} mark {mark:#x} uid {skuid:?}"
                );
                if !passes {
                    assert_eq!(nat, Some(Statement::Redirect(16925)), "nat: {daddr}");
                }
            }
            if !redirected {
                assert_eq!(nat, None, "nat: {daddr} is never redirected");
            }
            assert_eq!(
                filter.is_none(),
                passes,
                "filter: mark {mark:#x} uid {skuid:?} port {dport}"
            );
            if !passes {
                assert_eq!(
                    filter,
                    Some(Statement::RejectTcpReset),
                    "mark {mark:#x} uid {skuid:?}"
                );
            }
            let udp = Packet { tcp: false, ..p };
            let udp_verdict = verdict(&r, "output", &udp);
            assert_eq!(
                udp_verdict.is_none(),
                passes,
                "udp: mark {mark:#x} uid {skuid:?}"
            );
            if !passes {
                assert_eq!(
                    udp_verdict,
                    Some(Statement::Drop),
                    "udp: mark {mark:#x} uid {skuid:?}"
                );
            }
        }
    }
}

/// Forwarded (containers, other namespaces): IMDS refused on both
/// addresses; 169.254.169.254 mapped into IPv6 is dropped everywhere, even
/// for the gate's sockets (no real packet carries it).
#[test]
fn ipv6_imds_is_refused_forwarded_and_mapped_is_dropped() {
    let r = Ruleset::new(&options()).unwrap();
    let cases: [(std::net::IpAddr, bool, &str, Option<Statement>); 6] = [
        (
            IMDS6.into(),
            true,
            "forward",
            Some(Statement::RejectTcpReset),
        ),
        (IMDS6.into(), false, "forward", Some(Statement::Drop)),
        (IMDS_MAPPED.into(), true, "forward", Some(Statement::Drop)),
        (IMDS_MAPPED.into(), true, "output", Some(Statement::Drop)),
        (IMDS_MAPPED.into(), false, "output", Some(Statement::Drop)),
        ("fd00:ec2::253".parse().unwrap(), true, "output", None),
    ];
    for (daddr, tcp, chain, want) in cases {
        let p = Packet {
            daddr,
            dport: 80,
            tcp,
            mark: 0x6761,
            skuid: Some(0),
        };
        assert_eq!(verdict(&r, chain, &p), want, "{daddr} tcp={tcp} {chain}");
    }
    assert_eq!(IMDS_MAPPED.to_string(), "::ffff:169.254.169.254");
    assert_eq!(IMDS6.to_string(), "fd00:ec2::254");
}

/// The WireServer: root's sockets only; the mark makes no difference.
#[test]
fn only_root_reaches_the_wireserver() {
    let r = Ruleset::new(&options()).unwrap();
    for (mark, skuid, passes) in [
        (0, Some(0), true),
        (0x6761, Some(0), true),
        (0x6761, Some(65534), false),
        (0, Some(1000), false),
    ] {
        let p = Packet {
            daddr: WIRESERVER.into(),
            dport: 80,
            tcp: true,
            mark,
            skuid,
        };
        assert_eq!(
            verdict(&r, "output", &p).is_none(),
            passes,
            "mark {mark:#x} uid {skuid:?}"
        );
    }
}

fn jit_options(ports: Vec<(Protocol, u16)>, break_glass: &[&str]) -> Options {
    Options {
        jit: Some(JitPorts {
            ports,
            break_glass: break_glass.iter().map(|n| n.parse().unwrap()).collect(),
        }),
        ..options()
    }
}

#[test]
fn jit_part_is_golden() {
    let o = jit_options(
        vec![
            (Protocol::Tcp, 22),
            (Protocol::Udp, 60001),
            (Protocol::Tcp, 22),
        ],
        &[
            "192.168.1.5/32",
            "10.0.0.0/8",
            "10.1.0.0/16",
            "2001:db8::/32",
        ],
    );
    let batch = Ruleset::new(&o).unwrap().batch();
    let start = batch.find("\tset jit_ports").unwrap();
    let end = batch.find("\tchain nat-output").unwrap();
    assert_eq!(&batch[start..end], JIT_SETS_GOLDEN);
    let chain = batch.find("\tchain jit_input").unwrap();
    assert_eq!(&batch[chain..], JIT_CHAIN_GOLDEN);
}

const JIT_SETS_GOLDEN: &str = "\tset jit_ports {
\t\ttype inet_proto . inet_service
\t\telements = { tcp . 22, udp . 60001 }
\t}

\tset break_glass4 {
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = { 10.0.0.0/8, 192.168.1.5 }
\t}

\tset break_glass6 {
\t\ttype ipv6_addr
\t\tflags interval
\t\telements = { 2001:db8::/32 }
\t}

\tset jit4 {
\t\ttype ipv4_addr . inet_proto . inet_service
\t\tflags timeout
\t\t# elements: added and expired at run time (`gatehouse` keeps them)
\t}

\tset jit6 {
\t\ttype ipv6_addr . inet_proto . inet_service
\t\tflags timeout
\t\t# elements: added and expired at run time (`gatehouse` keeps them)
\t}

";

const JIT_CHAIN_GOLDEN: &str = r#"	chain jit_input {
		type filter hook input priority -1; policy accept;
		ct state established,related accept comment "jit: established sessions outlive their element"
		iif "lo" accept comment "jit: loopback is never closed"
		meta l4proto . th dport != @jit_ports accept comment "jit: only protected ports are closed"
		ip saddr @break_glass4 accept comment "jit: break-glass ranges always reach protected ports"
		ip6 saddr @break_glass6 accept comment "jit: break-glass ranges always reach protected ports (ipv6)"
		ip saddr . meta l4proto . th dport @jit4 accept comment "jit: a source opened just in time"
		ip6 saddr . meta l4proto . th dport @jit6 accept comment "jit: a source opened just in time (ipv6)"
		drop comment "jit: protected ports are closed to everyone else"
	}
}
"#;

#[test]
fn jit_options_are_checked() {
    let cases = [
        (jit_options(vec![], &[]), Err(OptionsError::NoJitPorts)),
        (
            jit_options(vec![(Protocol::Tcp, 22), (Protocol::Udp, 0)], &[]),
            Err(OptionsError::ZeroJitPort),
        ),
        (jit_options(vec![(Protocol::Tcp, 22)], &[]), Ok(())),
    ];
    for (o, want) in cases {
        assert_eq!(Ruleset::new(&o).map(|_| ()), want, "{o:?}");
    }
    let r = Ruleset::new(&jit_options(vec![(Protocol::Tcp, 22)], &[])).unwrap();
    assert_eq!(r.chains.last().unwrap().name, JIT_CHAIN);
    let empty = r.sets.iter().find(|s| s.name == BREAK_GLASS4).unwrap();
    assert_eq!(empty.elements, Some(vec![]));
    assert!(!r.batch().contains("elements = {  }"));
}

#[test]
fn without_jit_there_are_no_sets() {
    let r = Ruleset::new(&options()).unwrap();
    assert!(r.sets.is_empty());
    assert!(!r.batch().contains("jit"));
}

/// The IPv6 listener the table sends IMDS's IPv6 address to: [::1] on the
/// IPv4 listener's port, whatever that listener's address; none when
/// refused. The rules that guard the IPv4 listener have IPv6 twins.
#[test]
fn ipv6_goes_to_the_gate_at_loopback_on_the_same_port() {
    let cases: [(&str, Ipv6, Option<&str>); 4] = [
        ("127.0.0.1:16925", Ipv6::Intercept, Some("[::1]:16925")),
        ("10.1.2.3:8080", Ipv6::Intercept, Some("[::1]:8080")),
        ("0.0.0.0:1", Ipv6::Intercept, Some("[::1]:1")),
        ("127.0.0.1:16925", Ipv6::Refuse, None),
    ];
    for (listen, ipv6, want) in cases {
        let o = Options {
            listen: listen.parse().unwrap(),
            ipv6,
            ..options()
        };
        let want: Option<SocketAddrV6> = want.map(|w| w.parse().unwrap());
        assert_eq!(o.listen6(), want, "{listen} {ipv6:?}");
        let r = Ruleset::new(&o).unwrap();
        let texts: Vec<String> = r
            .chains
            .iter()
            .flat_map(|c| c.rules.iter().map(|r| format!("{}: {}", c.name, r.text())))
            .collect();
        let port = o.listen.port();
        let twins = [
            format!("nat-output: ip6 daddr fd00:ec2::254 tcp dport 80 meta mark != 0x00006761 redirect to :{port}"),
            format!("nat-output: ip6 daddr fd00:ec2::254 tcp dport 80 meta skuid != 0 redirect to :{port}"),
            format!("output: ip6 daddr ::1 tcp dport {port} ip6 saddr != ::1 ct status ! dnat reject"),
            format!("input-after-nat: ip6 daddr ::1 tcp dport {port} ct status snat reject"),
        ];
        for twin in twins {
            let present = texts.iter().any(|t| t.starts_with(&twin));
            assert_eq!(present, want.is_some(), "{listen} {ipv6:?}: {twin}");
        }
        // Refused after nat either way; never a redirect to [::1] without it.
        assert!(texts.iter().any(|t| t.starts_with(
            "output: ip6 daddr fd00:ec2::254 meta mark != 0x00006761 meta l4proto tcp reject"
        )));
    }
}

//! The table gatehouse owns, built from a few options, and its rendering as
//! one `nft -f -` batch.
//!
//! The rules, and why each exists (docs/architecture.md, "Firewall"):
//! - nat output: TCP to IMDS port 80 goes to the gate's listener unless it
//!   comes from one of the gate's own upstream sockets: one that carries the
//!   gate's mark *and* belongs to uid 0. The mark alone is not enough: since
//!   Linux 5.17 CAP_NET_RAW may set `SO_MARK` as well as CAP_NET_ADMIN, and
//!   CAP_NET_RAW is handed out freely (containers, `AmbientCapabilities=`).
//!   The gate's upstream sockets are made by root (the gate itself, or the
//!   root broker with `--user`). nftables rules are conjunctions, so "not
//!   (marked and root)" is two rules: unmarked, or not root's.
//! - filter output (after NAT): whatever is *still* addressed to IMDS and is
//!   unmarked or not root's is refused — other ports, UDP, and connections
//!   opened before the redirect existed (conntrack keeps their original,
//!   un-NATed destination).
//! - IPv6 (`Ipv6::Intercept`, the default): fd00:ec2::254 tcp/80 goes to the
//!   gate's IPv6 listener at [::1] on the same port, by the same two rules
//!   (nftables cannot NAT IPv6 to IPv4, so the gate listens on both); what
//!   is still addressed to it after nat is refused as for IPv4. With
//!   `Ipv6::Refuse` (IPv6 off, or no IPv6 listener) it is refused to all but
//!   the gate's own sockets: never a redirect to a port no gate holds.
//! - WireServer: only root's sockets may reach it (the gate's are root's).
//! - forward (containers, other namespaces): refused, or — `Containers::Redirect`
//!   — sent to the gate from prerouting, which then denies what it cannot
//!   attribute.
//! - jit_input (only with [`Options::jit`]): inbound management ports stay
//!   closed except to break-glass ranges and to the sources the `jit4`/`jit6`
//!   sets name, element by element, until each element's timeout
//!   (`ruleset/jit.rs` has the rules and why).

use crate::expr::{Match, Statement};
use gatehouse_policy::Protocol;
use ipnet::IpNet;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

mod jit;
#[cfg(test)]
pub(crate) mod tests;

pub use self::jit::{
    JitPorts, BREAK_GLASS4, BREAK_GLASS6, JIT4, JIT6, JIT_CHAIN, JIT_PORTS, JIT_PRIORITY,
};

/// The nftables family and name of the one table gatehouse owns.
pub const FAMILY: &str = "inet";
pub const TABLE: &str = "gatehouse";

/// The instance metadata service.
pub const IMDS: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// Its IPv6 address (AWS's Nitro instances answer there).
pub const IMDS6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);
/// 169.254.169.254 as an IPv4-mapped IPv6 address. A dual-stack socket that
/// connects to it sends IPv4 packets (the IPv4 rules see them); a packet
/// that carries it on the IPv6 wire is only ever crafted, and dropped.
pub const IMDS_MAPPED: Ipv6Addr = IMDS.to_ipv6_mapped();
/// Azure's WireServer (extension settings, certificates).
pub const WIRESERVER: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);

/// What to do with local connections to IMDS's IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ipv6 {
    /// Send TCP port 80 to the gate's IPv6 listener ([`GATE6`] on the
    /// IPv4 listener's port), as the IPv4 address is sent to its IPv4 one.
    #[default]
    Intercept,
    /// Refuse it to everyone but the gate's own sockets (for a gate that
    /// cannot listen on IPv6: IPv6 is off here).
    Refuse,
}

/// Where the gate listens for IPv6 (the table's `redirect` from the output
/// hook lands on it).
pub const GATE6: Ipv6Addr = Ipv6Addr::LOCALHOST;

/// What to do with IMDS traffic arriving from containers and other network
/// namespaces (prerouting/forward).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Containers {
    /// Refuse it (TCP reset, everything else dropped). The default: the gate
    /// cannot see a container's sockets from the host namespace, so it could
    /// only answer "caller unknown" anyway.
    #[default]
    Drop,
    /// Send TCP port 80 to the gate, which decides (and denies what it cannot
    /// attribute). With a loopback listener this needs `route_localnet=1` on
    /// the containers' interface; the table then also drops every other packet
    /// from a non-loopback interface to 127.0.0.0/8.
    Redirect,
}

/// What the table is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The gate's listener.
    pub listen: SocketAddrV4,
    /// The socket mark on the gate's upstream connections.
    pub mark: u32,
    /// Guard the WireServer too.
    pub wireserver: bool,
    pub containers: Containers,
    /// IMDS's IPv6 address: intercepted or refused.
    pub ipv6: Ipv6,
    /// Just-in-time ports: closed inbound except to break-glass ranges and
    /// to the sources `jit::sync` opens them for. `None`: no such rules.
    pub jit: Option<JitPorts>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    #[error("the mark must not be 0: every unmarked packet carries 0")]
    ZeroMark,
    #[error("the gate's listen port must not be 0")]
    ZeroPort,
    #[error("just-in-time ports are enabled but name no port: list at least one in `[jit] ports`, or disable `[jit]`")]
    NoJitPorts,
    #[error("just-in-time port 0 is not a port: remove it from `[jit] ports`")]
    ZeroJitPort,
}

/// A rule: all matches, then one statement; the comment names it in
/// `verify`'s report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub statement: Statement,
    pub comment: &'static str,
}

/// A base chain of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: &'static str,
    /// `nat` or `filter`.
    pub kind: &'static str,
    pub hook: &'static str,
    pub priority: i32,
    pub rules: Vec<Rule>,
}

/// A named set of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub name: &'static str,
    /// The element type; more than one part is a concatenation (`a . b`).
    pub types: Vec<&'static str>,
    /// `interval`, `timeout`.
    pub flags: Vec<&'static str>,
    /// The elements the table declares, or `None` for a set whose elements
    /// are state the daemon keeps at run time (`jit4`, `jit6`): `verify`
    /// then compares only the set's type and flags.
    pub elements: Option<Vec<SetElement>>,
}

/// An element of a set the table declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetElement {
    /// An address range (a host when the prefix is full length).
    Net(IpNet),
    /// `tcp . 22`
    Port(Protocol, u16),
}

/// The whole table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    /// Declared before the chains, whose rules refer to them.
    pub sets: Vec<Set>,
    pub chains: Vec<Chain>,
}

const NAT: i32 = -100;
const FILTER: i32 = 0;
/// Just after the source-NAT step of the input hook (`srcnat`, 100), where
/// conntrack settles a connection's source port.
const AFTER_SRCNAT: i32 = 110;

impl Options {
    /// The gate's IPv6 listener the table sends IMDS's IPv6 address to
    /// (`None` with [`Ipv6::Refuse`]).
    pub fn listen6(&self) -> Option<SocketAddrV6> {
        match self.ipv6 {
            Ipv6::Intercept => Some(SocketAddrV6::new(GATE6, self.listen.port(), 0, 0)),
            Ipv6::Refuse => None,
        }
    }
}

impl Ruleset {
    pub fn new(options: &Options) -> Result<Ruleset, OptionsError> {
        if options.mark == 0 {
            return Err(OptionsError::ZeroMark);
        }
        let port = options.listen.port();
        if port == 0 {
            return Err(OptionsError::ZeroPort);
        }
        let ip = *options.listen.ip();
        let unmarked = Match::MarkIsNot(options.mark);
        // `meta skuid` does not match a packet without a full socket (a RST
        // the kernel sends on its own), so `!= 0` leaves those to the
        // unmarked rule, as before.
        let not_root = Match::SkuidIsNot(0);
        // From the output hook `redirect` lands on 127.0.0.1, which also
        // reaches a wildcard listener; any other address needs a dnat.
        let to_gate = if ip.is_loopback() || ip.is_unspecified() {
            Statement::Redirect(port)
        } else {
            Statement::Dnat(ip, port)
        };

        let intercept6 = options.ipv6 == Ipv6::Intercept;
        let mut nat_output = vec![
            rule(
                vec![Match::Daddr(IMDS), Match::TcpDport(80), unmarked.clone()],
                to_gate.clone(),
                "local IMDS connections go to the gate",
            ),
            rule(
                vec![Match::Daddr(IMDS), Match::TcpDport(80), not_root.clone()],
                to_gate,
                "marked but not root's: to the gate too",
            ),
        ];
        if intercept6 {
            // From the output hook `redirect` lands on [::1]: the gate's
            // IPv6 listener, on the same port.
            nat_output.extend([
                rule(
                    vec![Match::Daddr6(IMDS6), Match::TcpDport(80), unmarked.clone()],
                    Statement::Redirect(port),
                    "local IPv6 IMDS connections go to the gate at [::1]",
                ),
                rule(
                    vec![Match::Daddr6(IMDS6), Match::TcpDport(80), not_root.clone()],
                    Statement::Redirect(port),
                    "IPv6: marked but not root's: to the gate too",
                ),
            ]);
        }
        let mut chains = vec![chain("nat-output", "nat", "output", NAT, nat_output)];

        if options.containers == Containers::Redirect {
            // From prerouting `redirect` would land on the incoming
            // interface's address: right for a wildcard listener only.
            let to_gate = if ip.is_unspecified() {
                Statement::Redirect(port)
            } else {
                Statement::Dnat(ip, port)
            };
            chains.push(chain(
                "nat-prerouting",
                "nat",
                "prerouting",
                NAT,
                vec![rule(
                    vec![
                        Match::IifnameIsNot("lo"),
                        Match::Daddr(IMDS),
                        Match::TcpDport(80),
                    ],
                    to_gate,
                    "IMDS connections from containers go to the gate",
                )],
            ));
            if ip.is_loopback() {
                chains.push(chain(
                    "input",
                    "filter",
                    "input",
                    FILTER,
                    vec![
                        rule(
                            vec![
                                Match::IifnameIsNot("lo"),
                                Match::Daddr(ip),
                                Match::TcpDport(port),
                                Match::CtOriginalDaddr(IMDS),
                            ],
                            Statement::Accept,
                            "containers reach the gate only through the redirect",
                        ),
                        rule(
                            vec![
                                Match::IifnameIsNot("lo"),
                                Match::DaddrPrefix(Ipv4Addr::new(127, 0, 0, 0), 8),
                            ],
                            Statement::Drop,
                            "route_localnet opens no other loopback service",
                        ),
                    ],
                ));
            }
        }

        let mut output = Vec::new();
        if ip.is_loopback() || ip.is_unspecified() {
            // A redirected connection's reply tuple is (gate → its source). A
            // direct connection to the gate from the same source address and
            // port, left in TIME_WAIT, would make conntrack change the
            // redirected one's source port, which the rule in
            // `input-after-nat` then refuses: any user could block everyone's
            // IMDS that way. Local clients reach the gate from loopback or
            // through the redirect, never directly from another address.
            let mut direct = Vec::new();
            if ip.is_loopback() {
                direct.push(Match::Daddr(ip));
            }
            direct.extend([
                Match::TcpDport(port),
                Match::SaddrNotPrefix(Ipv4Addr::new(127, 0, 0, 0), 8),
                Match::CtStatusNotDnat,
            ]);
            output.push(rule(
                direct,
                Statement::RejectTcpReset,
                "no direct connection to the gate from a non-loopback address",
            ));
        }
        if intercept6 {
            // The same for the IPv6 listener, which is always [::1].
            output.push(rule(
                vec![
                    Match::Daddr6(GATE6),
                    Match::TcpDport(port),
                    Match::Saddr6IsNot(GATE6),
                    Match::CtStatusNotDnat,
                ],
                Statement::RejectTcpReset,
                "no direct IPv6 connection to the gate from a non-loopback address",
            ));
        }
        output.extend([
            rule(
                vec![Match::Daddr(IMDS), unmarked.clone(), Match::L4protoTcp],
                Statement::RejectTcpReset,
                "after nat: unmarked tcp still to IMDS is refused",
            ),
            rule(
                vec![Match::Daddr(IMDS), not_root.clone(), Match::L4protoTcp],
                Statement::RejectTcpReset,
                "after nat: tcp still to IMDS not from root is refused",
            ),
            rule(
                vec![Match::Daddr(IMDS), unmarked.clone()],
                Statement::Drop,
                "after nat: anything else unmarked to IMDS is dropped",
            ),
            rule(
                vec![Match::Daddr(IMDS), not_root.clone()],
                Statement::Drop,
                "after nat: anything else to IMDS not from root is dropped",
            ),
        ]);
        // IPv6 after nat, as IPv4: what is still addressed to IMDS's IPv6
        // address (other ports, UDP, connections opened before the redirect)
        // is refused to everyone but the gate's own (marked, root) sockets.
        // Without the redirect (`Ipv6::Refuse`) that is every connection:
        // fail closed. A redirect to [::1] with no gate listening there
        // would let any user bind that port and answer everyone's IPv6
        // requests, so there is none then.
        let ipv6_words: [&'static str; 4] = if intercept6 {
            [
                "after nat: unmarked tcp still to IPv6 IMDS is refused",
                "after nat: tcp still to IPv6 IMDS not from root is refused",
                "after nat: anything else unmarked to IPv6 IMDS is dropped",
                "after nat: anything else to IPv6 IMDS not from root is dropped",
            ]
        } else {
            [
                "IPv6 IMDS: unmarked tcp is refused (the gate answers on IPv4)",
                "IPv6 IMDS: tcp not from root is refused",
                "IPv6 IMDS: anything else unmarked is dropped",
                "IPv6 IMDS: anything else not from root is dropped",
            ]
        };
        output.extend([
            rule(
                vec![Match::Daddr6(IMDS6), unmarked.clone(), Match::L4protoTcp],
                Statement::RejectTcpReset,
                ipv6_words[0],
            ),
            rule(
                vec![Match::Daddr6(IMDS6), not_root.clone(), Match::L4protoTcp],
                Statement::RejectTcpReset,
                ipv6_words[1],
            ),
            rule(
                vec![Match::Daddr6(IMDS6), unmarked],
                Statement::Drop,
                ipv6_words[2],
            ),
            rule(
                vec![Match::Daddr6(IMDS6), not_root.clone()],
                Statement::Drop,
                ipv6_words[3],
            ),
            rule(
                vec![Match::Daddr6(IMDS_MAPPED)],
                Statement::Drop,
                "IPv4-mapped IMDS on the IPv6 wire is dropped",
            ),
        ]);
        let mut forward = vec![
            rule(
                vec![Match::Daddr(IMDS), Match::L4protoTcp],
                Statement::RejectTcpReset,
                "forwarded tcp to IMDS is refused",
            ),
            rule(
                vec![Match::Daddr(IMDS)],
                Statement::Drop,
                "anything else forwarded to IMDS is dropped",
            ),
            rule(
                vec![Match::Daddr6(IMDS6), Match::L4protoTcp],
                Statement::RejectTcpReset,
                "forwarded tcp to IPv6 IMDS is refused",
            ),
            rule(
                vec![Match::Daddr6(IMDS6)],
                Statement::Drop,
                "anything else forwarded to IPv6 IMDS is dropped",
            ),
            rule(
                vec![Match::Daddr6(IMDS_MAPPED)],
                Statement::Drop,
                "forwarded IPv4-mapped IMDS is dropped",
            ),
        ];
        if options.wireserver {
            output.push(rule(
                vec![Match::Daddr(WIRESERVER), not_root],
                Statement::Drop,
                "only root (and so the gate) may reach the WireServer",
            ));
            forward.push(rule(
                vec![Match::Daddr(WIRESERVER)],
                Statement::Drop,
                "nothing forwarded may reach the WireServer",
            ));
        }
        chains.push(chain("output", "filter", "output", FILTER, output));
        chains.push(chain("forward", "filter", "forward", FILTER, forward));
        // The gate identifies a caller by the source address and port it sees.
        // When a redirected connection's reply tuple clashes with another
        // connection's (say one left in TIME_WAIT), conntrack quietly gives it
        // another source port, and the gate would look up whichever socket has
        // that one. Such a connection is refused instead (clients retry).
        let mut to_gate = Vec::new();
        if !ip.is_unspecified() {
            to_gate.push(Match::Daddr(ip));
        }
        to_gate.extend([Match::TcpDport(port), Match::CtStatusSnat]);
        let mut after_nat = vec![rule(
            to_gate,
            Statement::RejectTcpReset,
            "a connection to the gate whose source port NAT changed is refused",
        )];
        if intercept6 {
            after_nat.push(rule(
                vec![
                    Match::Daddr6(GATE6),
                    Match::TcpDport(port),
                    Match::CtStatusSnat,
                ],
                Statement::RejectTcpReset,
                "an IPv6 connection to the gate whose source port NAT changed is refused",
            ));
        }
        chains.push(chain(
            "input-after-nat",
            "filter",
            "input",
            AFTER_SRCNAT,
            after_nat,
        ));
        let mut sets = Vec::new();
        if let Some(ports) = &options.jit {
            let (jit_sets, jit_chain) = jit::render(ports)?;
            sets = jit_sets;
            chains.push(jit_chain);
        }
        Ok(Ruleset { sets, chains })
    }

    /// The `nft -f -` batch that replaces the table in one transaction.
    ///
    /// `table` first creates the table if it is missing, so the `delete`
    /// always succeeds; the full table is then declared again. nft commits
    /// the batch atomically, so there is no moment without the rules, and
    /// whatever else was put into the table (rules, sets, chains) is gone.
    pub fn batch(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# the nftables table of gatehouse; `gatehouse firewall apply` sends exactly this to `nft -f -`");
        let _ = writeln!(out, "table {FAMILY} {TABLE}");
        let _ = writeln!(out, "delete table {FAMILY} {TABLE}");
        let _ = writeln!(out, "table {FAMILY} {TABLE} {{");
        for s in &self.sets {
            out.push_str(&s.text());
            out.push('\n');
        }
        for (i, c) in self.chains.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "\tchain {} {{", c.name);
            let _ = writeln!(
                out,
                "\t\ttype {} hook {} priority {}; policy accept;",
                c.kind, c.hook, c.priority
            );
            for r in &c.rules {
                let _ = writeln!(out, "\t\t{}", r.text());
            }
            let _ = writeln!(out, "\t}}");
        }
        let _ = writeln!(out, "}}");
        out
    }

    /// The number of rules, for messages.
    pub fn rule_count(&self) -> usize {
        self.chains.iter().map(|c| c.rules.len()).sum()
    }
}

/// The batch that removes our table and nothing else (and succeeds when it
/// is already gone).
pub fn remove_batch() -> String {
    format!("table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n")
}

impl Rule {
    /// The rule as nft input (and as nft lists it).
    pub fn text(&self) -> String {
        let mut parts: Vec<String> = self.matches.iter().map(Match::text).collect();
        parts.push(self.statement.text());
        format!("{} comment \"{}\"", parts.join(" "), self.comment)
    }

    /// The parts of `nft -j list`'s rule object that say what the rule does.
    pub fn json(&self) -> Value {
        let mut expr: Vec<Value> = self.matches.iter().map(Match::json).collect();
        expr.push(self.statement.json());
        json!({"comment": self.comment, "expr": expr})
    }
}

impl Set {
    /// The set's declaration as nft input, indented for the table block.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\tset {} {{", self.name);
        let _ = writeln!(out, "\t\ttype {}", self.types.join(" . "));
        if !self.flags.is_empty() {
            let _ = writeln!(out, "\t\tflags {}", self.flags.join(", "));
        }
        match &self.elements {
            Some(elements) if !elements.is_empty() => {
                let list: Vec<String> = elements.iter().map(SetElement::text).collect();
                let _ = writeln!(out, "\t\telements = {{ {} }}", list.join(", "));
            }
            Some(_) => {}
            None => {
                let _ = writeln!(
                    out,
                    "\t\t# elements: added and expired at run time (`gatehouse` keeps them)"
                );
            }
        }
        let _ = writeln!(out, "\t}}");
        out
    }

    /// The set's type and flags as `nft -j list` shows them, normalised
    /// (`type` always a list, `flags` a sorted list).
    pub fn header_json(&self) -> Value {
        let mut flags = self.flags.clone();
        flags.sort_unstable();
        json!({"type": self.types, "flags": flags})
    }
}

impl SetElement {
    /// As nft input and as `nft list` prints it.
    pub fn text(&self) -> String {
        match self {
            SetElement::Net(net) if net.prefix_len() == net.max_prefix_len() => {
                net.addr().to_string()
            }
            SetElement::Net(net) => net.to_string(),
            SetElement::Port(proto, port) => format!("{} . {port}", proto.as_str()),
        }
    }

    /// As `nft -j list` prints it in a set's `elem` list.
    pub fn json(&self) -> Value {
        match self {
            SetElement::Net(net) if net.prefix_len() == net.max_prefix_len() => {
                json!(net.addr().to_string())
            }
            SetElement::Net(net) => {
                json!({"prefix": {"addr": net.addr().to_string(), "len": net.prefix_len()}})
            }
            SetElement::Port(proto, port) => json!({"concat": [proto.as_str(), port]}),
        }
    }
}

impl Chain {
    /// The chain's header as `nft -j list` shows it (without handles).
    pub fn header_json(&self) -> Value {
        json!({"type": self.kind, "hook": self.hook, "prio": self.priority, "policy": "accept"})
    }
}

fn chain(
    name: &'static str,
    kind: &'static str,
    hook: &'static str,
    priority: i32,
    rules: Vec<Rule>,
) -> Chain {
    Chain {
        name,
        kind,
        hook,
        priority,
        rules,
    }
}

fn rule(matches: Vec<Match>, statement: Statement, comment: &'static str) -> Rule {
    Rule {
        matches,
        statement,
        comment,
    }
}

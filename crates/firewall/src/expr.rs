//! The few nftables expressions gatehouse's table uses, each rendered twice:
//! as `nft` input text, and as the JSON `nft -j list` prints for it.
//!
//! Keeping both forms next to each other is what lets `verify` compare the
//! kernel's table structurally with what `print` renders; the integration
//! test applies the text and checks the listing equals the JSON, so the two
//! cannot drift apart unnoticed.

use serde_json::{json, Value};
use std::net::{Ipv4Addr, Ipv6Addr};

/// A match (every match of a rule must hold for its statement to run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// `ip daddr A`
    Daddr(Ipv4Addr),
    /// `ip6 daddr A`
    Daddr6(Ipv6Addr),
    /// `ip daddr A/LEN`
    DaddrPrefix(Ipv4Addr, u8),
    /// `tcp dport P`
    TcpDport(u16),
    /// `meta l4proto tcp`
    L4protoTcp,
    /// `meta mark != M`: the packet's socket mark is not M.
    MarkIsNot(u32),
    /// `meta skuid != U`: the sending socket's owner is not U.
    SkuidIsNot(u32),
    /// `iifname != "NAME"`
    IifnameIsNot(&'static str),
    /// `ct original ip daddr A`: the connection was first addressed to A
    /// (before any NAT).
    CtOriginalDaddr(Ipv4Addr),
    /// `ct state established,related`: a packet of a connection conntrack
    /// already knows (or one it relates to, e.g. an ICMP error).
    CtEstablishedRelated,
    /// `ct status snat`: conntrack changed the connection's source (for a
    /// local connection: its source port, when its reply tuple clashed with
    /// another connection's).
    CtStatusSnat,
    /// `ct status ! dnat`: conntrack did not change the connection's
    /// destination (it was not redirected).
    CtStatusNotDnat,
    /// `ip saddr != A/LEN`
    SaddrNotPrefix(Ipv4Addr, u8),
    /// `ip6 saddr != A`
    Saddr6IsNot(Ipv6Addr),
    /// `iif "NAME"`: arrived on that interface (resolved to its index when
    /// the table is applied; `lo` is always there).
    Iif(&'static str),
    /// `meta l4proto . th dport != @SET`: protocol and destination port are
    /// not an element of SET (a `inet_proto . inet_service` set).
    ProtoDportNotIn(&'static str),
    /// `ip saddr @SET` (or `ip6 saddr @SET` when `v6`).
    SaddrIn { v6: bool, set: &'static str },
    /// `ip saddr . meta l4proto . th dport @SET` (`ip6` when `v6`).
    SaddrProtoDportIn { v6: bool, set: &'static str },
}

/// What a rule does once its matches hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    Accept,
    Drop,
    /// `reject with tcp reset`: the sender sees "connection refused" (or
    /// "reset" mid-connection) at once instead of waiting for a timeout.
    RejectTcpReset,
    /// `redirect to :P`: to this host's own address (127.0.0.1, or ::1 for
    /// IPv6, from the output hook; the incoming interface's address from
    /// prerouting).
    Redirect(u16),
    /// `dnat ip to A:P`
    Dnat(Ipv4Addr, u16),
}

fn matches(op: &str, left: Value, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({"payload": {"protocol": protocol, "field": field}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn ip(v6: bool) -> &'static str {
    if v6 {
        "ip6"
    } else {
        "ip"
    }
}

impl Match {
    pub fn text(&self) -> String {
        match self {
            Match::Daddr(a) => format!("ip daddr {a}"),
            Match::Daddr6(a) => format!("ip6 daddr {a}"),
            Match::DaddrPrefix(a, len) => format!("ip daddr {a}/{len}"),
            Match::TcpDport(p) => format!("tcp dport {p}"),
            Match::L4protoTcp => "meta l4proto tcp".to_owned(),
            Match::MarkIsNot(m) => format!("meta mark != 0x{m:08x}"),
            Match::SkuidIsNot(u) => format!("meta skuid != {u}"),
            Match::IifnameIsNot(name) => format!("iifname != \"{name}\""),
            Match::CtOriginalDaddr(a) => format!("ct original ip daddr {a}"),
            Match::CtEstablishedRelated => "ct state established,related".to_owned(),
            Match::CtStatusSnat => "ct status snat".to_owned(),
            Match::CtStatusNotDnat => "ct status ! dnat".to_owned(),
            Match::SaddrNotPrefix(a, len) => format!("ip saddr != {a}/{len}"),
            Match::Saddr6IsNot(a) => format!("ip6 saddr != {a}"),
            Match::Iif(name) => format!("iif \"{name}\""),
            Match::ProtoDportNotIn(set) => format!("meta l4proto . th dport != @{set}"),
            Match::SaddrIn { v6, set } => format!("{} saddr @{set}", ip(*v6)),
            Match::SaddrProtoDportIn { v6, set } => {
                format!("{} saddr . meta l4proto . th dport @{set}", ip(*v6))
            }
        }
    }

    pub fn json(&self) -> Value {
        match self {
            Match::Daddr(a) => matches("==", payload("ip", "daddr"), json!(a.to_string())),
            Match::Daddr6(a) => matches("==", payload("ip6", "daddr"), json!(a.to_string())),
            Match::DaddrPrefix(a, len) => matches(
                "==",
                payload("ip", "daddr"),
                json!({"prefix": {"addr": a.to_string(), "len": len}}),
            ),
            Match::TcpDport(p) => matches("==", payload("tcp", "dport"), json!(p)),
            Match::L4protoTcp => matches("==", meta("l4proto"), json!("tcp")),
            Match::MarkIsNot(m) => matches("!=", meta("mark"), json!(m)),
            Match::SkuidIsNot(u) => matches("!=", meta("skuid"), json!(u)),
            Match::IifnameIsNot(name) => matches("!=", meta("iifname"), json!(name)),
            Match::CtOriginalDaddr(a) => matches(
                "==",
                json!({"ct": {"key": "ip daddr", "dir": "original"}}),
                json!(a.to_string()),
            ),
            Match::CtStatusSnat => matches("in", json!({"ct": {"key": "status"}}), json!("snat")),
            Match::CtStatusNotDnat => matches("!", json!({"ct": {"key": "status"}}), json!("dnat")),
            Match::SaddrNotPrefix(a, len) => matches(
                "!=",
                payload("ip", "saddr"),
                json!({"prefix": {"addr": a.to_string(), "len": len}}),
            ),
            Match::Saddr6IsNot(a) => matches("!=", payload("ip6", "saddr"), json!(a.to_string())),
            Match::CtEstablishedRelated => matches(
                "in",
                json!({"ct": {"key": "state"}}),
                json!(["established", "related"]),
            ),
            Match::Iif(name) => matches("==", meta("iif"), json!(name)),
            Match::ProtoDportNotIn(set) => matches(
                "!=",
                json!({"concat": [meta("l4proto"), payload("th", "dport")]}),
                json!(format!("@{set}")),
            ),
            Match::SaddrIn { v6, set } => {
                matches("==", payload(ip(*v6), "saddr"), json!(format!("@{set}")))
            }
            Match::SaddrProtoDportIn { v6, set } => matches(
                "==",
                json!({"concat": [payload(ip(*v6), "saddr"), meta("l4proto"), payload("th", "dport")]}),
                json!(format!("@{set}")),
            ),
        }
    }
}

impl Statement {
    pub fn text(&self) -> String {
        match self {
            Statement::Accept => "accept".to_owned(),
            Statement::Drop => "drop".to_owned(),
            Statement::RejectTcpReset => "reject with tcp reset".to_owned(),
            Statement::Redirect(p) => format!("redirect to :{p}"),
            Statement::Dnat(a, p) => format!("dnat ip to {a}:{p}"),
        }
    }

    pub fn json(&self) -> Value {
        match self {
            Statement::Accept => json!({"accept": null}),
            Statement::Drop => json!({"drop": null}),
            Statement::RejectTcpReset => json!({"reject": {"type": "tcp reset"}}),
            Statement::Redirect(p) => json!({"redirect": {"port": p}}),
            Statement::Dnat(a, p) => {
                json!({"dnat": {"family": "ip", "addr": a.to_string(), "port": p}})
            }
        }
    }
}

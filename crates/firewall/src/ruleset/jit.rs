//! The just-in-time part of the table: sets and the `jit_input` chain.
//!
//! Inbound management ports (`ports`) are closed to everyone except
//! - established connections: a session survives its element's expiry, as
//!   an SSH session survives the end of a JIT VM access window (cutting one is
//!   `gatehouse_sys::destroy_sockets`' job, not the firewall's);
//! - loopback;
//! - the break-glass ranges, so the operators' bastion can always get in;
//! - a source named by an element of `jit4`/`jit6` (`source . proto . port`),
//!   which the daemon adds with a timeout; the kernel removes it at expiry.
//!
//! Everything else to a protected port is dropped, not rejected: a closed
//! management port then looks the same as a filtered one to a scanner, which
//! is what Azure's JIT VM access does; a legitimate client that forgot to
//! request access sees a connect timeout, and the request tool says why.
//!
//! The chain runs at priority `filter - 1`, before the usual filter chains,
//! and only ever drops: an `accept` here does not override another table's
//! drop, so this table adds closure and never opens what others close.

use super::{chain, rule, Chain, OptionsError, Set, SetElement, FILTER};
use crate::expr::{Match, Statement};
use gatehouse_policy::Protocol;
use ipnet::IpNet;

/// The ports the table protects, and who may always reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitPorts {
    pub ports: Vec<(Protocol, u16)>,
    /// Ranges that reach the protected ports without an element (the
    /// operators' bastion): a way in when the daemon is down.
    pub break_glass: Vec<ipnet::IpNet>,
}

/// The chain's name.
pub const JIT_CHAIN: &str = "jit_input";
/// `filter - 1`: before the usual filter chains of the input hook.
pub const JIT_PRIORITY: i32 = FILTER - 1;
/// The protected ports (`inet_proto . inet_service`).
pub const JIT_PORTS: &str = "jit_ports";
/// Ranges that always reach the protected ports.
pub const BREAK_GLASS4: &str = "break_glass4";
pub const BREAK_GLASS6: &str = "break_glass6";
/// Opened ports, `source . proto . port` with a timeout each: run-time state.
pub const JIT4: &str = "jit4";
pub const JIT6: &str = "jit6";

/// The sets and the chain for `ports`.
pub(super) fn render(ports: &JitPorts) -> Result<(Vec<Set>, Chain), OptionsError> {
    if ports.ports.is_empty() {
        return Err(OptionsError::NoJitPorts);
    }
    if ports.ports.iter().any(|(_, port)| *port == 0) {
        return Err(OptionsError::ZeroJitPort);
    }
    let mut protected = ports.ports.clone();
    protected.sort_unstable();
    protected.dedup();

    // Overlapping ranges would make `nft` refuse the interval set; merged,
    // they also list back exactly as rendered.
    let ranges = IpNet::aggregate(&ports.break_glass);
    let (v4, v6): (Vec<IpNet>, Vec<IpNet>) = ranges.into_iter().partition(|n| n.addr().is_ipv4());
    let net_elements = |nets: Vec<IpNet>| Some(nets.into_iter().map(SetElement::Net).collect());

    let sets = vec![
        Set {
            name: JIT_PORTS,
            types: vec!["inet_proto", "inet_service"],
            flags: vec![],
            elements: Some(
                protected
                    .into_iter()
                    .map(|(proto, port)| SetElement::Port(proto, port))
                    .collect(),
            ),
        },
        Set {
            name: BREAK_GLASS4,
            types: vec!["ipv4_addr"],
            flags: vec!["interval"],
            elements: net_elements(v4),
        },
        Set {
            name: BREAK_GLASS6,
            types: vec!["ipv6_addr"],
            flags: vec!["interval"],
            elements: net_elements(v6),
        },
        Set {
            name: JIT4,
            types: vec!["ipv4_addr", "inet_proto", "inet_service"],
            flags: vec!["timeout"],
            elements: None,
        },
        Set {
            name: JIT6,
            types: vec!["ipv6_addr", "inet_proto", "inet_service"],
            flags: vec!["timeout"],
            elements: None,
        },
    ];

    let rules = vec![
        rule(
            vec![Match::CtEstablishedRelated],
            Statement::Accept,
            "jit: established sessions outlive their element",
        ),
        rule(
            vec![Match::Iif("lo")],
            Statement::Accept,
            "jit: loopback is never closed",
        ),
        rule(
            vec![Match::ProtoDportNotIn(JIT_PORTS)],
            Statement::Accept,
            "jit: only protected ports are closed",
        ),
        rule(
            vec![Match::SaddrIn {
                v6: false,
                set: BREAK_GLASS4,
            }],
            Statement::Accept,
            "jit: break-glass ranges always reach protected ports",
        ),
        rule(
            vec![Match::SaddrIn {
                v6: true,
                set: BREAK_GLASS6,
            }],
            Statement::Accept,
            "jit: break-glass ranges always reach protected ports (ipv6)",
        ),
        rule(
            vec![Match::SaddrProtoDportIn {
                v6: false,
                set: JIT4,
            }],
            Statement::Accept,
            "jit: a source opened just in time",
        ),
        rule(
            vec![Match::SaddrProtoDportIn {
                v6: true,
                set: JIT6,
            }],
            Statement::Accept,
            "jit: a source opened just in time (ipv6)",
        ),
        rule(
            vec![],
            Statement::Drop,
            "jit: protected ports are closed to everyone else",
        ),
    ];
    Ok((
        sets,
        chain(JIT_CHAIN, "filter", "input", JIT_PRIORITY, rules),
    ))
}

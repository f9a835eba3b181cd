//! Just-in-time settings: an assignment's `eligible = true` and its
//! activation rules, `[jit] break_glass`, and `[[jit_port]]` tables.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

use ipnet::IpNet;
use toml::de::DeValue;

use crate::jit::{
    format_duration, parse_duration, AutoApprove, Eligibility, JitPort, Protocol, Requester,
    DEFAULT_ELIGIBLE_MAX, DEFAULT_PORT_MAX, MAX_GRANT, MIN_PORT_MAX,
};
use crate::principal::Principal;

use super::fields::{Fields, Sink, Str};
use super::{check_name, condition, principal};

/// Assignment keys that only mean something with `eligible = true`.
pub(super) const ELIGIBLE_KEYS: &[&str] = &[
    "max_duration",
    "require_justification",
    "require_ticket",
    "approvers",
    "auto_approve",
    "auto_approve_condition",
];
const JIT_KEYS: &[&str] = &["break_glass"];
const PORT_KEYS: &[&str] = &[
    "name",
    "port",
    "protocol",
    "sources",
    "max_duration",
    "requesters",
    "approvers",
    "auto_approve",
];
const PERSON_HELP: &str =
    "use `uid:`, `user:`, `gid:` or `group:`: requests and approvals come over the admin socket, which knows only a caller's uid and groups";

/// An assignment's eligibility: `None` for a standing assignment. Errors
/// (reported) leave the assignment out, like any other assignment error.
pub(super) fn eligibility(
    sink: &mut Sink<'_>,
    f: &Fields<'_, '_>,
    name: Option<&str>,
    principal: Option<&Principal>,
    principal_span: Range<usize>,
) -> Option<Eligibility> {
    let eligible = f.opt_bool(sink, "eligible").is_some_and(|(b, _)| b);
    if !eligible {
        for key in ELIGIBLE_KEYS {
            if let Some(span) = f.key_span(key) {
                sink.error(
                    span,
                    format!("`{key}` is only allowed on an eligible assignment"),
                    Some("add `eligible = true` to make this a just-in-time assignment, or remove the key".into()),
                );
            }
        }
        return None;
    }
    if let Some(p) = principal.filter(|p| !is_person(p)) {
        sink.error(
            principal_span,
            format!("an eligible assignment's principal must be a person, not `{p}`"),
            Some(PERSON_HELP.into()),
        );
    }
    let max_duration = duration(
        sink,
        f,
        DEFAULT_ELIGIBLE_MAX,
        Duration::from_secs(1),
        "more than 0s and at most 24h",
    );
    let require_justification = f
        .opt_bool(sink, "require_justification")
        .is_none_or(|(b, _)| b);
    let require_ticket = f.opt_bool(sink, "require_ticket").is_some_and(|(b, _)| b);
    let approvers = people(sink, f, "approvers");
    let auto_flag = f.opt_bool(sink, "auto_approve");
    let condition = condition::text_at(
        sink,
        f,
        "auto_approve_condition",
        "remove `auto_approve_condition`, or write `auto_approve = true` to approve every request",
    );
    if let (Some((false, span)), true) = (&auto_flag, f.has("auto_approve_condition")) {
        sink.error(
            span.clone(),
            "`auto_approve = false` contradicts `auto_approve_condition`".into(),
            Some(
                "remove `auto_approve`: the condition turns auto-approval on when it holds".into(),
            ),
        );
    }
    let auto_approve = match (condition, auto_flag) {
        (Some(c), _) => AutoApprove::When(c),
        (None, Some((true, _))) if !f.has("auto_approve_condition") => AutoApprove::Always,
        _ => AutoApprove::Never,
    };
    if approvers.is_empty()
        && auto_approve == AutoApprove::Never
        && !f.has("auto_approve_condition")
    {
        sink.error(
            f.span(),
            format!("eligible assignment `{}` has no `approvers` and no auto-approval: nobody could approve it", name.unwrap_or_default()),
            Some("add `approvers = [\"group:NAME\"]`, or `auto_approve = true`, or an `auto_approve_condition`".into()),
        );
    }
    Some(Eligibility {
        max_duration: max_duration?,
        require_justification,
        require_ticket,
        approvers,
        auto_approve,
    })
}

/// `[jit] break_glass` and every `[[jit_port]]`.
pub(super) fn load(sink: &mut Sink<'_>, root: &Fields<'_, '_>) -> (Vec<IpNet>, Vec<JitPort>) {
    let mut break_glass = Vec::new();
    if let Some((t, span)) = root.opt_table(sink, "jit") {
        let f = Fields::new(sink, t, span, "`[jit]`", JIT_KEYS);
        if let Some((list, _)) = f.opt_list(sink, "break_glass") {
            break_glass = list.into_iter().filter_map(|s| network(sink, s)).collect();
        }
    }
    let mut ports: Vec<JitPort> = Vec::new();
    let mut names: HashMap<String, Range<usize>> = HashMap::new();
    let mut seen: HashMap<(u16, Protocol), (String, Range<usize>)> = HashMap::new();
    for (t, span) in root.opt_tables(sink, "jit_port") {
        let f = Fields::new(sink, t, span, "jit port", PORT_KEYS);
        let before = sink.diags.error_count();
        let name = f
            .str(sink, "name")
            .filter(|n| check_name(sink, "jit port", n));
        if let Some((n, s)) = &name {
            if let Some(first) = names.get(n) {
                let help = format!("first used on line {}", line_of(sink.text, first.start));
                sink.error(
                    s.clone(),
                    format!("duplicate jit port name `{n}`"),
                    Some(help),
                );
            } else {
                names.insert(n.clone(), s.clone());
            }
        }
        let port = port_number(sink, &f);
        let protocol = match f.opt_str(sink, "protocol") {
            None => Some(Protocol::Tcp),
            Some((p, s)) => p
                .parse::<Protocol>()
                .map_err(|e| sink.error(s, e.to_string(), None))
                .ok(),
        };
        if let (Some((number, span)), Some(proto)) = (&port, protocol) {
            let this = name.as_ref().map(|n| n.0.clone()).unwrap_or_default();
            if let Some((other, first)) = seen.get(&(*number, proto)) {
                let help = format!("first declared on line {}", line_of(sink.text, first.start));
                sink.error(
                    span.clone(),
                    format!("port {number}/{proto} is already declared by jit port `{other}`"),
                    Some(help),
                );
            } else {
                seen.insert((*number, proto), (this, span.clone()));
            }
        }
        let sources: Vec<IpNet> = f
            .list(sink, "sources")
            .map(|(l, _)| l.into_iter().filter_map(|s| network(sink, s)).collect())
            .unwrap_or_default();
        let max_duration = duration(
            sink,
            &f,
            DEFAULT_PORT_MAX,
            MIN_PORT_MAX,
            "between 5m and 24h",
        );
        let requesters = requesters(sink, &f);
        let approvers = people(sink, &f, "approvers");
        let auto_approve = f.opt_bool(sink, "auto_approve").is_some_and(|(b, _)| b);
        if approvers.is_empty() && !auto_approve {
            sink.error(
                f.span(),
                format!("jit port `{}` has no `approvers` and `auto_approve` is off: nobody could approve it", name.as_ref().map(|n| n.0.as_str()).unwrap_or_default()),
                Some("add `approvers = [\"group:NAME\"]`, or `auto_approve = true`".into()),
            );
        }
        if sink.diags.error_count() != before {
            continue;
        }
        let (Some((name, _)), Some((port, _)), Some(protocol), Some(max_duration)) =
            (name, port, protocol, max_duration)
        else {
            continue;
        };
        ports.push(JitPort {
            name,
            port,
            protocol,
            sources,
            max_duration,
            requesters,
            approvers,
            auto_approve,
        });
    }
    (break_glass, ports)
}

fn line_of(text: &str, at: usize) -> usize {
    text.get(..at).map_or(0, |s| s.matches('\n').count()) + 1
}

/// `port`: required, 1 to 65535.
fn port_number(sink: &mut Sink<'_>, f: &Fields<'_, '_>) -> Option<(u16, Range<usize>)> {
    let Some(v) = f.get("port") else {
        sink.error(
            f.span(),
            "missing `port` in jit port".into(),
            Some("add e.g. `port = 22`".into()),
        );
        return None;
    };
    let DeValue::Integer(i) = v.get_ref() else {
        sink.error(
            v.span(),
            format!(
                "`port` must be an integer, found {}",
                v.get_ref().type_str()
            ),
            None,
        );
        return None;
    };
    let n = i64::from_str_radix(i.as_str(), i.radix()).ok();
    match n.map(u16::try_from) {
        Some(Ok(0)) => {
            sink.error(
                v.span(),
                "port 0 cannot be opened".into(),
                Some("name the port the service listens on, 1 to 65535".into()),
            );
            None
        }
        Some(Ok(p)) => Some((p, v.span())),
        _ => {
            let shown = sink.text.get(v.span()).unwrap_or_default().to_owned();
            sink.error(
                v.span(),
                format!("port `{shown}` is out of range"),
                Some("a port is 1 to 65535".into()),
            );
            None
        }
    }
}

/// `max_duration`, within `[min, MAX_GRANT]`, or `default`.
fn duration(
    sink: &mut Sink<'_>,
    f: &Fields<'_, '_>,
    default: Duration,
    min: Duration,
    range: &str,
) -> Option<Duration> {
    let Some((text, span)) = f.opt_str(sink, "max_duration") else {
        return (!f.has("max_duration")).then_some(default);
    };
    let d = match parse_duration(&text) {
        Ok(d) => d,
        Err(e) => {
            sink.error(span, e.to_string(), None);
            return None;
        }
    };
    if d < min || d > MAX_GRANT {
        sink.error(
            span,
            format!("`max_duration` `{}` is out of range", format_duration(d)),
            Some(format!("it must be {range}")),
        );
        return None;
    }
    Some(d)
}

fn is_person(p: &Principal) -> bool {
    matches!(
        p,
        Principal::Uid(_) | Principal::User(_) | Principal::Gid(_) | Principal::Group(_)
    )
}

/// A uid, user, gid or group principal.
fn person(sink: &mut Sink<'_>, key: &str, item: Str) -> Option<Principal> {
    let span = item.1.clone();
    let p = principal(sink, item)?;
    if is_person(&p) {
        Some(p)
    } else {
        sink.error(
            span,
            format!("`{key}` must name people, not `{p}`"),
            Some(PERSON_HELP.into()),
        );
        None
    }
}

/// An optional list of person principals.
fn people(sink: &mut Sink<'_>, f: &Fields<'_, '_>, key: &str) -> Vec<Principal> {
    f.opt_list(sink, key)
        .map(|(l, _)| {
            l.into_iter()
                .filter_map(|item| person(sink, key, item))
                .collect()
        })
        .unwrap_or_default()
}

/// `requesters`: required, not empty; people or `signer:NAME`.
fn requesters(sink: &mut Sink<'_>, f: &Fields<'_, '_>) -> Vec<Requester> {
    const HELP: &str = "list who may ask, e.g. `group:ops` (on the admin socket) or `signer:alice@example.com` (a signed remote request)";
    let Some((list, span)) = f.opt_list(sink, "requesters") else {
        if !f.has("requesters") {
            sink.error(
                f.span(),
                "missing `requesters` in jit port".into(),
                Some(HELP.into()),
            );
        }
        return Vec::new();
    };
    if list.is_empty() {
        sink.error(
            span,
            "`requesters` is empty: nobody could ask for this port".into(),
            Some(HELP.into()),
        );
        return Vec::new();
    }
    list.into_iter()
        .filter_map(|(s, span)| match s.strip_prefix("signer:") {
            Some(name) => {
                let ok = !name.is_empty() && name.len() <= 256 && !name.chars().any(|c| c.is_whitespace() || c.is_control());
                if !ok {
                    sink.error(span, format!("invalid signer `{}`", name.escape_debug()), Some("name a principal of the allowed-signers file, e.g. `signer:alice@example.com`".into()));
                }
                ok.then(|| Requester::Signer(name.to_owned()))
            }
            None => person(sink, "requesters", (s, span)).map(Requester::Local),
        })
        .collect()
}

/// A CIDR range in canonical form, or one address (a host range).
fn network(sink: &mut Sink<'_>, (s, span): Str) -> Option<IpNet> {
    let net = match s.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => match s.parse::<IpAddr>() {
            Ok(a) => IpNet::from(a),
            Err(_) => {
                sink.error(
                    span,
                    format!("invalid address range `{}`", s.escape_debug()),
                    Some("write a CIDR range such as `192.0.2.0/24` or `2001:db8::/32`, or one address".into()),
                );
                return None;
            }
        },
    };
    if let IpNet::V6(v6) = net {
        if v6.prefix_len() >= 96 && v6.network().to_ipv4_mapped().is_some() {
            sink.error(
                span,
                format!("`{s}` is an IPv4-mapped IPv6 range"),
                Some("write the IPv4 range instead: sources are compared as IPv4".into()),
            );
            return None;
        }
    }
    let network = net.trunc();
    if network != net {
        sink.error(
            span,
            format!("address range `{s}` has host bits set"),
            Some(format!(
                "write the network `{network}`, or `{}/{}` for that one address",
                net.addr(),
                net.max_prefix_len()
            )),
        );
        return None;
    }
    Some(net)
}

//! The port request and the exact text that gets signed.
//!
//! The text is line-based so a person can read what they sign and an
//! auditor can read what was accepted, and strict (one spelling per
//! request) so `message(parse_message(t)) == t`: two different byte strings
//! never mean the same request, and a signature covers exactly one request.
//!
//! ```text
//! gatehouse-jit-request v1
//! port=22
//! protocol=tcp
//! source=203.0.113.7
//! duration_secs=3600
//! reason=deploy the 4.2 hotfix
//! ticket=OPS-1234                  (only if there is one)
//! nonce=5f0c8e7d9a1b2c3d4e5f60718293a4b5
//! timestamp=1767225600
//! host=vm-7.example.com            (only if given)
//! ```
//!
//! Every line ends with `\n` (the last one too); keys come in this order,
//! once each; numbers are plain decimal without leading zeros; addresses are
//! in their canonical spelling (an IPv4 address as IPv4, never
//! `::ffff:a.b.c.d`).

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore as _;

use super::KnockError;

/// The first line of every request.
const HEADER: &str = "gatehouse-jit-request v1";
const HEADER_PREFIX: &str = "gatehouse-jit-request ";

/// The longest justification, in characters.
pub const MAX_REASON: usize = 512;
/// The longest ticket reference, in characters.
pub const MAX_TICKET: usize = 128;
/// The longest host name, in characters (a DNS name's limit).
pub const MAX_HOST: usize = 253;
/// The longest window one request may ask for (30 days). The policy sets
/// the real limit; this one only keeps `timestamp + duration` arithmetic
/// far from overflow and the request meaningful.
pub const MAX_DURATION_SECS: u64 = 30 * 86_400;

/// A request to open `port`/`protocol` for `source` for `duration_secs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The address to open the port for; must be the packet's source.
    pub source: IpAddr,
    pub duration_secs: u64,
    /// The justification (1 to [`MAX_REASON`] characters).
    pub reason: String,
    /// A change or incident ticket (1 to [`MAX_TICKET`] characters).
    pub ticket: Option<String>,
    /// 32 lowercase hex digits, fresh per request: with the signer, what the
    /// store remembers to refuse a replay.
    pub nonce: String,
    /// Unix seconds when the request was made.
    pub timestamp: u64,
    /// The host the request is for, so a request for one machine cannot be
    /// replayed against another that trusts the same key.
    pub host: Option<String>,
}

impl PortRequest {
    /// A fresh request with a random nonce and `now` as timestamp. Call
    /// [`PortRequest::validate`] before signing: this does not check the
    /// values.
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per request field, as the protocol defines them"
    )]
    pub fn new(
        port: u16,
        protocol: impl Into<String>,
        source: IpAddr,
        duration_secs: u64,
        reason: impl Into<String>,
        ticket: Option<String>,
        host: Option<String>,
        now: SystemTime,
    ) -> PortRequest {
        let mut nonce = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut nonce);
        PortRequest {
            port,
            protocol: protocol.into(),
            source: canonical(source),
            duration_secs,
            reason: reason.into(),
            ticket,
            nonce: hex::encode(nonce),
            timestamp: now
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            host,
        }
    }

    /// The exact bytes that get signed (see the module docs for the format).
    /// Does not check the values: [`PortRequest::validate`] does.
    pub fn message(&self) -> String {
        let mut m = format!(
            "{HEADER}\nport={}\nprotocol={}\nsource={}\nduration_secs={}\nreason={}\n",
            self.port, self.protocol, self.source, self.duration_secs, self.reason
        );
        if let Some(ticket) = &self.ticket {
            m.push_str(&format!("ticket={ticket}\n"));
        }
        m.push_str(&format!(
            "nonce={}\ntimestamp={}\n",
            self.nonce, self.timestamp
        ));
        if let Some(host) = &self.host {
            m.push_str(&format!("host={host}\n"));
        }
        m
    }

    /// Whether the server will read [`PortRequest::message`] back as this
    /// very request; the client checks this before signing.
    pub fn validate(&self) -> Result<(), KnockError> {
        match PortRequest::parse_message(&self.message()) {
            Ok(back) if back == *self => Ok(()),
            Ok(_) => Err(bad(0, "a value contains a line break or `key=` text, so the request would read differently; remove it")),
            Err(e) => Err(e),
        }
    }

    /// Parses a request message strictly: the header, then the keys in
    /// their fixed order, each once, no others; bounded lengths; no control
    /// characters.
    pub fn parse_message(text: &str) -> Result<PortRequest, KnockError> {
        let body = text.strip_suffix('\n').ok_or_else(|| {
            bad(
                0,
                "the message does not end with a line break; send it exactly as signed",
            )
        })?;
        let mut lines = body
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i.saturating_add(1), l))
            .peekable();

        match lines.next() {
            Some((_, HEADER)) => {}
            Some((_, l)) if l.strip_prefix(HEADER_PREFIX).is_some_and(is_version) => {
                return Err(bad(
                    1,
                    "unsupported request version; this server reads `gatehouse-jit-request v1`",
                ))
            }
            _ => return Err(bad(1, "the first line is not `gatehouse-jit-request v1`")),
        }

        let mut fields = Fields { lines, last: 1 };
        let port = fields.required("port", |v| {
            number(v)
                .filter(|n| (1..=u64::from(u16::MAX)).contains(n))
                .and_then(|n| u16::try_from(n).ok())
                .ok_or("must be a port number from 1 to 65535")
        })?;
        let protocol = fields.required("protocol", |v| {
            matches!(v, "tcp" | "udp")
                .then(|| v.to_owned())
                .ok_or("must be `tcp` or `udp`")
        })?;
        let source = fields.required("source", address)?;
        let duration_secs = fields.required("duration_secs", |v| {
            number(v)
                .filter(|n| (1..=MAX_DURATION_SECS).contains(n))
                .ok_or("must be a whole number of seconds from 1 to 2592000 (30 days)")
        })?;
        let reason = fields.required("reason", |v| {
            text_value(v, MAX_REASON, "must be 1 to 512 characters")
        })?;
        let ticket = fields.optional("ticket", |v| {
            text_value(v, MAX_TICKET, "must be 1 to 128 characters")
        })?;
        let nonce = fields.required("nonce", |v| {
            (v.len() == 32 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                .then(|| v.to_owned())
                .ok_or("must be 32 lowercase hex digits")
        })?;
        let timestamp = fields.required("timestamp", |v| {
            number(v).ok_or("must be Unix seconds, plain decimal")
        })?;
        let host = fields.optional("host", |v| {
            (!v.is_empty()
                && v.len() <= MAX_HOST
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':')))
            .then(|| v.to_owned())
            .ok_or("must be a host name of 1 to 253 letters, digits, `.`, `-`, `_` or `:`")
        })?;
        fields.finish()?;

        Ok(PortRequest {
            port,
            protocol,
            source,
            duration_secs,
            reason,
            ticket,
            nonce,
            timestamp,
            host,
        })
    }
}

/// `v` and a number: another version of this protocol, not garbage.
fn is_version(v: &str) -> bool {
    v.strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The order keys must come in; a key seen out of this order is a duplicate
/// or misplaced, anything else is unknown.
const KEYS: [&str; 9] = [
    "port",
    "protocol",
    "source",
    "duration_secs",
    "reason",
    "ticket",
    "nonce",
    "timestamp",
    "host",
];

fn bad(line: usize, problem: impl Into<String>) -> KnockError {
    KnockError::Message {
        line,
        problem: problem.into(),
    }
}

/// Walks the `key=value` lines in the one order they may appear in.
struct Fields<'a, I: Iterator<Item = (usize, &'a str)>> {
    lines: std::iter::Peekable<I>,
    last: usize,
}

impl<'a, I: Iterator<Item = (usize, &'a str)>> Fields<'a, I> {
    fn optional<T>(
        &mut self,
        key: &str,
        value: impl FnOnce(&str) -> Result<T, &'static str>,
    ) -> Result<Option<T>, KnockError> {
        let Some(&(line, text)) = self.lines.peek() else {
            return Ok(None);
        };
        if text.split_once('=').map(|(k, _)| k) != Some(key) {
            return Ok(None);
        }
        self.lines.next();
        self.last = line;
        let raw = text.get(key.len().saturating_add(1)..).unwrap_or("");
        value(raw)
            .map(Some)
            .map_err(|why| bad(line, format!("`{key}` {why}")))
    }

    fn required<T>(
        &mut self,
        key: &str,
        value: impl FnOnce(&str) -> Result<T, &'static str>,
    ) -> Result<T, KnockError> {
        let next = self
            .lines
            .peek()
            .map(|&(line, text)| (line, text.split_once('=').map(|(k, _)| k)));
        match self.optional(key, value)? {
            Some(v) => Ok(v),
            None => Err(match next {
                Some((line, Some(other))) => bad(
                    line,
                    format!("expected `{key}=`, found {}", describe(other)),
                ),
                Some((line, None)) => {
                    bad(line, format!("expected `{key}=`, found a line without `=`"))
                }
                None => bad(self.last.saturating_add(1), format!("missing `{key}=`")),
            }),
        }
    }

    fn finish(mut self) -> Result<(), KnockError> {
        match self.lines.next() {
            None => Ok(()),
            Some((line, text)) => Err(bad(
                line,
                match text.split_once('=') {
                    Some((k, _)) => format!("unexpected {}", describe(k)),
                    None => "unexpected line without `=` after the last key".to_owned(),
                },
            )),
        }
    }
}

/// Names a key from the packet without echoing arbitrary attacker text.
fn describe(key: &str) -> String {
    if KEYS.contains(&key) {
        format!(
            "`{key}=` (a duplicate or out of order: keys go in the order {})",
            KEYS.join(", ")
        )
    } else {
        let shown: String = key
            .chars()
            .take(32)
            .collect::<String>()
            .escape_debug()
            .to_string();
        format!("unknown key `{shown}`")
    }
}

/// Plain decimal, no sign, no leading zeros, fits a u64.
fn number(v: &str) -> Option<u64> {
    let canonical =
        !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && (v == "0" || !v.starts_with('0'));
    canonical.then(|| v.parse().ok()).flatten()
}

fn address(v: &str) -> Result<IpAddr, &'static str> {
    let ip: IpAddr = v.parse().map_err(|_| "must be an IPv4 or IPv6 address")?;
    if canonical(ip) != ip {
        return Err("must be written as IPv4 (a.b.c.d), not as an IPv4-mapped IPv6 address");
    }
    if ip.to_string() != v {
        return Err("must be in canonical form (IPv6: lowercase, shortest `::` form)");
    }
    if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]) {
        return Err("must be a single host's address, not unspecified, multicast or broadcast");
    }
    Ok(ip)
}

/// Free text: 1 to `max` characters, none that could break a line or a
/// log record, or reorder what a reader sees (bidi controls).
fn text_value(v: &str, max: usize, length: &'static str) -> Result<String, &'static str> {
    if v.is_empty() || v.chars().count() > max {
        return Err(length);
    }
    let forbidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if v.chars().any(forbidden) {
        return Err("contains control characters; use plain text on one line");
    }
    Ok(v.to_owned())
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 address: a
/// dual-stack socket reports IPv4 peers that way.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

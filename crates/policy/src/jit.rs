//! Just-in-time access, the pure half: what the policy file says about
//! eligible assignments and protected ports, and the rules for asking,
//! approving and honouring grants. The daemon persists requests and grants
//! and keeps time; it passes both in, so everything here is testable
//! without a clock.
//!
//! Semantics follow Entra PIM (eligible → activated for at most a maximum
//! duration, with a justification, maybe a ticket and an approver) and
//! Defender JIT VM access (a port opened for one source for a bounded
//! time). An eligible assignment is never standing access: it counts only
//! through a [`Grant`].

mod grants;
mod plan;

pub(crate) use grants::{valid_grant, JitOffer};

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use crate::caller::Caller;
pub use crate::model::{AutoApprove, Eligibility};
use crate::principal::Principal;

/// The longest any grant or port opening may last (PIM's maximum).
pub const MAX_GRANT: Duration = Duration::from_secs(24 * 3600);

/// The shortest `max_duration` a `[[jit_port]]` may configure (Defender's
/// minimum); a request may still ask for less.
pub(crate) const MIN_PORT_MAX: Duration = Duration::from_secs(5 * 60);

/// An eligible assignment's default `max_duration`.
pub(crate) const DEFAULT_ELIGIBLE_MAX: Duration = Duration::from_secs(8 * 3600);

/// A `[[jit_port]]`'s default `max_duration` (Defender's default).
pub(crate) const DEFAULT_PORT_MAX: Duration = Duration::from_secs(3 * 3600);

/// A protected port's transport: the one spelling of tcp/udp that the
/// policy, the store, the firewall and the broker's wire all use (serde and
/// `Display` write `tcp`/`udp`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// The IP protocol number (`IPPROTO_TCP`, `IPPROTO_UDP`).
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protocol word that is neither `tcp` nor `udp`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown protocol `{}`: expected `tcp` or `udp`", .0.escape_debug())]
pub struct ProtocolError(String);

impl FromStr for Protocol {
    type Err = ProtocolError;

    /// `tcp` or `udp`, case-insensitively.
    fn from_str(s: &str) -> Result<Protocol, ProtocolError> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            _ => Err(ProtocolError(s.to_owned())),
        }
    }
}

/// Who may ask for a port: a local principal (on the admin socket) or a
/// signer from the allowed-signers file (a signed remote request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    Local(Principal),
    Signer(String),
}

impl fmt::Display for Requester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Requester::Local(p) => write!(f, "{p}"),
            Requester::Signer(n) => write!(f, "signer:{n}"),
        }
    }
}

/// A `[[jit_port]]`: closed to everyone but `break_glass` until a request
/// for it is approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitPort {
    pub name: String,
    pub port: u16,
    pub protocol: Protocol,
    /// Ranges a request may name as its source address.
    pub sources: Vec<ipnet::IpNet>,
    pub max_duration: Duration,
    pub requesters: Vec<Requester>,
    pub approvers: Vec<Principal>,
    pub auto_approve: bool,
}

/// An approved, time-bound activation of an eligible assignment, for ONE uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub assignment: String,
    pub uid: u32,
    pub identity: String,
    /// Normalised audience; `None` means the assignment's audiences.
    pub audience: Option<String>,
    pub starts: SystemTime,
    pub expires: SystemTime,
}

/// A request to activate an eligible role.
#[derive(Debug, Clone, Copy)]
pub struct ActivationAsk<'a> {
    pub requester: &'a Caller,
    pub role: &'a str,
    pub identity: &'a str,
    pub audience: Option<&'a str>,
    pub duration: Duration,
    pub reason: Option<&'a str>,
    pub ticket: Option<&'a str>,
    pub at: SystemTime,
}

/// What an acceptable activation request becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The eligible assignment it activates.
    pub assignment: String,
    /// The role's canonical name.
    pub role: String,
    pub duration: Duration,
    /// The asked duration was longer than the assignment's maximum.
    pub capped: bool,
    /// No human approval needed.
    pub auto_approved: bool,
}

/// Who asks for a port.
#[derive(Debug, Clone, Copy)]
pub enum PortRequester<'a> {
    Local(&'a Caller),
    Signer(&'a str),
}

/// A request to open a protected port for one source address.
#[derive(Debug, Clone, Copy)]
pub struct PortAsk<'a> {
    pub requester: PortRequester<'a>,
    pub port: u16,
    pub protocol: Protocol,
    pub source: std::net::IpAddr,
    pub duration: Duration,
    pub reason: Option<&'a str>,
    pub at: SystemTime,
}

/// What an acceptable port request becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortPlan {
    /// The `[[jit_port]]`'s name.
    pub name: String,
    pub duration: Duration,
    pub capped: bool,
    pub auto_approved: bool,
}

/// Why a request or an approval is refused: a machine-readable `kind`
/// and a message that says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitRefusal {
    pub kind: JitRefusalKind,
    pub message: String,
}

/// The machine-readable half of a [`JitRefusal`]; serde and `Display`
/// write it in snake_case (`self_approval`), the admin API's `error.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JitRefusalKind {
    CallerUnknown,
    InvalidAudience,
    InvalidJustification,
    InvalidTicket,
    JustificationRequired,
    NotARequester,
    NotAnApprover,
    NotEligible,
    SelfApproval,
    SourceNotAllowed,
    TicketRequired,
    UnknownIdentity,
    UnknownPort,
    ZeroDuration,
}

impl JitRefusalKind {
    /// Every kind, for the tests that check each is spelt the same everywhere.
    #[cfg(test)]
    pub(crate) const ALL: [JitRefusalKind; 14] = [
        JitRefusalKind::CallerUnknown,
        JitRefusalKind::InvalidAudience,
        JitRefusalKind::InvalidJustification,
        JitRefusalKind::InvalidTicket,
        JitRefusalKind::JustificationRequired,
        JitRefusalKind::NotARequester,
        JitRefusalKind::NotAnApprover,
        JitRefusalKind::NotEligible,
        JitRefusalKind::SelfApproval,
        JitRefusalKind::SourceNotAllowed,
        JitRefusalKind::TicketRequired,
        JitRefusalKind::UnknownIdentity,
        JitRefusalKind::UnknownPort,
        JitRefusalKind::ZeroDuration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JitRefusalKind::CallerUnknown => "caller_unknown",
            JitRefusalKind::InvalidAudience => "invalid_audience",
            JitRefusalKind::InvalidJustification => "invalid_justification",
            JitRefusalKind::InvalidTicket => "invalid_ticket",
            JitRefusalKind::JustificationRequired => "justification_required",
            JitRefusalKind::NotARequester => "not_a_requester",
            JitRefusalKind::NotAnApprover => "not_an_approver",
            JitRefusalKind::NotEligible => "not_eligible",
            JitRefusalKind::SelfApproval => "self_approval",
            JitRefusalKind::SourceNotAllowed => "source_not_allowed",
            JitRefusalKind::TicketRequired => "ticket_required",
            JitRefusalKind::UnknownIdentity => "unknown_identity",
            JitRefusalKind::UnknownPort => "unknown_port",
            JitRefusalKind::ZeroDuration => "zero_duration",
        }
    }
}

impl fmt::Display for JitRefusalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl JitRefusal {
    pub(crate) fn new(kind: JitRefusalKind, message: impl Into<String>) -> JitRefusal {
        JitRefusal {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for JitRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind)
    }
}

impl std::error::Error for JitRefusal {}

const DURATION_FORMAT: &str =
    "expected a number and a unit, largest unit first, e.g. `90s`, `30m`, `1h30m` or `1d` (units: d, h, m, s)";

/// A duration that [`parse_duration`] does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{}`: {DURATION_FORMAT}", .0.escape_debug())]
pub struct DurationError(String);

/// Parse `90s`, `30m`, `1h`, `1h30m`, `1d`: numbers with units `d`, `h`,
/// `m`, `s`, each at most once, largest first, no spaces.
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError(s.to_owned());
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut last_unit = u64::MAX;
    let mut digits = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        if digits.is_empty() || unit >= last_unit {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        last_unit = unit;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

/// `1h30m`, `45m`, `24h`, `90s`: hours and minutes when the duration is a
/// whole number of minutes, else seconds (sub-second parts are dropped).
/// [`parse_duration`] reads it back.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return "0s".into();
    }
    if !secs.is_multiple_of(60) {
        return format!("{secs}s");
    }
    let (h, m) = (secs / 3600, secs % 3600 / 60);
    match (h, m) {
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m}m"),
    }
}

/// Free text (a justification or a ticket) as the audit log will carry it:
/// `None` when missing or blank.
pub(crate) fn text(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// Longest justification or ticket accepted, in characters.
pub(crate) const MAX_TEXT: usize = 1000;

#[cfg(test)]
mod tests;

//! The admin socket's protocol: one JSON request line from the client, one
//! JSON response line from the gate. Who asks is never part of a request:
//! the gate takes it from `SO_PEERCRED`.

use gatehouse_jit::store::Record;
use gatehouse_policy::JitRefusalKind;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Largest request line the gate reads.
pub const MAX_REQUEST: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminRequest {
    /// Activate an eligible role assignment for an identity.
    Request {
        role: String,
        identity: String,
        #[serde(default)]
        audience: Option<String>,
        duration_secs: u64,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        ticket: Option<String>,
    },
    /// Open a protected inbound port for one source address.
    OpenPort {
        port: u16,
        /// `tcp` or `udp` as the user wrote it (any case): checked by the
        /// gate, which answers `bad_protocol` for anything else.
        protocol: String,
        source: IpAddr,
        duration_secs: u64,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        ticket: Option<String>,
    },
    List {
        filter: ListWhich,
    },
    Approve {
        id: String,
        #[serde(default)]
        reason: Option<String>,
    },
    Deny {
        id: String,
        reason: String,
    },
    Revoke {
        id: String,
        #[serde(default)]
        reason: Option<String>,
    },
    /// Who the gate takes the caller for.
    Whoami,
    /// The gate's health (`gatehouse status`): root, the gate's own user and
    /// the `gatehouse` group only.
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ListWhich {
    /// Everything the caller may see.
    #[default]
    All,
    Mine,
    Pending,
    Active,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AdminResponse {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<Record>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<Record>>,
    /// Things the caller should know (a capped duration, who may approve).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whoami: Option<Whoami>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Box<crate::status::GateStatus>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Machine-readable, snake_case (`self_approval`, `not_eligible`, ...).
    pub kind: ErrorKind,
    /// What is wrong and what to do.
    pub message: String,
}

/// Every `error.kind` the admin socket and the signed-request listener
/// answer: the gate's own, then the policy's refusals under their own
/// names. The CLI and scripts read the snake_case text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The audience is not a resource URI.
    BadAudience,
    /// Not `tcp` or `udp`.
    BadProtocol,
    /// A reason or ticket with control characters.
    BadText,
    /// The request was decided, revoked or ended already.
    Conflict,
    Expired,
    /// The request failed inside the gate.
    Internal,
    Lapsed,
    /// Not one request line of JSON.
    Malformed,
    /// This gate does not manage the firewall.
    NoFirewall,
    NotAllowed,
    NotFound,
    /// A denial needs a reason.
    ReasonRequired,
    /// A signed request seen before.
    Replay,
    /// The port was added to the policy after the gate started.
    RestartNeeded,
    /// The gate's database failed.
    Store,
    /// No request line in time.
    Timeout,
    TooLarge,
    TooLong,
    TooManyPending,
    TooManyPorts,
    /// A signed request for another host.
    WrongHost,
    /// Not allowed to ask this gate's status.
    Forbidden,
    /// Just-in-time access is off on this gate (the socket answers status only).
    JitOff,
    /// The policy's refusal (`self_approval`, `not_eligible`, ...).
    #[serde(untagged)]
    Refused(JitRefusalKind),
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadAudience => "bad_audience",
            ErrorKind::BadProtocol => "bad_protocol",
            ErrorKind::BadText => "bad_text",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Expired => "expired",
            ErrorKind::Internal => "internal",
            ErrorKind::Lapsed => "lapsed",
            ErrorKind::Malformed => "malformed",
            ErrorKind::NoFirewall => "no_firewall",
            ErrorKind::NotAllowed => "not_allowed",
            ErrorKind::NotFound => "not_found",
            ErrorKind::ReasonRequired => "reason_required",
            ErrorKind::Replay => "replay",
            ErrorKind::RestartNeeded => "restart_needed",
            ErrorKind::Store => "store",
            ErrorKind::Timeout => "timeout",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::TooLong => "too_long",
            ErrorKind::TooManyPending => "too_many_pending",
            ErrorKind::TooManyPorts => "too_many_ports",
            ErrorKind::WrongHost => "wrong_host",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::JitOff => "jit_off",
            ErrorKind::Refused(k) => k.as_str(),
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<JitRefusalKind> for ErrorKind {
    fn from(k: JitRefusalKind) -> ErrorKind {
        ErrorKind::Refused(k)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whoami {
    pub uid: u32,
    pub user: Option<String>,
    pub gids: Vec<u32>,
    pub groups: Vec<String>,
    pub pid: u32,
}

impl ApiError {
    pub fn new(kind: impl Into<ErrorKind>, message: impl Into<String>) -> ApiError {
        ApiError {
            kind: kind.into(),
            message: message.into(),
        }
    }
}

impl AdminResponse {
    pub fn error(e: ApiError) -> AdminResponse {
        AdminResponse {
            ok: false,
            error: Some(e),
            ..AdminResponse::default()
        }
    }

    pub fn record(r: Record, notices: Vec<String>) -> AdminResponse {
        AdminResponse {
            ok: true,
            record: Some(r),
            notices,
            ..AdminResponse::default()
        }
    }
}

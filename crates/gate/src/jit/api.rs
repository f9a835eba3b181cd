//! The admin socket's protocol: one JSON request line from the client, one
//! JSON response line from the gate. Who asks is never part of a request:
//! the gate takes it from `SO_PEERCRED`.

use gatehouse_jit::store::Record;
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
    pub kind: String,
    /// What is wrong and what to do.
    pub message: String,
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
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> ApiError {
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

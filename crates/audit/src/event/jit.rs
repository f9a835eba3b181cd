//! Records of the just-in-time store's events (`jit_requested`, …): the
//! event, and the request as it stood when the event was written.

use serde::{Deserialize, Serialize};

/// Who acted: a local user (uid and name) or, for a signed remote request,
/// the signer's principal (no uid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    pub uid: Option<u32>,
    pub name: String,
}

/// `type: jit_<kind>` — one event of the just-in-time store, written from
/// its outbox (at least once: `jit_event` is the store's sequence number, so
/// a reader can drop a repeat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JitEvent {
    /// The store's event sequence number.
    pub jit_event: i64,
    /// The request id.
    pub id: String,
    /// When it happened (RFC 3339).
    pub at: String,
    /// Who did it; `null` for the gate itself (expiry, lapse, auto-approval).
    pub actor: Option<Principal>,
    pub detail: JitDetail,
    /// The request as it stood; absent if the store no longer has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<JitRequestView>,
}

/// What an event adds, by kind: a `requested` event carries the request
/// as asked ([`RequestedDetail`]); the others a few optional fields
/// ([`EventDetail`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JitDetail {
    Requested(Box<RequestedDetail>),
    Event(EventDetail),
}

/// `denied`, `approved`: the decision's `reason`; `revoked`: the `reason`
/// and the state it `was` in; `activated`: `starts` and `expires`;
/// `expired`, `lapsed`: when it was `noticed`; `auto_approved`: nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventDetail {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noticed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// A request as asked, and when it lapses if nobody decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestedDetail {
    /// `role` or `port`.
    pub kind: String,
    pub requester: Principal,
    pub role: Option<String>,
    pub assignment: Option<String>,
    pub identity: Option<String>,
    pub audience: Option<String>,
    pub port: Option<u16>,
    pub protocol: Option<String>,
    pub source: Option<String>,
    pub duration_secs: u64,
    pub requested_secs: u64,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    pub via: String,
    pub lapses: String,
}

/// A just-in-time request: a role activation (`kind: role`, with role,
/// assignment, identity, audience) or a port opening (`kind: port`, with
/// port, protocol, source). Times are RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JitRequestView {
    /// `role` or `port`.
    pub kind: String,
    /// `pending`, `active`, `denied`, `revoked`, `expired`, `lapsed`.
    pub state: String,
    pub requester: Principal,
    /// `admin-socket` or `signed-request`.
    pub via: String,
    pub assignment: Option<String>,
    pub role: Option<String>,
    pub identity: Option<String>,
    pub audience: Option<String>,
    pub port: Option<u16>,
    /// `tcp` or `udp`.
    pub protocol: Option<String>,
    /// The source address a port grant opens for.
    pub source: Option<String>,
    /// Granted, after the policy's cap.
    pub duration_secs: u64,
    /// Asked for.
    pub requested_secs: u64,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    pub created: String,
    pub decided_by: Option<Principal>,
    pub decided_at: Option<String>,
    pub decision_reason: Option<String>,
    pub starts: Option<String>,
    pub expires: Option<String>,
    pub revoked_by: Option<Principal>,
    pub revoked_at: Option<String>,
}

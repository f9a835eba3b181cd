//! Records of the just-in-time store's events (`jit_requested`, …): the
//! event, and the request as it stood when the event was written.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Who acted: a local user (uid and name) or, for a signed remote request,
/// the signer's principal (no uid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// The local uid; `null` for a signer.
    pub uid: Option<u32>,
    /// The user name, or `signer:NAME`.
    pub name: String,
}

/// `type: jit_<kind>` — one event of the just-in-time store, written from
/// its outbox (at least once: `jit_event` is the store's sequence number, so
/// a reader can drop a repeat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
    /// What the event adds.
    pub detail: JitDetail,
    /// The request as it stood; absent if the store no longer has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<JitRequestView>,
}

/// What an event adds, by kind: a `requested` event carries the request
/// as asked ([`RequestedDetail`]); the others a few optional fields
/// ([`EventDetail`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum JitDetail {
    Requested(Box<RequestedDetail>),
    Event(EventDetail),
}

/// `denied`, `approved`: the decision's `reason`; `revoked`: the `reason`
/// and the state it `was` in; `activated`: `starts` and `expires`;
/// `expired`, `lapsed`: when it was `noticed`; `auto_approved`: nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventDetail {
    /// The justification, or the decision's or revocation's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The state a revoked request was in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<String>,
    /// When the gate recorded the expiry or lapse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noticed: Option<String>,
    /// When the grant began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts: Option<String>,
    /// When the grant ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

// RequestedDetail repeats most of JitRequestView's fields on purpose: it is
// the request as it was asked (written once, in the `requested` event's
// detail), the view is the request as it stands now (state, decisions,
// times). Each is its own part of the schema; sharing one type would tie
// a change of one record to the other.
/// A request as asked, and when it lapses if nobody decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestedDetail {
    /// `role` or `port`.
    pub kind: String,
    /// Who asked.
    pub requester: Principal,
    /// The role (role requests).
    pub role: Option<String>,
    /// The eligible assignment asked under (role requests).
    pub assignment: Option<String>,
    /// The identity it covers (role requests).
    pub identity: Option<String>,
    /// The audience it covers (role requests).
    pub audience: Option<String>,
    /// The port (port requests).
    pub port: Option<u16>,
    /// `tcp` or `udp` (port requests).
    pub protocol: Option<String>,
    /// The source address it opens for (port requests).
    pub source: Option<String>,
    /// Granted duration, after the policy's cap.
    pub duration_secs: u64,
    /// The duration asked for.
    pub requested_secs: u64,
    /// The justification, or the decision's or revocation's reason.
    pub reason: Option<String>,
    /// The ticket given with it.
    pub ticket: Option<String>,
    /// `admin-socket` or `signed-request`.
    pub via: String,
    /// When it lapses if nobody decides.
    pub lapses: String,
}

/// A just-in-time request: a role activation (`kind: role`, with role,
/// assignment, identity, audience) or a port opening (`kind: port`, with
/// port, protocol, source). Times are RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JitRequestView {
    /// `role` or `port`.
    pub kind: String,
    /// `pending`, `active`, `denied`, `revoked`, `expired`, `lapsed`.
    pub state: String,
    /// Who asked.
    pub requester: Principal,
    /// `admin-socket` or `signed-request`.
    pub via: String,
    /// The eligible assignment asked under (role requests).
    pub assignment: Option<String>,
    /// The role (role requests).
    pub role: Option<String>,
    /// The identity it covers (role requests).
    pub identity: Option<String>,
    /// The audience it covers (role requests).
    pub audience: Option<String>,
    /// The port (port requests).
    pub port: Option<u16>,
    /// `tcp` or `udp`.
    pub protocol: Option<String>,
    /// The source address a port grant opens for.
    pub source: Option<String>,
    /// Granted, after the policy's cap.
    pub duration_secs: u64,
    /// Asked for.
    pub requested_secs: u64,
    /// The justification, or the decision's or revocation's reason.
    pub reason: Option<String>,
    /// The ticket given with it.
    pub ticket: Option<String>,
    /// When it was asked.
    pub created: String,
    /// Who decided (an approver; `null` when the policy did).
    pub decided_by: Option<Principal>,
    /// When it was decided.
    pub decided_at: Option<String>,
    /// The approver's or denier's reason.
    pub decision_reason: Option<String>,
    /// When the grant began.
    pub starts: Option<String>,
    /// When the grant ends.
    pub expires: Option<String>,
    /// Who revoked it.
    pub revoked_by: Option<Principal>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
}

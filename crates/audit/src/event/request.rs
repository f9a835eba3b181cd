//! The record of one request: who asked, what, what was decided and why,
//! what the upstream answered. Fingerprints only: never a token.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `type: request` — written for every request, allowed or not, after the
/// answer is known and before it is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestRecord {
    /// The decision id, also in the answer's error body.
    pub decision: String,
    /// The client's address and port as the gate saw them.
    pub peer: String,
    /// `null` when the caller was not identified (the request was refused
    /// before, or identification failed).
    pub caller: Option<Caller>,
    /// What was asked.
    pub request: RequestFacts,
    /// The verdict.
    pub outcome: Outcome,
    /// Why: the deciding assignment's summary, or the refusal.
    pub reason: String,
    /// The assignments (or deny assignment) that decided.
    pub decided_by: Vec<String>,
    /// How the policy decided; `null` when it was not asked.
    pub decision_detail: Option<DecisionDetail>,
    /// `null` when nothing was sent upstream.
    pub upstream: Option<Upstream>,
    /// The HTTP status answered.
    pub status: u16,
    /// Time from the request head to the answer.
    pub latency_us: u64,
    /// First 16 hex digits of the policy's SHA-256.
    pub policy: String,
}

/// `type: forwarding` — an approval about to be forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForwardingRecord {
    /// The decision id; its `request` record follows.
    pub decision: String,
    /// Who asked.
    pub caller: Option<Caller>,
    /// What was asked.
    pub request: RequestFacts,
    /// The assignments that allowed it.
    pub decided_by: Vec<String>,
}

/// What the request asked for. Fields are filled as the request is
/// understood: a request refused early has fewer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestFacts {
    /// The HTTP method.
    pub method: String,
    /// The raw target (at most 512 bytes), only when it could not be
    /// canonicalised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Endpoint name (`token`, `instance`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The policy action (`Microsoft.ManagedIdentity/token/read`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The canonical path decided on and forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The `api-version` parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// The audience (`resource`) as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// How the identity was named: `none`, `client_id`, `object_id`, `msi_res_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The policy's name of the identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// The decision's outcome, as the answer shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Allowed (and answered, from the cache or upstream).
    Allow,
    /// Denied by the policy.
    Deny,
    /// Refused before a decision: malformed, not canonical, a header rule.
    Rejected,
    /// Allowed or not, the gate could not answer (upstream, audit, identification).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Deny => "deny",
            Outcome::Rejected => "rejected",
            Outcome::Error => "error",
        }
    }
}

/// The process behind the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    /// The socket's uid (sock_diag; what nftables' `meta skuid` sees).
    pub uid: u32,
    /// The uid's account name.
    pub user: Option<String>,
    /// The first holder's pid; this and the fields below are `null` when no
    /// process was read (a decision on the uid alone).
    pub pid: Option<u32>,
    /// Its executable's path.
    pub exe: Option<String>,
    /// Whether that path still names the file the process runs.
    pub exe_verified: Option<bool>,
    /// SHA-256 of the executable, when the policy reads it.
    pub exe_sha256: Option<String>,
    /// Its systemd unit.
    pub unit: Option<String>,
    /// Its cgroup v2 path.
    pub cgroup: Option<String>,
    /// Its container id, if it runs in one.
    pub container: Option<String>,
    /// Every process holding the socket.
    pub holders: Vec<Holder>,
    /// How the caller was found.
    pub lookup: Lookup,
}

/// One process holding the client's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Holder {
    /// Its pid.
    pub pid: u32,
    /// Its real uid.
    pub uid: u32,
}

/// Which path found the caller (the names are the identification code's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Lookup {
    /// A pid that recently held a socket.
    Recent,
    /// One of the pids just below `ns_last_pid`.
    Newest,
    /// A process of the socket's uid.
    SameUid,
    /// Every process.
    FullScan,
    /// No process was needed: the socket's uid decided.
    SocketOnly,
    /// The eBPF connect-time record named the connector.
    ConnectRecord,
}

/// How the policy decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionDetail {
    /// `enforce`, `audit` or `off`.
    pub mode: String,
    /// In audit mode: what enforce mode would have done.
    pub would_deny: bool,
    /// A condition read an attribute the caller lacks.
    pub absent_attribute: Option<String>,
    /// The trusted-service exception that allowed it, if one did.
    pub trusted_service: Option<String>,
    /// One line: what decided.
    pub summary: String,
}

/// What was asked of the upstream and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// The status answered; absent when no answer came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Where the answer came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<UpstreamSource>,
    /// Calls made to the metadata service for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Time spent on it.
    pub latency_us: u64,
    /// A short fingerprint of the token served (never the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_fp: Option<String>,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamSource {
    /// Asked of the metadata service now.
    Upstream,
    /// The token cache.
    Cache,
    /// The metadata service failed; a cached token still valid was served.
    Stale,
    /// The metadata service failed on this key a moment ago; that answer
    /// was given again without asking (the negative cache).
    Remembered,
    /// Another caller's upstream exchange for the same key, shared.
    Shared,
}

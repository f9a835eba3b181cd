//! Every kind of record gatehouse writes, as one type.
//!
//! The `event` object of a log line is an [`Event`]: `type` names the
//! variant (snake case) and the other keys are its fields. Writers build an
//! `Event` and nothing else; [`crate::verify`] reads every record back as
//! one and refuses a type or a field it does not know, so nothing can be
//! written, or slipped in, that the schema does not describe.
//!
//! Compatibility: these are the keys and values the gate wrote before the
//! events were typed (key order inside `event` was alphabetical then and is
//! declaration order now; the chain hashes the bytes as stored, so old logs
//! verify unchanged). A field that only some records carry is optional and
//! left out when absent. [`SCHEMA_VERSION`] changes whenever a record's
//! meaning or shape does.

mod checkpoint;
mod jit;
mod request;

pub(crate) use checkpoint::statement;
pub use checkpoint::{Checkpoint, CHECKPOINT_DOMAIN};

pub use jit::{EventDetail, JitDetail, JitEvent, JitRequestView, Principal, RequestedDetail};
pub use request::{
    Caller, DecisionDetail, ForwardingRecord, Holder, Lookup, Outcome, RequestFacts, RequestRecord,
    Upstream, UpstreamSource,
};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Version of the record schema described here.
pub const SCHEMA_VERSION: u32 = 2;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// The gate opened its log and is about to serve.
    GateStarted {
        /// `imds`, `emulator` or the URL named by `--upstream`.
        upstream: String,
        /// The policy file, as named on the command line.
        policy_path: String,
        /// SHA-256 of the policy file in force.
        policy: String,
    },
    /// The gate stopped cleanly: its last record.
    GateStopped {
        /// What stopped it (`SIGTERM`, `SIGINT`, …).
        reason: String,
        /// Requests answered since it started.
        requests_served: u64,
    },
    /// A reload put a new policy in force.
    PolicyLoaded {
        /// SHA-256 of the policy now in force.
        policy: String,
    },
    /// A reload was refused; `kept` is the hash of the policy still in force.
    PolicyRejected {
        /// Why the file was refused (its first error, and how many there were).
        reason: String,
        /// SHA-256 of the policy still in force.
        kept: String,
    },
    /// One request to the metadata service and its decision.
    Request(Box<RequestRecord>),
    /// An allowed request that changes the platform's state (a scheduled
    /// events approval) is about to be forwarded; written before it is.
    Forwarding(Box<ForwardingRecord>),
    /// First record of a file after rotation.
    Rotated {
        /// The rotated file's name, `null` when none is kept.
        previous_file: Option<String>,
        /// The last `seq` in the rotated file; this record's is one more.
        previous_last_seq: u64,
    },
    /// A torn last line left by a crash was cut off (`bytes` of it).
    TornTailRepaired {
        /// How many bytes of the torn line were cut off.
        bytes: u64,
    },
    /// The firewall table was checked and found as rendered: when the gate
    /// starts, and again after a failed check or a repair that did not hold.
    FirewallVerified {
        /// `start`, `nft-event` or `periodic`.
        trigger: String,
    },
    /// The watcher found the firewall table drifted and put it back.
    FirewallRepaired {
        /// `nft-event`, `periodic` or `start`.
        trigger: String,
        /// What differed, as `gatehouse firewall verify` words it.
        differences: Vec<String>,
        /// What still differs after the repair (empty when it took).
        remaining: Vec<String>,
    },
    /// A repair of the firewall table failed.
    FirewallRepairFailed {
        /// `nft-event`, `periodic` or `start`.
        trigger: String,
        /// What `nft` said.
        error: String,
    },
    /// A probe connection from an unprivileged uid to the metadata address
    /// was made to check that it reaches this gate (`gatehouse run` at
    /// start, once it listens and its table is verified). A gate whose probe
    /// does not reach it does not serve; this record says why.
    FirewallProbed {
        /// `start`.
        trigger: String,
        /// Where the probe connected (`169.254.169.254:80`).
        target: String,
        /// The uid the probe connected as.
        uid: u32,
        /// `reaches_gate`, `diverted`, `refused`, `timed_out`, `blocked`,
        /// `no_route` or `failed`.
        verdict: String,
        /// What it found, in a sentence.
        message: String,
        /// Whether the gate is in the path this way: the probe reached it,
        /// or (IMDS's IPv6 address only) there is no route there at all.
        holds: bool,
    },
    /// `nft monitor` ended; drift is then found by the periodic check alone.
    FirewallMonitorLost {
        /// Why the monitor ended.
        error: String,
    },
    /// A just-in-time request was made.
    JitRequested(Box<JitEvent>),
    /// An approver approved a pending request.
    JitApproved(Box<JitEvent>),
    /// The policy approved a request by itself (`auto_approve`).
    JitAutoApproved(Box<JitEvent>),
    /// An approver denied a pending request.
    JitDenied(Box<JitEvent>),
    /// A grant began.
    JitActivated(Box<JitEvent>),
    /// A grant or pending request was revoked or withdrawn.
    JitRevoked(Box<JitEvent>),
    /// A grant's time ran out.
    JitExpired(Box<JitEvent>),
    /// A pending request was not decided within 24 hours.
    JitLapsed(Box<JitEvent>),
    /// Finished requests older than the retention were deleted from the store.
    JitPruned {
        /// How many requests were deleted.
        requests: u64,
        /// They had all finished before this time (RFC 3339).
        finished_before: String,
    },
    /// The kernel's just-in-time port sets were made equal to the store.
    JitPortsSynced {
        /// `start`, `change`, `periodic` or `repair`.
        why: String,
        /// Elements added to the sets.
        added: u64,
        /// Elements removed from them.
        removed: u64,
        /// Elements already right.
        kept: u64,
    },
    /// A signed remote port request was refused.
    JitSignedRequestRefused {
        /// The address the packet came from.
        source: String,
        /// Why, as a word (`replayed`, `stale`, `not_a_requester`, …).
        kind: String,
        /// Why, in a sentence.
        message: String,
        /// The signer's principal, when the signature verified.
        signer: Option<String>,
    },
    /// Sessions of a revoked port grant were destroyed.
    JitSessionsCut {
        /// The request id.
        id: String,
        /// The source address whose sessions were cut.
        source: String,
        /// The port.
        port: u16,
        /// `tcp` or `udp`.
        protocol: String,
        /// How many sockets were destroyed.
        sockets: u64,
    },
    /// A reload changed the just-in-time ports; the firewall keeps the old
    /// ones until the gate restarts.
    JitPortsChangedNeedRestart {},
    /// A signed statement of the chain head (at an interval and on stop),
    /// for checking the log against copies kept off the machine.
    Checkpoint(Box<Checkpoint>),
}

/// Every record `type` this version writes, as [`Event::kind`] names them.
pub const KINDS: &[&str] = &[
    "gate_started",
    "gate_stopped",
    "policy_loaded",
    "policy_rejected",
    "request",
    "forwarding",
    "rotated",
    "torn_tail_repaired",
    "firewall_verified",
    "firewall_repaired",
    "firewall_repair_failed",
    "firewall_monitor_lost",
    "firewall_probed",
    "jit_requested",
    "jit_approved",
    "jit_auto_approved",
    "jit_denied",
    "jit_activated",
    "jit_revoked",
    "jit_expired",
    "jit_lapsed",
    "jit_pruned",
    "jit_ports_synced",
    "jit_signed_request_refused",
    "jit_sessions_cut",
    "jit_ports_changed_need_restart",
    "checkpoint",
];

impl Event {
    /// The record's `type`, as written.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::GateStarted { .. } => "gate_started",
            Event::GateStopped { .. } => "gate_stopped",
            Event::PolicyLoaded { .. } => "policy_loaded",
            Event::PolicyRejected { .. } => "policy_rejected",
            Event::Request(_) => "request",
            Event::Forwarding(_) => "forwarding",
            Event::Rotated { .. } => "rotated",
            Event::TornTailRepaired { .. } => "torn_tail_repaired",
            Event::FirewallVerified { .. } => "firewall_verified",
            Event::FirewallRepaired { .. } => "firewall_repaired",
            Event::FirewallRepairFailed { .. } => "firewall_repair_failed",
            Event::FirewallMonitorLost { .. } => "firewall_monitor_lost",
            Event::FirewallProbed { .. } => "firewall_probed",
            Event::JitRequested(_) => "jit_requested",
            Event::JitApproved(_) => "jit_approved",
            Event::JitAutoApproved(_) => "jit_auto_approved",
            Event::JitDenied(_) => "jit_denied",
            Event::JitActivated(_) => "jit_activated",
            Event::JitRevoked(_) => "jit_revoked",
            Event::JitExpired(_) => "jit_expired",
            Event::JitLapsed(_) => "jit_lapsed",
            Event::JitPruned { .. } => "jit_pruned",
            Event::JitPortsSynced { .. } => "jit_ports_synced",
            Event::JitSignedRequestRefused { .. } => "jit_signed_request_refused",
            Event::JitSessionsCut { .. } => "jit_sessions_cut",
            Event::JitPortsChangedNeedRestart {} => "jit_ports_changed_need_restart",
            Event::Checkpoint(_) => "checkpoint",
        }
    }

    /// The record of a just-in-time store event of kind `kind` (the store's
    /// word: `requested`, `approved`, …); `None` for a kind with no record.
    pub fn jit(kind: &str, event: JitEvent) -> Option<Event> {
        let event = Box::new(event);
        Some(match kind {
            "requested" => Event::JitRequested(event),
            "approved" => Event::JitApproved(event),
            "auto_approved" => Event::JitAutoApproved(event),
            "denied" => Event::JitDenied(event),
            "activated" => Event::JitActivated(event),
            "revoked" => Event::JitRevoked(event),
            "expired" => Event::JitExpired(event),
            "lapsed" => Event::JitLapsed(event),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests;

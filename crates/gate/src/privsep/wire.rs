//! What the worker may ask the broker, and what it answers: JSON, one
//! request or reply per message, unknown fields refused, sizes bounded.

use gatehouse_sys::{CallerFacts, Needs};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Largest request the broker reads.
/// (A just-in-time port sync names every open element: ~100 bytes each.)
pub const MAX_REQUEST: usize = 64 * 1024;
/// Largest reply the worker reads (caller facts with many holders).
pub const MAX_REPLY: usize = 128 * 1024;
/// Largest event (a firewall repair with its differences).
pub const MAX_EVENT: usize = 64 * 1024;
/// Largest start-up message.
pub const MAX_HELLO: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Echoed in the reply, so a reply that arrives after its request timed
    /// out is never taken for the next one's.
    pub id: u64,
    pub ask: Ask,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Ask {
    /// Who is behind the client connection `src` → `dst`.
    Identify {
        src: SocketAddr,
        dst: SocketAddr,
        needs: Needs,
    },
    /// A TCP socket with `SO_MARK` `mark` connecting to `addr` (attached).
    Connect { addr: SocketAddr, mark: u32 },
    /// Make the just-in-time port sets hold exactly these elements.
    JitSync {
        elements: Vec<crate::jit::ports::PortElement>,
    },
    /// Destroy the sessions of `source` on a just-in-time port (revocation).
    JitCut {
        source: std::net::IpAddr,
        protocol: gatehouse_policy::Protocol,
        port: u16,
    },
    /// Sign a checkpoint of the audit chain head (the broker holds the key;
    /// it never signs a head older than, or contradicting, one it signed).
    SignCheckpoint {
        head_seq: u64,
        head_hash: String,
        signed_at: String,
        rotated_kept: Option<u64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    pub id: u64,
    pub answer: Answer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Answer {
    Caller(Box<CallerFacts>),
    /// The socket is attached to the message.
    Connecting,
    JitSynced(crate::jit::ports::SyncSummary),
    /// How many sockets were destroyed.
    JitCut(usize),
    /// The signed checkpoint.
    Checkpoint(Box<gatehouse_audit::Checkpoint>),
    /// The request was refused or failed; says why (no secrets ever pass here).
    Refused(String),
}

/// The broker's first message to the worker; the listening socket and the
/// worker's end of the event socketpair are attached, in that order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    pub listen: SocketAddr,
    /// The IPv6 listener passed after the event socket, if any.
    #[serde(default)]
    pub listen6: Option<SocketAddr>,
    /// The broker's pid: the worker's parent (checked by the worker).
    pub broker_pid: u32,
    /// How often the worker's request loop reports [`ToBroker::Alive`]
    /// (milliseconds): half the service manager's watchdog timeout, or the
    /// status period without one.
    pub heartbeat_ms: u64,
}

/// What the broker sends the worker on the event socket. Signals reach the
/// broker (the pid file's, the service manager's main process), which may not
/// signal the worker (another uid, no CAP_KILL): it sends these instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum ToWorker {
    /// Append this event (e.g. a firewall repair) to the audit log.
    Audit(gatehouse_audit::Event),
    /// Reload the policy; answer [`ToBroker::Reloaded`] with this id.
    Reload { id: u64 },
    /// Stop: finish the requests being decided, audit `gate_stopped`, exit 0.
    Stop { reason: String },
}

/// What the worker sends the broker on the event socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum ToBroker {
    /// Listening, with this policy loaded: the broker may report ready.
    Ready { policy: String, served: u64 },
    /// The outcome of [`ToWorker::Reload`] `id`.
    Reloaded {
        id: u64,
        outcome: crate::lifecycle::ReloadOutcome,
    },
    /// The request loop is alive (sent every heartbeat from inside it).
    Alive { policy: String, served: u64 },
}

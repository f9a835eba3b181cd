//! The just-in-time state store: requests, their events and seen nonces in
//! one SQLite database.
//!
//! The store records; it does not decide who may do what (the policy crate
//! and the daemon do). It does enforce the request state machine, with every
//! transition a compare-and-set inside one `BEGIN IMMEDIATE` transaction, so
//! two approvers racing cannot both decide: the first one wins and the second
//! gets [`StoreError::Conflict`].
//!
//! ```text
//!            approve                 expires <= now
//! pending ─────────────▶ active ───────────────────▶ expired
//!    │ │ │                  │
//!    │ │ └─deny──▶ denied    └─revoke─▶ revoked
//!    │ └─revoke──────────────────────▶ revoked
//!    └─lapses <= now (24 h)─▶ lapsed
//! ```
//!
//! Every mutation writes the request row and its event rows (the outbox the
//! daemon copies into the audit log, see [`Store::unaudited`]) in the same
//! transaction, so a kill -9 at any moment leaves each request fully
//! recorded or absent. Times come in as arguments (the daemon's `Clock`);
//! SQLite holds them as integer milliseconds since the epoch and JSON as
//! RFC 3339 UTC with milliseconds (`2026-11-25T14:01:09.123Z`), the audit
//! log's spelling.

mod open;
mod ops;
mod rows;
#[cfg(test)]
mod tests;
mod time;

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

pub use gatehouse_policy::Protocol;
use serde::{Deserialize, Serialize};

/// How long a pending request waits for an approver before it lapses
/// (Entra PIM's rule).
pub const PENDING_LIFETIME_SECS: u64 = 24 * 60 * 60;

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Active,
    Denied,
    Revoked,
    Expired,
    Lapsed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Role,
    Port,
}

/// Who asked, approved or revoked. Local callers (the admin socket) have a
/// uid and a user name; a remote signed request has no uid and is named by
/// its signer principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub uid: Option<u32>,
    pub name: String,
}

/// A request as asked: what every request has, and what it is for.
///
/// Its JSON (the admin API's records, the `requested` event) is the flat
/// form every earlier version wrote, `kind` beside all nine target fields
/// with `null` for those the kind does not use; reading checks that a
/// record has what its kind needs ([`FlatRequest`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "FlatRequest", try_from = "FlatRequest")]
pub struct NewRequest {
    pub common: Common,
    pub target: Target,
}

/// What a role and a port request both have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    pub requester: Requester,
    /// Granted duration, after the policy's cap.
    pub duration_secs: u64,
    /// What the requester asked for, kept to show the cap was applied.
    pub requested_secs: u64,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    /// `"admin-socket"` or `"signed-request"`.
    pub via: String,
}

/// What a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Activate the eligible assignment `assignment` (of role `role`) for
    /// `identity`, optionally narrowed to one normalised `audience`.
    Role {
        role: String,
        assignment: String,
        identity: String,
        audience: Option<String>,
    },
    /// Open the `[[jit_port]]` named `name` (`port`/`protocol`) for `source`.
    Port {
        name: String,
        port: u16,
        protocol: Protocol,
        source: IpAddr,
    },
}

impl Target {
    pub fn kind(&self) -> Kind {
        match self {
            Target::Role { .. } => Kind::Role,
            Target::Port { .. } => Kind::Port,
        }
    }

    /// The policy's name for what is asked: the eligible assignment or the
    /// `[[jit_port]]`.
    pub fn assignment(&self) -> &str {
        match self {
            Target::Role { assignment, .. } => assignment,
            Target::Port { name, .. } => name,
        }
    }
}

impl NewRequest {
    pub fn kind(&self) -> Kind {
        self.target.kind()
    }
}

/// The flat form of a [`NewRequest`]: its JSON and its database row.
/// Only [`NewRequest`]'s conversions build one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlatRequest {
    pub kind: Kind,
    pub requester: Requester,
    pub role: Option<String>,
    pub assignment: Option<String>,
    pub identity: Option<String>,
    pub audience: Option<String>,
    pub port: Option<u16>,
    pub protocol: Option<Protocol>,
    pub source: Option<IpAddr>,
    pub duration_secs: u64,
    pub requested_secs: u64,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    pub via: String,
}

impl From<NewRequest> for FlatRequest {
    fn from(r: NewRequest) -> FlatRequest {
        let Common {
            requester,
            duration_secs,
            requested_secs,
            reason,
            ticket,
            via,
        } = r.common;
        let mut flat = FlatRequest {
            kind: r.target.kind(),
            requester,
            role: None,
            assignment: None,
            identity: None,
            audience: None,
            port: None,
            protocol: None,
            source: None,
            duration_secs,
            requested_secs,
            reason,
            ticket,
            via,
        };
        match r.target {
            Target::Role {
                role,
                assignment,
                identity,
                audience,
            } => {
                flat.role = Some(role);
                flat.assignment = Some(assignment);
                flat.identity = Some(identity);
                flat.audience = audience;
            }
            Target::Port {
                name,
                port,
                protocol,
                source,
            } => {
                flat.assignment = Some(name);
                flat.port = Some(port);
                flat.protocol = Some(protocol);
                flat.source = Some(source);
            }
        }
        flat
    }
}

/// A flat request that lacks what its kind needs, or carries what the
/// other kind uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {kind} request {why}")]
pub struct IncompleteRequest {
    pub kind: Kind,
    pub why: &'static str,
}

impl TryFrom<FlatRequest> for NewRequest {
    type Error = IncompleteRequest;

    fn try_from(f: FlatRequest) -> Result<NewRequest, IncompleteRequest> {
        let bad = |why| IncompleteRequest { kind: f.kind, why };
        let target = match f.kind {
            Kind::Role => {
                if f.requester.uid.is_none() {
                    return Err(bad("has no local requester (uid)"));
                }
                if f.port.is_some() || f.protocol.is_some() || f.source.is_some() {
                    return Err(bad("has a port, protocol or source"));
                }
                Target::Role {
                    role: f.role.clone().ok_or_else(|| bad("names no role"))?,
                    assignment: f
                        .assignment
                        .clone()
                        .ok_or_else(|| bad("names no assignment"))?,
                    identity: f.identity.clone().ok_or_else(|| bad("names no identity"))?,
                    audience: f.audience.clone(),
                }
            }
            Kind::Port => {
                if f.role.is_some() || f.identity.is_some() || f.audience.is_some() {
                    return Err(bad("has a role, identity or audience"));
                }
                Target::Port {
                    name: f
                        .assignment
                        .clone()
                        .ok_or_else(|| bad("names no `[[jit_port]]`"))?,
                    port: f.port.ok_or_else(|| bad("names no port"))?,
                    protocol: f.protocol.ok_or_else(|| bad("names no protocol"))?,
                    source: f.source.ok_or_else(|| bad("names no source"))?,
                }
            }
        };
        Ok(NewRequest {
            common: Common {
                requester: f.requester,
                duration_secs: f.duration_secs,
                requested_secs: f.requested_secs,
                reason: f.reason,
                ticket: f.ticket,
                via: f.via,
            },
            target,
        })
    }
}

/// A request as stored. `state` is what was last recorded; use
/// [`Record::state_at`] to decide anything, since a grant runs out when its
/// time is up, not when the sweeper next runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    #[serde(flatten)]
    pub request: NewRequest,
    pub state: State,
    #[serde(with = "time::rfc3339")]
    pub created: SystemTime,
    #[serde(with = "time::rfc3339")]
    pub lapses: SystemTime,
    pub decided_by: Option<Requester>,
    #[serde(with = "time::rfc3339_opt")]
    pub decided_at: Option<SystemTime>,
    pub decision_reason: Option<String>,
    #[serde(with = "time::rfc3339_opt")]
    pub starts: Option<SystemTime>,
    #[serde(with = "time::rfc3339_opt")]
    pub expires: Option<SystemTime>,
    pub revoked_by: Option<Requester>,
    #[serde(with = "time::rfc3339_opt")]
    pub revoked_at: Option<SystemTime>,
}

impl Record {
    /// The state at `now`, by time: an active grant whose `expires` has
    /// passed is `Expired` and a pending request past `lapses` is `Lapsed`,
    /// whether or not [`Store::sweep`] has recorded that yet.
    pub fn state_at(&self, now: SystemTime) -> State {
        match self.state {
            State::Pending if now >= self.lapses => State::Lapsed,
            State::Active if self.expires.is_none_or(|e| now >= e) => State::Expired,
            other => other,
        }
    }
}

/// One row of the outbox: a transition of one request, for the audit log.
/// `kind` is one of `requested`, `approved`, `auto_approved`, `denied`,
/// `activated`, `revoked`, `expired`, `lapsed`; `actor` is `None` when the
/// store or the policy (auto-approval) acted rather than a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: i64,
    pub request_id: String,
    pub kind: String,
    pub actor: Option<Requester>,
    #[serde(with = "time::rfc3339")]
    pub at: SystemTime,
    pub detail: serde_json::Value,
}

/// What [`Store::list`] returns. Every set field must match; the default
/// lists everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// By state at `now` (so `Pending` leaves out requests already past
    /// `lapses`, and `Expired` includes active ones past `expires`).
    pub state: Option<State>,
    /// Only grants in force at `now`: state active and `expires > now`.
    pub active_only: bool,
    pub requester_uid: Option<u32>,
    pub requester_name: Option<String>,
    /// At most this many, newest first; 0 means no limit.
    pub limit: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no JIT request `{0}`; list the requests to find its id")]
    NotFound(String),
    #[error("JIT request `{id}` is already {state}; the first decision stands")]
    Conflict { id: String, state: State },
    #[error("JIT request `{0}` lapsed unanswered after 24 h; ask for a new one")]
    Lapsed(String),
    /// Not returned today: revoking a grant that ran out is
    /// `Conflict { state: Expired }`. Kept so callers can map a stable set.
    #[error("JIT grant `{0}` has expired; ask for a new one")]
    Expired(String),
    #[error("JIT store `{path}` {why}")]
    Permissions { path: PathBuf, why: String },
    #[error("{0}")]
    Corrupt(String),
    #[error("JIT store schema version {found} is newer than this gatehouse knows ({known}); run the newer gatehouse or restore an older copy of the store")]
    Newer { found: i64, known: i64 },
    #[error("JIT store: {0}")]
    InvalidTime(String),
    #[error("JIT store database error: {0}; if it persists, check the disk and the store file")]
    Sqlite(#[from] rusqlite::Error),
    #[error("JIT store `{path}`: cannot {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

/// The store. `Send + Sync`: one connection behind a mutex, as SQLite
/// serialises writers anyway and every call is a short transaction.
pub struct Store {
    conn: Mutex<rusqlite::Connection>,
    path: PathBuf,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Open (creating with mode 0600 if absent) the store at `path`. The
    /// parent directory must exist. Refuses a file that group or others can
    /// access or that another user owns, a corrupt file, and a schema newer
    /// than [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = open::open(path)?;
        Ok(Store {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// The path given to [`Store::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Insert a pending request (lapses = now + 24 h) and its `requested`
    /// event. `auto_approve = true` instead records it approved and active
    /// at once (starts = now, expires = now + duration; events `requested`,
    /// `auto_approved`, `activated`).
    pub fn insert(
        &self,
        new: NewRequest,
        now: SystemTime,
        auto_approve: bool,
    ) -> Result<Record, StoreError> {
        ops::write(&mut self.lock(), |tx| {
            ops::insert(tx, &new, now, auto_approve).map(Ok)
        })
    }

    /// pending -> active (starts = now, expires = now + duration_secs).
    /// `Err(Conflict { state })` if it is not pending any more (the first
    /// approver decides); `Err(Lapsed)` if now >= lapses, recording the
    /// lapse.
    pub fn approve(
        &self,
        id: &str,
        approver: &Requester,
        reason: Option<&str>,
        now: SystemTime,
    ) -> Result<Record, StoreError> {
        ops::write(&mut self.lock(), |tx| {
            ops::decide(tx, id, approver, ops::Decision::Approve(reason), now)
        })
    }

    /// pending -> denied; the same errors as [`Store::approve`].
    pub fn deny(
        &self,
        id: &str,
        approver: &Requester,
        reason: &str,
        now: SystemTime,
    ) -> Result<Record, StoreError> {
        ops::write(&mut self.lock(), |tx| {
            ops::decide(tx, id, approver, ops::Decision::Deny(reason), now)
        })
    }

    /// pending | active -> revoked. `Err(Conflict { state })` for anything
    /// else, including a grant that has already expired by time.
    pub fn revoke(
        &self,
        id: &str,
        by: &Requester,
        reason: Option<&str>,
        now: SystemTime,
    ) -> Result<Record, StoreError> {
        ops::write(&mut self.lock(), |tx| ops::revoke(tx, id, by, reason, now))
    }

    /// Mark every active request with expires <= now `Expired` and every
    /// pending one with lapses <= now `Lapsed` (events `expired`/`lapsed`);
    /// returns the records changed. Idempotent.
    pub fn sweep(&self, now: SystemTime) -> Result<Vec<Record>, StoreError> {
        ops::write(&mut self.lock(), |tx| ops::sweep(tx, now).map(Ok))
    }

    pub fn get(&self, id: &str) -> Result<Option<Record>, StoreError> {
        rows::get(&self.lock(), id)
    }

    /// The requests `filter` selects, newest first.
    pub fn list(&self, filter: &ListFilter, now: SystemTime) -> Result<Vec<Record>, StoreError> {
        rows::list(&self.lock(), filter, now)
    }

    /// Grants of `kind` in force at `now` (state active and
    /// starts <= now < expires), oldest first.
    pub fn active(&self, kind: Kind, now: SystemTime) -> Result<Vec<Record>, StoreError> {
        rows::active(&self.lock(), kind, now)
    }

    /// The outbox: up to `limit` events not yet written to the audit log,
    /// oldest first. Sequence numbers only grow, and a later transaction
    /// always gets a larger one, so "everything up to seq N" is well defined.
    pub fn unaudited(&self, limit: usize) -> Result<Vec<Event>, StoreError> {
        rows::unaudited(&self.lock(), limit)
    }

    /// Record that every event with `seq <= up_to_seq` is in the audit log.
    /// Never moves backwards, and never past the last event written, so a
    /// wrong number cannot hide events not yet written.
    pub fn mark_audited(&self, up_to_seq: i64) -> Result<(), StoreError> {
        ops::write(&mut self.lock(), |tx| {
            ops::mark_audited(tx, up_to_seq).map(Ok)
        })
    }

    /// Replay protection for signed requests: `Ok(true)` if (signer, nonce)
    /// is new, and it is then remembered until `keep_until`; `Ok(false)` if
    /// it was seen. Forgets entries whose keep_until <= now.
    pub fn remember_nonce(
        &self,
        signer: &str,
        nonce: &str,
        keep_until: SystemTime,
        now: SystemTime,
    ) -> Result<bool, StoreError> {
        ops::write(&mut self.lock(), |tx| {
            ops::remember_nonce(tx, signer, nonce, keep_until, now).map(Ok)
        })
    }

    /// Forget finished requests whose last event is older than `before` and
    /// already in the audit log (which keeps them); returns how many. Pending
    /// and active requests, and anything not yet audited, are kept.
    pub fn prune(&self, before: SystemTime) -> Result<usize, StoreError> {
        ops::write(&mut self.lock(), |tx| ops::prune(tx, before).map(Ok))
    }

    /// The connection. A panic while it was held cannot have left a
    /// half-done change (the open transaction rolled back when it was
    /// dropped), so a poisoned lock is safe to take over.
    fn lock(&self) -> MutexGuard<'_, rusqlite::Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Active => "active",
            State::Denied => "denied",
            State::Revoked => "revoked",
            State::Expired => "expired",
            State::Lapsed => "lapsed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Role => "role",
            Kind::Port => "port",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

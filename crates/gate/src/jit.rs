//! Just-in-time access in the daemon: the admin socket's requests, approvals
//! and revocations; expiry and lapse; signed remote port requests; the
//! grants the decision engine honours; and the kernel's port sets.
//!
//! Who may do what is the policy crate's (`plan_activation`,
//! `may_approve_activation`, `plan_port`, `may_approve_port`); what happened
//! is the store's (one SQLite transaction per change, with its event). This
//! module times them with the gate's [`Clock`](crate::clock::Clock), turns
//! the store's events into audit lines (an outbox: an event is marked
//! audited only after its line is written, so a crash in between writes it
//! again on start rather than losing it), and keeps the grants and the
//! port sets in step after every change.

pub mod admin;
pub mod api;
mod decisions;
pub mod knock;
mod outbox;
mod port_sync;
pub mod ports;
mod requests;
mod sessions;
mod status;

use crate::clock::rfc3339;
use crate::Gate;
use api::{AdminRequest, AdminResponse, ApiError, ErrorKind, Whoami};
use gatehouse_audit::Event;
use gatehouse_jit::store::{Kind, Record, Requester, State, Store, StoreError, Target};
use gatehouse_policy::{Caller, Grant, JitRefusal, Protocol};
use gatehouse_sys::PeerCredentials;
use ports::PortControl;
use requests::PortWho;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Longest reason or ticket kept.
const MAX_TEXT: usize = 512;
/// How often the port sets are made equal to the database without a change.
const PORT_RESYNC: Duration = Duration::from_secs(30);
/// How long finished requests stay in the database by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 86_400);
/// How often old requests are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);
/// Active port grants in all (the broker takes the whole set in one message).
pub const MAX_ACTIVE_PORT_GRANTS: usize = 256;
/// Events written to the audit log per pass.
const AUDIT_BATCH: usize = 256;
/// Pending requests one requester may have at once (a local user cannot
/// fill the database or the approvers' list).
pub const MAX_PENDING_PER_REQUESTER: usize = 16;

/// Why the service's own work (start, the audit outbox, the port sets)
/// failed; a request's refusal is an [`ApiError`] instead.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] gatehouse_audit::AuditError),
    /// The store and the audit schema must change together.
    #[error("jit event {seq} (`{kind}`): detail not in the audit schema: {source}")]
    Schema {
        seq: i64,
        kind: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("jit event {seq}: kind `{kind}` has no audit record")]
    NoRecord { seq: i64, kind: String },
    #[error("a store value does not serialise to a word: {0}")]
    NotAWord(String),
    #[error(transparent)]
    Ports(#[from] ports::PortError),
    #[error("cannot reconcile the just-in-time port sets: {0}")]
    Reconcile(#[source] Box<ServiceError>),
}

pub struct JitService {
    gate: Arc<Gate>,
    store: Store,
    ports: Option<Arc<dyn PortControl>>,
    /// The ports the firewall table protects: those of the policy in force
    /// when the gate started (the table is rendered then). A reload that
    /// adds a port cannot open it before a restart.
    protected: Vec<(Protocol, u16)>,
    /// One JIT operation at a time: a change, its grant set and its port
    /// sync are published in order, so an older snapshot never overwrites a
    /// newer one (a revoked grant or port never comes back).
    serial: std::sync::Mutex<()>,
    /// Seconds since the last full port sync (the periodic one repairs a
    /// failed sync).
    last_port_sync: std::sync::Mutex<Option<std::time::Instant>>,
    /// Finished requests are forgotten this long after their last event
    /// (the audit log keeps them).
    retention: Duration,
    last_prune: std::sync::Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for JitService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitService")
            .field("ports", &self.ports.is_some())
            .finish_non_exhaustive()
    }
}

/// A caller of the admin socket, as the kernel reports it.
#[derive(Debug, Clone)]
pub struct AdminCaller {
    pub cred: PeerCredentials,
    pub caller: Caller,
}

impl AdminCaller {
    /// The policy's view of an admin-socket peer: uid, primary and
    /// supplementary groups, and their names. No process attributes: a
    /// person asks here, not a workload.
    pub fn from_credentials(cred: PeerCredentials) -> AdminCaller {
        let mut gids = vec![cred.gid];
        for g in &cred.groups {
            if !gids.contains(g) {
                gids.push(*g);
            }
        }
        let group_names = gids
            .iter()
            .filter_map(|g| gatehouse_sys::group_name(*g))
            .collect();
        let caller = Caller {
            uid: Some(cred.uid),
            user: gatehouse_sys::user_name(cred.uid),
            gids,
            group_names,
            processes: Vec::new(),
        };
        AdminCaller { cred, caller }
    }

    fn requester(&self) -> Requester {
        Requester {
            uid: Some(self.cred.uid),
            name: self
                .caller
                .user
                .clone()
                .unwrap_or_else(|| format!("uid:{}", self.cred.uid)),
        }
    }

    fn is_root(&self) -> bool {
        self.cred.uid == 0
    }
}

fn refusal(r: JitRefusal) -> ApiError {
    ApiError::new(r.kind, r.message)
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(id) => ApiError::new(
            ErrorKind::NotFound,
            format!("no request `{id}`: `gatehouse jit list` shows the ones you may see"),
        ),
        StoreError::Conflict { id, state } => ApiError::new(
            ErrorKind::Conflict,
            match state {
                State::Active | State::Denied => {
                    format!(
                        "request `{id}` is {} already: the first decision stands",
                        state.as_str()
                    )
                }
                _ => format!(
                    "request `{id}` is {} already: nothing to do",
                    state.as_str()
                ),
            },
        ),
        StoreError::Lapsed(id) => ApiError::new(
            ErrorKind::Lapsed,
            format!("request `{id}` lapsed (pending requests lapse after 24 h): ask again"),
        ),
        StoreError::Expired(id) => ApiError::new(
            ErrorKind::Expired,
            format!("request `{id}` has expired already"),
        ),
        other => {
            tracing::error!(error = %other, "jit store");
            ApiError::new(
                ErrorKind::Store,
                format!("the gate's database failed: {other}"),
            )
        }
    }
}

impl JitService {
    pub fn new(gate: Arc<Gate>, store: Store, ports: Option<Arc<dyn PortControl>>) -> JitService {
        let protected = gate
            .policy()
            .jit_ports()
            .iter()
            .map(|p| (p.protocol, p.port))
            .collect();
        JitService {
            gate,
            store,
            ports,
            protected,
            serial: std::sync::Mutex::new(()),
            last_port_sync: std::sync::Mutex::new(None),
            retention: DEFAULT_RETENTION,
            last_prune: std::sync::Mutex::new(None),
        }
    }

    /// Keep finished requests this long in the database (default 90 days).
    #[must_use]
    pub fn with_retention(mut self, retention: Duration) -> JitService {
        self.retention = retention;
        self
    }

    fn one_at_a_time(&self) -> std::sync::MutexGuard<'_, ()> {
        self.serial
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> SystemTime {
        self.gate.clock().now()
    }

    /// On start: write events a crash kept from the audit log, record what
    /// expired or lapsed while the gate was down, load the grants, and make
    /// the kernel's port sets match the database (reconcile).
    pub fn start(&self) -> Result<(), ServiceError> {
        self.flush_audit()?;
        self.tick();
        let _serial = self.one_at_a_time();
        if self.ports.is_some() {
            self.sync_ports("start")
                .map_err(|e| ServiceError::Reconcile(Box::new(e)))?;
        }
        Ok(())
    }

    /// Periodic work: expiry and lapse (the decision engine checks times
    /// itself; this records them), grants, audit.
    pub fn tick(&self) {
        let _serial = self.one_at_a_time();
        let now = self.now();
        match self.store.sweep(now) {
            Ok(changed) if !changed.is_empty() => {
                tracing::info!(count = changed.len(), "jit: requests expired or lapsed");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "jit: sweep failed"),
        }
        self.refresh_grants();
        if let Err(e) = self.flush_audit() {
            tracing::error!(error = %e, "jit: audit events wait for the log");
        }
        // Every 30 s, and after a failed sync: the kernel's sets are made
        // equal to the database again.
        let due = self
            .last_port_sync
            .lock()
            .map(|last| last.is_none_or(|t| t.elapsed() >= PORT_RESYNC))
            .unwrap_or(true);
        if self.ports.is_some() && due {
            if let Err(e) = self.sync_ports("periodic") {
                tracing::error!(error = %e, "jit: port sets not in step; retrying");
            }
        }
        self.prune_if_due(now);
    }

    fn prune_if_due(&self, now: SystemTime) {
        let Ok(mut last) = self.last_prune.lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
            return;
        }
        *last = Some(std::time::Instant::now());
        let Some(before) = now.checked_sub(self.retention) else {
            return;
        };
        match self.store.prune(before) {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(count = n, "jit: finished requests past retention forgotten");
                let _ = self.gate.record_event_public(&Event::JitPruned {
                    requests: u64::try_from(n).unwrap_or(u64::MAX),
                    finished_before: rfc3339(before),
                });
            }
            Err(e) => tracing::error!(error = %e, "jit: pruning failed"),
        }
    }

    /// The active role grants, handed to the decision engine. On a store
    /// error: none (fail closed).
    pub fn refresh_grants(&self) {
        let now = self.now();
        let grants = match self.store.active(Kind::Role, now) {
            Ok(records) => records.iter().filter_map(grant_of).collect(),
            Err(e) => {
                tracing::error!(error = %e, "jit: cannot read grants; none are honoured until it works");
                Vec::new()
            }
        };
        self.gate.set_grants(grants);
    }

    /// After any change: grants, port sets, audit.
    fn after_change(&self, port_change: bool) -> Vec<String> {
        let mut notices = Vec::new();
        self.refresh_grants();
        if port_change {
            if let Err(e) = self.sync_ports("change") {
                tracing::error!(error = %e, "jit: port sets not in step");
                notices.push(format!(
                    "the firewall could not be updated yet ({e}); the gate retries every second"
                ));
            }
        }
        if let Err(e) = self.flush_audit() {
            tracing::error!(error = %e, "jit: audit events wait for the log");
        }
        notices
    }

    /// One admin request from `who`.
    pub fn handle(&self, who: &AdminCaller, request: AdminRequest) -> AdminResponse {
        let _serial = self.one_at_a_time();
        let result = match request {
            AdminRequest::Status => Ok(admin::status_response(&self.gate, Some(self), who)),
            AdminRequest::Whoami => Ok(AdminResponse {
                ok: true,
                whoami: Some(Whoami {
                    uid: who.cred.uid,
                    user: who.caller.user.clone(),
                    gids: who.caller.gids.clone(),
                    groups: who.caller.group_names.clone(),
                    pid: who.cred.pid,
                }),
                ..AdminResponse::default()
            }),
            AdminRequest::Request {
                role,
                identity,
                audience,
                duration_secs,
                reason,
                ticket,
            } => self.request_role(
                who,
                &role,
                &identity,
                audience,
                duration_secs,
                reason,
                ticket,
            ),
            AdminRequest::OpenPort {
                port,
                protocol,
                source,
                duration_secs,
                reason,
                ticket,
            } => self.request_port(
                PortWho::Local(who),
                port,
                &protocol,
                source,
                duration_secs,
                reason,
                ticket,
                "admin-socket",
            ),
            AdminRequest::List { filter } => self.list(who, filter),
            AdminRequest::Approve { id, reason } => self.decide(who, &id, true, reason),
            AdminRequest::Deny { id, reason } => self.decide(who, &id, false, Some(reason)),
            AdminRequest::Revoke { id, reason } => self.revoke(who, &id, reason),
        };
        result.unwrap_or_else(AdminResponse::error)
    }
}

/// An active role record as the decision engine's grant. The store's
/// active records all have a requester uid and both times; anything else is
/// no grant (fail closed).
fn grant_of(r: &Record) -> Option<Grant> {
    let Target::Role {
        assignment,
        identity,
        audience,
        ..
    } = &r.request.target
    else {
        return None;
    };
    Some(Grant {
        id: r.id.clone(),
        assignment: assignment.clone(),
        uid: r.request.common.requester.uid?,
        identity: identity.clone(),
        audience: audience.clone(),
        starts: r.starts?,
        expires: r.expires?,
    })
}

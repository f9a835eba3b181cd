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
pub mod knock;
pub mod ports;

use crate::clock::rfc3339;
use crate::Gate;
use api::{AdminRequest, AdminResponse, ApiError, ErrorKind, ListWhich, Whoami};
use gatehouse_jit::store::{
    Common, FlatRequest, Kind, ListFilter, NewRequest, Record, Requester, State, Store, StoreError,
    Target,
};
use gatehouse_policy::{
    ActivationAsk, Caller, Grant, JitRefusal, JitRefusalKind, PortAsk, PortRequester, Principal,
    Protocol,
};
use gatehouse_sys::PeerCredentials;
use ports::{PortControl, PortElement};
use serde_json::json;
use std::net::IpAddr;
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

fn text(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(v) if v.len() > MAX_TEXT => Err(ApiError::new(
            ErrorKind::TooLong,
            format!("the {field} is longer than {MAX_TEXT} bytes"),
        )),
        Some(v) if v.chars().any(char::is_control) => Err(ApiError::new(
            ErrorKind::BadText,
            format!("the {field} contains control characters"),
        )),
        other => Ok(other),
    }
}

fn protocol(s: &str) -> Result<Protocol, ApiError> {
    s.parse::<Protocol>().map_err(|_| {
        ApiError::new(
            ErrorKind::BadProtocol,
            format!("unknown protocol `{s}`: tcp or udp"),
        )
    })
}

fn duration(secs: u64) -> Result<Duration, ApiError> {
    if secs == 0 {
        return Err(ApiError::new(
            JitRefusalKind::ZeroDuration,
            "a duration of zero grants nothing: ask for e.g. `--duration 1h`",
        ));
    }
    Ok(Duration::from_secs(secs))
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
    pub fn start(&self) -> Result<(), String> {
        self.flush_audit()?;
        self.tick();
        let _serial = self.one_at_a_time();
        if self.ports.is_some() {
            self.sync_ports("start")
                .map_err(|e| format!("cannot reconcile the just-in-time port sets: {e}"))?;
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
                let _ = self.gate.record_event_public(&json!({
                    "type": "jit_pruned",
                    "requests": n,
                    "finished_before": rfc3339(before),
                }));
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

    /// Write pending events to the audit log, oldest first.
    pub fn flush_audit(&self) -> Result<(), String> {
        loop {
            let events = self
                .store
                .unaudited(AUDIT_BATCH)
                .map_err(|e| e.to_string())?;
            let Some(last) = events.last().map(|e| e.seq) else {
                return Ok(());
            };
            for event in &events {
                let record = self.store.get(&event.request_id).ok().flatten();
                let mut line = json!({
                    "type": format!("jit_{}", event.kind),
                    "jit_event": event.seq,
                    "id": event.request_id,
                    "at": rfc3339(event.at),
                    "actor": event.actor,
                    "detail": event.detail,
                });
                if let (Some(r), Some(obj)) = (record, line.as_object_mut()) {
                    obj.insert("request".into(), audit_view(&r));
                }
                if let Err(e) = self.gate.record_event_public(&line) {
                    // Keep what was written; the rest waits for the log.
                    if let Some(done) = event.seq.checked_sub(1) {
                        let _ = self.store.mark_audited(done);
                    }
                    return Err(e);
                }
            }
            self.store.mark_audited(last).map_err(|e| e.to_string())?;
            if events.len() < AUDIT_BATCH {
                return Ok(());
            }
        }
    }

    /// Make the kernel's sets hold exactly the active port grants.
    fn sync_ports(&self, why: &str) -> Result<(), String> {
        let Some(ports) = &self.ports else {
            return Ok(());
        };
        let now = self.now();
        let records = self
            .store
            .active(Kind::Port, now)
            .map_err(|e| e.to_string())?;
        let desired: Vec<PortElement> = records
            .iter()
            .filter_map(|r| port_element(r, now))
            .collect();
        let result = ports.sync(&desired);
        if let Ok(mut last) = self.last_port_sync.lock() {
            // A failure leaves it due, so the next tick tries again.
            *last = result.is_ok().then(std::time::Instant::now);
        }
        let summary = result?;
        if summary.added + summary.removed > 0 || why == "start" {
            let _ = self.gate.record_event_public(&json!({
                "type": "jit_ports_synced",
                "why": why,
                "added": summary.added,
                "removed": summary.removed,
                "kept": summary.kept,
            }));
        }
        Ok(())
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

    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per field of the admin request it serves"
    )]
    fn request_role(
        &self,
        who: &AdminCaller,
        role: &str,
        identity: &str,
        audience: Option<String>,
        duration_secs: u64,
        reason: Option<String>,
        ticket: Option<String>,
    ) -> Result<AdminResponse, ApiError> {
        let asked = duration(duration_secs)?;
        let reason = text("reason", reason)?;
        let ticket = text("ticket", ticket)?;
        let audience = match audience {
            None => None,
            Some(a) => Some(gatehouse_policy::normalise_audience(&a).ok_or_else(|| {
                ApiError::new(ErrorKind::BadAudience, format!("`{a}` is not an audience: a resource URI such as https://storage.azure.com/"))
            })?),
        };
        let now = self.now();
        let policy = self.gate.policy();
        let plan = policy
            .plan_activation(&ActivationAsk {
                requester: &who.caller,
                role,
                identity,
                audience: audience.as_deref(),
                duration: asked,
                reason: reason.as_deref(),
                ticket: ticket.as_deref(),
                at: now,
            })
            .map_err(refusal)?;
        let mut notices = Vec::new();
        if plan.capped {
            notices.push(format!(
                "the duration was capped at {}, the most `{}` allows",
                gatehouse_policy::format_duration(plan.duration),
                plan.assignment
            ));
        }
        let new = NewRequest {
            common: Common {
                requester: who.requester(),
                duration_secs: plan.duration.as_secs(),
                requested_secs: asked.as_secs(),
                reason,
                ticket,
                via: "admin-socket".into(),
            },
            target: Target::Role {
                role: plan.role.clone(),
                assignment: plan.assignment.clone(),
                identity: identity.to_owned(),
                audience,
            },
        };
        self.check_pending_limit(&new.common.requester, now)?;
        let record = self
            .store
            .insert(new, now, plan.auto_approved)
            .map_err(store_error)?;
        if record.state == State::Pending {
            notices.push(approvers_notice(&policy, &record));
        }
        notices.extend(self.after_change(false));
        Ok(AdminResponse::record(record, notices))
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per field of the admin request it serves"
    )]
    fn request_port(
        &self,
        who: PortWho<'_>,
        port: u16,
        protocol_name: &str,
        source: IpAddr,
        duration_secs: u64,
        reason: Option<String>,
        ticket: Option<String>,
        via: &str,
    ) -> Result<AdminResponse, ApiError> {
        let proto = protocol(protocol_name)?;
        let asked = duration(duration_secs)?;
        let reason = text("reason", reason)?;
        let ticket = text("ticket", ticket)?;
        if self.ports.is_none() {
            return Err(ApiError::new(
                ErrorKind::NoFirewall,
                "this gate does not manage the firewall, so it cannot open ports: run it as root with `--firewall watch`",
            ));
        }
        if !self.protected.contains(&(proto, port))
            && self.gate.policy().jit_port(port, proto).is_some()
        {
            return Err(ApiError::new(
                ErrorKind::RestartNeeded,
                format!("port {port}/{proto} was added to the policy after the gate started; the firewall protects it only after a restart of the gate"),
            ));
        }
        // `::ffff:a.b.c.d` is the IPv4 address it carries.
        let source = source.to_canonical();
        let now = self.now();
        let active_ports = self
            .store
            .active(Kind::Port, now)
            .map_err(store_error)?
            .len();
        if active_ports >= MAX_ACTIVE_PORT_GRANTS {
            return Err(ApiError::new(
                ErrorKind::TooManyPorts,
                format!("{active_ports} port grants are active, the most this gate keeps: revoke some first"),
            ));
        }
        let policy = self.gate.policy();
        let requester = match &who {
            PortWho::Local(a) => PortRequester::Local(&a.caller),
            PortWho::Signer(name) => PortRequester::Signer(name),
        };
        let plan = policy
            .plan_port(&PortAsk {
                requester,
                port,
                protocol: proto,
                source,
                duration: asked,
                reason: reason.as_deref(),
                at: now,
            })
            .map_err(refusal)?;
        let mut notices = Vec::new();
        if plan.capped {
            notices.push(format!(
                "the duration was capped at {}, the most port `{}` allows",
                gatehouse_policy::format_duration(plan.duration),
                plan.name
            ));
        }
        let requester = match &who {
            PortWho::Local(a) => a.requester(),
            PortWho::Signer(name) => Requester {
                uid: None,
                name: format!("signer:{name}"),
            },
        };
        let new = NewRequest {
            common: Common {
                requester,
                duration_secs: plan.duration.as_secs(),
                requested_secs: asked.as_secs(),
                reason,
                ticket,
                via: via.to_owned(),
            },
            target: Target::Port {
                name: plan.name.clone(),
                port,
                protocol: proto,
                source,
            },
        };
        self.check_pending_limit(&new.common.requester, now)?;
        let record = self
            .store
            .insert(new, now, plan.auto_approved)
            .map_err(store_error)?;
        if record.state == State::Pending {
            notices.push(approvers_notice(&policy, &record));
        }
        notices.extend(self.after_change(record.state == State::Active));
        Ok(AdminResponse::record(record, notices))
    }

    fn check_pending_limit(&self, requester: &Requester, now: SystemTime) -> Result<(), ApiError> {
        let filter = ListFilter {
            state: Some(State::Pending),
            active_only: false,
            requester_uid: requester.uid,
            requester_name: requester.uid.is_none().then(|| requester.name.clone()),
            limit: MAX_PENDING_PER_REQUESTER + 1,
        };
        let pending = self.store.list(&filter, now).map_err(store_error)?.len();
        if pending >= MAX_PENDING_PER_REQUESTER {
            return Err(ApiError::new(
                ErrorKind::TooManyPending,
                format!(
                    "you have {pending} pending requests already: wait for a decision, or withdraw some with `gatehouse jit revoke ID`"
                ),
            ));
        }
        Ok(())
    }

    /// A verified signed request from outside.
    pub fn knock(
        &self,
        verified: &gatehouse_jit::knock::Verified,
    ) -> Result<AdminResponse, ApiError> {
        let _serial = self.one_at_a_time();
        let now = self.now();
        let r = &verified.request;
        let keep_until = std::time::UNIX_EPOCH
            + Duration::from_secs(r.timestamp)
            + gatehouse_jit::knock::MAX_SKEW
            + gatehouse_jit::knock::MAX_SKEW;
        let fresh = self
            .store
            .remember_nonce(&verified.signer, &r.nonce, keep_until, now)
            .map_err(store_error)?;
        if !fresh {
            return Err(ApiError::new(
                ErrorKind::Replay,
                "this signed request was seen before; sign a new one",
            ));
        }
        self.request_port(
            PortWho::Signer(&verified.signer),
            r.port,
            &r.protocol,
            r.source,
            r.duration_secs,
            Some(r.reason.clone()),
            r.ticket.clone(),
            "signed-request",
        )
    }

    /// Record a refused signed request (bounded by the caller's rate limit).
    pub fn audit_refused_knock(
        &self,
        source: IpAddr,
        kind: &str,
        message: &str,
        signer: Option<&str>,
    ) {
        let _ = self.gate.record_event_public(&json!({
            "type": "jit_signed_request_refused",
            "source": source.to_string(),
            "kind": kind,
            "message": message,
            "signer": signer,
        }));
    }

    fn may_decide(&self, who: &AdminCaller, record: &Record) -> Result<(), ApiError> {
        let policy = self.gate.policy();
        let requester_uid = record.request.common.requester.uid;
        match &record.request.target {
            Target::Role { assignment, .. } => {
                // The store reads no role request without a local requester.
                let Some(uid) = requester_uid else {
                    return Err(ApiError::new(
                        ErrorKind::Internal,
                        format!("request `{}` has no local requester", record.id),
                    ));
                };
                policy
                    .may_approve_activation(assignment, &who.caller, uid)
                    .map_err(refusal)
            }
            Target::Port { port, protocol, .. } => policy
                .may_approve_port(*port, *protocol, &who.caller, requester_uid)
                .map_err(refusal),
        }
    }

    fn decide(
        &self,
        who: &AdminCaller,
        id: &str,
        approve: bool,
        reason: Option<String>,
    ) -> Result<AdminResponse, ApiError> {
        let reason = text("reason", reason)?;
        if !approve && reason.is_none() {
            return Err(ApiError::new(
                ErrorKind::ReasonRequired,
                "say why you deny it: `--reason \"...\"`",
            ));
        }
        let record = self
            .store
            .get(id)
            .map_err(store_error)?
            .ok_or_else(|| store_error(StoreError::NotFound(id.to_owned())))?;
        self.may_decide(who, &record)?;
        let now = self.now();
        let by = who.requester();
        let updated = if approve {
            self.store.approve(id, &by, reason.as_deref(), now)
        } else {
            self.store
                .deny(id, &by, reason.as_deref().unwrap_or(""), now)
        };
        // A lapse found on approval is recorded by the store: audit it too.
        let updated = match updated {
            Ok(r) => r,
            Err(e) => {
                let _ = self.flush_audit();
                return Err(store_error(e));
            }
        };
        let notices = self.after_change(approve && updated.request.kind() == Kind::Port);
        Ok(AdminResponse::record(updated, notices))
    }

    fn revoke(
        &self,
        who: &AdminCaller,
        id: &str,
        reason: Option<String>,
    ) -> Result<AdminResponse, ApiError> {
        let reason = text("reason", reason)?;
        let record = self
            .store
            .get(id)
            .map_err(store_error)?
            .ok_or_else(|| store_error(StoreError::NotFound(id.to_owned())))?;
        let own = record.request.common.requester.uid == Some(who.cred.uid);
        if !(own || who.is_root()) {
            self.may_decide(who, &record).map_err(|_| {
                ApiError::new(
                    ErrorKind::NotAllowed,
                    format!(
                        "only the requester, an approver of `{}`, or root may revoke `{id}`",
                        record.request.target.assignment()
                    ),
                )
            })?;
        }
        let now = self.now();
        let was_active = record.state_at(now) == State::Active;
        let updated = self
            .store
            .revoke(id, &who.requester(), reason.as_deref(), now)
            .map_err(store_error)?;
        let is_port = updated.request.kind() == Kind::Port;
        let mut notices = self.after_change(is_port && was_active);
        // Withdrawing a pending request opened nothing, so it cuts nothing.
        if is_port && was_active {
            notices.extend(self.cut_sessions(&updated));
        }
        Ok(AdminResponse::record(updated, notices))
    }

    /// Revocation really ends a port grant: the element is gone (no new
    /// connections) and the source's established sessions are destroyed.
    fn cut_sessions(&self, record: &Record) -> Vec<String> {
        let (
            Some(ports),
            &Target::Port {
                port,
                protocol: proto,
                source,
                ..
            },
        ) = (&self.ports, &record.request.target)
        else {
            return Vec::new();
        };
        // The break-glass ranges reach the port anyway: their sessions stay.
        if self
            .gate
            .policy()
            .break_glass()
            .iter()
            .any(|net| net.contains(&source))
        {
            return vec![format!(
                "{source} is in a break-glass range: its sessions were not cut"
            )];
        }
        // Another active grant for the same source and port keeps it open.
        let now = self.now();
        let still_open = self.store.active(Kind::Port, now).map(|rs| {
            rs.iter().any(|r| {
                matches!(r.request.target, Target::Port { port: p, protocol: q, source: s, .. }
                    if p == port && q == proto && s == source)
            })
        });
        if matches!(still_open, Ok(true)) {
            return vec![format!("another active grant keeps {port}/{proto} open for {source}; its sessions were not cut")];
        }
        match ports.cut(source, proto, port) {
            Ok(n) => {
                let _ = self.gate.record_event_public(&json!({
                    "type": "jit_sessions_cut",
                    "id": record.id,
                    "source": source.to_string(),
                    "port": port,
                    "protocol": proto,
                    "sockets": n,
                }));
                vec![format!(
                    "{n} session(s) from {source} to port {port}/{proto} were cut"
                )]
            }
            Err(e) => {
                tracing::error!(error = %e, "jit: cannot cut sessions");
                vec![format!("the port is closed to new connections, but cutting established sessions failed: {e}")]
            }
        }
    }

    /// Is `who` an approver of anything (so may see more than their own)?
    fn approves_something(&self, who: &AdminCaller) -> bool {
        let policy = self.gate.policy();
        let approver = |ps: &[Principal]| ps.iter().any(|p| p.grants_to(&who.caller));
        policy
            .assignments()
            .filter_map(|a| a.eligible.as_ref())
            .any(|e| approver(&e.approvers))
            || policy.jit_ports().iter().any(|p| approver(&p.approvers))
    }

    /// Root sees every request; an approver, their own and those they may
    /// decide (another team's reasons and tickets stay theirs); everyone
    /// else, their own.
    fn list(&self, who: &AdminCaller, which: ListWhich) -> Result<AdminResponse, ApiError> {
        let wider = which != ListWhich::Mine && (who.is_root() || self.approves_something(who));
        let filter = ListFilter {
            state: (which == ListWhich::Pending).then_some(State::Pending),
            active_only: which == ListWhich::Active,
            requester_uid: (!wider).then_some(who.cred.uid),
            requester_name: None,
            limit: if wider && !who.is_root() { 5_000 } else { 500 },
        };
        let now = self.now();
        let mut records = self.store.list(&filter, now).map_err(store_error)?;
        if wider && !who.is_root() {
            records.retain(|r| {
                r.request.common.requester.uid == Some(who.cred.uid)
                    || self.may_decide(who, r).is_ok()
            });
            records.truncate(500);
        }
        // Shown as they are now, even before the sweep records it.
        for r in &mut records {
            r.state = r.state_at(now);
        }
        let mut notices = Vec::new();
        if !wider && which != ListWhich::Mine {
            notices.push("only your own requests are shown: approvers also see the requests they may decide, root sees all".to_owned());
        }
        Ok(AdminResponse {
            ok: true,
            records: Some(records),
            notices,
            ..AdminResponse::default()
        })
    }
}

enum PortWho<'a> {
    Local(&'a AdminCaller),
    Signer(&'a str),
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

fn port_element(r: &Record, now: SystemTime) -> Option<PortElement> {
    let Target::Port {
        port,
        protocol,
        source,
        ..
    } = r.request.target
    else {
        return None;
    };
    let left = r.expires?.duration_since(now).ok()?;
    // Round up: the kernel's timeout must not end before the grant does.
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    Some(PortElement {
        source,
        protocol,
        port,
        expires_in_secs: secs.max(1),
    })
}

fn approvers_notice(policy: &gatehouse_policy::Policy, r: &Record) -> String {
    let names: Vec<String> = match &r.request.target {
        Target::Role { assignment, .. } => policy
            .assignments()
            .find(|x| &x.name == assignment)
            .and_then(|a| a.eligible.as_ref())
            .map(|e| e.approvers.iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
        Target::Port { name, .. } => policy
            .jit_ports()
            .iter()
            .find(|p| &p.name == name)
            .map(|p| p.approvers.iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
    };
    format!(
        "pending: `{}` waits for one of {} to run `gatehouse jit approve {}` (it lapses after 24 h)",
        r.id,
        if names.is_empty() { "the approvers".to_owned() } else { names.join(", ") },
        r.id
    )
}

/// The request as an audit line shows it: who, what, why and when.
fn audit_view(r: &Record) -> serde_json::Value {
    let t = |x: Option<SystemTime>| x.map(rfc3339);
    let q = FlatRequest::from(r.request.clone());
    json!({
        "kind": q.kind,
        "state": r.state,
        "requester": q.requester,
        "via": q.via,
        "assignment": q.assignment,
        "role": q.role,
        "identity": q.identity,
        "audience": q.audience,
        "port": q.port,
        "protocol": q.protocol,
        "source": q.source,
        "duration_secs": q.duration_secs,
        "requested_secs": q.requested_secs,
        "reason": q.reason,
        "ticket": q.ticket,
        "created": rfc3339(r.created),
        "decided_by": r.decided_by,
        "decided_at": t(r.decided_at),
        "decision_reason": r.decision_reason,
        "starts": t(r.starts),
        "expires": t(r.expires),
        "revoked_by": r.revoked_by,
        "revoked_at": t(r.revoked_at),
    })
}

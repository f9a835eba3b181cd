//! One request through the gate: check it the way IMDS would, identify the
//! caller, decide, forward, check the answer, record, respond. The steps
//! that differ per cloud are the dialect's (`dialect.rs`).

use crate::caller;
use crate::refusal::Refusal;
use crate::token_path::Served;
use crate::Gate;
use bytes::Bytes;
use gatehouse_audit::{self as audit, Event};
use gatehouse_policy::{Action, Policy};
use gatehouse_sys::CallerFacts;
use http_body_util::Full;
use std::net::SocketAddr;
use std::time::Instant;

/// Where a connection came from and went to, fixed at accept.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The address the client connected to: the original destination when
    /// the kernel redirected it, else the gate's own listener.
    pub dst: SocketAddr,
    pub redirected: bool,
    /// The socket's creator and inode as the kernel reported them at accept
    /// ([`CallerSource::at_accept`](crate::caller::CallerSource::at_accept)).
    pub owner: Option<gatehouse_sys::SocketOwner>,
}

/// What the audit line says, gathered as the request goes.
#[derive(Default)]
pub(crate) struct Trail {
    pub(crate) caller: Option<audit::Caller>,
    pub(crate) request: audit::RequestFacts,
    pub(crate) decided_by: Vec<String>,
    /// How the policy decided: mode, audit-mode verdict, an absent
    /// attribute, a trusted service, the one-line summary.
    pub(crate) decision: Option<audit::DecisionDetail>,
    pub(crate) upstream: Option<audit::Upstream>,
    /// The trusted service that allowed, for the metrics' rule label.
    pub(crate) trusted: Option<&'static str>,
}

impl Trail {
    /// Records what serving from upstream (or the cache) gave, answer or
    /// refusal, with the time since `sent`.
    pub(crate) fn served(
        &mut self,
        served: Result<Served, Refusal>,
        sent: Instant,
    ) -> Result<Served, Refusal> {
        let latency_us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.upstream = Some(match &served {
            Ok(s) => audit::Upstream {
                status: Some(s.answer.status),
                source: Some(s.source.audit()),
                attempts: Some(s.attempts),
                latency_us,
                token_fp: s.fingerprint.clone(),
            },
            Err(_) => audit::Upstream {
                status: None,
                source: None,
                attempts: None,
                latency_us,
                token_fp: None,
            },
        });
        served
    }
}

pub type Response = http::Response<Full<Bytes>>;

/// A check of the identified caller before any decision (AWS: the session
/// token was issued to this socket's uid).
pub(crate) type CallerCheck<'a> = dyn Fn(&CallerFacts) -> Result<(), Refusal> + Sync + 'a;

/// The answer when the request's own task failed (it never should).
pub fn internal_error() -> Response {
    let err = gatehouse_imds::ImdsError::new(500, "internal_error", "gatehouse: internal error");
    json_response(err.status, None, Bytes::from(err.body), None)
}

pub(crate) fn json_response(
    status: u16,
    content_type: Option<&str>,
    body: Bytes,
    retry_after: Option<&str>,
) -> Response {
    let mut builder = http::Response::builder().status(status).header(
        http::header::CONTENT_TYPE,
        content_type.unwrap_or("application/json; charset=utf-8"),
    );
    if let Some(r) = retry_after {
        builder = builder.header(http::header::RETRY_AFTER, r);
    }
    builder.body(Full::new(body)).unwrap_or_else(|_| {
        let mut r = http::Response::new(Full::new(Bytes::from_static(b"{\"error\":\"internal\"}")));
        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

impl Gate {
    /// Anything but a token: forwarded as decided, answered as given.
    pub(crate) async fn forward(
        &self,
        method: &http::Method,
        target: &str,
        body: Option<(Bytes, String)>,
        uid: u32,
    ) -> Result<Served, Refusal> {
        self.tokens
            .fetcher
            .fetch(crate::fetch::Ask {
                method,
                target,
                body,
                token_endpoint: false,
                uid,
            })
            .await
            .map(|(answer, attempts)| Served {
                answer,
                source: crate::token_path::Source::Upstream,
                fingerprint: None,
                attempts,
            })
            .map_err(crate::token_path::map_fetch)
    }

    pub async fn handle(
        &self,
        conn: ConnInfo,
        req: http::Request<hyper::body::Incoming>,
    ) -> Response {
        let started = Instant::now();
        let decision_id = format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff);
        let policy = self.policy.current();
        let mut trail = Trail::default();
        let (parts, body) = req.into_parts();
        trail.request.method = parts.method.as_str().to_owned();
        let dialect = crate::dialect::Dialect::of(self.cloud);
        let result = dialect
            .serve(self, &conn, &policy, &parts, body, &mut trail, &decision_id)
            .await;
        let (response, outcome, reason) = match result {
            Ok((answer, allowed_reason)) => (answer, audit::Outcome::Allow, allowed_reason),
            Err(refusal) => {
                let (err, outcome) = refusal.answer(&decision_id);
                let retry_after = refusal.retry_after().map(|s| s.to_string());
                let mut response = dialect.refusal(&refusal, &err, retry_after.as_deref());
                if matches!(refusal, Refusal::AmbiguousFraming) {
                    // Whatever framing the client meant, the rest of this
                    // connection cannot be trusted: close it.
                    response.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                }
                (response, outcome.audit(), refusal.detail())
            }
        };
        log_decision(
            &decision_id,
            trail.request.endpoint.as_deref(),
            outcome.as_str(),
            trail.caller.as_ref().map(|c| u64::from(c.uid)),
            response.status().as_u16(),
        );
        let endpoint = trail
            .request
            .endpoint
            .clone()
            .unwrap_or_else(|| "other".to_owned());
        let rule = match outcome {
            audit::Outcome::Rejected => "none".to_owned(),
            _ => crate::metrics::rule_label(&trail.decided_by, trail.trusted.unwrap_or("default")),
        };
        let event = Event::Request(Box::new(audit::RequestRecord {
            decision: decision_id.clone(),
            peer: conn.peer.to_string(),
            caller: trail.caller,
            request: trail.request,
            outcome,
            reason,
            decided_by: trail.decided_by,
            decision_detail: trail.decision,
            upstream: trail.upstream,
            status: response.status().as_u16(),
            latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            policy: policy.hash().get(..16).unwrap_or(policy.hash()).to_owned(),
        }));
        let recorded = self.record(&event);
        let decision = if recorded.is_ok() {
            outcome.as_str()
        } else {
            "error"
        };
        crate::metrics::request(&endpoint, decision, rule, started.elapsed());
        match recorded {
            Ok(()) => response,
            Err(()) => {
                let (err, _) = Refusal::AuditUnavailable.answer(&decision_id);
                json_response(err.status, None, Bytes::from(err.body), None)
            }
        }
    }

    /// Identify the caller (only as far as the policy reads), decide, and
    /// note both in the trail; a denial is the refusal. `bound` (AWS) is a
    /// check of the identified caller that must pass before any decision.
    pub(crate) async fn decide(
        &self,
        conn: &ConnInfo,
        policy: &Policy,
        action: Action,
        request: &gatehouse_policy::Request<'_>,
        trail: &mut Trail,
        bound: Option<&CallerCheck<'_>>,
    ) -> Result<(CallerFacts, gatehouse_policy::Decision), Refusal> {
        let grants = self.grants();
        // First on what the assignments read (a policy on uids alone: the
        // socket's uid, no process); the processes only if a trusted service
        // might allow what that denied.
        let first = policy.needs_of_assignments();
        let (mut facts, mut who) = self.identify(conn, &first).await?;
        if let Some(check) = bound {
            if let Err(refused) = check(&facts) {
                trail.caller = Some(caller::audit_caller(&facts, &who));
                return Err(refused);
            }
        }
        let deciding = Instant::now();
        let mut decision = policy.decide_with(&who, request, &grants);
        // (Unless the first lookup found as much already: then the first
        // decision saw the processes, trusted services included.)
        let first_found = caller::sys_needs(&first, self.all_holders);
        if let Some(more) = policy
            .needs_after(action, &decision)
            .filter(|more| caller::sys_needs(more, self.all_holders) != first_found)
        {
            (facts, who) = self.identify(conn, &more).await?;
            decision = policy.decide_with(&who, request, &grants);
        }
        crate::metrics::decided(deciding.elapsed());
        trail.trusted = decision.trail().trusted_service;
        trail.caller = Some(caller::audit_caller(&facts, &who));
        trail.decided_by = decision.decided_by().to_vec();
        trail.decision = Some(audit::DecisionDetail {
            mode: decision.trail().mode.as_str().to_owned(),
            would_deny: decision.would_deny(),
            absent_attribute: decision.absent_attribute().map(str::to_owned),
            trusted_service: decision.trail().trusted_service.map(str::to_owned),
            summary: decision.summary(),
        });
        if !decision.is_allowed() {
            return Err(Refusal::Denied(decision.reason()));
        }
        Ok((facts, decision))
    }

    /// Who is behind `conn`, finding what `needs` asks for. Identification
    /// reads /proc (or waits for the broker): blocking work, kept off the
    /// threads that serve everyone else.
    pub(crate) async fn identify(
        &self,
        conn: &ConnInfo,
        needs: &gatehouse_policy::Needs,
    ) -> Result<(CallerFacts, gatehouse_policy::Caller), Refusal> {
        let needs = caller::sys_needs(needs, self.all_holders);
        // On uids alone: the socket's record from accept, which is what the
        // lookup would find again (no process is read).
        if !needs.wants_process() {
            if let Some(facts) = conn.owner.and_then(caller::socket_only) {
                let who = caller::to_policy_caller(&facts);
                crate::metrics::caller_identified(facts.lookup.strategy, std::time::Duration::ZERO);
                return Ok((facts, who));
            }
        }
        let source = std::sync::Arc::clone(&self.identifier);
        let (peer, dst) = (conn.peer, conn.dst);
        let identified = tokio::task::spawn_blocking(move || {
            let facts = source.identify(peer, dst, needs)?;
            // Account names come from /etc/passwd and /etc/group: also here.
            let who = caller::to_policy_caller(&facts);
            Ok::<_, crate::caller::CallerError>((facts, who))
        })
        .await
        .map_err(|e| crate::caller::CallerError::Task(e.to_string()))
        .and_then(|r| r)
        .map_err(Refusal::CallerUnknown);
        let (facts, who) = identified.inspect_err(|_| crate::metrics::caller_unknown())?;
        crate::metrics::caller_identified(
            facts.lookup.strategy,
            std::time::Duration::from_micros(facts.lookup.micros),
        );
        Ok((facts, who))
    }

    pub(crate) fn record(&self, event: &Event) -> Result<(), ()> {
        let time = crate::clock::rfc3339(self.clock.now());
        self.audit.append(&time, event).map_err(|e| {
            tracing::error!(error = %e, "audit write failed; refusing requests until it works");
        })
    }
}

/// One structured log event per decision (the journal's fields
/// `GATEHOUSE_DECISION`, `_ENDPOINT`, `_OUTCOME`, `_CALLER_UID`, `_STATUS`),
/// for operators; the audit line is the record. Never the token or the
/// request's headers. Allowed requests log at `debug` (one line per token
/// request would flood the journal); denials and malformed requests at
/// `info`, errors (upstream, audit, identification) at `warn`.
fn log_decision(id: &str, endpoint: Option<&str>, outcome: &str, uid: Option<u64>, status: u16) {
    let endpoint = endpoint.unwrap_or("-");
    match outcome {
        "allow" => tracing::debug!(
            target: "gatehouse::decision",
            decision = id, endpoint, outcome, caller_uid = uid, status,
            "request allowed"
        ),
        "deny" | "rejected" => tracing::info!(
            target: "gatehouse::decision",
            decision = id, endpoint, outcome, caller_uid = uid, status,
            "request denied"
        ),
        _ => tracing::warn!(
            target: "gatehouse::decision",
            decision = id, endpoint, outcome, caller_uid = uid, status,
            "request failed"
        ),
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s.get(..end).unwrap_or(""))
}

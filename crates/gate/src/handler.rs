//! One request through the gate: check it the way IMDS would, identify the
//! caller, decide, forward, check the answer, record, respond.

use crate::caller;
use crate::fetch::FetchError;
use crate::refusal::Refusal;
use crate::token_path::Served;
use crate::upstream::UpstreamError;
use crate::Gate;
use bytes::Bytes;
use gatehouse_audit::{self as audit, Event};
use gatehouse_imds::{Canonical, Endpoint, Selector};
use gatehouse_policy::{Action, Identity, Policy, ResolveError, SelectorKind};
use gatehouse_sys::CallerFacts;
use http::{HeaderMap, Method};
use http_body_util::{BodyExt, Full, Limited};
use std::net::SocketAddr;
use std::time::Instant;

const MAX_REQUEST_BODY: usize = 64 * 1024;
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where a connection came from and went to, fixed at accept.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The address the client connected to: the original destination when
    /// the kernel redirected it, else the gate's own listener.
    pub dst: SocketAddr,
    pub redirected: bool,
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

fn action_for(endpoint: &Endpoint, method: &Method) -> Action {
    match endpoint {
        Endpoint::Token => Action::TokenRead,
        Endpoint::IdentityInfo => Action::IdentityInfoRead,
        Endpoint::Instance { .. } | Endpoint::LoadBalancer => Action::InstanceRead,
        Endpoint::Versions => Action::VersionsRead,
        Endpoint::AttestedDocument => Action::AttestedDocumentRead,
        Endpoint::ScheduledEvents if method == Method::POST => Action::ScheduledEventsApprove,
        Endpoint::ScheduledEvents => Action::ScheduledEventsRead,
    }
}

/// IMDS answers GET everywhere and POST only on scheduled events; anything
/// else is refused before anyone reads a body.
fn header_checks(method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
    if !(method == Method::GET || method == Method::POST) {
        return Err(Refusal::MethodNotAllowed);
    }
    // hyper drops Content-Length when Transfer-Encoding came too (and ends
    // the connection after), so "both" cannot be seen here: every request
    // with Transfer-Encoding is refused. IMDS's clients send none (GETs
    // without a body, an approval's small JSON with Content-Length).
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return Err(Refusal::AmbiguousFraming);
    }
    if headers.contains_key("x-forwarded-for") {
        return Err(Refusal::ForwardedFor);
    }
    let mut metadata = headers.get_all("metadata").iter();
    match (metadata.next(), metadata.next()) {
        (Some(v), None) if v.as_bytes() == b"true" => Ok(()),
        _ => Err(Refusal::MissingMetadata),
    }
}

fn resolve<'p>(policy: &'p Policy, selector: &Selector) -> Result<&'p Identity, Refusal> {
    let sel = match selector {
        Selector::None => gatehouse_policy::Selector::None,
        Selector::ClientId(s) => gatehouse_policy::Selector::ClientId(s),
        Selector::ObjectId(s) => gatehouse_policy::Selector::ObjectId(s),
        Selector::ResourceId(s) => gatehouse_policy::Selector::ResourceId(s),
    };
    policy.resolve_identity(&sel).map_err(|e| match e {
        ResolveError::Ambiguous => Refusal::MultipleIdentities,
        _ => Refusal::IdentityNotFound,
    })
}

impl Gate {
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
        let result = match self.cloud {
            gatehouse_policy::Cloud::Aws => {
                self.serve_aws(&conn, &policy, &parts, &mut trail).await
            }
            _ => {
                self.serve(&conn, &policy, &parts, body, &mut trail, &decision_id)
                    .await
            }
        };
        let (response, outcome, reason) = match result {
            Ok((answer, allowed_reason)) => (answer, audit::Outcome::Allow, allowed_reason),
            Err(refusal) => {
                let (err, outcome) = refusal.answer(&decision_id);
                let retry_after = refusal.retry_after().map(|s| s.to_string());
                let mut response = match self.cloud {
                    gatehouse_policy::Cloud::Aws => {
                        crate::aws::error_response(&refusal, &err, retry_after.as_deref())
                    }
                    _ => json_response(
                        err.status,
                        None,
                        Bytes::from(err.body),
                        retry_after.as_deref(),
                    ),
                };
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

    /// Everything between "a request arrived" and "this is the answer".
    async fn serve(
        &self,
        conn: &ConnInfo,
        policy: &Policy,
        parts: &http::request::Parts,
        body: hyper::body::Incoming,
        trail: &mut Trail,
        decision_id: &str,
    ) -> Result<(Response, String), Refusal> {
        trail.request.target = Some(truncate(&parts.uri.to_string(), 512));
        header_checks(&parts.method, &parts.headers)?;
        let canonical: Canonical =
            gatehouse_imds::canonicalise(parts.uri.path(), parts.uri.query())
                .map_err(Refusal::NotCanonical)?;
        // Which methods an endpoint takes is decided on the canonical path,
        // never on the client's spelling of it.
        if parts.method == Method::POST && canonical.endpoint != Endpoint::ScheduledEvents {
            return Err(Refusal::MethodNotAllowed);
        }
        let action = action_for(&canonical.endpoint, &parts.method);
        trail.request.target = None;
        trail.request.endpoint = Some(canonical.endpoint.name().to_owned());
        trail.request.action = Some(action.as_str().to_owned());
        trail.request.path = Some(canonical.endpoint.path().to_string());
        trail.request.api_version = canonical.api_version().map(str::to_owned);

        // Identity and audience first: a request IMDS would refuse is refused
        // the same way, before anyone is identified.
        let mut identity = None;
        let mut audience = None;
        if canonical.endpoint == Endpoint::Token {
            let resource = canonical.resource().ok_or(Refusal::MissingResource)?;
            trail.request.audience = Some(resource.to_owned());
            trail.request.selector = Some(canonical.selector.kind().to_owned());
            audience =
                Some(gatehouse_policy::normalise_audience(resource).ok_or(Refusal::BadAudience)?);
            let id = resolve(policy, &canonical.selector)?;
            trail.request.identity = Some(id.name.clone());
            identity = Some(id);
        }

        let selector = match canonical.selector {
            Selector::None => SelectorKind::None,
            Selector::ClientId(_) => SelectorKind::ClientId,
            Selector::ObjectId(_) => SelectorKind::ObjectId,
            Selector::ResourceId(_) => SelectorKind::ResourceId,
        };
        let path = canonical.endpoint.path();
        let request = gatehouse_policy::Request::new(action)
            .identity(identity.map(|i| i.name.as_str()))
            .audience(audience.as_deref())
            .api_version(canonical.api_version())
            .selector(selector)
            .path(&path)
            .at(self.clock.now());
        let (facts, decision) = self
            .decide(conn, policy, action, &request, trail, None)
            .await?;

        let upload = if parts.method == Method::POST {
            // Bounded in size and in time: a caller that trickles its body
            // cannot hold a connection slot indefinitely.
            let read =
                tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_REQUEST_BODY).collect());
            let bytes = read
                .await
                .map_err(|_| Refusal::BodyTooLarge)?
                .map_err(|_| Refusal::BodyTooLarge)?
                .to_bytes();
            let ct = parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_owned();
            Some((bytes, ct))
        } else {
            None
        };

        // An approval changes the platform's state and cannot be taken back:
        // it is recorded *before* it is forwarded, so it never happens
        // unrecorded even if the final line cannot be written.
        if parts.method == Method::POST {
            let intent = Event::Forwarding(Box::new(audit::ForwardingRecord {
                decision: decision_id.to_owned(),
                caller: trail.caller.clone(),
                request: trail.request.clone(),
                decided_by: trail.decided_by.clone(),
            }));
            self.record(&intent)
                .map_err(|()| Refusal::AuditUnavailable)?;
        }
        let sent = Instant::now();
        let served = match identity {
            Some(id) => {
                let key = crate::cache::Key {
                    identity: id.name.clone(),
                    ids: format!(
                        "{}|{}|{}",
                        id.client_id.as_deref().unwrap_or(""),
                        id.object_id.as_deref().unwrap_or(""),
                        id.resource_id.as_deref().unwrap_or("")
                    ),
                    resource: canonical.resource().unwrap_or_default().to_owned(),
                    selector: canonical.selector.kind(),
                    api_version: canonical.api_version().unwrap_or_default().to_owned(),
                };
                self.tokens
                    .serve(id, key, &canonical.upstream_target(), facts.socket_uid)
                    .await
            }
            _ => self
                .tokens
                .fetcher
                .fetch(crate::fetch::Ask {
                    method: &parts.method,
                    target: &canonical.upstream_target(),
                    body: upload,
                    token_endpoint: false,
                    uid: facts.socket_uid,
                })
                .await
                .map(|(answer, attempts)| Served {
                    answer,
                    source: crate::token_path::Source::Upstream,
                    fingerprint: None,
                    attempts,
                })
                .map_err(|e| match e {
                    FetchError::Limited => Refusal::Limited,
                    FetchError::Upstream(UpstreamError::Timeout) => Refusal::UpstreamTimeout,
                    FetchError::Upstream(other) => Refusal::Upstream(other),
                }),
        };
        let latency_us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        let served = match served {
            Ok(s) => s,
            Err(refusal) => {
                trail.upstream = Some(audit::Upstream {
                    status: None,
                    source: None,
                    attempts: None,
                    latency_us,
                    token_fp: None,
                });
                return Err(refusal);
            }
        };
        trail.upstream = Some(audit::Upstream {
            status: Some(served.answer.status),
            source: Some(served.source.audit()),
            attempts: Some(served.attempts),
            latency_us,
            token_fp: served.fingerprint.clone(),
        });
        let answer = served.answer;
        Ok((
            json_response(
                answer.status,
                answer.content_type.as_deref(),
                answer.body,
                answer.retry_after.as_deref(),
            ),
            decision.reason().to_string(),
        ))
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
        let source = std::sync::Arc::clone(&self.identifier);
        let needs = caller::sys_needs(needs, self.all_holders);
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

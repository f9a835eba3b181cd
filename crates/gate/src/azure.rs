//! The Azure IMDS dialect of the request path: `Metadata: true` and no
//! `X-Forwarded-For` → canonicalise (`gatehouse_imds::canonicalise`) →
//! endpoint → action; selector → identity, `resource` → audience → decide →
//! token from the cache (claims checked), the rest forwarded → audit.

use crate::handler::{json_response, truncate, ConnInfo, Response, Trail};
use crate::refusal::Refusal;
use crate::Gate;
use bytes::Bytes;
use gatehouse_audit::{self as audit, Event};
use gatehouse_imds::{Canonical, Endpoint, Selector};
use gatehouse_policy::{Action, Identity, Policy, ResolveError, SelectorKind};
use http::{HeaderMap, Method};
use http_body_util::{BodyExt, Limited};
use std::time::Instant;

const MAX_REQUEST_BODY: usize = 64 * 1024;
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A refusal in Azure's shape: IMDS's JSON error body.
pub(crate) fn error_response(
    err: &gatehouse_imds::ImdsError,
    retry_after: Option<&str>,
) -> Response {
    json_response(err.status, None, Bytes::from(err.body.clone()), retry_after)
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
    /// Everything between "a request arrived" and "this is the answer".
    pub(crate) async fn serve_azure(
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
                    shape: crate::cache::Shape::Azure,
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
            _ => {
                self.forward(
                    &parts.method,
                    &canonical.upstream_target(),
                    upload,
                    facts.socket_uid,
                )
                .await
            }
        };
        let served = trail.served(served, sent)?;
        let answer = served.answer;
        Ok((
            crate::dialect::passed_on(answer),
            decision.reason().to_string(),
        ))
    }
}

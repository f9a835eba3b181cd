//! The IMDS port: admission (faults, rate limits), the checks every endpoint
//! shares (method, `Metadata` header, `X-Forwarded-For`, query syntax), then
//! dispatch to one module per endpoint family.
//!
//! Order matters and is deliberate: throttling and faults come first (as a
//! throttled or broken IMDS answers before looking at the request), then the
//! method, then the headers — so a client probe without `Metadata` gets its
//! 400 immediately, without any endpoint work.

mod identity;
mod instance;

use std::sync::Arc;

use http::header::{ALLOW, RETRY_AFTER};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;

use crate::endpoint::Endpoint;
use crate::faults::ForcedStatus;
use crate::query::{Query, QueryError};
use crate::ratelimit::Admission;
use crate::reply::{self, Reply};
use crate::state::{lock, State};

/// The outage fault: hyper closes the connection when a service fails,
/// without writing a response.
#[derive(Debug, thiserror::Error)]
#[error("outage fault: connection closed without a reply")]
pub(crate) struct Dropped;

/// Serves one request on the IMDS port.
pub(crate) async fn serve(state: Arc<State>, req: Request<Incoming>) -> Result<Reply, Dropped> {
    let endpoint = match state.dialect {
        crate::aws::Dialect::Azure => Endpoint::classify(req.uri().path()),
        crate::aws::Dialect::Aws => Endpoint::classify_aws(req.uri().path()),
        crate::aws::Dialect::Gcp => crate::gcp::classify(req.uri().path()),
    };
    let outage = lock(&state.faults).outage;
    if outage {
        lock(&state.stats).record(endpoint, None);
        return Err(Dropped);
    }
    let identity = endpoint.is_identity();
    if identity {
        let now = state.clock.instant_now();
        let peaks = lock(&state.peaks).arrive(now);
        lock(&state.stats).peaks(peaks);
    }
    let reply = respond(&state, endpoint, req).await;
    if identity {
        lock(&state.peaks).leave();
    }
    lock(&state.stats).record(endpoint, Some(reply.status().as_u16()));
    // GCE's every answer (faults and throttling included) names its flavor.
    if state.dialect == crate::aws::Dialect::Gcp {
        return Ok(crate::gcp::flavored(reply));
    }
    Ok(reply)
}

async fn respond(state: &State, endpoint: Endpoint, req: Request<Incoming>) -> Reply {
    // Held until the reply is built: the identity concurrency limit.
    let _permit = match (&state.limits, endpoint.category()) {
        (Some(limits), Some(category)) => match limits.admit(category, state.clock.instant_now()) {
            Admission::Admitted(permit) => permit,
            Admission::Throttled { retry_after_secs } => {
                return throttled(endpoint, retry_after_secs)
            }
        },
        _ => None,
    };
    let latency = lock(&state.faults).latency(endpoint);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let forced = lock(&state.faults).take_forced(endpoint);
    if let Some(forced) = forced {
        return forced_reply(forced);
    }
    if state.dialect == crate::aws::Dialect::Aws {
        return crate::aws::respond(state, endpoint, &req);
    }
    if state.dialect == crate::aws::Dialect::Gcp {
        return crate::gcp::respond(state, &req);
    }
    if endpoint == Endpoint::Unknown {
        return reply::imds_error(StatusCode::NOT_FOUND, "Not found");
    }
    let allowed: &[Method] = if endpoint == Endpoint::ScheduledEvents {
        &[Method::GET, Method::POST]
    } else {
        &[Method::GET]
    };
    if !allowed.contains(req.method()) {
        let allow = allowed
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let reply = reply::imds_error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
        return reply::with_header(reply, ALLOW, &allow);
    }
    if let Some(rejection) = check_headers(endpoint, req.headers()) {
        return rejection;
    }
    let query = match Query::parse(req.uri().query()) {
        Ok(query) => query,
        Err(err) => return query_error(endpoint, &err),
    };
    match endpoint {
        Endpoint::Token => identity::token(state, &query),
        Endpoint::IdentityInfo => identity::info(state, &query),
        Endpoint::Instance => instance::instance(state, req.uri().path(), &query),
        Endpoint::Versions => reply::json(StatusCode::OK, &crate::versions::list_body()),
        Endpoint::Attested => instance::attested(state, &query),
        Endpoint::ScheduledEvents => {
            if req.method() == Method::POST {
                let body = crate::body::read(req.into_body()).await;
                instance::approve_events(state, &query, body.as_deref())
            } else {
                instance::events(state, &query)
            }
        }
        Endpoint::Unknown | Endpoint::SessionToken | Endpoint::UserData => {
            reply::imds_error(StatusCode::NOT_FOUND, "Not found")
        }
    }
}

/// `Metadata: true` (exactly once, lower-case value) and no `X-Forwarded-For`.
fn check_headers(endpoint: Endpoint, headers: &http::HeaderMap) -> Option<Reply> {
    let metadata: Vec<&http::HeaderValue> = headers.get_all("metadata").iter().collect();
    if !matches!(metadata.as_slice(), [value] if value.as_bytes() == b"true") {
        return Some(reply::endpoint_error(
            endpoint,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        ));
    }
    if headers.contains_key("x-forwarded-for") {
        return Some(reply::endpoint_error(
            endpoint,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Requests with X-Forwarded-For are not accepted; IMDS is not intended to be used behind a proxy",
        ));
    }
    None
}

fn query_error(endpoint: Endpoint, err: &QueryError) -> Reply {
    let message = match err {
        QueryError::Duplicate(name) => {
            format!("Query parameter '{name}' is specified more than once")
        }
        QueryError::Encoding => "Query string is not valid percent-encoded UTF-8".to_string(),
    };
    reply::endpoint_error(
        endpoint,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &message,
    )
}

fn throttled(endpoint: Endpoint, retry_after_secs: u64) -> Reply {
    let reply = if endpoint.is_identity() {
        reply::oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "Too many requests. The identity endpoint allows 20 requests per second and 5 at once",
        )
    } else {
        reply::imds_error(StatusCode::TOO_MANY_REQUESTS, "Too many requests")
    };
    reply::with_header(reply, RETRY_AFTER, &retry_after_secs.to_string())
}

fn forced_reply(forced: ForcedStatus) -> Reply {
    let status = StatusCode::from_u16(forced.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = forced.body.unwrap_or_else(|| {
        let reason = status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase();
        serde_json::json!({ "error": reason }).to_string()
    });
    let reply = reply::raw(status, body);
    match forced.retry_after_secs {
        Some(secs) => reply::with_header(reply, RETRY_AFTER, &secs.to_string()),
        None => reply,
    }
}

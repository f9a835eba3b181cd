//! The non-identity endpoints: instance document, attested document,
//! scheduled events. They share the `{"error":"Bad request. ..."}` shape and
//! a strict api-version check.

use http::StatusCode;
use serde_json::Value;

use crate::events::Approval;
use crate::query::Query;
use crate::reply::{self, Reply};
use crate::state::{lock, State};
use crate::versions::{invalid_body, API_VERSIONS, SCHEDULED_EVENTS_VERSIONS};

/// `None` if the api-version is one of `known`, else the 400 to send.
fn check_version(query: &Query, known: &[&str]) -> Option<Reply> {
    match query.get("api-version") {
        Some(v) if known.contains(&v) => None,
        _ => Some(reply::json(StatusCode::BAD_REQUEST, &invalid_body(known))),
    }
}

fn not_found() -> Reply {
    reply::imds_error(StatusCode::NOT_FOUND, "Not found")
}

/// `/metadata/instance[/sub/path]`.
pub(super) fn instance(state: &State, path: &str, query: &Query) -> Reply {
    if let Some(rejection) = check_version(query, API_VERSIONS) {
        return rejection;
    }
    let text = match query.get("format") {
        None | Some("json") => false,
        Some("text") => true,
        Some(_) => {
            return reply::imds_error(
                StatusCode::BAD_REQUEST,
                "Bad request. format must be json or text",
            )
        }
    };
    let rest = path.strip_prefix("/metadata/instance").unwrap_or("");
    let Some(segments) = crate::instance::segments(rest) else {
        return not_found();
    };
    let Some(node) = crate::instance::lookup(&state.instance_doc, &segments) else {
        return not_found();
    };
    match (node, text) {
        (Value::String(leaf), true) => reply::text(StatusCode::OK, leaf.clone()),
        (Value::String(_), false) => reply::imds_error(
            StatusCode::BAD_REQUEST,
            "Bad request. Json format is not supported for leaf nodes; use format=text",
        ),
        (_, true) => reply::imds_error(
            StatusCode::BAD_REQUEST,
            "Bad request. Text format is supported only for leaf nodes",
        ),
        (node, false) => reply::json(StatusCode::OK, node),
    }
}

/// `/metadata/attested/document`.
pub(super) fn attested(state: &State, query: &Query) -> Reply {
    if let Some(rejection) = check_version(query, API_VERSIONS) {
        return rejection;
    }
    let nonce = query.get("nonce");
    if nonce.is_some_and(|n| !crate::attested::nonce_ok(n)) {
        return reply::imds_error(
            StatusCode::BAD_REQUEST,
            "Bad request. nonce must be 1 to 32 alphanumeric characters",
        );
    }
    match crate::attested::document(&state.config, &state.signer, nonce, state.clock.unix_now()) {
        Ok(doc) => reply::json(StatusCode::OK, &doc),
        Err(_) => reply::imds_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error"),
    }
}

/// GET `/metadata/scheduledevents`.
pub(super) fn events(state: &State, query: &Query) -> Reply {
    if let Some(rejection) = check_version(query, SCHEDULED_EVENTS_VERSIONS) {
        return rejection;
    }
    match lock(&state.events).document() {
        Ok(doc) => reply::json(StatusCode::OK, &doc),
        Err(_) => reply::imds_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error"),
    }
}

/// POST `/metadata/scheduledevents` with `{"StartRequests":[{"EventId":..}]}`.
pub(super) fn approve_events(state: &State, query: &Query, body: Option<&[u8]>) -> Reply {
    if let Some(rejection) = check_version(query, SCHEDULED_EVENTS_VERSIONS) {
        return rejection;
    }
    let Some(Ok(approval)) = body.map(serde_json::from_slice::<Approval>) else {
        return reply::imds_error(
            StatusCode::BAD_REQUEST,
            "Bad request. Body must be {\"StartRequests\":[{\"EventId\":\"...\"}]}",
        );
    };
    lock(&state.events).approve(&approval);
    reply::empty_ok()
}

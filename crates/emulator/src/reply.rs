//! Building HTTP responses, and the two IMDS error shapes.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};
use http_body_util::Full;

use crate::endpoint::Endpoint;

/// What every handler returns.
pub(crate) type Reply = Response<Full<Bytes>>;

fn with_type(status: StatusCode, content_type: &'static str, body: Bytes) -> Reply {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A JSON body.
pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Reply {
    match serde_json::to_vec(value) {
        Ok(body) => with_type(status, "application/json; charset=utf-8", Bytes::from(body)),
        Err(_) => with_type(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json; charset=utf-8",
            Bytes::from_static(br#"{"error":"internal error"}"#),
        ),
    }
}

/// A plain-text body.
pub(crate) fn text(status: StatusCode, body: String) -> Reply {
    with_type(status, "text/plain; charset=utf-8", Bytes::from(body))
}

/// A body of unknown kind (forced faults): JSON if it parses, else text.
pub(crate) fn raw(status: StatusCode, body: String) -> Reply {
    if serde_json::from_str::<serde::de::IgnoredAny>(&body).is_ok() {
        with_type(status, "application/json; charset=utf-8", Bytes::from(body))
    } else {
        text(status, body)
    }
}

/// An empty 200.
pub(crate) fn empty_ok() -> Reply {
    Response::new(Full::new(Bytes::new()))
}

/// The identity endpoints' error shape.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Reply {
    json(
        status,
        &serde_json::json!({ "error": error, "error_description": description }),
    )
}

/// The instance endpoints' error shape.
pub(crate) fn imds_error(status: StatusCode, message: &str) -> Reply {
    json(status, &serde_json::json!({ "error": message }))
}

/// An error in the shape `endpoint` uses; `code` is the OAuth error code.
pub(crate) fn endpoint_error(
    endpoint: Endpoint,
    status: StatusCode,
    code: &str,
    message: &str,
) -> Reply {
    if endpoint.is_identity() {
        oauth_error(status, code, message)
    } else {
        imds_error(status, &format!("Bad request. {message}"))
    }
}

/// Adds a header (values here are always valid ASCII).
pub(crate) fn with_header(mut reply: Reply, name: http::header::HeaderName, value: &str) -> Reply {
    if let Ok(value) = HeaderValue::from_str(value) {
        reply.headers_mut().insert(name, value);
    }
    reply
}

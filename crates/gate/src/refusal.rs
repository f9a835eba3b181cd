//! Every way a request ends other than "served", and the one place that maps
//! each to an HTTP answer and an audit outcome.

use crate::caller::CallerError;
use crate::token_path::WrongIdentity;
use crate::upstream::UpstreamError;
use gatehouse_imds::{CanonError, ImdsError};

/// Each variant's message is the audit line's `reason` (it may say more than
/// the client is told): written from the type, one sentence, lowercase.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("method not allowed: IMDS answers GET, and POST on scheduled events")]
    MethodNotAllowed,
    #[error("`X-Forwarded-For` present: IMDS refuses proxied requests")]
    ForwardedFor,
    /// `Transfer-Encoding` (with or without `Content-Length`): framing two
    /// parsers may read differently (RFC 9112 §6.1), refused, not guessed.
    #[error("`Transfer-Encoding` present: ambiguous framing, connection closed")]
    AmbiguousFraming,
    #[error("no single `Metadata: true` header")]
    MissingMetadata,
    /// GCP: GCE answers 403 without exactly one `Metadata-Flavor: Google`.
    #[error("no single `Metadata-Flavor: Google` header")]
    MissingFlavor,
    /// GCP: a recursive listing that may hold service accounts came back
    /// in a form the gate cannot take tokens out of.
    #[error(
        "a recursive listing of service accounts was not a JSON object: not served unfiltered"
    )]
    Unfiltered,
    #[error(transparent)]
    NotCanonical(CanonError),
    #[error("token request without a `resource` audience")]
    MissingResource,
    #[error("the `resource` parameter is not a valid audience")]
    BadAudience,
    #[error("no identity of the policy matches the request's selector")]
    IdentityNotFound,
    #[error("several identities match and no selector picks one")]
    MultipleIdentities,
    /// The policy said no; `Display` is the decision's public reason.
    #[error("{0}")]
    Denied(gatehouse_policy::Reason),
    #[error("caller unknown: {0}")]
    CallerUnknown(CallerError),
    #[error("request body too large, or not sent within 10 s")]
    BodyTooLarge,
    /// The answer was for another identity than the one decided on.
    #[error(transparent)]
    WrongIdentity(#[from] WrongIdentity),
    #[error(transparent)]
    Upstream(UpstreamError),
    #[error("the metadata service did not answer in time")]
    UpstreamTimeout,
    /// No slot under IMDS's rate limits within the caller's time budget.
    #[error("no slot under the metadata service's rate limits in time")]
    Limited,
    #[error("the audit log is unavailable")]
    AuditUnavailable,
    /// AWS: no (or no live) session token, or one issued to another uid:
    /// IMDS's 401 under `HttpTokens=required`.
    #[error("session token refused: {0}")]
    SessionRequired(crate::sessions::SessionError),
    /// AWS: `X-aws-ec2-metadata-token-ttl-seconds` missing or not 1–21600.
    #[error("`X-aws-ec2-metadata-token-ttl-seconds` missing or not 1-21600")]
    SessionTtl,
    /// AWS: this uid holds too many live session tokens.
    #[error("too many live session tokens for this uid")]
    SessionsFull,
}

/// How an audit line classifies the end of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Malformed or non-IMDS request; answered like IMDS, no policy decision.
    Rejected,
    Denied,
    /// Allowed, but the upstream part failed.
    Failed,
}

impl Outcome {
    /// The audit record's outcome.
    pub fn audit(self) -> gatehouse_audit::Outcome {
        match self {
            Outcome::Rejected => gatehouse_audit::Outcome::Rejected,
            Outcome::Denied => gatehouse_audit::Outcome::Deny,
            Outcome::Failed => gatehouse_audit::Outcome::Error,
        }
    }
}

impl Refusal {
    pub fn answer(&self, decision_id: &str) -> (ImdsError, Outcome) {
        use Outcome::*;
        match self {
            Refusal::MethodNotAllowed => (ImdsError::method_not_allowed(), Rejected),
            Refusal::ForwardedFor => (ImdsError::forwarded_for(), Rejected),
            Refusal::AmbiguousFraming => (
                ImdsError::bad_request(
                    "Transfer-Encoding is not accepted: send a body with Content-Length",
                ),
                Rejected,
            ),
            Refusal::MissingMetadata => (ImdsError::missing_metadata(), Rejected),
            Refusal::MissingFlavor => (
                ImdsError::new(403, "forbidden", "Missing Metadata-Flavor:Google header."),
                Rejected,
            ),
            Refusal::Unfiltered => (
                ImdsError::bad_gateway(
                    "the metadata server's listing could not be filtered",
                    decision_id,
                ),
                Failed,
            ),
            Refusal::NotCanonical(CanonError::UnknownPath) => (ImdsError::not_found(), Rejected),
            Refusal::NotCanonical(e) => (ImdsError::bad_request(&e.to_string()), Rejected),
            Refusal::MissingResource => (
                ImdsError::bad_request("Required audience parameter not specified"),
                Rejected,
            ),
            Refusal::BadAudience => (
                ImdsError::bad_request("the resource parameter is not a valid audience"),
                Rejected,
            ),
            Refusal::IdentityNotFound => (ImdsError::identity_not_found(), Rejected),
            Refusal::MultipleIdentities => (ImdsError::multiple_identities(), Rejected),
            Refusal::BodyTooLarge => (
                ImdsError::bad_request("request body too large, or not sent within 10 s"),
                Rejected,
            ),
            Refusal::Denied(reason) => (
                ImdsError::access_denied(&reason.to_string(), decision_id),
                Denied,
            ),
            Refusal::CallerUnknown(_) => {
                (ImdsError::access_denied("caller unknown", decision_id), Denied)
            }
            Refusal::WrongIdentity(_) => (
                ImdsError::bad_gateway("upstream answered for another identity", decision_id),
                Failed,
            ),
            Refusal::Upstream(_) => (
                ImdsError::unavailable("metadata service unavailable", decision_id),
                Failed,
            ),
            Refusal::UpstreamTimeout => (
                ImdsError::new(
                    504,
                    "gateway_timeout",
                    &format!("gatehouse: metadata service did not answer in time (decision {decision_id})"),
                ),
                Failed,
            ),
            Refusal::Limited => (
                ImdsError::new(
                    429,
                    "too_many_requests",
                    &format!("gatehouse: too many requests to the metadata service, retry later (decision {decision_id})"),
                ),
                Failed,
            ),
            Refusal::AuditUnavailable => (
                ImdsError::unavailable("audit log unavailable, refusing to serve unrecorded", decision_id),
                Failed,
            ),
            Refusal::SessionRequired(_) => (
                ImdsError::new(401, "unauthorized", "a session token is required"),
                Rejected,
            ),
            Refusal::SessionTtl => (
                ImdsError::bad_request("session token TTL must be 1 to 21600 seconds"),
                Rejected,
            ),
            Refusal::SessionsFull => (
                ImdsError::new(
                    429,
                    "too_many_requests",
                    &format!("gatehouse: too many live session tokens for this user (decision {decision_id})"),
                ),
                Rejected,
            ),
        }
    }

    /// The `Retry-After` (seconds) that goes with the answer: a caller told
    /// the metadata service failed is told when asking again makes sense.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Refusal::Upstream(_) | Refusal::UpstreamTimeout => {
                Some(crate::cache::NEGATIVE_TTL.as_secs().max(1))
            }
            Refusal::Limited | Refusal::SessionsFull => Some(1),
            _ => None,
        }
    }

    /// The detail that goes into the audit line (may say more than the client sees).
    pub fn detail(&self) -> String {
        self.to_string()
    }
}

/// The status's reason phrase (`Not Found`), for the error pages.
fn reason_phrase(status: u16) -> &'static str {
    http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// The gate's message as HTML text.
fn html_escape(message: &str) -> String {
    message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// AWS answers errors as a small XHTML page; the gate's reason (never a
/// token) goes in a paragraph of its own, for the person reading it.
pub fn aws_error_page(status: u16, message: &str) -> String {
    let (reason, escaped) = (reason_phrase(status), html_escape(message));
    format!(
        "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n <head>\n  <title>{status} - {reason}</title>\n </head>\n <body>\n  <h1>{status} - {reason}</h1>\n  <p>{escaped}</p>\n </body>\n</html>\n"
    )
}

/// GCE answers errors as a small HTML page; the gate's reason (never a
/// token) goes in a paragraph of its own.
pub fn gcp_error_page(status: u16, message: &str) -> String {
    let (reason, escaped) = (reason_phrase(status), html_escape(message));
    format!(
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error {status} ({reason})</title>\n  <p><b>{status}.</b> <ins>That\u{2019}s an error.</ins>\n  <p>{escaped}\n</html>\n"
    )
}

#[cfg(test)]
mod tests;

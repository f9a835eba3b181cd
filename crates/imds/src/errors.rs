//! The error answers IMDS gives, and gatehouse's own in the same shape.
//!
//! Every body is `{"error": ..., "error_description": ...}` so clients that
//! parse IMDS errors surface gatehouse's reason unchanged.

use serde::Serialize;

/// A status and a JSON body, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImdsError {
    pub status: u16,
    pub body: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl ImdsError {
    pub fn new(status: u16, error: &str, description: &str) -> Self {
        let body = serde_json::to_string(&Body {
            error,
            error_description: description,
        })
        .unwrap_or_else(|_| String::from("{\"error\":\"internal\"}"));
        ImdsError { status, body }
    }

    /// IMDS's answer to a request without `Metadata: true`. Clients probe with
    /// exactly this request, so it must come back at once.
    pub fn missing_metadata() -> Self {
        Self::new(
            400,
            "invalid_request",
            "Required metadata header not specified",
        )
    }

    /// IMDS refuses proxied requests; so does the gate.
    pub fn forwarded_for() -> Self {
        Self::new(
            400,
            "invalid_request",
            "Request contains X-Forwarded-For header; IMDS is not intended to be used behind a proxy",
        )
    }

    pub fn bad_request(description: &str) -> Self {
        Self::new(400, "invalid_request", description)
    }

    pub fn identity_not_found() -> Self {
        Self::new(400, "invalid_request", "Identity not found")
    }

    pub fn multiple_identities() -> Self {
        Self::new(
            400,
            "invalid_request",
            "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request",
        )
    }

    pub fn not_found() -> Self {
        Self::new(404, "not_found", "The requested resource was not found")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "method_not_allowed",
            "The HTTP method is not allowed for this path",
        )
    }

    /// gatehouse's denial. The reason is short and never names other
    /// principals; the decision id finds the full trail in the audit log.
    pub fn access_denied(reason: &str, decision_id: &str) -> Self {
        Self::new(
            403,
            "access_denied",
            &format!("gatehouse: {reason} (decision {decision_id})"),
        )
    }

    pub fn bad_gateway(description: &str, decision_id: &str) -> Self {
        Self::new(
            502,
            "bad_gateway",
            &format!("gatehouse: {description} (decision {decision_id})"),
        )
    }

    pub fn unavailable(description: &str, decision_id: &str) -> Self {
        Self::new(
            503,
            "service_unavailable",
            &format!("gatehouse: {description} (decision {decision_id})"),
        )
    }
}

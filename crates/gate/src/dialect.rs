//! The per-cloud steps of the request path, behind one interface.
//!
//! What is the same on every cloud lives in `handler.rs` (decision ids, the
//! decision itself with caller identification, the audit line, metrics) and
//! `token_path.rs` (cache, shared flights, retries). What differs — which
//! headers a request must carry, how its target is canonicalised into an
//! endpoint and an action, how an identity and an audience are read from
//! it, how the answer is shaped and filtered, what an error looks like —
//! is a dialect: one module per cloud (`azure.rs`, `aws.rs`, `gcp.rs`), each
//! reached only through the two functions here.
//!
//! A fourth dialect is a fourth module with its own `serve` (built from
//! [`Gate::decide`](crate::Gate), `TokenPath::serve` and the fetcher) and
//! error shape, a variant here, and a `Cloud` in `gatehouse-policy`.

use crate::handler::{ConnInfo, Response, Trail};
use crate::refusal::Refusal;
use crate::Gate;
use gatehouse_imds::ImdsError;
use gatehouse_policy::{Cloud, Policy};

/// A metadata dialect the gate speaks (chosen by `--cloud`, never guessed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Azure,
    Aws,
    Gcp,
}

impl Dialect {
    pub(crate) fn of(cloud: Cloud) -> Dialect {
        match cloud {
            Cloud::Azure => Dialect::Azure,
            Cloud::Aws => Dialect::Aws,
            Cloud::Gcp => Dialect::Gcp,
        }
    }

    /// Everything between "a request arrived" and "this is the answer":
    /// the header rules, canonicalisation, identity and audience, the
    /// decision (through [`Gate::decide`]), serving and the answer's shape.
    /// A refusal is answered by [`Dialect::refusal`].
    #[allow(clippy::too_many_arguments, reason = "one request's parts")]
    pub(crate) async fn serve(
        self,
        gate: &Gate,
        conn: &ConnInfo,
        policy: &Policy,
        parts: &http::request::Parts,
        body: hyper::body::Incoming,
        trail: &mut Trail,
        decision_id: &str,
    ) -> Result<(Response, String), Refusal> {
        match self {
            Dialect::Azure => {
                gate.serve_azure(conn, policy, parts, body, trail, decision_id)
                    .await
            }
            // Neither takes a request body: it is never read.
            Dialect::Aws => gate.serve_aws(conn, policy, parts, trail).await,
            Dialect::Gcp => gate.serve_gcp(conn, policy, parts, trail).await,
        }
    }

    /// A refusal in the dialect's own shape (status, body, headers the
    /// cloud's clients look for).
    pub(crate) fn refusal(
        self,
        refusal: &Refusal,
        err: &ImdsError,
        retry_after: Option<&str>,
    ) -> Response {
        match self {
            Dialect::Azure => crate::azure::error_response(err, retry_after),
            Dialect::Aws => crate::aws::error_response(refusal, err, retry_after),
            Dialect::Gcp => crate::gcp::error_response(refusal, err, retry_after),
        }
    }
}

/// The `error_description` of an IMDS error's JSON body, or nothing: the
/// message a dialect's own error page carries.
pub(crate) fn error_description(err: &ImdsError) -> String {
    serde_json::from_str::<serde_json::Value>(&err.body)
        .ok()
        .and_then(|v| {
            v.get("error_description")
                .and_then(|d| d.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_default()
}

/// An upstream answer passed on as it came: its status, content type,
/// body and `Retry-After`.
pub(crate) fn passed_on(answer: crate::upstream::UpstreamAnswer) -> Response {
    crate::handler::json_response(
        answer.status,
        answer.content_type.as_deref(),
        answer.body,
        answer.retry_after.as_deref(),
    )
}

//! The GCP dialect of the request path (Google Compute Engine's metadata
//! server): `Metadata-Flavor: Google` (403 without, like GCE) and no
//! `X-Forwarded-For` → canonicalise (`gatehouse_imds::gcp`) → endpoint →
//! action; the service account (`default` or an email) → the policy's
//! identity, the scopes (access token) or `audience` (ID token) → decide →
//! tokens from the cache, the rest forwarded with the account named by the
//! policy's email → recursive listings stripped of tokens → every answer
//! with `Metadata-Flavor: Google` → audit.
//!
//! Actions: access and ID tokens are `Gatehouse/token/read` scoped to the
//! account identity and the audience — each of an access token's scopes
//! must be allowed (a token without `scopes=`, which GCE issues with the
//! account's own scopes, only by an assignment not limited to audiences),
//! an ID token's `audience` as sent, without normalisation (its `aud` is
//! exactly that string). A service account's description (`email`,
//! `aliases`, `scopes`, the listing of accounts) is
//! `Gatehouse/identityInfo/read`; everything else — instance and project
//! attributes included — `Gatehouse/instance/read`.

use crate::handler::{json_response, truncate, ConnInfo, Response, Trail};
use crate::refusal::{gcp_error_page, Refusal};
use crate::Gate;
use bytes::Bytes;
use gatehouse_imds::gcp::GcpRoot;
use gatehouse_imds::{canonicalise_gcp, CanonError, GcpEndpoint, GcpTarget, ImdsError};
use gatehouse_policy::{Action, Policy};
use http::{HeaderMap, HeaderValue, Method};

const FLAVOR: &str = "metadata-flavor";

/// Every answer says it is Google's metadata server: google-auth's probe
/// checks it.
fn flavored(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(FLAVOR, HeaderValue::from_static("Google"));
    response
}

/// A refusal in GCE's shape: the status it would give (403 without the
/// flavor header or with `X-Forwarded-For`, 404 for an account or path it
/// does not have), a small HTML page, the flavor header.
pub(crate) fn error_response(
    refusal: &Refusal,
    err: &ImdsError,
    retry_after: Option<&str>,
) -> Response {
    let status = match refusal {
        Refusal::ForwardedFor | Refusal::MissingFlavor => 403,
        Refusal::IdentityNotFound
        | Refusal::MultipleIdentities
        | Refusal::NotCanonical(CanonError::UnknownPath) => 404,
        _ => err.status,
    };
    let message = crate::dialect::error_description(err);
    flavored(json_response(
        status,
        Some("text/html; charset=UTF-8"),
        Bytes::from(gcp_error_page(status, &message)),
        retry_after,
    ))
}

/// Exactly one `Metadata-Flavor`, and it says `Google`.
fn flavor(headers: &HeaderMap) -> Result<(), Refusal> {
    let mut all = headers.get_all(FLAVOR).iter();
    match (all.next(), all.next()) {
        (Some(v), None) if v.as_bytes() == b"Google" => Ok(()),
        _ => Err(Refusal::MissingFlavor),
    }
}

fn is_token_key(k: &str) -> bool {
    k.eq_ignore_ascii_case("token") || k.eq_ignore_ascii_case("identity")
}

/// One account's description without any token in it.
fn strip_account(v: &mut serde_json::Value) -> Result<(), Refusal> {
    let obj = v.as_object_mut().ok_or(Refusal::Unfiltered)?;
    obj.retain(|k, _| !is_token_key(k));
    Ok(())
}

/// Every account of a `{name: description}` map, stripped.
fn strip_accounts(v: Option<&mut serde_json::Value>) -> Result<(), Refusal> {
    let Some(v) = v else { return Ok(()) };
    let accounts = v.as_object_mut().ok_or(Refusal::Unfiltered)?;
    accounts.values_mut().try_for_each(strip_account)
}

/// A recursive listing that may hold service accounts, with every `token`
/// and `identity` taken out of every account (GCE puts none there; the
/// gate does not rely on it). Anything but a JSON object is not served.
fn strip_tokens(target: &GcpTarget, body: &[u8]) -> Result<Bytes, Refusal> {
    let mut v: serde_json::Value = serde_json::from_slice(body).map_err(|_| Refusal::Unfiltered)?;
    if !v.is_object() {
        return Err(Refusal::Unfiltered);
    }
    let in_instance = |i: &mut serde_json::Value| -> Result<(), Refusal> {
        let Some(obj) = i.as_object_mut() else {
            return Err(Refusal::Unfiltered);
        };
        for (k, accounts) in obj.iter_mut() {
            if k.eq_ignore_ascii_case("serviceAccounts")
                || k.eq_ignore_ascii_case("service-accounts")
            {
                strip_accounts(Some(accounts))?;
            }
        }
        Ok(())
    };
    match &target.endpoint {
        GcpEndpoint::Account { .. } => strip_account(&mut v)?,
        GcpEndpoint::Accounts => strip_accounts(Some(&mut v))?,
        GcpEndpoint::Metadata {
            root: GcpRoot::V1,
            subpath,
        } if subpath.is_empty() => {
            if let Some(obj) = v.as_object_mut() {
                for (k, i) in obj.iter_mut() {
                    if k.eq_ignore_ascii_case("instance") {
                        in_instance(i)?;
                    }
                }
            }
        }
        GcpEndpoint::Metadata { .. } => in_instance(&mut v)?,
        GcpEndpoint::AccessToken { .. } | GcpEndpoint::IdToken { .. } => {
            return Err(Refusal::Unfiltered)
        }
    }
    serde_json::to_vec(&v)
        .map(Bytes::from)
        .map_err(|_| Refusal::Unfiltered)
}

impl Gate {
    pub(crate) async fn serve_gcp(
        &self,
        conn: &ConnInfo,
        policy: &Policy,
        parts: &http::request::Parts,
        trail: &mut Trail,
    ) -> Result<(Response, String), Refusal> {
        trail.request.target = Some(truncate(&parts.uri.to_string(), 512));
        if parts.method != Method::GET {
            return Err(Refusal::MethodNotAllowed);
        }
        if parts.headers.contains_key(http::header::TRANSFER_ENCODING) {
            return Err(Refusal::AmbiguousFraming);
        }
        // GCE refuses proxied requests; so does the gate.
        if parts.headers.contains_key("x-forwarded-for") {
            return Err(Refusal::ForwardedFor);
        }
        flavor(&parts.headers)?;
        let target =
            canonicalise_gcp(parts.uri.path(), parts.uri.query()).map_err(Refusal::NotCanonical)?;
        trail.request.target = None;
        trail.request.endpoint = Some(target.endpoint.name().to_owned());

        // The account first: one the policy does not declare is nobody's
        // (404, as GCE answers for an account the instance lacks).
        let identity = match target.endpoint.account() {
            Some(account) => {
                trail.request.selector = Some(
                    if account == "default" {
                        "default"
                    } else {
                        "email"
                    }
                    .to_owned(),
                );
                Some(
                    policy
                        .gcp_account(account)
                        .ok_or(Refusal::IdentityNotFound)?,
                )
            }
            None => None,
        };
        let action = match &target.endpoint {
            GcpEndpoint::AccessToken { .. } | GcpEndpoint::IdToken { .. } => Action::TokenRead,
            GcpEndpoint::Account { .. } | GcpEndpoint::Accounts => Action::IdentityInfoRead,
            GcpEndpoint::Metadata { .. } => Action::InstanceRead,
        };
        // The audiences to decide on: every scope of an access token (each
        // must be allowed), an ID token's audience exactly as sent.
        let audiences: Vec<Option<String>> = match &target.endpoint {
            GcpEndpoint::AccessToken { .. } => match &target.params.scopes {
                Some(scopes) => scopes
                    .iter()
                    .map(|s| {
                        gatehouse_policy::normalise_audience(s)
                            .map(Some)
                            .ok_or(Refusal::BadAudience)
                    })
                    .collect::<Result<_, _>>()?,
                None => vec![None],
            },
            GcpEndpoint::IdToken { .. } => {
                let aud = target.params.audience.clone().unwrap_or_default();
                gatehouse_policy::normalise_audience(&aud).ok_or(Refusal::BadAudience)?;
                vec![Some(aud)]
            }
            _ => vec![None],
        };
        trail.request.audience = match &target.endpoint {
            GcpEndpoint::AccessToken { .. } => target.scopes(),
            GcpEndpoint::IdToken { .. } => target.params.audience.clone(),
            _ => None,
        };
        trail.request.action = Some(action.as_str().to_owned());
        trail.request.identity = identity.map(|i| i.name.clone());
        // Upstream, the account is the policy's email: what was decided on
        // is what GCE is asked for, whatever `default` means there.
        let email = identity.and_then(|i| i.email.as_deref());
        let path = target.path_with_account(email);
        trail.request.path = Some(path.clone());

        let mut decided = None;
        for audience in &audiences {
            let request = gatehouse_policy::Request::new(action)
                .identity(identity.map(|i| i.name.as_str()))
                .audience(audience.as_deref())
                .path(&path)
                .at(self.clock.now());
            decided = Some(
                self.decide(conn, policy, action, &request, trail, None)
                    .await?,
            );
        }
        let Some((facts, decision)) = decided else {
            return Err(Refusal::BadAudience);
        };

        let upstream = target.upstream_target(email);
        let sent = std::time::Instant::now();
        let served = match (&target.endpoint, identity) {
            (GcpEndpoint::AccessToken { .. } | GcpEndpoint::IdToken { .. }, Some(id)) => {
                let (shape, resource, variant) = match &target.endpoint {
                    GcpEndpoint::IdToken { .. } => (
                        crate::cache::Shape::GcpIdentity,
                        target.params.audience.clone().unwrap_or_default(),
                        target.query(),
                    ),
                    _ => (
                        crate::cache::Shape::GcpAccess,
                        target.scopes().unwrap_or_default(),
                        String::new(),
                    ),
                };
                let key = crate::cache::Key {
                    shape,
                    identity: id.name.clone(),
                    ids: format!("gcp|{}", id.email.as_deref().unwrap_or("")),
                    resource,
                    selector: "gcp_service_account",
                    api_version: variant,
                };
                self.tokens
                    .serve(id, key, &upstream, facts.socket_uid)
                    .await
            }
            _ => {
                self.forward(&http::Method::GET, &upstream, None, facts.socket_uid)
                    .await
            }
        };
        let served = trail.served(served, sent)?;
        let mut answer = served.answer;
        if target.covers_accounts() && answer.status == 200 {
            answer.body = strip_tokens(&target, &answer.body)?;
        }
        Ok((
            flavored(crate::dialect::passed_on(answer)),
            decision.reason().to_string(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(t: &str) -> GcpTarget {
        let (p, q) = t.split_once('?').unwrap_or((t, ""));
        canonicalise_gcp(p, Some(q)).unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    fn stripped(t: &str, body: &str) -> Result<serde_json::Value, String> {
        strip_tokens(&target(t), body.as_bytes())
            .map(|b| serde_json::from_slice(&b).unwrap_or_default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn recursive_listings_lose_every_token() {
        let account = r#"{"aliases":["default"],"email":"a@p.iam.gserviceaccount.com","scopes":["s"],"token":"SECRET","Identity":"SECRET"}"#;
        let rows = [
            (
                "/computeMetadata/v1/instance/service-accounts/default/?recursive=true",
                account.to_owned(),
            ),
            (
                "/computeMetadata/v1/instance/service-accounts/?recursive=true",
                format!(r#"{{"default":{account},"a@p.iam.gserviceaccount.com":{account}}}"#),
            ),
            (
                "/computeMetadata/v1/instance/?recursive=true",
                format!(
                    r#"{{"id":1,"serviceAccounts":{{"default":{account}}},"attributes":{{"token":"kept"}}}}"#
                ),
            ),
            (
                "/computeMetadata/v1/?recursive=true",
                format!(
                    r#"{{"instance":{{"serviceAccounts":{{"default":{account}}}}},"project":{{"projectId":"p"}}}}"#
                ),
            ),
        ];
        for (t, body) in rows {
            let out = stripped(t, &body).unwrap_or_else(|e| panic!("{t}: {e}"));
            let text = out.to_string();
            assert!(!text.contains("SECRET"), "{t}: {text}");
            assert!(text.contains("a@p.iam.gserviceaccount.com"), "{t}: {text}");
        }
        // An attribute that happens to be called `token` is data, not a token.
        let out = stripped(
            "/computeMetadata/v1/instance/?recursive=true",
            r#"{"attributes":{"token":"kept"}}"#,
        )
        .unwrap();
        assert_eq!(out["attributes"]["token"], "kept");
    }

    #[test]
    fn what_cannot_be_filtered_is_not_served() {
        for (t, body) in [
            (
                "/computeMetadata/v1/instance/service-accounts/?recursive=true",
                "default/\n",
            ),
            (
                "/computeMetadata/v1/instance/service-accounts/?recursive=true",
                "[1]",
            ),
            (
                "/computeMetadata/v1/instance/service-accounts/?recursive=true",
                r#"{"default":"token SECRET"}"#,
            ),
            (
                "/computeMetadata/v1/instance/?recursive=true",
                r#"{"serviceAccounts":[]}"#,
            ),
        ] {
            assert!(stripped(t, body).is_err(), "{t} {body}");
        }
    }
}

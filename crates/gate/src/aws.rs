//! The AWS dialect of the request path (IMDSv2): canonicalise
//! (`gatehouse_imds::aws`) → endpoint → action, role → the session token
//! bound to the kernel-reported caller → decide → serve (credentials from
//! the cache, the rest forwarded with the gate's own session) → audit.
//!
//! Action words are the Azure ones where the meaning is the same — role
//! credentials are `Gatehouse/token/read` scoped to the role identity,
//! meta-data is `Gatehouse/instance/read`, the signed instance-identity
//! document `Gatehouse/attestedDocument/read` — and `Gatehouse/userData/read`
//! for user data, which Azure has no like of.

use crate::handler::{json_response, truncate, ConnInfo, Response, Trail};
use crate::refusal::{aws_error_page, Refusal};
use crate::sessions::{SessionError, TTL_MAX, TTL_MIN};
use crate::Gate;
use bytes::Bytes;
use gatehouse_imds::{canonicalise_aws, AwsEndpoint, ImdsError};
use gatehouse_policy::{Action, Identity, IdentityKind, Policy};
use gatehouse_sys::CallerFacts;
use http::{HeaderMap, Method};
use std::time::Duration;

const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";

/// A refusal in AWS's shape: the status IMDS would give (403 for
/// `X-Forwarded-For`, 404 for a role it does not have), an XHTML page.
pub(crate) fn error_response(
    refusal: &Refusal,
    err: &ImdsError,
    retry_after: Option<&str>,
) -> Response {
    let status = match refusal {
        Refusal::ForwardedFor => 403,
        Refusal::IdentityNotFound | Refusal::MultipleIdentities => 404,
        _ => err.status,
    };
    let message = crate::dialect::error_description(err);
    json_response(
        status,
        Some("text/html"),
        Bytes::from(aws_error_page(status, &message)),
        retry_after,
    )
}

/// The one session token a request carries, if any.
fn session_token(headers: &HeaderMap) -> Result<Option<&str>, Refusal> {
    let mut all = headers.get_all(TOKEN_HEADER).iter();
    match (all.next(), all.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => v
            .to_str()
            .map(Some)
            .map_err(|_| Refusal::SessionRequired(SessionError::Unknown)),
        _ => Err(Refusal::SessionRequired(SessionError::Several)),
    }
}

/// `X-aws-ec2-metadata-token-ttl-seconds`: exactly one, an integer 1–21600.
fn ttl(headers: &HeaderMap) -> Result<Duration, Refusal> {
    let mut all = headers.get_all(TTL_HEADER).iter();
    let secs = match (all.next(), all.next()) {
        (Some(v), None) => v.to_str().ok().and_then(|v| v.parse::<u64>().ok()),
        _ => None,
    };
    secs.filter(|s| (TTL_MIN..=TTL_MAX).contains(s))
        .map(Duration::from_secs)
        .ok_or(Refusal::SessionTtl)
}

impl Gate {
    pub(crate) async fn serve_aws(
        &self,
        conn: &ConnInfo,
        policy: &Policy,
        parts: &http::request::Parts,
        trail: &mut Trail,
    ) -> Result<(Response, String), Refusal> {
        trail.request.target = Some(truncate(&parts.uri.to_string(), 512));
        if parts.headers.contains_key(http::header::TRANSFER_ENCODING) {
            return Err(Refusal::AmbiguousFraming);
        }
        // AWS refuses it on the PUT; the gate everywhere, so that an SSRF
        // through a proxy cannot use IMDSv1 either where it is allowed.
        if parts.headers.contains_key("x-forwarded-for") {
            return Err(Refusal::ForwardedFor);
        }
        let target =
            canonicalise_aws(parts.uri.path(), parts.uri.query()).map_err(Refusal::NotCanonical)?;
        let wanted = match target.endpoint {
            AwsEndpoint::SessionToken => Method::PUT,
            _ => Method::GET,
        };
        if parts.method != wanted {
            return Err(Refusal::MethodNotAllowed);
        }
        trail.request.target = None;
        trail.request.endpoint = Some(target.endpoint.name().to_owned());
        if target.endpoint == AwsEndpoint::SessionToken {
            trail.request.path = Some(target.path());
            return self.issue_session(conn, &parts.headers, trail).await;
        }
        let token = session_token(&parts.headers)?;
        if token.is_none() && !policy.aws_allow_imdsv1() {
            return Err(Refusal::SessionRequired(SessionError::Missing));
        }
        let bound = |facts: &CallerFacts| match token {
            Some(t) => self
                .sessions
                .check(t, facts.socket_uid, tokio::time::Instant::now())
                .map_err(Refusal::SessionRequired),
            None => Ok(()),
        };
        let (action, identity) = match &target.endpoint {
            AwsEndpoint::Credentials { role } => (
                Action::TokenRead,
                Some(policy.aws_role(role).ok_or(Refusal::IdentityNotFound)?),
            ),
            AwsEndpoint::CredentialsList => (Action::TokenRead, None),
            AwsEndpoint::UserData => (Action::UserDataRead, None),
            AwsEndpoint::IdentityDocument { .. } => (Action::AttestedDocumentRead, None),
            AwsEndpoint::Metadata { .. } | AwsEndpoint::SessionToken => {
                (Action::InstanceRead, None)
            }
        };
        trail.request.action = Some(action.as_str().to_owned());
        trail.request.api_version = Some(target.version.clone()).filter(|v| !v.is_empty());

        // The listing names the role: a caller sees it only if it may have
        // that role's credentials (an undeclared role is nobody's).
        let (facts, decision, identity) = if target.endpoint == AwsEndpoint::CredentialsList {
            let roles: Vec<&Identity> = policy
                .identities()
                .filter(|i| i.kind == IdentityKind::AwsRole)
                .collect();
            let mut last = Refusal::IdentityNotFound;
            let mut found = None;
            for role in roles {
                trail.request.identity = Some(role.name.clone());
                let path = target.path();
                trail.request.path = Some(path.clone());
                let request = gatehouse_policy::Request::new(action)
                    .identity(Some(role.name.as_str()))
                    .path(&path)
                    .at(self.clock.now());
                match self
                    .decide(conn, policy, action, &request, trail, Some(&bound))
                    .await
                {
                    Ok((facts, decision)) => {
                        found = Some((facts, decision, Some(role)));
                        break;
                    }
                    Err(e @ Refusal::Denied(_)) => last = e,
                    Err(other) => return Err(other),
                }
            }
            found.ok_or(last)?
        } else {
            trail.request.identity = identity.map(|i| i.name.clone());
            let path = target.path_with_role(identity.and_then(|i| i.role.as_deref()));
            trail.request.path = Some(path.clone());
            let request = gatehouse_policy::Request::new(action)
                .identity(identity.map(|i| i.name.as_str()))
                .path(&path)
                .at(self.clock.now());
            let (facts, decision) = self
                .decide(conn, policy, action, &request, trail, Some(&bound))
                .await?;
            (facts, decision, identity)
        };
        let path = target.path_with_role(identity.and_then(|i| i.role.as_deref()));

        let sent = std::time::Instant::now();
        let served = match (&target.endpoint, identity) {
            (AwsEndpoint::Credentials { .. }, Some(id)) => {
                let key = crate::cache::Key {
                    shape: crate::cache::Shape::AwsCredentials,
                    identity: id.name.clone(),
                    ids: format!("aws|{}", id.role.as_deref().unwrap_or("")),
                    resource: String::new(),
                    selector: "aws_role",
                    api_version: target.version.clone(),
                };
                self.tokens.serve(id, key, &path, facts.socket_uid).await
            }
            _ => {
                self.forward(&Method::GET, &path, None, facts.socket_uid)
                    .await
            }
        };
        let served = trail.served(served, sent)?;
        let mut answer = served.answer;
        if target.endpoint == AwsEndpoint::CredentialsList && answer.status == 200 {
            let allowed = identity.and_then(|i| i.role.as_deref()).unwrap_or("");
            let lines: Vec<&str> = std::str::from_utf8(&answer.body)
                .unwrap_or("")
                .lines()
                .filter(|l| l.trim().eq_ignore_ascii_case(allowed))
                .collect();
            if lines.is_empty() {
                // IMDS has another role than the policy's: nobody's.
                return Err(Refusal::IdentityNotFound);
            }
            answer.body = Bytes::from(lines.join("\n"));
        }
        Ok((
            crate::dialect::passed_on(answer),
            decision.reason().to_string(),
        ))
    }

    /// `PUT /latest/api/token`: a session of the gate's own, bound to the
    /// socket's uid. It grants nothing by itself; every request with it is
    /// decided. Never forwarded, so IMDS's hop limit is not what keeps
    /// containers out here — the firewall and caller identification are.
    async fn issue_session(
        &self,
        conn: &ConnInfo,
        headers: &HeaderMap,
        trail: &mut Trail,
    ) -> Result<(Response, String), Refusal> {
        let ttl = ttl(headers)?;
        let (facts, who) = self
            .identify(conn, &gatehouse_policy::Needs::default())
            .await?;
        trail.caller = Some(crate::caller::audit_caller(&facts, &who));
        let token = self
            .sessions
            .issue(facts.socket_uid, ttl, tokio::time::Instant::now())
            .map_err(|_| Refusal::SessionsFull)?;
        let mut response = json_response(200, Some("text/plain"), Bytes::from(token), None);
        if let Ok(v) = http::HeaderValue::from_str(&ttl.as_secs().to_string()) {
            response.headers_mut().insert(TTL_HEADER, v);
        }
        Ok((
            response,
            format!(
                "session token issued to uid {} for {} s",
                facts.socket_uid,
                ttl.as_secs()
            ),
        ))
    }
}

//! An allowed token request: from the cache when it can, else one shared
//! upstream exchange (a flight) per key, with the answer checked before it
//! is cached or served, and every caller answered within its budget.

use crate::cache::{
    Cached, Failure, FlightTx, Key, Outcome, Shape, Slot, Step, TokenCache, NEGATIVE_TTL,
};
use crate::clock::Clock;
use crate::fetch::{retry_after, Ask, FetchError, Fetcher};
use crate::refusal::Refusal;
use crate::upstream::{UpstreamAnswer, UpstreamError};
use gatehouse_imds::token::{decode_claims, fingerprint, TokenResponse};
use gatehouse_policy::{Identity, IdentityKind};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::time::Instant;

/// Where an answer came from, for the audit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Upstream,
    Cache,
    /// IMDS failed; a cached token still valid (below the margin) was served.
    Stale,
    /// IMDS failed on this key a moment ago; that answer was given again
    /// without asking (the negative cache).
    Remembered,
    /// Another caller's upstream exchange for the same key, shared.
    Shared,
}

/// How this caller came by a flight's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    Led,
    Joined,
    Remembered,
}

impl Source {
    /// The audit record's source.
    pub fn audit(self) -> gatehouse_audit::UpstreamSource {
        match self {
            Source::Upstream => gatehouse_audit::UpstreamSource::Upstream,
            Source::Cache => gatehouse_audit::UpstreamSource::Cache,
            Source::Stale => gatehouse_audit::UpstreamSource::Stale,
            Source::Remembered => gatehouse_audit::UpstreamSource::Remembered,
            Source::Shared => gatehouse_audit::UpstreamSource::Shared,
        }
    }
}

#[derive(Debug)]
pub struct Served {
    pub answer: UpstreamAnswer,
    pub source: Source,
    pub fingerprint: Option<String>,
    pub attempts: u32,
}

pub fn epoch_secs(clock: &dyn Clock) -> u64 {
    clock
        .now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Why a token answer is not for the identity decided on (the gate answers
/// 502 and keeps the token from the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WrongIdentity {
    #[error("token answer is not IMDS-shaped JSON")]
    NotJson,
    #[error("token claims unreadable: {0}")]
    Claims(gatehouse_imds::token::ClaimsError),
    #[error("token oid is not identity `{0}`")]
    ObjectId(String),
    #[error("token appid is not identity `{0}`")]
    ClientId(String),
    #[error("token xms_mirid is not the system-assigned identity `{0}`")]
    NotSystem(String),
    #[error("identity `{0}` has no ids to check")]
    NoIds(String),
    #[error("token xms_mirid is not identity `{0}`")]
    ResourceId(String),
    #[error("identity `{0}` is not an Azure managed identity")]
    NotAzure(String),
    #[error("identity `{0}` is not of the cloud this answer is from")]
    NotServed(String),
    #[error("service account `{0}`: {1}")]
    Gcp(String, GcpTokenFault),
    #[error("role `{0}`: {1}")]
    AwsCredentials(String, AwsCredentialsFault),
}

/// Why an AWS credentials answer is not served (nor cached).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AwsCredentialsFault {
    #[error("credentials answer is not IMDS-shaped JSON")]
    NotJson,
    #[error("credentials answer is not `Success`")]
    NotSuccess,
    #[error("credentials answer lacks keys")]
    NoKeys,
    #[error("credentials `Expiration` is not an RFC 3339 time")]
    Expiration,
}

/// Why a GCE token answer is not served (nor cached).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GcpTokenFault {
    #[error("access-token answer is not GCE-shaped JSON")]
    NotJson,
    #[error("access-token answer lacks a token, a `Bearer` type or a positive `expires_in`")]
    Incomplete,
    #[error("ID token unreadable")]
    NotAJwt,
    #[error("ID token `aud` is not the audience decided on")]
    Audience,
    #[error("ID token `email` is not the service account decided on")]
    Email,
    #[error("ID token has no `exp`")]
    NoExpiry,
}

/// The token must be for the identity the decision was about; returns its
/// fingerprint. `key` says what was asked (the audience of an ID token).
pub fn check_identity(
    identity: &Identity,
    key: &Key,
    body: &[u8],
) -> Result<String, WrongIdentity> {
    match (identity.kind, key.shape) {
        (IdentityKind::System | IdentityKind::User, Shape::Azure) => check_azure(identity, body),
        (IdentityKind::AwsRole, Shape::AwsCredentials) => {
            check_aws(body).map_err(|why| WrongIdentity::AwsCredentials(identity.name.clone(), why))
        }
        (IdentityKind::GcpServiceAccount, Shape::GcpAccess) => {
            check_gcp_access(body).map_err(|why| WrongIdentity::Gcp(identity.name.clone(), why))
        }
        (IdentityKind::GcpServiceAccount, Shape::GcpIdentity) => {
            check_gcp_identity(identity, &key.resource, body)
                .map(|(fp, _)| fp)
                .map_err(|why| WrongIdentity::Gcp(identity.name.clone(), why))
        }
        _ => Err(WrongIdentity::NotServed(identity.name.clone())),
    }
}

/// GCE's access token: opaque (nothing to compare with the account; the
/// path named the account by the policy's email), but complete.
fn check_gcp_access(body: &[u8]) -> Result<String, GcpTokenFault> {
    #[derive(serde::Deserialize)]
    struct AccessToken {
        access_token: String,
        expires_in: u64,
        token_type: String,
    }
    let t: AccessToken = serde_json::from_slice(body).map_err(|_| GcpTokenFault::NotJson)?;
    if t.access_token.is_empty()
        || t.expires_in == 0
        || !t.token_type.eq_ignore_ascii_case("bearer")
    {
        return Err(GcpTokenFault::Incomplete);
    }
    Ok(fingerprint(&t.access_token))
}

/// A GCE ID token: its `aud` must be exactly the audience decided on, its
/// `email` (when `format=full` put one in) the account's; returns the
/// fingerprint and `exp`.
fn check_gcp_identity(
    identity: &Identity,
    audience: &str,
    body: &[u8],
) -> Result<(String, u64), GcpTokenFault> {
    let jwt = std::str::from_utf8(body)
        .map(str::trim)
        .map_err(|_| GcpTokenFault::NotAJwt)?;
    let claims = decode_claims(jwt).map_err(|_| GcpTokenFault::NotAJwt)?;
    if claims.aud.as_deref() != Some(audience) {
        return Err(GcpTokenFault::Audience);
    }
    if let (Some(got), Some(want)) = (&claims.email, &identity.email) {
        if !got.eq_ignore_ascii_case(want) {
            return Err(GcpTokenFault::Email);
        }
    }
    let exp = claims
        .exp
        .filter(|e| e.is_finite() && *e > 0.0)
        .ok_or(GcpTokenFault::NoExpiry)?;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "finite and positive"
    )]
    let exp = exp as u64;
    Ok((fingerprint(jwt), exp))
}

/// AWS role credentials as IMDS gives them. The path named the role, so
/// there is no claim to compare; the answer must be a complete, successful
/// credential with an `Expiration` (or it is not served, nor cached).
fn check_aws(body: &[u8]) -> Result<String, AwsCredentialsFault> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct RoleCredentials {
        code: String,
        access_key_id: String,
        secret_access_key: String,
        token: String,
        expiration: String,
    }
    let c: RoleCredentials =
        serde_json::from_slice(body).map_err(|_| AwsCredentialsFault::NotJson)?;
    if c.code != "Success" {
        return Err(AwsCredentialsFault::NotSuccess);
    }
    if c.access_key_id.is_empty() || c.secret_access_key.is_empty() || c.token.is_empty() {
        return Err(AwsCredentialsFault::NoKeys);
    }
    c.expiration
        .parse::<jiff::Timestamp>()
        .map_err(|_| AwsCredentialsFault::Expiration)?;
    Ok(fingerprint(&c.token))
}

fn check_azure(identity: &Identity, body: &[u8]) -> Result<String, WrongIdentity> {
    let parsed: TokenResponse = serde_json::from_slice(body).map_err(|_| WrongIdentity::NotJson)?;
    let claims = decode_claims(&parsed.access_token).map_err(WrongIdentity::Claims)?;
    let same = |want: &Option<String>, got: &Option<String>| match (want, got) {
        (Some(w), Some(g)) => w.eq_ignore_ascii_case(g),
        (Some(_), None) => false,
        (None, _) => true,
    };
    let name = || identity.name.clone();
    if !same(&identity.object_id, &claims.oid) {
        return Err(WrongIdentity::ObjectId(name()));
    }
    if !same(&identity.client_id, &claims.appid) {
        return Err(WrongIdentity::ClientId(name()));
    }
    let mirid = claims
        .xms_mirid
        .clone()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match identity.kind {
        IdentityKind::System => {
            if mirid.is_empty() || mirid.contains("/userassignedidentities/") {
                return Err(WrongIdentity::NotSystem(name()));
            }
        }
        IdentityKind::AwsRole | IdentityKind::GcpServiceAccount => {
            return Err(WrongIdentity::NotAzure(name()));
        }
        IdentityKind::User => {
            if identity.object_id.is_none()
                && identity.client_id.is_none()
                && identity.resource_id.is_none()
            {
                return Err(WrongIdentity::NoIds(name()));
            }
            if let Some(rid) = &identity.resource_id {
                if !rid.eq_ignore_ascii_case(&mirid) {
                    return Err(WrongIdentity::ResourceId(name()));
                }
            }
        }
    }
    Ok(fingerprint(&parsed.access_token))
}

pub(crate) fn map_fetch(e: FetchError) -> Refusal {
    match e {
        FetchError::Limited => Refusal::Limited,
        FetchError::Upstream(UpstreamError::Timeout) => Refusal::UpstreamTimeout,
        FetchError::Upstream(other) => Refusal::Upstream(other),
    }
}

fn map_failure(f: Failure) -> Refusal {
    match f {
        Failure::Limited => Refusal::Limited,
        Failure::Timeout => Refusal::UpstreamTimeout,
        Failure::Unreachable(why) => Refusal::Upstream(why),
        Failure::WrongIdentity(why) => Refusal::WrongIdentity(why),
    }
}

fn cached_answer(token: &Cached, now: u64) -> UpstreamAnswer {
    UpstreamAnswer {
        status: 200,
        content_type: Some(token.content_type().to_owned()),
        retry_after: None,
        body: token.body_at(now),
    }
}

fn serve_cached(token: &Cached, now: u64, source: Source) -> Served {
    crate::metrics::cache(if source == Source::Stale {
        "stale"
    } else {
        "hit"
    });
    Served {
        answer: cached_answer(token, now),
        source,
        fingerprint: Some(token.fingerprint.clone()),
        attempts: 0,
    }
}

/// A status after which a still-valid cached token is better than IMDS's answer.
fn upstream_trouble(status: u16) -> bool {
    matches!(status, 404 | 410 | 429) || status >= 500
}

/// Whole seconds, rounded up, at least one: a `Retry-After` value.
fn whole_seconds(d: Duration) -> String {
    let ms = d.as_millis();
    ms.div_ceil(1000).max(1).to_string()
}

/// How long one attempt of a shared flight may run after its first waiters
/// gave up: a slow IMDS still fills the cache for the callers that retry.
const FLIGHT_ATTEMPT: Duration = Duration::from_secs(5);

/// Everything one allowed token request needs from the gate.
#[derive(Clone)]
pub struct TokenPath {
    pub fetcher: Fetcher,
    pub cache: Option<Arc<TokenCache>>,
    pub clock: Arc<dyn Clock>,
}

impl TokenPath {
    /// Serve an allowed token request of `uid` within the budget: from the
    /// cache, from a failure that still stands, or from the one flight of
    /// its key (started here if none runs).
    pub async fn serve(
        &self,
        identity: &Identity,
        key: Key,
        target: &str,
        uid: u32,
    ) -> Result<Served, Refusal> {
        let Some(cache) = &self.cache else {
            return self.fetch_checked(identity, &key, target, uid).await;
        };
        let deadline = Instant::now() + self.fetcher.budget();
        let slot = cache.slot(&key);
        let now = epoch_secs(self.clock.as_ref());
        match cache.step(&slot, now, Instant::now()) {
            Step::Fresh { token, lead } => {
                if let Some(tx) = lead {
                    crate::metrics::cache("refresh");
                    self.launch(&slot, tx, identity, &key, target, uid);
                }
                Ok(serve_cached(&token, now, Source::Cache))
            }
            Step::Standing {
                outcome,
                left,
                fallback,
            } => self.finish(outcome, fallback, left, How::Remembered),
            Step::Wait {
                flight,
                lead,
                fallback,
            } => {
                crate::metrics::cache("miss");
                let how = if lead.is_some() {
                    How::Led
                } else {
                    How::Joined
                };
                if let Some(tx) = lead {
                    self.launch(&slot, tx, identity, &key, target, uid);
                }
                // No waiter waits past its own budget, whoever leads.
                match tokio::time::timeout_at(deadline, outcome_of(flight)).await {
                    Ok(outcome) => self.finish(outcome, fallback, NEGATIVE_TTL, how),
                    Err(_) => {
                        let now = epoch_secs(self.clock.as_ref());
                        match fallback.filter(|t| t.remaining(now) > 0) {
                            Some(t) => Ok(serve_cached(&t, now, Source::Stale)),
                            None => Err(Refusal::UpstreamTimeout),
                        }
                    }
                }
            }
        }
    }

    /// A flight's outcome as this caller's answer; `left` is how long the
    /// failure stands (the `Retry-After` the caller is given).
    fn finish(
        &self,
        outcome: Outcome,
        fallback: Option<Cached>,
        left: Duration,
        how: How,
    ) -> Result<Served, Refusal> {
        let now = epoch_secs(self.clock.as_ref());
        let stale = fallback.filter(|t| t.remaining(now) > 0);
        match outcome {
            Outcome::Answer {
                answer,
                attempts,
                fingerprint,
            } => {
                // Only the leader's audit line counts the upstream attempts.
                let (source, attempts) = match how {
                    How::Led => (Source::Upstream, attempts),
                    How::Joined => (Source::Shared, 0),
                    How::Remembered => (Source::Remembered, 0),
                };
                if answer.status == 200 || !upstream_trouble(answer.status) {
                    return Ok(Served {
                        answer,
                        source,
                        fingerprint,
                        attempts,
                    });
                }
                if let Some(t) = stale {
                    return Ok(serve_cached(&t, now, Source::Stale));
                }
                let mut answer = answer;
                if how == How::Remembered || answer.retry_after.is_none() {
                    answer.retry_after = Some(whole_seconds(left));
                }
                Ok(Served {
                    answer,
                    source,
                    fingerprint: None,
                    attempts,
                })
            }
            Outcome::Failed(f @ Failure::WrongIdentity(_)) => Err(map_failure(f)),
            Outcome::Failed(f) => match stale {
                Some(t) => Ok(serve_cached(&t, now, Source::Stale)),
                None => Err(map_failure(f)),
            },
        }
    }

    /// Without a cache: one checked upstream exchange.
    async fn fetch_checked(
        &self,
        identity: &Identity,
        key: &Key,
        target: &str,
        uid: u32,
    ) -> Result<Served, Refusal> {
        let (answer, attempts) = self
            .fetcher
            .fetch(token_ask(target, uid))
            .await
            .map_err(map_fetch)?;
        let fingerprint = if answer.status == 200 {
            Some(check_identity(identity, key, &answer.body)?)
        } else {
            None
        };
        Ok(Served {
            answer,
            source: Source::Upstream,
            fingerprint,
            attempts,
        })
    }

    /// Run the key's flight in its own task: its waiters may give up, it
    /// still lands (bounded: attempts start only within the budget).
    fn launch(
        &self,
        slot: &Arc<Slot>,
        tx: FlightTx,
        identity: &Identity,
        key: &Key,
        target: &str,
        uid: u32,
    ) {
        let fetcher = self.fetcher.clone();
        let clock = Arc::clone(&self.clock);
        let (slot, identity, key, target) = (
            Arc::clone(slot),
            identity.clone(),
            key.clone(),
            target.to_owned(),
        );
        tokio::spawn(async move {
            let deadline = Instant::now() + fetcher.budget();
            let fetched = fetcher
                .fetch_until(token_ask(&target, uid), deadline, FLIGHT_ATTEMPT)
                .await;
            let now = epoch_secs(clock.as_ref());
            let (outcome, token, fail_until) = judge(fetched, &identity, &key, now);
            if let Outcome::Failed(f) = &outcome {
                tracing::warn!(identity = %identity.name, failure = ?f, "token request upstream failed");
            }
            slot.land(tx, outcome, token, fail_until);
        });
    }
}

fn token_ask(target: &str, uid: u32) -> Ask<'_> {
    Ask {
        method: &http::Method::GET,
        target,
        body: None,
        token_endpoint: true,
        uid,
    }
}

/// Wait for a flight's outcome (a flight whose task vanished is a failure).
async fn outcome_of(mut flight: watch::Receiver<Option<Outcome>>) -> Outcome {
    let gone = || Outcome::Failed(Failure::Unreachable(UpstreamError::Abandoned));
    match flight.wait_for(Option::is_some).await {
        Ok(v) => v.clone().unwrap_or_else(gone),
        Err(_) => gone(),
    }
}

/// What a flight's exchange means for its key: the outcome every waiter
/// gets, a token to cache, and until when a failure stands.
fn judge(
    fetched: Result<(UpstreamAnswer, u32), FetchError>,
    identity: &Identity,
    key: &Key,
    now_epoch: u64,
) -> (Outcome, Option<Cached>, Option<Instant>) {
    let now = Instant::now();
    let remember = |at_least: Option<Duration>| {
        Some(now + at_least.map_or(NEGATIVE_TTL, |d| d.max(NEGATIVE_TTL)))
    };
    match fetched {
        Ok((answer, attempts)) if answer.status == 200 => {
            match check_identity(identity, key, &answer.body) {
                Ok(fp) => {
                    let token = match key.shape {
                        Shape::AwsCredentials => Cached::from_aws_body(
                            &answer.body,
                            answer.content_type.clone(),
                            fp.clone(),
                        ),
                        Shape::GcpAccess => {
                            Cached::from_gcp_access(&answer.body, now_epoch, fp.clone())
                        }
                        Shape::GcpIdentity => {
                            check_gcp_identity(identity, &key.resource, &answer.body)
                                .ok()
                                .map(|(_, exp)| {
                                    Cached::from_gcp_identity(
                                        &answer.body,
                                        answer.content_type.clone(),
                                        exp,
                                        fp.clone(),
                                    )
                                })
                        }
                        Shape::Azure => Cached::from_body(&answer.body, fp.clone()),
                    };
                    let outcome = Outcome::Answer {
                        answer,
                        attempts,
                        fingerprint: Some(fp),
                    };
                    (outcome, token, None)
                }
                Err(why) => (
                    Outcome::Failed(Failure::WrongIdentity(why)),
                    None,
                    remember(None),
                ),
            }
        }
        Ok((answer, attempts)) => {
            let until = upstream_trouble(answer.status)
                .then(|| retry_after(&answer))
                .and_then(remember);
            let outcome = Outcome::Answer {
                answer,
                attempts,
                fingerprint: None,
            };
            (outcome, None, until)
        }
        // Our own limiter was full: the next caller may find room.
        Err(FetchError::Limited) => (Outcome::Failed(Failure::Limited), None, None),
        Err(FetchError::Upstream(UpstreamError::Timeout)) => {
            (Outcome::Failed(Failure::Timeout), None, remember(None))
        }
        Err(FetchError::Upstream(e)) => (
            Outcome::Failed(Failure::Unreachable(e)),
            None,
            remember(None),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn account() -> Identity {
        Identity {
            name: "app-sa".into(),
            kind: IdentityKind::GcpServiceAccount,
            client_id: None,
            object_id: None,
            resource_id: None,
            role: None,
            email: Some("app@p.iam.gserviceaccount.com".into()),
            default_account: true,
            tags: std::collections::BTreeMap::new(),
        }
    }

    fn jwt(claims: &str) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("e30.{}.c2ln", b64.encode(claims)).into_bytes()
    }

    fn key(shape: Shape, resource: &str) -> Key {
        Key {
            shape,
            identity: "app-sa".into(),
            ids: String::new(),
            resource: resource.into(),
            selector: "gcp_service_account",
            api_version: String::new(),
        }
    }

    #[test]
    fn gcp_answers_are_checked_against_what_was_decided() {
        let id = account();
        let idk = key(Shape::GcpIdentity, "https://a.example");
        let rows: &[(&str, Result<(), GcpTokenFault>)] = &[
            (r#"{"aud":"https://a.example","exp":2000000000}"#, Ok(())),
            (
                r#"{"aud":"https://a.example","email":"APP@p.iam.gserviceaccount.com","exp":2000000000}"#,
                Ok(()),
            ),
            (
                r#"{"aud":"https://a.example/","exp":2000000000}"#,
                Err(GcpTokenFault::Audience),
            ),
            (
                r#"{"aud":"https://a.example","email":"other@p.iam.gserviceaccount.com","exp":2000000000}"#,
                Err(GcpTokenFault::Email),
            ),
            (
                r#"{"aud":"https://a.example"}"#,
                Err(GcpTokenFault::NoExpiry),
            ),
        ];
        for (claims, want) in rows {
            let got = check_gcp_identity(&id, &idk.resource, &jwt(claims)).map(|_| ());
            assert_eq!(&got, want, "{claims}");
        }
        assert_eq!(
            check_gcp_identity(&id, "x", b"not a jwt").map(|_| ()),
            Err(GcpTokenFault::NotAJwt)
        );
        // An answer of one cloud's shape is never taken for another's.
        let access = br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#;
        assert!(check_identity(&id, &key(Shape::GcpAccess, ""), access).is_ok());
        assert!(matches!(
            check_identity(&id, &key(Shape::Azure, ""), access),
            Err(WrongIdentity::NotServed(_))
        ));
        assert!(matches!(
            check_identity(
                &id,
                &key(Shape::GcpAccess, ""),
                br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"mac"}"#
            ),
            Err(WrongIdentity::Gcp(_, GcpTokenFault::Incomplete))
        ));
    }
}

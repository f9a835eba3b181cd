//! An allowed token request: from the cache when it can, else one upstream
//! call per key, with the answer checked before it is cached or served.

use crate::cache::{Cached, Key, Lookup, Slot, TokenCache};
use crate::clock::Clock;
use crate::fetch::{FetchError, Fetcher};
use crate::refusal::Refusal;
use crate::upstream::{UpstreamAnswer, UpstreamError};
use gatehouse_imds::token::{decode_claims, fingerprint, TokenResponse};
use gatehouse_policy::{Identity, IdentityKind};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// Where an answer came from, for the audit line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Upstream,
    Cache,
    /// IMDS failed; a cached token still valid (below the margin) was served.
    Stale,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Upstream => "upstream",
            Source::Cache => "cache",
            Source::Stale => "stale",
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

/// The token must be for the identity the decision was about; returns its
/// fingerprint.
pub fn check_identity(identity: &Identity, body: &[u8]) -> Result<String, Refusal> {
    let wrong = Refusal::WrongIdentity;
    let parsed: TokenResponse = serde_json::from_slice(body)
        .map_err(|_| wrong("token answer is not IMDS-shaped JSON".to_owned()))?;
    let claims = decode_claims(&parsed.access_token)
        .map_err(|e| wrong(format!("token claims unreadable: {e}")))?;
    let same = |want: &Option<String>, got: &Option<String>| match (want, got) {
        (Some(w), Some(g)) => w.eq_ignore_ascii_case(g),
        (Some(_), None) => false,
        (None, _) => true,
    };
    if !same(&identity.object_id, &claims.oid) {
        return Err(wrong(format!(
            "token oid is not identity `{}`",
            identity.name
        )));
    }
    if !same(&identity.client_id, &claims.appid) {
        return Err(wrong(format!(
            "token appid is not identity `{}`",
            identity.name
        )));
    }
    let mirid = claims
        .xms_mirid
        .clone()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match identity.kind {
        IdentityKind::System => {
            if mirid.is_empty() || mirid.contains("/userassignedidentities/") {
                return Err(wrong(format!(
                    "token xms_mirid is not the system-assigned identity `{}`",
                    identity.name
                )));
            }
        }
        IdentityKind::User => {
            if identity.object_id.is_none()
                && identity.client_id.is_none()
                && identity.resource_id.is_none()
            {
                return Err(wrong(format!(
                    "identity `{}` has no ids to check",
                    identity.name
                )));
            }
            if let Some(rid) = &identity.resource_id {
                if !rid.eq_ignore_ascii_case(&mirid) {
                    return Err(wrong(format!(
                        "token xms_mirid is not identity `{}`",
                        identity.name
                    )));
                }
            }
        }
    }
    Ok(fingerprint(&parsed.access_token))
}

fn map_fetch(e: FetchError) -> Refusal {
    match e {
        FetchError::Limited => Refusal::Limited,
        FetchError::Upstream(UpstreamError::Timeout) => Refusal::UpstreamTimeout,
        FetchError::Upstream(other) => Refusal::Upstream(other.to_string()),
    }
}

fn cached_answer(token: &Cached, now: u64) -> UpstreamAnswer {
    UpstreamAnswer {
        status: 200,
        content_type: Some("application/json; charset=utf-8".to_owned()),
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

/// Everything one allowed token request needs from the gate.
#[derive(Clone)]
pub struct TokenPath {
    pub fetcher: Fetcher,
    pub cache: Option<Arc<TokenCache>>,
    pub clock: Arc<dyn Clock>,
}

impl TokenPath {
    pub async fn serve(
        &self,
        identity: &Identity,
        key: Key,
        target: &str,
    ) -> Result<Served, Refusal> {
        let Some(cache) = &self.cache else {
            return self.fetch_checked(identity, target).await;
        };
        let slot = cache.slot(&key);
        let now = epoch_secs(self.clock.as_ref());
        let fallback = match cache.lookup(&slot, now) {
            Lookup::Fresh { token, refresh } => {
                if refresh {
                    crate::metrics::cache("refresh");
                    self.refresh_in_background(
                        Arc::clone(&slot),
                        identity.clone(),
                        target.to_owned(),
                    );
                }
                return Ok(serve_cached(&token, now, Source::Cache));
            }
            Lookup::Miss { fallback } => fallback,
        };
        crate::metrics::cache("miss");
        if let Some(error) = slot.standing_error(now) {
            return Ok(match &fallback {
                Some(t) => serve_cached(t, now, Source::Stale),
                None => Served {
                    answer: error,
                    source: Source::Upstream,
                    fingerprint: None,
                    attempts: 0,
                },
            });
        }
        let before = slot.generation();
        let _flight = slot.flight.lock().await;
        let now = epoch_secs(self.clock.as_ref());
        // A flight that ended while we waited answers for us too.
        if let Lookup::Fresh { token, .. } = cache.lookup(&slot, now) {
            return Ok(serve_cached(&token, now, Source::Cache));
        }
        if slot.failed_since(before) {
            if let Some(t) = fallback.as_ref().filter(|t| t.remaining(now) > 0) {
                return Ok(serve_cached(t, now, Source::Stale));
            }
            if let Some(error) = slot.standing_error(now) {
                return Ok(Served {
                    answer: error,
                    source: Source::Upstream,
                    fingerprint: None,
                    attempts: 0,
                });
            }
        }
        let result = fetch_into(&self.fetcher, &slot, identity, target, self.clock.as_ref()).await;
        let now = epoch_secs(self.clock.as_ref());
        match result {
            Ok(served) if served.answer.status == 200 => Ok(served),
            Ok(served) if upstream_trouble(served.answer.status) => {
                Ok(match fallback.filter(|t| t.remaining(now) > 0) {
                    Some(t) => serve_cached(&t, now, Source::Stale),
                    None => served,
                })
            }
            Ok(served) => Ok(served),
            Err(refusal @ Refusal::WrongIdentity(_)) => Err(refusal),
            Err(refusal) => match fallback.filter(|t| t.remaining(now) > 0) {
                Some(t) => Ok(serve_cached(&t, now, Source::Stale)),
                None => Err(refusal),
            },
        }
    }

    /// Without a cache: one checked upstream request.
    async fn fetch_checked(&self, identity: &Identity, target: &str) -> Result<Served, Refusal> {
        let (answer, attempts) = self
            .fetcher
            .fetch(&http::Method::GET, target, None, true)
            .await
            .map_err(map_fetch)?;
        let fingerprint = if answer.status == 200 {
            Some(check_identity(identity, &answer.body)?)
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

    fn refresh_in_background(&self, slot: Arc<Slot>, identity: Identity, target: String) {
        let fetcher = self.fetcher.clone();
        let clock = Arc::clone(&self.clock);
        tokio::spawn(async move {
            // Someone already asking upstream refreshes it for everyone.
            let Ok(_flight) = slot.flight.try_lock() else {
                return;
            };
            if let Err(e) = fetch_into(&fetcher, &slot, &identity, &target, clock.as_ref()).await {
                tracing::warn!(identity = %identity.name, error = ?e, "background token refresh failed");
            }
        });
    }
}

/// Ask upstream (the caller holds the slot's flight), check, and record the
/// outcome in the slot.
async fn fetch_into(
    fetcher: &Fetcher,
    slot: &Slot,
    identity: &Identity,
    target: &str,
    clock: &dyn Clock,
) -> Result<Served, Refusal> {
    let fetched = fetcher.fetch(&http::Method::GET, target, None, true).await;
    let now = epoch_secs(clock);
    match fetched {
        Ok((answer, attempts)) if answer.status == 200 => {
            let fingerprint = match check_identity(identity, &answer.body) {
                Ok(fp) => fp,
                Err(refusal) => {
                    slot.fail(None, None);
                    return Err(refusal);
                }
            };
            if let Some(token) = Cached::from_body(&answer.body, fingerprint.clone()) {
                slot.store(token);
            }
            Ok(Served {
                answer,
                source: Source::Upstream,
                fingerprint: Some(fingerprint),
                attempts,
            })
        }
        Ok((answer, attempts)) => {
            // An error answer stands in for IMDS only as long as IMDS said.
            let until = answer
                .retry_after
                .as_deref()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|secs| now.saturating_add(secs));
            slot.fail(Some(answer.clone()), until);
            Ok(Served {
                answer,
                source: Source::Upstream,
                fingerprint: None,
                attempts,
            })
        }
        Err(e) => {
            slot.fail(None, None);
            Err(map_fetch(e))
        }
    }
}

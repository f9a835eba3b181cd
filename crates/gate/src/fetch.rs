//! One logical upstream request: wait for a slot under IMDS's limits, send,
//! and retry what Microsoft says to retry (404 on the token endpoint while
//! IMDS updates, 410, 429, 5xx, connection failures) — all within a time
//! budget shorter than the real clients' own timeouts (azure-identity and
//! msal give IMDS about 2 s), so the caller gets an answer, never a hang.
//! The clients retry on their own schedule; the gate makes at most three
//! attempts (at about 0, 0.2 and 0.8 s) and only while the budget lasts.

use crate::limiter::{Kind, Limiter};
use crate::upstream::{Upstream, UpstreamAnswer, UpstreamError};
use bytes::Bytes;
use std::time::Duration;
use tokio::time::Instant;

/// Waits before the 2nd and 3rd attempt, in milliseconds.
const BACKOFF_MS: [u64; 2] = [200, 600];
/// Attempts per exchange: a failing IMDS costs at most this many calls.
pub const MAX_ATTEMPTS: u32 = 3;

#[derive(Debug)]
pub enum FetchError {
    /// No slot under the upstream limits within the budget.
    Limited,
    Upstream(UpstreamError),
}

#[derive(Debug, Clone)]
pub struct Fetcher {
    pub upstream: Upstream,
    pub limiter: Option<Limiter>,
}

/// What to ask upstream, and for whom (the limiter shares IMDS's budget
/// fairly between uids).
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    pub method: &'a http::Method,
    pub target: &'a str,
    pub body: Option<(Bytes, String)>,
    pub token_endpoint: bool,
    pub uid: u32,
}

/// `updating_404`: a 404 on the token endpoint means "IMDS is updating,
/// retry" (Azure; AWS likewise), not on GCE, where it means "no such
/// service account" and asking again changes nothing.
fn retryable(status: u16, token_endpoint: bool, updating_404: bool) -> bool {
    status == 410
        || status == 429
        || status >= 500
        || (status == 404 && token_endpoint && updating_404)
}

/// The wait before attempt `attempt + 1`: the schedule, then its last step.
fn backoff(attempt: u32) -> Duration {
    let i = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
    let last = BACKOFF_MS.last().copied().unwrap_or(600);
    Duration::from_millis(BACKOFF_MS.get(i).copied().unwrap_or(last))
}

pub fn retry_after(answer: &UpstreamAnswer) -> Option<Duration> {
    answer
        .retry_after
        .as_deref()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

impl Fetcher {
    /// The caller's budget (`--upstream-timeout`).
    pub fn budget(&self) -> Duration {
        self.upstream.budget()
    }

    /// The whole exchange within the caller's budget, from now.
    pub async fn fetch(&self, ask: Ask<'_>) -> Result<(UpstreamAnswer, u32), FetchError> {
        let deadline = Instant::now() + self.budget();
        self.fetch_until(ask, deadline, Duration::ZERO).await
    }

    /// Attempts start only before `deadline`; each may run for what is left
    /// of it, or `at_least` (a shared flight that fills the cache for later
    /// callers may finish a slow answer after its first waiters gave up).
    /// Returns IMDS's last answer (retryable statuses included, once no
    /// further attempt fits), or why there was none.
    pub async fn fetch_until(
        &self,
        ask: Ask<'_>,
        deadline: Instant,
        at_least: Duration,
    ) -> Result<(UpstreamAnswer, u32), FetchError> {
        // Only reads are retried; an approval (POST) is sent once.
        let may_retry = ask.method == http::Method::GET;
        let kind = if ask.token_endpoint {
            Kind::Identity
        } else {
            Kind::Other
        };
        let updating_404 = self.upstream.cloud() != gatehouse_policy::Cloud::Gcp;
        let mut attempt: u32 = 0;
        loop {
            let slot = match &self.limiter {
                Some(l) => match l.acquire(kind, ask.uid, deadline).await {
                    Some(s) => Some(s),
                    None => return Err(FetchError::Limited),
                },
                None => None,
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            let sent = Instant::now();
            let result = self
                .upstream
                .send_within(
                    ask.method,
                    ask.target,
                    ask.body.clone(),
                    remaining.max(at_least),
                )
                .await;
            drop(slot);
            crate::metrics::upstream_attempt(&result, sent.elapsed());
            attempt += 1;
            let wait = match &result {
                Ok(a) if retryable(a.status, ask.token_endpoint, updating_404) => {
                    let b = backoff(attempt);
                    retry_after(a).map_or(b, |r| r.max(b))
                }
                Ok(_) => return result.map(|a| (a, attempt)).map_err(FetchError::Upstream),
                // Too large is final; a timed-out attempt has used the budget.
                Err(UpstreamError::BodyTooLarge | UpstreamError::Timeout) => {
                    return result.map(|a| (a, attempt)).map_err(FetchError::Upstream)
                }
                Err(_) => backoff(attempt),
            };
            // A huge Retry-After simply ends the attempts (no overflow).
            let next = Instant::now().checked_add(wait);
            if !may_retry || attempt >= MAX_ATTEMPTS || next.is_none_or(|t| t >= deadline) {
                return result.map(|a| (a, attempt)).map_err(FetchError::Upstream);
            }
            tracing::debug!(
                attempt,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "retrying upstream"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_the_schedule_then_stays() {
        let waits: Vec<u128> = (1..=4).map(|a| backoff(a).as_millis()).collect();
        assert_eq!(waits, [200, 600, 600, 600]);
        assert_eq!(backoff(0).as_millis(), 200);
        assert_eq!(backoff(u32::MAX).as_millis(), 600);
    }

    #[test]
    fn huge_retry_after_does_not_overflow() {
        let a = UpstreamAnswer {
            status: 429,
            content_type: None,
            retry_after: Some(u64::MAX.to_string()),
            body: Bytes::new(),
        };
        let wait = retry_after(&a).unwrap_or_default();
        assert!(Instant::now().checked_add(wait).is_none());
    }
}

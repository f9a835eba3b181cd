//! One logical upstream request: wait for a slot under IMDS's limits, send,
//! and retry what Microsoft says to retry (404 on the token endpoint while
//! IMDS updates, 410, 429, 5xx, timeouts) with exponential backoff — all
//! within the caller's time budget, so the caller gets an answer, never a hang.

use crate::limiter::Limiter;
use crate::upstream::{Upstream, UpstreamAnswer, UpstreamError};
use bytes::Bytes;
use std::time::{Duration, Instant};

/// Waits before the 2nd, 3rd, … attempt: attempts at about 0, 2, 6, 14, 30 s.
const BACKOFF: [u64; 4] = [2, 4, 8, 16];

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

fn retryable(status: u16, token_endpoint: bool) -> bool {
    status == 410 || status == 429 || status >= 500 || (status == 404 && token_endpoint)
}

/// The wait before attempt `attempt + 1`: the schedule, then its last step.
fn backoff(attempt: u32) -> Duration {
    let i = usize::try_from(attempt.saturating_sub(1)).unwrap_or(usize::MAX);
    let last = BACKOFF.last().copied().unwrap_or(16);
    Duration::from_secs(BACKOFF.get(i).copied().unwrap_or(last))
}

fn retry_after(answer: &UpstreamAnswer) -> Option<Duration> {
    answer
        .retry_after
        .as_deref()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

impl Fetcher {
    /// Returns IMDS's last answer (retryable statuses included, once the
    /// budget allows no further attempt), or why there was none.
    pub async fn fetch(
        &self,
        method: &http::Method,
        target: &str,
        body: Option<(Bytes, String)>,
        token_endpoint: bool,
    ) -> Result<(UpstreamAnswer, u32), FetchError> {
        let deadline = Instant::now() + self.upstream.budget();
        // Only reads are retried; an approval (POST) is sent once.
        let may_retry = method == http::Method::GET;
        let mut attempt: u32 = 0;
        loop {
            let slot = match &self.limiter {
                Some(l) => match l.acquire(token_endpoint, deadline).await {
                    Some(s) => Some(s),
                    None => return Err(FetchError::Limited),
                },
                None => None,
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            let sent = Instant::now();
            let result = self
                .upstream
                .send_within(method, target, body.clone(), remaining)
                .await;
            drop(slot);
            crate::metrics::upstream_attempt(&result, sent.elapsed());
            attempt += 1;
            let wait = match &result {
                Ok(a) if retryable(a.status, token_endpoint) => {
                    let b = backoff(attempt);
                    retry_after(a).map_or(b, |r| r.max(b))
                }
                Ok(_) => return result.map(|a| (a, attempt)).map_err(FetchError::Upstream),
                Err(UpstreamError::BodyTooLarge) => {
                    return Err(FetchError::Upstream(UpstreamError::BodyTooLarge))
                }
                Err(_) => backoff(attempt),
            };
            // A huge Retry-After simply ends the attempts (no overflow).
            let next = Instant::now().checked_add(wait);
            if !may_retry || next.is_none_or(|t| t >= deadline) {
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
        let waits: Vec<u64> = (1..=7).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 16, 16, 16]);
        assert_eq!(backoff(0).as_secs(), 2);
        assert_eq!(backoff(u32::MAX).as_secs(), 16);
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

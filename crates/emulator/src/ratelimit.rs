//! IMDS's throttling: identity 20 req/s and 5 in flight, everything else
//! 5 req/s. Token buckets refilled from the clock; a request over the limit
//! is answered 429 at once (IMDS does not queue).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::endpoint::Category;

#[cfg(test)]
mod tests;

const IDENTITY_RATE: u32 = 20;
const IDENTITY_CONCURRENCY: usize = 5;
const OTHER_RATE: u32 = 5;

/// A token bucket holding up to `rate` tokens, refilled at `rate` per second.
#[derive(Debug)]
pub(crate) struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub(crate) fn new(rate: u32, now: Instant) -> Self {
        Self {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            last: now,
        }
    }

    /// Takes a token, or says how long until one is available.
    pub(crate) fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

/// The outcome of admission control.
pub(crate) enum Admission {
    /// Go ahead; hold the permit (if any) until the response is built.
    Admitted(Option<OwnedSemaphorePermit>),
    /// Over the limit; retry after this many whole seconds.
    Throttled { retry_after_secs: u64 },
}

/// All of a VM's limits.
pub(crate) struct Limits {
    identity: Mutex<Bucket>,
    other: Mutex<Bucket>,
    in_flight: Arc<Semaphore>,
}

impl Limits {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            identity: Mutex::new(Bucket::new(IDENTITY_RATE, now)),
            other: Mutex::new(Bucket::new(OTHER_RATE, now)),
            in_flight: Arc::new(Semaphore::new(IDENTITY_CONCURRENCY)),
        }
    }

    pub(crate) fn admit(&self, category: Category, now: Instant) -> Admission {
        let (bucket, permit) = match category {
            Category::Identity => match Arc::clone(&self.in_flight).try_acquire_owned() {
                Ok(permit) => (&self.identity, Some(permit)),
                Err(_) => {
                    return Admission::Throttled {
                        retry_after_secs: 1,
                    }
                }
            },
            Category::Other => (&self.other, None),
        };
        let taken = match bucket.lock() {
            Ok(mut bucket) => bucket.take(now),
            Err(poisoned) => poisoned.into_inner().take(now),
        };
        match taken {
            Ok(()) => Admission::Admitted(permit),
            Err(wait) => Admission::Throttled {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            },
        }
    }
}

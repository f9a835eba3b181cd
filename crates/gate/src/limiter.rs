//! Keeps gatehouse inside IMDS's own limits whatever the local load:
//! identity requests at most 20 per second and 5 at a time, everything else
//! 5 per second. A request waits for a slot within its time budget; past it,
//! it is answered 429 like IMDS would, without reaching IMDS.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub identity_per_second: f64,
    pub identity_concurrent: usize,
    pub other_per_second: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            identity_per_second: 20.0,
            identity_concurrent: 5,
            other_per_second: 5.0,
        }
    }
}

/// A token bucket on the monotonic clock.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    capacity: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn new(rate: f64) -> Self {
        // Capacity below the per-second rate keeps any one-second window
        // under the limit even right after an idle spell.
        let capacity = (rate / 2.0).max(1.0);
        Bucket {
            rate,
            capacity,
            state: Mutex::new((capacity, Instant::now())),
        }
    }

    /// Take a token now, or say how long until one is there.
    fn take(&self) -> Result<(), Duration> {
        let mut state = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        let (tokens, last) = *state;
        let refilled =
            (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.capacity);
        if refilled >= 1.0 {
            *state = (refilled - 1.0, now);
            Ok(())
        } else {
            *state = (refilled, now);
            Err(Duration::from_secs_f64((1.0 - refilled) / self.rate))
        }
    }
}

/// What `gatehouse status` shows of the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub identity_in_flight: usize,
    pub identity_concurrent: usize,
}

#[derive(Debug, Clone)]
pub struct Limiter {
    identity: Arc<Bucket>,
    identity_slots: Arc<Semaphore>,
    other: Arc<Bucket>,
}

/// Held while an upstream request is in flight.
#[derive(Debug)]
pub struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
}

impl Limiter {
    pub fn new(limits: Limits) -> Self {
        Limiter {
            identity: Arc::new(Bucket::new(limits.identity_per_second)),
            identity_slots: Arc::new(Semaphore::new(limits.identity_concurrent.max(1))),
            other: Arc::new(Bucket::new(limits.other_per_second)),
        }
    }

    /// Wait for a slot until `deadline`; `None` when the budget ran out.
    pub async fn acquire(&self, identity: bool, deadline: Instant) -> Option<Slot> {
        let permit = if identity {
            crate::metrics::limiter_waiting(self.identity_slots.available_permits() == 0, true);
            let wait = deadline.saturating_duration_since(Instant::now());
            let p =
                tokio::time::timeout(wait, Arc::clone(&self.identity_slots).acquire_owned()).await;
            match p {
                Ok(Ok(p)) => Some(p),
                _ => return crate::metrics::limiter_refused(identity),
            }
        } else {
            None
        };
        let bucket = if identity {
            &self.identity
        } else {
            &self.other
        };
        loop {
            match bucket.take() {
                Ok(()) => return Some(Slot { _permit: permit }),
                Err(wait) => {
                    if Instant::now() + wait > deadline {
                        return crate::metrics::limiter_refused(identity);
                    }
                    crate::metrics::limiter_waiting(true, identity);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

impl Limiter {
    pub fn state(&self, limits: &Limits) -> State {
        let concurrent = limits.identity_concurrent.max(1);
        State {
            identity_in_flight: concurrent.saturating_sub(self.identity_slots.available_permits()),
            identity_concurrent: concurrent,
        }
    }
}

//! Time enters the emulator only through [`Clock`], so token lifetimes and the
//! rate limiter can be reasoned about (and unit-tested) with pinned instants.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A source of wall-clock and monotonic time.
pub(crate) trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch (token `iat`/`exp`, `expires_on`).
    fn unix_now(&self) -> u64;
    /// Monotonic time (rate-limit buckets).
    fn instant_now(&self) -> Instant;
}

/// The real clock.
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the emulator's one wall-clock read"
    )]
    fn unix_now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn instant_now(&self) -> Instant {
        Instant::now()
    }
}

//! Time enters gatehouse only through a [`Clock`], so expiry and audit times
//! are testable and nothing else reads the wall clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the one wall-clock read of the daemon"
    )]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock tests set by hand (milliseconds since the epoch).
#[derive(Debug, Default)]
pub struct ManualClock {
    millis: AtomicU64,
}

impl ManualClock {
    pub fn at(t: SystemTime) -> Self {
        let millis = t
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        ManualClock {
            millis: AtomicU64::new(millis),
        }
    }

    pub fn advance(&self, by: Duration) {
        let add = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.millis.fetch_add(add, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-25T14:01:09.123Z`: the
/// spelling of every audit time (the calendar is jiff's).
///
/// Times before 1970 only come from a broken clock; printing the epoch keeps
/// the audit line well-formed and obviously wrong. Past the year 9999 (no
/// clock gets there) it prints the last millisecond of 9999.
pub fn rfc3339(t: SystemTime) -> String {
    // Civil time at UTC, not `jiff::Timestamp`: a timestamp stops a day short
    // of 9999-12-31 (room for any offset), and UTC needs none.
    let epoch = jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0);
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let dt = jiff::SignedDuration::try_from(since)
        .ok()
        .and_then(|d| epoch.checked_add(d).ok())
        .unwrap_or(jiff::civil::DateTime::MAX);
    format!("{dt:.3}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let rows = [
            (0u64, "1970-01-01T00:00:00.000Z"),
            (951_782_400, "2000-02-29T00:00:00.000Z"),
            (1_795_618_869, "2026-11-25T15:01:09.000Z"),
            (4_102_444_799, "2099-12-31T23:59:59.000Z"),
        ];
        for (secs, want) in rows {
            assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(secs)), want);
        }
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_millis(1_500)),
            "1970-01-01T00:00:01.500Z"
        );
    }

    #[test]
    fn formats_rfc3339_millis() {
        let rows: &[(u64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (1_500, "1970-01-01T00:00:01.500Z"),
            (951_825_599_999, "2000-02-29T11:59:59.999Z"),
            (1_795_618_869_123, "2026-11-25T15:01:09.123Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        ];
        for &(ms, want) in rows {
            assert_eq!(
                rfc3339(UNIX_EPOCH + Duration::from_millis(ms)),
                want,
                "{ms} ms"
            );
        }
        // Sub-millisecond parts are dropped, not rounded.
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_micros(1_999)),
            "1970-01-01T00:00:00.001Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_nanos(999_999_999)),
            "1970-01-01T00:00:00.999Z"
        );
    }

    #[test]
    fn before_the_epoch_and_past_9999() {
        assert_eq!(
            rfc3339(UNIX_EPOCH - Duration::from_secs(1)),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(300_000_000_000)),
            "9999-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn manual_clock_advances() {
        let c = ManualClock::at(UNIX_EPOCH + Duration::from_secs(10));
        c.advance(Duration::from_secs(5));
        assert_eq!(c.now(), UNIX_EPOCH + Duration::from_secs(15));
    }
}

//! `yyyy-mm-ddThh:mm:ss[.fffffff]Z` ↔ nanoseconds since the Unix epoch.
//! The policy crate never reads the clock: the daemon passes its time in.

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::civil::DateTime;
use jiff::SignedDuration;

/// Civil time at UTC: a `jiff::Timestamp` stops a day short of the end of 9999.
const EPOCH: DateTime = jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0);

/// Nanoseconds since 1970-01-01T00:00:00Z (negative before).
pub type Nanos = i128;

/// Parse Azure's date-time form: UTC (`Z`) only, 0 to 7 fraction digits.
pub fn parse(s: &str) -> Option<Nanos> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let sep = |at: usize, c: u8| b.get(at) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let rest = s.get(19..)?;
    let frac = rest.strip_suffix('Z')?;
    let nanos = match frac.strip_prefix('.') {
        None if frac.is_empty() => 0,
        Some(digits)
            if (1..=7).contains(&digits.len()) && digits.bytes().all(|c| c.is_ascii_digit()) =>
        {
            let padded = format!("{digits:0<9}");
            padded.parse::<i64>().ok()?
        }
        _ => return None,
    };
    let small = |n: i64| i8::try_from(n).ok();
    // jiff refuses 31 February, hour 24, second 60 and friends.
    let dt = jiff::civil::DateTime::new(
        i16::try_from(year).ok()?,
        small(month)?,
        small(day)?,
        small(hour)?,
        small(minute)?,
        small(second)?,
        i32::try_from(nanos).ok()?,
    )
    .ok()?;
    Some(dt.duration_since(EPOCH).as_nanos())
}

/// A `SystemTime` as nanoseconds since the epoch.
pub fn from_system_time(t: SystemTime) -> Nanos {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
    }
}

/// Format as `yyyy-mm-ddThh:mm:ss.fffffffZ` (100 ns precision, as Azure).
/// Times outside jiff's years -9999..=9999 print as its first or last
/// instant (a parsed time is always inside).
pub fn format(n: Nanos) -> String {
    let secs = i64::try_from(n.div_euclid(1_000_000_000));
    // rem_euclid of a positive divisor is in 0..1e9, which fits.
    let nanos = i32::try_from(n.rem_euclid(1_000_000_000)).unwrap_or(0);
    let dt = secs
        .ok()
        .and_then(|s| EPOCH.checked_add(SignedDuration::new(s, nanos)).ok())
        .unwrap_or(if n < 0 { DateTime::MIN } else { DateTime::MAX });
    format!("{dt:.7}Z")
}

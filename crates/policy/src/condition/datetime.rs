//! `yyyy-mm-ddThh:mm:ss[.fffffff]Z` ↔ nanoseconds since the Unix epoch.
//! The policy crate never reads the clock: the daemon passes its time in.

use std::time::{SystemTime, UNIX_EPOCH};

use gatehouse_civil::{civil_from_days, days_from_civil};

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
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)?;
    let secs = i128::from(days) * 86_400 + i128::from(hour * 3600 + minute * 60 + second);
    Some(secs * 1_000_000_000 + i128::from(nanos))
}

/// A `SystemTime` as nanoseconds since the epoch.
pub fn from_system_time(t: SystemTime) -> Nanos {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
    }
}

/// Format as `yyyy-mm-ddThh:mm:ss.fffffffZ` (100 ns precision, as Azure).
pub fn format(n: Nanos) -> String {
    let secs = n.div_euclid(1_000_000_000);
    let frac = n.rem_euclid(1_000_000_000) / 100;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:07}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

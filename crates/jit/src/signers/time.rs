//! `valid-after=` / `valid-before=` times: `YYYYMMDD[HHMM[SS]]Z`, UTC only
//! (see the module docs of [`super`] for why `Z` is required).

use gatehouse_civil::days_from_civil;

use super::{err, shown, SignerError};

/// `time = ["\""] YYYYMMDD[HHMM[SS]] "Z" ["\""]` → seconds since the Unix epoch.
pub(super) fn parse(line: usize, option: &str, value: &str) -> Result<u64, SignerError> {
    let bad = |why: &str| {
        err(
            line,
            format!("`{option}={}`: {why}", shown(value)),
            format!("write `{option}=YYYYMMDD[HHMM[SS]]Z` in UTC, e.g. `{option}=20250131Z` or `{option}=20250131235959Z`"),
        )
    };
    let v = match value.strip_prefix('"') {
        Some(inner) => inner
            .strip_suffix('"')
            .ok_or_else(|| bad("unterminated quote"))?,
        None => value,
    };
    let Some(digits) = v.strip_suffix(['Z', 'z']) else {
        return Err(bad("no `Z` suffix; gatehouse reads these times as UTC and will not guess the local time zone"));
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad("not a date or time of 8, 12 or 14 digits"));
    }
    let field = |range: std::ops::Range<usize>| {
        digits
            .get(range)
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let (year, month, day) = (field(0..4), field(4..6), field(6..8));
    let (hour, minute, second) = (field(8..10), field(10..12), field(12..14));
    if year < 1970 {
        return Err(bad("before 1970"));
    }
    // Non-negative because the year is at least 1970.
    let days = days_from_civil(i64::from(year), month, day)
        .and_then(|days| u64::try_from(days).ok())
        .ok_or_else(|| bad("no such date"))?;
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("no such time of day"));
    }
    Ok(days * 86_400 + u64::from(hour) * 3600 + u64::from(minute) * 60 + u64::from(second))
}

//! `valid-after=` / `valid-before=` times: `YYYYMMDD[HHMM[SS]]Z`, UTC only
//! (see the module docs of [`super`] for why `Z` is required).

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
    let small = |n: u32| i8::try_from(n).unwrap_or(i8::MAX);
    let date = i16::try_from(year)
        .ok()
        .and_then(|y| jiff::civil::Date::new(y, small(month), small(day)).ok())
        .ok_or_else(|| bad("no such date"))?;
    let time = jiff::civil::Time::new(small(hour), small(minute), small(second), 0)
        .map_err(|_| bad("no such time of day"))?;
    let epoch = jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0);
    let since = date.to_datetime(time).duration_since(epoch);
    // Non-negative because the year is at least 1970.
    u64::try_from(since.as_secs()).map_err(|_| bad("before 1970"))
}

//! gatehouse-civil: the calendar arithmetic every gatehouse crate needs and
//! none should write twice — days since the Unix epoch ↔ proleptic Gregorian
//! dates (Howard Hinnant's `days_from_civil` / `civil_from_days`, written out
//! from his description), and the one RFC 3339 spelling the audit log and the
//! JIT store share. Parsing stays with each caller: their accepted spellings
//! and error messages differ on purpose. A date crate is not worth this much.
#![forbid(unsafe_code)]

use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(test)]
mod tests;

/// Days from 0000-03-01 (the start of Hinnant's March-based era) to 1970-01-01.
const EPOCH_SHIFT: i128 = 719_468;
/// Days in a 400-year Gregorian era.
const ERA_DAYS: i128 = 146_097;
const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31).
///
/// Total over `i64`: the arithmetic runs in `i128`, so even absurd day counts
/// (a corrupt database row, a fuzzer) give a date rather than an overflow.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = i128::from(days) + EPOCH_SHIFT;
    let era = z.div_euclid(ERA_DAYS);
    let doe = z.rem_euclid(ERA_DAYS); // day of era, 0..=146_096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // from 1 March, 0..=365
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    // |year| <= |days| / 365 + 1, so it always fits; day and month are small.
    (
        i64::try_from(year).unwrap_or(i64::MAX),
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// (year, month, day) → days since 1970-01-01; None for an invalid date
/// (month 0/13, day 0, Feb 30, ...) or one too far out for an `i64` day count.
///
/// Validating here lets every parser reject "31 February" the same way.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    if day == 0 || day > days_in_month(year, month)? {
        return None;
    }
    let (m, d) = (i128::from(month), i128::from(day));
    let y = i128::from(year) - i128::from(month <= 2); // the era year starts in March
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12; // month from March
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i64::try_from(era * ERA_DAYS + doe - EPOCH_SHIFT).ok()
}

/// `2026-11-25T14:01:09.123Z` (UTC, milliseconds) for a SystemTime (before 1970: the epoch).
///
/// Times before 1970 only come from a broken clock; printing the epoch keeps
/// the audit line well-formed and obviously wrong.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    // u64::MAX / 86_400 < i64::MAX, so the fallback is unreachable.
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let ms_of_day = (secs % 86_400) * 1000 + u64::from(since.subsec_millis());
    format_day_and_ms(days, ms_of_day)
}

/// [`rfc3339_millis`] for milliseconds since the epoch (negative before it,
/// proleptic), the form a database stores: the store formats its integers
/// without a round trip through `SystemTime`.
pub fn rfc3339_from_millis(ms: i64) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    // rem_euclid of a positive divisor is in 0..MS_PER_DAY.
    let ms_of_day = u64::try_from(ms.rem_euclid(MS_PER_DAY)).unwrap_or(0);
    format_day_and_ms(days, ms_of_day)
}

fn format_day_and_ms(days: i64, ms_of_day: u64) -> String {
    let (y, m, d) = civil_from_days(days);
    let secs = ms_of_day / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        ms_of_day % 1000
    )
}

/// None for a month outside 1..=12.
fn days_in_month(year: i64, month: u32) -> Option<u32> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => Some(29),
        2 => Some(28),
        4 | 6 | 9 | 11 => Some(30),
        1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
        _ => None,
    }
}

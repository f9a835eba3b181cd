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
        Some(inner) => inner.strip_suffix('"').ok_or_else(|| bad("unterminated quote"))?,
        None => value,
    };
    let Some(digits) = v.strip_suffix(['Z', 'z']) else {
        return Err(bad("no `Z` suffix; gatehouse reads these times as UTC and will not guess the local time zone"));
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad("not a date or time of 8, 12 or 14 digits"));
    }
    let field = |range: std::ops::Range<usize>| digits.get(range).and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
    let (year, month, day) = (field(0..4), field(4..6), field(6..8));
    let (hour, minute, second) = (field(8..10), field(10..12), field(12..14));
    if year < 1970 {
        return Err(bad("before 1970"));
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad("no such date"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("no such time of day"));
    }
    let days = days_from_civil(year, month, day);
    Ok(days * 86_400 + u64::from(hour) * 3600 + u64::from(minute) * 60 + u64::from(second))
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a valid date on or after it (Howard Hinnant's
/// `days_from_civil`, unsigned because the year is at least 1970).
fn days_from_civil(year: u32, month: u32, day: u32) -> u64 {
    let y = u64::from(if month <= 2 { year - 1 } else { year });
    let era = y / 400;
    let yoe = y - era * 400;
    let m = u64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + u64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

//! Times in the store: integer milliseconds since the Unix epoch in SQLite
//! (sortable, comparable in SQL), and RFC 3339 UTC with milliseconds
//! (`YYYY-MM-DDTHH:MM:SS.mmmZ`) in JSON — the one spelling the audit log
//! uses, so a record and the audit line about it read the same.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::civil::DateTime;
use jiff::SignedDuration;
use serde::{Deserialize, Deserializer, Serializer};

use super::StoreError;

/// Latest time the store accepts: 9999-12-31T23:59:59.999Z. RFC 3339 has four
/// year digits, and a bound keeps `now + duration` far from `i64` overflow.
const MAX_MS: i64 = 253_402_300_799_999;

/// `t` as milliseconds since the epoch; sub-millisecond parts are dropped.
pub(crate) fn to_ms(t: SystemTime) -> Result<i64, StoreError> {
    t.duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .filter(|ms| *ms <= MAX_MS)
        .ok_or_else(|| out_of_range(t))
}

pub(crate) fn from_ms(ms: i64) -> Option<SystemTime> {
    if ms > MAX_MS {
        return None;
    }
    let ms = u64::try_from(ms).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

/// `ms + secs` seconds, refused past the year 9999.
pub(crate) fn add_secs(ms: i64, secs: u64) -> Result<i64, StoreError> {
    i64::try_from(secs)
        .ok()
        .and_then(|s| s.checked_mul(1000))
        .and_then(|add| ms.checked_add(add))
        .filter(|end| *end <= MAX_MS)
        .ok_or(StoreError::InvalidTime(format!(
            "{} plus {secs} s is past the year 9999; ask for a shorter duration",
            format_ms(ms)
        )))
}

fn out_of_range(t: SystemTime) -> StoreError {
    let what = match t.duration_since(UNIX_EPOCH) {
        Ok(_) => "is past the year 9999",
        Err(_) => "is before 1970",
    };
    StoreError::InvalidTime(format!("time {what}; check the system clock"))
}

const EPOCH: DateTime = jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0);

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-25T14:01:09.123Z`.
pub(crate) fn format_ms(ms: i64) -> String {
    // Civil time at UTC (a `jiff::Timestamp` stops a day short of the end
    // of 9999). The store's times are inside jiff's years; the clamp only
    // keeps this total.
    let dt = EPOCH
        .checked_add(SignedDuration::from_millis(ms))
        .unwrap_or(if ms < 0 { DateTime::MIN } else { DateTime::MAX });
    format!("{dt:.3}Z")
}

/// The inverse of [`format_ms`]; `None` for any other spelling.
pub(crate) fn parse_ms(text: &str) -> Option<i64> {
    const PATTERN: &[u8; 24] = b"dddd-dd-ddTdd:dd:dd.dddZ";
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == PATTERN.len()
        && bytes.iter().zip(PATTERN).all(|(b, p)| match p {
            b'd' => b.is_ascii_digit(),
            other => b == other,
        });
    if !shape_ok {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> { text.get(from..to)?.parse().ok() };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, s, ms) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    let small = |n: i64| i8::try_from(n).ok();
    // jiff refuses 31 February, hour 24, second 60 and friends.
    let dt = jiff::civil::DateTime::new(
        i16::try_from(y).ok()?,
        small(mo)?,
        small(d)?,
        small(h)?,
        small(mi)?,
        small(s)?,
        i32::try_from(ms * 1_000_000).ok()?,
    )
    .ok()?;
    i64::try_from(dt.duration_since(EPOCH).as_millis()).ok()
}

/// `#[serde(with = "time::rfc3339")]` for a `SystemTime`.
pub(crate) mod rfc3339 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let ms = to_ms(*t).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&format_ms(ms))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        parse_ms(&text).and_then(from_ms).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "time `{text}` is not RFC 3339 UTC with milliseconds (`YYYY-MM-DDTHH:MM:SS.mmmZ`)"
            ))
        })
    }
}

/// `#[serde(with = "time::rfc3339_opt")]` for an `Option<SystemTime>`.
pub(crate) mod rfc3339_opt {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => parse_ms(&text).and_then(from_ms).map(Some).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "time `{text}` is not RFC 3339 UTC with milliseconds (`YYYY-MM-DDTHH:MM:SS.mmmZ`)"
                ))
            }),
        }
    }
}

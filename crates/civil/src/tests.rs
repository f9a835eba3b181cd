use std::time::{Duration, UNIX_EPOCH};

use super::*;

/// (days since 1970-01-01, year, month, day).
const KNOWN: &[(i64, i64, u32, u32)] = &[
    (0, 1970, 1, 1),
    (-1, 1969, 12, 31),
    (-719_528, 0, 1, 1),
    (-719_468, 0, 3, 1),
    (10_956, 1999, 12, 31),
    (11_016, 2000, 2, 29),
    (11_017, 2000, 3, 1),
    (19_782, 2024, 2, 29),
    (47_540, 2100, 2, 28),
    (47_541, 2100, 3, 1),
    (2_932_896, 9999, 12, 31),
];

#[test]
fn known_dates_both_ways() {
    for &(days, y, m, d) in KNOWN {
        assert_eq!(civil_from_days(days), (y, m, d), "civil_from_days({days})");
        assert_eq!(
            days_from_civil(y, m, d),
            Some(days),
            "days_from_civil({y}, {m}, {d})"
        );
    }
}

#[test]
fn every_997th_day_from_year_0_to_9999_round_trips() {
    let (first, last) = (-719_528, 2_932_896);
    let mut previous = None;
    for days in (first..=last).step_by(997).chain([last]) {
        let (y, m, d) = civil_from_days(days);
        assert!(
            (0..=9999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d),
            "{days}"
        );
        assert_eq!(days_from_civil(y, m, d), Some(days), "{y:04}-{m:02}-{d:02}");
        assert!(
            previous < Some((y, m, d)),
            "dates must increase with days: {days}"
        );
        previous = Some((y, m, d));
    }
}

#[test]
fn consecutive_days_are_consecutive_dates_across_400_years() {
    // One full era, day by day: each date is the day after the one before.
    let mut days = days_from_civil(1600, 1, 1).unwrap();
    let mut date = civil_from_days(days);
    while date.0 < 2000 {
        days += 1;
        let next = civil_from_days(days);
        let (y, m, d) = date;
        let expected = if days_from_civil(y, m, d + 1).is_some() {
            (y, m, d + 1)
        } else if m < 12 {
            (y, m + 1, 1)
        } else {
            (y + 1, 1, 1)
        };
        assert_eq!(next, expected, "day {days}");
        date = next;
    }
}

#[test]
fn invalid_dates_are_none() {
    // Month 0 and 13, day 0 and 32, 29 February off leap years (including
    // centuries not divisible by 400), the 31st of 30-day months, and years
    // whose day count leaves `i64`.
    #[rustfmt::skip]
    let rows: &[(i64, u32, u32)] = &[
        (2024, 0, 1), (2024, 13, 1), (2024, 1, 0), (2024, 1, 32), (2024, 2, 30),
        (2023, 2, 29), (2100, 2, 29), (1900, 2, 29),
        (2024, 4, 31), (2024, 6, 31), (2024, 9, 31), (2024, 11, 31),
        (i64::MAX, 1, 1), (i64::MIN, 1, 1),
    ];
    for &(y, m, d) in rows {
        assert_eq!(days_from_civil(y, m, d), None, "{y}-{m}-{d}");
    }
    assert!(days_from_civil(2000, 2, 29).is_some());
    assert!(days_from_civil(2024, 12, 31).is_some());
}

#[test]
fn extreme_day_counts_do_not_overflow() {
    for days in [i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX] {
        let (_, m, d) = civil_from_days(days);
        assert!((1..=12).contains(&m) && (1..=31).contains(&d), "{days}");
    }
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
            rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)),
            want,
            "{ms} ms"
        );
        assert_eq!(
            rfc3339_from_millis(i64::try_from(ms).unwrap()),
            want,
            "{ms} ms"
        );
    }
    // Sub-millisecond parts are dropped, not rounded.
    assert_eq!(
        rfc3339_millis(UNIX_EPOCH + Duration::from_micros(1_999)),
        "1970-01-01T00:00:00.001Z"
    );
}

#[test]
fn before_the_epoch() {
    assert_eq!(
        rfc3339_millis(UNIX_EPOCH - Duration::from_secs(1)),
        "1970-01-01T00:00:00.000Z"
    );
    assert_eq!(rfc3339_from_millis(-1), "1969-12-31T23:59:59.999Z");
}

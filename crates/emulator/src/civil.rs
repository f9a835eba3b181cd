//! Calendar formatting of Unix times for the few places IMDS prints dates
//! (attested-document timestamps and its default nonce); the calendar is
//! jiff's.

#[cfg(test)]
mod tests;

/// A UTC calendar date and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateTime {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
}

impl DateTime {
    /// Converts seconds since the epoch (proleptic Gregorian); past the
    /// year 9999, its last second.
    pub(crate) fn from_unix(secs: u64) -> Self {
        let epoch = jiff::civil::date(1970, 1, 1).at(0, 0, 0, 0);
        let dt = i64::try_from(secs)
            .ok()
            .and_then(|s| epoch.checked_add(jiff::SignedDuration::from_secs(s)).ok())
            .unwrap_or(jiff::civil::DateTime::MAX);
        let n = |v: i8| u32::try_from(v).unwrap_or(0);
        Self {
            year: i64::from(dt.year()),
            month: n(dt.month()),
            day: n(dt.day()),
            hour: n(dt.hour()),
            minute: n(dt.minute()),
            second: n(dt.second()),
        }
    }

    /// IMDS attested-document form: `MM/DD/YY HH:MM:SS -0000`.
    pub(crate) fn attested(&self) -> String {
        format!(
            "{:02}/{:02}/{:02} {:02}:{:02}:{:02} -0000",
            self.month,
            self.day,
            self.year.rem_euclid(100),
            self.hour,
            self.minute,
            self.second
        )
    }

    /// RFC 3339 at UTC, whole seconds: `2026-12-03T17:00:00Z` (EC2's form).
    pub(crate) fn iso(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// IMDS default nonce form: `YYYYMMDD-HHMMSS`.
    pub(crate) fn compact(&self) -> String {
        format!(
            "{:04}{:02}{:02}-{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

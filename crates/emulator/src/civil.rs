//! Calendar formatting of Unix times for the few places IMDS prints dates
//! (attested-document timestamps and its default nonce). A dependency on a
//! date crate is not worth two formats.

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
    /// Converts seconds since the epoch (proleptic Gregorian).
    pub(crate) fn from_unix(secs: u64) -> Self {
        // u64::MAX / 86_400 < i64::MAX, so the fallback is unreachable.
        let days = i64::try_from(secs / 86_400).unwrap_or(0);
        let rem = secs % 86_400;
        let (year, month, day) = gatehouse_civil::civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: u32::try_from(rem / 3600).unwrap_or(0),
            minute: u32::try_from(rem % 3600 / 60).unwrap_or(0),
            second: u32::try_from(rem % 60).unwrap_or(0),
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

    /// IMDS default nonce form: `YYYYMMDD-HHMMSS`.
    pub(crate) fn compact(&self) -> String {
        format!(
            "{:04}{:02}{:02}-{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

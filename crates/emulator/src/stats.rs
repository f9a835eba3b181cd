//! Counts of what the emulator saw, for benchmarks and for tests that check
//! the gate's cache really shields IMDS.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;

/// Request counts since start or the last reset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Every request read, answered or not.
    pub total: u64,
    pub by_endpoint: BTreeMap<Endpoint, u64>,
    /// Answered requests by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests whose connection was closed without an answer (outage fault).
    pub dropped: u64,
    /// Connections closed at accept, unread (`close_at_once` fault).
    pub closed_at_accept: u64,
    /// The most identity requests that arrived within one second (sliding).
    pub identity_peak_per_second: u64,
    /// The most identity requests being answered at once.
    pub identity_peak_in_flight: u64,
}

/// Tracks identity requests for the two peaks above.
#[derive(Debug, Default)]
pub(crate) struct Peaks {
    arrivals: VecDeque<Instant>,
    in_flight: u64,
}

impl Peaks {
    /// An identity request arrived at `now`; returns (in the last second, in flight).
    pub(crate) fn arrive(&mut self, now: Instant) -> (u64, u64) {
        while self
            .arrivals
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(1))
        {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back(now);
        self.in_flight = self.in_flight.saturating_add(1);
        let n = u64::try_from(self.arrivals.len()).unwrap_or(u64::MAX);
        (n, self.in_flight)
    }

    pub(crate) fn leave(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }
}

impl Stats {
    pub(crate) fn peaks(&mut self, (per_second, in_flight): (u64, u64)) {
        self.identity_peak_per_second = self.identity_peak_per_second.max(per_second);
        self.identity_peak_in_flight = self.identity_peak_in_flight.max(in_flight);
    }

    pub(crate) fn record(&mut self, endpoint: Endpoint, status: Option<u16>) {
        self.total = self.total.saturating_add(1);
        let n = self.by_endpoint.entry(endpoint).or_insert(0);
        *n = n.saturating_add(1);
        match status {
            Some(status) => {
                let n = self.by_status.entry(status).or_insert(0);
                *n = n.saturating_add(1);
            }
            None => self.dropped = self.dropped.saturating_add(1),
        }
    }
}

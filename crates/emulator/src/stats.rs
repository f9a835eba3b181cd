//! Counts of what the emulator saw, for benchmarks and for tests that check
//! the gate's cache really shields IMDS.

use std::collections::BTreeMap;

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
}

impl Stats {
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

//! Injected faults: what an unhealthy IMDS looks like to its clients and to
//! the gate in front of it.
//!
//! - `latency_ms` / `endpoint_latency_ms`: delay before answering (added up).
//! - `forced`: answer with a fixed status instead of the real response, for
//!   every request or the next `count` ones, optionally only on one endpoint
//!   (e.g. the next 3 token requests get 500; 429 with `Retry-After`; 404/410
//!   "IMDS updating").
//! - `outage`: read the request, then close the connection without a reply —
//!   what an unreachable IMDS looks like to a proxy (a reset/EOF, not an HTTP
//!   error).
//! - `close_at_once`: accept the connection and close it before reading
//!   anything — a metadata service that resets every connection.
//!
//! Refusing (nothing listening) and dropping SYNs are the network's doing,
//! not the emulator's: tests shape them with nftables in front of it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;

#[cfg(test)]
mod tests;

/// The set of active faults (JSON/TOML via serde; all fields optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delay added to every endpoint.
    pub latency_ms: u64,
    /// Extra delay per endpoint.
    pub endpoint_latency_ms: BTreeMap<Endpoint, u64>,
    /// Forced replies, first match wins.
    pub forced: Vec<ForcedStatus>,
    /// Accept and close without answering.
    pub outage: bool,
    /// Accept and close at once, before reading the request.
    pub close_at_once: bool,
}

/// A forced reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForcedStatus {
    /// Only this endpoint; `None` means all.
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// HTTP status (100..=999 as `http` allows; 4xx/5xx in practice).
    pub status: u16,
    /// Body; default `{"error":"<reason phrase>"}`.
    #[serde(default)]
    pub body: Option<String>,
    /// Adds a `Retry-After` header.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
    /// How many requests it applies to; `None` means until cleared.
    #[serde(default)]
    pub count: Option<u32>,
}

/// Why a fault set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultsError {
    #[error("forced status `{0}` is not a valid http status")]
    Status(u16),
}

impl Faults {
    /// Checks every forced status is a real HTTP status.
    pub fn validate(&self) -> Result<(), FaultsError> {
        match self
            .forced
            .iter()
            .find(|f| http::StatusCode::from_u16(f.status).is_err())
        {
            Some(bad) => Err(FaultsError::Status(bad.status)),
            None => Ok(()),
        }
    }

    /// Total delay for `endpoint`.
    pub(crate) fn latency(&self, endpoint: Endpoint) -> Duration {
        let extra = self
            .endpoint_latency_ms
            .get(&endpoint)
            .copied()
            .unwrap_or(0);
        Duration::from_millis(self.latency_ms.saturating_add(extra))
    }

    /// The forced reply for this request, if any, consuming one use of it.
    pub(crate) fn take_forced(&mut self, endpoint: Endpoint) -> Option<ForcedStatus> {
        let index = self
            .forced
            .iter()
            .position(|f| f.endpoint.is_none_or(|e| e == endpoint) && f.count != Some(0))?;
        let entry = self.forced.get_mut(index)?;
        let taken = entry.clone();
        if let Some(count) = entry.count.as_mut() {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.forced.remove(index);
            }
        }
        Some(taken)
    }
}

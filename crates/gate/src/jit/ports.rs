//! Opening and closing just-in-time ports: whoever holds CAP_NET_ADMIN (the
//! gate itself when it runs as root, or the broker of `run --user`) keeps
//! the kernel's `jit4`/`jit6` sets equal to the database's active port
//! grants, and cuts a revoked source's sessions.
//!
//! The worker only ever says "the set should be exactly this" (with each
//! element's remaining time) — a whole-state message, so a lost or repeated
//! one cannot leave a port open — and "cut this source's sessions".

use gatehouse_firewall::jit::Element;
use gatehouse_firewall::Nft;
use gatehouse_policy::Protocol;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest element timeout accepted (a grant's maximum, plus slack).
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600 + 60);

/// One open port for one source, as passed between processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortElement {
    pub source: IpAddr,
    pub protocol: Protocol,
    pub port: u16,
    pub expires_in_secs: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSummary {
    pub added: usize,
    pub removed: usize,
    pub kept: usize,
}

/// Why the port sets or a session cut could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("`{port}/{protocol}` is not a just-in-time port of this gate's table; add it to the policy's `[jit]` ports and restart")]
    NotProtected { port: u16, protocol: Protocol },
    #[error("a timeout of {0} s is outside 1 s .. 24 h")]
    Timeout(u64),
    #[error("the port state lock is poisoned; restart the gate")]
    Poisoned,
    #[error("changing the just-in-time port sets failed: {0}")]
    Firewall(#[source] gatehouse_firewall::Error),
    #[error("cutting sessions failed: {0}")]
    Cut(#[source] std::io::Error),
    #[error(transparent)]
    Broker(#[from] crate::privsep::BrokerError),
}

/// What the JIT service needs from the firewall.
pub trait PortControl: Send + Sync {
    /// Make the kernel's sets hold exactly `desired`.
    fn sync(&self, desired: &[PortElement]) -> Result<SyncSummary, PortError>;
    /// Destroy every socket of `protocol`/`port` talking to `source`.
    fn cut(&self, source: IpAddr, protocol: Protocol, port: u16) -> Result<usize, PortError>;
}

/// The holder of CAP_NET_ADMIN's side: checks every element against the
/// protected ports it was started with, and remembers the last desired
/// state so a table repair (which empties the sets) can put it back.
pub struct PortKeeper {
    nft: Nft,
    protected: Vec<(Protocol, u16)>,
    last: Mutex<Vec<(PortElement, Instant)>>,
    /// One list-then-change at a time (the worker's syncs and the
    /// watcher's post-repair resync run on different threads).
    syncing: Mutex<()>,
}

impl std::fmt::Debug for PortKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortKeeper")
            .field("protected", &self.protected)
            .finish_non_exhaustive()
    }
}

impl PortKeeper {
    pub fn new(nft: Nft, protected: Vec<(Protocol, u16)>) -> PortKeeper {
        PortKeeper {
            nft,
            protected,
            last: Mutex::new(Vec::new()),
            syncing: Mutex::new(()),
        }
    }

    fn element(&self, e: &PortElement) -> Result<Element, PortError> {
        let proto = e.protocol;
        if !self.protected.contains(&(proto, e.port)) {
            return Err(PortError::NotProtected {
                port: e.port,
                protocol: e.protocol,
            });
        }
        let expires_in = Duration::from_secs(e.expires_in_secs);
        if expires_in.is_zero() || expires_in > MAX_TIMEOUT {
            return Err(PortError::Timeout(e.expires_in_secs));
        }
        Ok(Element {
            source: e.source,
            proto,
            port: e.port,
            expires_in,
        })
    }

    /// After the table was re-applied: put the remembered elements back with
    /// what is left of their time.
    pub fn resync(&self) -> Result<SyncSummary, PortError> {
        let _one_at_a_time = self
            .syncing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let remaining: Vec<PortElement> = self
            .last
            .lock()
            .map_err(|_| PortError::Poisoned)?
            .iter()
            .filter_map(|(e, deadline)| {
                let left = deadline.checked_duration_since(now)?.as_secs();
                (left > 0).then(|| PortElement {
                    expires_in_secs: left,
                    ..e.clone()
                })
            })
            .collect();
        self.apply(&remaining)
    }

    /// Remember `desired` (even if the kernel refuses it: a repair puts back
    /// the newest wish, never an older one), then make the sets hold it.
    /// An element this keeper may not hold is left out and reported, so one
    /// bad element never keeps the others — or a removal — from the kernel.
    fn apply(&self, desired: &[PortElement]) -> Result<SyncSummary, PortError> {
        let now = Instant::now();
        if let Ok(mut last) = self.last.lock() {
            *last = desired
                .iter()
                .map(|e| (e.clone(), now + Duration::from_secs(e.expires_in_secs)))
                .collect();
        }
        let mut refused = Vec::new();
        let elements: Vec<Element> = desired
            .iter()
            .filter_map(|e| {
                self.element(e)
                    .map_err(|why| refused.push(why.to_string()))
                    .ok()
            })
            .collect();
        let report =
            gatehouse_firewall::jit::sync(&self.nft, &elements).map_err(PortError::Firewall)?;
        if !refused.is_empty() {
            tracing::error!(refused = ?refused, "jit: elements left out of the port sets");
        }
        Ok(SyncSummary {
            added: report.added.len(),
            removed: report.removed.len(),
            kept: report.kept,
        })
    }
}

impl PortControl for PortKeeper {
    fn sync(&self, desired: &[PortElement]) -> Result<SyncSummary, PortError> {
        let _one_at_a_time = self
            .syncing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.apply(desired)
    }

    fn cut(&self, source: IpAddr, protocol: Protocol, port: u16) -> Result<usize, PortError> {
        if !self.protected.contains(&(protocol, port)) {
            return Err(PortError::NotProtected { port, protocol });
        }
        gatehouse_sys::destroy_sockets(port, protocol.number(), source).map_err(PortError::Cut)
    }
}

//! The kernel's port sets made equal to the database's active port grants.

use super::ports::PortElement;
use super::*;
use gatehouse_jit::store::{Kind, Record, Target};
use std::time::SystemTime;

impl JitService {
    /// Make the kernel's sets hold exactly the active port grants.
    pub(super) fn sync_ports(&self, why: &str) -> Result<(), ServiceError> {
        let Some(ports) = &self.ports else {
            return Ok(());
        };
        let now = self.now();
        let records = self.store.active(Kind::Port, now)?;
        let desired: Vec<PortElement> = records
            .iter()
            .filter_map(|r| port_element(r, now))
            .collect();
        let result = ports.sync(&desired);
        if let Ok(mut last) = self.last_port_sync.lock() {
            // A failure leaves it due, so the next tick tries again.
            *last = result.is_ok().then(std::time::Instant::now);
        }
        let summary = result?;
        if summary.added + summary.removed > 0 || why == "start" {
            let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
            let _ = self.gate.record_event_public(&Event::JitPortsSynced {
                why: why.to_owned(),
                added: count(summary.added),
                removed: count(summary.removed),
                kept: count(summary.kept),
            });
        }
        Ok(())
    }
}

pub(super) fn port_element(r: &Record, now: SystemTime) -> Option<PortElement> {
    let Target::Port {
        port,
        protocol,
        source,
        ..
    } = r.request.target
    else {
        return None;
    };
    let left = r.expires?.duration_since(now).ok()?;
    // Round up: the kernel's timeout must not end before the grant does.
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    Some(PortElement {
        source,
        protocol,
        port,
        expires_in_secs: secs.max(1),
    })
}

//! The gate's side of the audit export (crates/export): the log's head,
//! the clock and the metrics the exporter reports to, and its status.

use std::sync::{Arc, Weak};
use std::time::SystemTime;

use gatehouse_export::exporter::View;
use gatehouse_export::Host;

use crate::{metrics, Gate};

/// The exporter's view of this gate. Weak: the exporter never keeps the
/// gate alive.
pub struct GateHost {
    gate: Weak<Gate>,
    clock: Arc<dyn crate::clock::Clock>,
}

impl std::fmt::Debug for GateHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateHost").finish_non_exhaustive()
    }
}

impl GateHost {
    pub fn new(gate: &Arc<Gate>) -> Arc<GateHost> {
        Arc::new(GateHost {
            gate: Arc::downgrade(gate),
            clock: Arc::clone(&gate.clock),
        })
    }
}

impl Host for GateHost {
    fn head_seq(&self) -> Option<u64> {
        self.gate.upgrade()?.audit.head().map(|h| h.seq)
    }
    fn now(&self) -> SystemTime {
        self.clock.now()
    }
    fn delivered(&self, sink: &str, records: u64) {
        metrics::export_delivered(sink, records);
    }
    fn failed(&self, sink: &str) {
        metrics::export_failed(sink);
    }
    fn lag(&self, sink: &str, records: u64, secs: u64) {
        metrics::export_lag(sink, records, secs);
    }
}

impl Gate {
    /// Shows a running export in `gatehouse status`.
    pub fn set_export(&self, view: View) {
        let _ = self.export.set(view);
    }

    pub(crate) fn export_status(&self) -> Vec<gatehouse_export::SinkStatus> {
        self.export.get().map(View::status).unwrap_or_default()
    }
}

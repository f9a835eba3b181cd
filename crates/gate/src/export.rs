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

    /// The VM's id as its metadata service gives it (Azure
    /// `compute.vmId`, AWS `instance-id`), for the export's `host.id`;
    /// `None` if it does not answer with one within `within` (the export
    /// then goes without: metadata must not wait on the SIEM, nor the SIEM
    /// on metadata).
    pub async fn vm_id(&self, within: std::time::Duration) -> Option<String> {
        let target = match self.cloud {
            gatehouse_policy::Cloud::Azure => {
                "/metadata/instance/compute/vmId?api-version=2021-02-01&format=text"
            }
            gatehouse_policy::Cloud::Aws => "/latest/meta-data/instance-id",
            gatehouse_policy::Cloud::Gcp => "/computeMetadata/v1/instance/id",
        };
        let answer = self
            .tokens
            .fetcher
            .upstream
            .send_within(&http::Method::GET, target, None, within)
            .await
            .ok()?;
        let id = std::str::from_utf8(&answer.body).ok()?.trim();
        let plausible = !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        (answer.status == 200 && plausible).then(|| id.to_owned())
    }

    pub(crate) fn export_status(&self) -> Vec<gatehouse_export::SinkStatus> {
        self.export.get().map(View::status).unwrap_or_default()
    }
}

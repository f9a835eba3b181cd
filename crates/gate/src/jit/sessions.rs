//! Revocation of a port grant cuts the source's established sessions.

use super::*;
use gatehouse_jit::store::{Kind, Record, Target};

impl JitService {
    /// Revocation really ends a port grant: the element is gone (no new
    /// connections) and the source's established sessions are destroyed.
    pub(super) fn cut_sessions(&self, record: &Record) -> Vec<String> {
        let (
            Some(ports),
            &Target::Port {
                port,
                protocol: proto,
                source,
                ..
            },
        ) = (&self.ports, &record.request.target)
        else {
            return Vec::new();
        };
        // The break-glass ranges reach the port anyway: their sessions stay.
        if self
            .gate
            .policy()
            .break_glass()
            .iter()
            .any(|net| net.contains(&source))
        {
            return vec![format!(
                "{source} is in a break-glass range: its sessions were not cut"
            )];
        }
        // Another active grant for the same source and port keeps it open.
        let now = self.now();
        let still_open = self.store.active(Kind::Port, now).map(|rs| {
            rs.iter().any(|r| {
                matches!(r.request.target, Target::Port { port: p, protocol: q, source: s, .. }
                    if p == port && q == proto && s == source)
            })
        });
        if matches!(still_open, Ok(true)) {
            return vec![format!("another active grant keeps {port}/{proto} open for {source}; its sessions were not cut")];
        }
        match ports.cut(source, proto, port) {
            Ok(n) => {
                let _ = self.gate.record_event_public(&Event::JitSessionsCut {
                    id: record.id.clone(),
                    source: source.to_string(),
                    port,
                    protocol: proto.to_string(),
                    sockets: u64::try_from(n).unwrap_or(u64::MAX),
                });
                vec![format!(
                    "{n} session(s) from {source} to port {port}/{proto} were cut"
                )]
            }
            Err(e) => {
                tracing::error!(error = %e, "jit: cannot cut sessions");
                vec![format!("the port is closed to new connections, but cutting established sessions failed: {e}")]
            }
        }
    }
}

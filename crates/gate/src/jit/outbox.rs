//! The audit outbox: the store's events become audit lines, oldest first,
//! and an event is marked audited only after its line is written, so a
//! crash in between writes it again on start rather than losing it.

use super::*;
use crate::clock::rfc3339;
use gatehouse_jit::store::{FlatRequest, Record};
use serde_json::json;
use std::net::IpAddr;
use std::time::SystemTime;

impl JitService {
    /// Write pending events to the audit log, oldest first.
    pub fn flush_audit(&self) -> Result<(), String> {
        loop {
            let events = self
                .store
                .unaudited(AUDIT_BATCH)
                .map_err(|e| e.to_string())?;
            let Some(last) = events.last().map(|e| e.seq) else {
                return Ok(());
            };
            for event in &events {
                let record = self.store.get(&event.request_id).ok().flatten();
                let mut line = json!({
                    "type": format!("jit_{}", event.kind),
                    "jit_event": event.seq,
                    "id": event.request_id,
                    "at": rfc3339(event.at),
                    "actor": event.actor,
                    "detail": event.detail,
                });
                if let (Some(r), Some(obj)) = (record, line.as_object_mut()) {
                    obj.insert("request".into(), audit_view(&r));
                }
                if let Err(e) = self.gate.record_event_public(&line) {
                    // Keep what was written; the rest waits for the log.
                    if let Some(done) = event.seq.checked_sub(1) {
                        let _ = self.store.mark_audited(done);
                    }
                    return Err(e);
                }
            }
            self.store.mark_audited(last).map_err(|e| e.to_string())?;
            if events.len() < AUDIT_BATCH {
                return Ok(());
            }
        }
    }

    /// Record a refused signed request (bounded by the caller's rate limit).
    pub fn audit_refused_knock(
        &self,
        source: IpAddr,
        kind: &str,
        message: &str,
        signer: Option<&str>,
    ) {
        let _ = self.gate.record_event_public(&json!({
            "type": "jit_signed_request_refused",
            "source": source.to_string(),
            "kind": kind,
            "message": message,
            "signer": signer,
        }));
    }
}

/// The request as an audit line shows it: who, what, why and when.
pub(super) fn audit_view(r: &Record) -> serde_json::Value {
    let t = |x: Option<SystemTime>| x.map(rfc3339);
    let q = FlatRequest::from(r.request.clone());
    json!({
        "kind": q.kind,
        "state": r.state,
        "requester": q.requester,
        "via": q.via,
        "assignment": q.assignment,
        "role": q.role,
        "identity": q.identity,
        "audience": q.audience,
        "port": q.port,
        "protocol": q.protocol,
        "source": q.source,
        "duration_secs": q.duration_secs,
        "requested_secs": q.requested_secs,
        "reason": q.reason,
        "ticket": q.ticket,
        "created": rfc3339(r.created),
        "decided_by": r.decided_by,
        "decided_at": t(r.decided_at),
        "decision_reason": r.decision_reason,
        "starts": t(r.starts),
        "expires": t(r.expires),
        "revoked_by": r.revoked_by,
        "revoked_at": t(r.revoked_at),
    })
}

//! The audit outbox: the store's events become audit lines, oldest first,
//! and an event is marked audited only after its line is written, so a
//! crash in between writes it again on start rather than losing it.

use super::*;
use crate::clock::rfc3339;
use gatehouse_audit::{self as audit, Event};
use gatehouse_jit::store::{FlatRequest, Record};
use std::net::IpAddr;
use std::time::SystemTime;

impl JitService {
    /// Write pending events to the audit log, oldest first.
    pub fn flush_audit(&self) -> Result<(), ServiceError> {
        loop {
            let events = self.store.unaudited(AUDIT_BATCH)?;
            let Some(last) = events.last().map(|e| e.seq) else {
                return Ok(());
            };
            for event in &events {
                let record = self.store.get(&event.request_id).ok().flatten();
                let line = audit_event(event, record.as_ref())?;
                if let Err(e) = self.gate.record_event_public(&line) {
                    // Keep what was written; the rest waits for the log.
                    if let Some(done) = event.seq.checked_sub(1) {
                        let _ = self.store.mark_audited(done);
                    }
                    return Err(e.into());
                }
            }
            self.store.mark_audited(last)?;
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
        let _ = self
            .gate
            .record_event_public(&Event::JitSignedRequestRefused {
                source: source.to_string(),
                kind: kind.to_owned(),
                message: message.to_owned(),
                signer: signer.map(str::to_owned),
            });
    }
}

/// The audit record of one store event, with the request as it stands.
/// A kind or a detail the schema does not know is an error: the store and
/// the schema must change together.
fn audit_event(
    event: &gatehouse_jit::store::Event,
    record: Option<&Record>,
) -> Result<Event, ServiceError> {
    let detail: audit::JitDetail =
        serde_json::from_value(event.detail.clone()).map_err(|source| ServiceError::Schema {
            seq: event.seq,
            kind: event.kind.clone(),
            source,
        })?;
    let line = audit::JitEvent {
        jit_event: event.seq,
        id: event.request_id.clone(),
        at: rfc3339(event.at),
        actor: event.actor.as_ref().map(principal),
        detail,
        request: record.map(audit_view).transpose()?,
    };
    Event::jit(&event.kind, line).ok_or_else(|| ServiceError::NoRecord {
        seq: event.seq,
        kind: event.kind.clone(),
    })
}

fn principal(r: &gatehouse_jit::store::Requester) -> audit::Principal {
    audit::Principal {
        uid: r.uid,
        name: r.name.clone(),
    }
}

/// A store value (kind, state, protocol) as the word it serialises to.
fn word<T: serde::Serialize>(value: &T) -> Result<String, ServiceError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(other) => Err(ServiceError::NotAWord(other.to_string())),
        Err(e) => Err(ServiceError::NotAWord(e.to_string())),
    }
}

/// The request as an audit line shows it: who, what, why and when.
pub(super) fn audit_view(r: &Record) -> Result<audit::JitRequestView, ServiceError> {
    let t = |x: Option<SystemTime>| x.map(rfc3339);
    let q = FlatRequest::from(r.request.clone());
    Ok(audit::JitRequestView {
        kind: word(&q.kind)?,
        state: word(&r.state)?,
        requester: principal(&q.requester),
        via: q.via,
        assignment: q.assignment,
        role: q.role,
        identity: q.identity,
        audience: q.audience,
        port: q.port,
        protocol: q.protocol.as_ref().map(word).transpose()?,
        source: q.source.map(|s| s.to_string()),
        duration_secs: q.duration_secs,
        requested_secs: q.requested_secs,
        reason: q.reason,
        ticket: q.ticket,
        created: rfc3339(r.created),
        decided_by: r.decided_by.as_ref().map(principal),
        decided_at: t(r.decided_at),
        decision_reason: r.decision_reason.clone(),
        starts: t(r.starts),
        expires: t(r.expires),
        revoked_by: r.revoked_by.as_ref().map(principal),
        revoked_at: t(r.revoked_at),
    })
}

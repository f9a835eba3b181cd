//! The just-in-time part of `gatehouse status`: active grants and open
//! ports with their expiry, and how many requests wait for approval.

use super::JitService;
use crate::status::{secs_until, JitGrantStatus, JitStatus};
use gatehouse_jit::store::{Kind, ListFilter, Record, State, Target};
use std::time::SystemTime;

fn view(r: &Record, now: SystemTime) -> JitGrantStatus {
    let q = &r.request;
    let what = match &q.target {
        Target::Role {
            role,
            identity,
            audience,
            ..
        } => {
            let mut w = format!("role `{role}` for identity `{identity}`");
            if let Some(a) = audience {
                w.push_str(&format!(" audience `{a}`"));
            }
            w
        }
        Target::Port {
            port,
            protocol,
            source,
            ..
        } => format!("{protocol}/{port} from {source}"),
    };
    JitGrantStatus {
        id: r.id.clone(),
        what,
        requester: q.common.requester.name.clone(),
        expires_at: r.expires.map(crate::clock::rfc3339),
        expires_in_secs: r.expires.and_then(|e| secs_until(e, now)),
    }
}

impl JitService {
    /// What is in force now; a store error leaves the lists empty and says so
    /// in the log (the status must not fail because of it).
    pub fn status(&self) -> JitStatus {
        let now = self.now();
        let active = |kind| match self.store.active(kind, now) {
            Ok(rs) => rs.iter().map(|r| view(r, now)).collect(),
            Err(e) => {
                tracing::error!(error = %e, "status: cannot read just-in-time grants");
                Vec::new()
            }
        };
        let pending = ListFilter {
            state: Some(State::Pending),
            ..ListFilter::default()
        };
        JitStatus {
            grants: active(Kind::Role),
            ports: active(Kind::Port),
            pending: self.store.list(&pending, now).map_or(0, |l| l.len()),
        }
    }
}

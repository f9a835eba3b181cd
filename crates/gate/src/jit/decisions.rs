//! Deciding: approve, deny, revoke, and who may see which requests.

use super::api::{AdminResponse, ApiError, ErrorKind, ListWhich};
use super::requests::text;
use super::*;
use gatehouse_jit::store::{Kind, ListFilter, Record, State, StoreError, Target};
use gatehouse_policy::Principal;

impl JitService {
    pub(super) fn may_decide(&self, who: &AdminCaller, record: &Record) -> Result<(), ApiError> {
        let policy = self.gate.policy();
        let requester_uid = record.request.common.requester.uid;
        match &record.request.target {
            Target::Role { assignment, .. } => {
                // The store reads no role request without a local requester.
                let Some(uid) = requester_uid else {
                    return Err(ApiError::new(
                        ErrorKind::Internal,
                        format!("request `{}` has no local requester", record.id),
                    ));
                };
                policy
                    .may_approve_activation(assignment, &who.caller, uid)
                    .map_err(refusal)
            }
            Target::Port { port, protocol, .. } => policy
                .may_approve_port(*port, *protocol, &who.caller, requester_uid)
                .map_err(refusal),
        }
    }

    pub(super) fn decide(
        &self,
        who: &AdminCaller,
        id: &str,
        approve: bool,
        reason: Option<String>,
    ) -> Result<AdminResponse, ApiError> {
        let reason = text("reason", reason)?;
        if !approve && reason.is_none() {
            return Err(ApiError::new(
                ErrorKind::ReasonRequired,
                "say why you deny it: `--reason \"...\"`",
            ));
        }
        let record = self
            .store
            .get(id)
            .map_err(store_error)?
            .ok_or_else(|| store_error(StoreError::NotFound(id.to_owned())))?;
        self.may_decide(who, &record)?;
        let now = self.now();
        let by = who.requester();
        let updated = if approve {
            self.store.approve(id, &by, reason.as_deref(), now)
        } else {
            self.store
                .deny(id, &by, reason.as_deref().unwrap_or(""), now)
        };
        // A lapse found on approval is recorded by the store: audit it too.
        let updated = match updated {
            Ok(r) => r,
            Err(e) => {
                let _ = self.flush_audit();
                return Err(store_error(e));
            }
        };
        let notices = self.after_change(approve && updated.request.kind() == Kind::Port);
        Ok(AdminResponse::record(updated, notices))
    }

    pub(super) fn revoke(
        &self,
        who: &AdminCaller,
        id: &str,
        reason: Option<String>,
    ) -> Result<AdminResponse, ApiError> {
        let reason = text("reason", reason)?;
        let record = self
            .store
            .get(id)
            .map_err(store_error)?
            .ok_or_else(|| store_error(StoreError::NotFound(id.to_owned())))?;
        let own = record.request.common.requester.uid == Some(who.cred.uid);
        if !(own || who.is_root()) {
            self.may_decide(who, &record).map_err(|_| {
                ApiError::new(
                    ErrorKind::NotAllowed,
                    format!(
                        "only the requester, an approver of `{}`, or root may revoke `{id}`",
                        record.request.target.assignment()
                    ),
                )
            })?;
        }
        let now = self.now();
        let was_active = record.state_at(now) == State::Active;
        let updated = self
            .store
            .revoke(id, &who.requester(), reason.as_deref(), now)
            .map_err(store_error)?;
        let is_port = updated.request.kind() == Kind::Port;
        let mut notices = self.after_change(is_port && was_active);
        // Withdrawing a pending request opened nothing, so it cuts nothing.
        if is_port && was_active {
            notices.extend(self.cut_sessions(&updated));
        }
        Ok(AdminResponse::record(updated, notices))
    }

    /// Is `who` an approver of anything (so may see more than their own)?
    pub(super) fn approves_something(&self, who: &AdminCaller) -> bool {
        let policy = self.gate.policy();
        let approver = |ps: &[Principal]| ps.iter().any(|p| p.grants_to(&who.caller));
        policy
            .assignments()
            .filter_map(|a| a.eligible.as_ref())
            .any(|e| approver(&e.approvers))
            || policy.jit_ports().iter().any(|p| approver(&p.approvers))
    }

    /// Root sees every request; an approver, their own and those they may
    /// decide (another team's reasons and tickets stay theirs); everyone
    /// else, their own.
    pub(super) fn list(
        &self,
        who: &AdminCaller,
        which: ListWhich,
    ) -> Result<AdminResponse, ApiError> {
        let wider = which != ListWhich::Mine && (who.is_root() || self.approves_something(who));
        let filter = ListFilter {
            state: (which == ListWhich::Pending).then_some(State::Pending),
            active_only: which == ListWhich::Active,
            requester_uid: (!wider).then_some(who.cred.uid),
            requester_name: None,
            limit: if wider && !who.is_root() { 5_000 } else { 500 },
        };
        let now = self.now();
        let mut records = self.store.list(&filter, now).map_err(store_error)?;
        if wider && !who.is_root() {
            records.retain(|r| {
                r.request.common.requester.uid == Some(who.cred.uid)
                    || self.may_decide(who, r).is_ok()
            });
            records.truncate(500);
        }
        // Shown as they are now, even before the sweep records it.
        for r in &mut records {
            r.state = r.state_at(now);
        }
        let mut notices = Vec::new();
        if !wider && which != ListWhich::Mine {
            notices.push("only your own requests are shown: approvers also see the requests they may decide, root sees all".to_owned());
        }
        Ok(AdminResponse {
            ok: true,
            records: Some(records),
            notices,
            ..AdminResponse::default()
        })
    }
}

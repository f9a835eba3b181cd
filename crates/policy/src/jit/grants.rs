//! Which active grants count for one decision. A grant is checked against
//! the policy as it is now, not as it was when approved: an assignment
//! removed, made standing, or narrowed since then stops the grant from
//! counting, without the daemon having to notice.

use std::time::SystemTime;

use crate::audience::{self, normalise_audience};
use crate::caller::{Caller, Request};
use crate::model::{Assignment, Scope};

use super::Grant;

/// A grant that counts for this decision, with the eligible assignment it
/// activates and its audience (normalised) if it names one.
#[derive(Debug, Clone)]
pub(crate) struct JitOffer<'a> {
    pub assignment: &'a Assignment,
    pub grant: &'a Grant,
    pub audience: Option<String>,
}

impl JitOffer<'_> {
    /// How decisions and the audit name it.
    pub(crate) fn name(&self) -> String {
        format!("{} (jit {})", self.assignment.name, self.grant.id)
    }

    /// The grant acts as its assignment narrowed to one identity and, if it
    /// names one, exactly one audience (never a pattern).
    pub(crate) fn in_scope(&self, request: &Request<'_>) -> bool {
        if !request.action.is_token() {
            return true;
        }
        let identity_ok = request.identity == Some(self.grant.identity.as_str());
        let audience_ok = match &self.audience {
            Some(mine) => request.audience == Some(mine.as_str()),
            None => request
                .audience
                .is_some_and(|aud| audience_scope_has(&self.assignment.audiences, aud)),
        };
        identity_ok && audience_ok
    }
}

/// The grant, if it counts now for `caller`: its uid is the caller's, `now`
/// is in `[starts, expires)` and within the assignment's current
/// `max_duration` of `starts`, its assignment exists, is eligible, is still
/// about the caller, and still covers its identity and audience.
pub(crate) fn valid_grant<'a>(
    assignments: &'a [Assignment],
    caller: &Caller,
    now: Option<SystemTime>,
    grant: &'a Grant,
) -> Option<JitOffer<'a>> {
    let now = now?;
    if caller.uid != Some(grant.uid) || now < grant.starts || now >= grant.expires {
        return None;
    }
    let assignment = assignments
        .iter()
        .find(|a| a.name == grant.assignment && a.eligible.is_some())?;
    // The policy may have changed since the approval: the caller must still
    // be someone the assignment is about (e.g. still in its group), and a
    // lowered maximum shortens grants already running.
    if !assignment.principal.grants_to(caller) {
        return None;
    }
    let max = assignment.eligible.as_ref().map(|e| e.max_duration)?;
    if grant.starts.checked_add(max).is_none_or(|end| now >= end) {
        return None;
    }
    let identity_ok = match &assignment.identities {
        Scope::Any => true,
        Scope::Only(names) => names.contains(&grant.identity),
    };
    if !identity_ok {
        return None;
    }
    let audience = match &grant.audience {
        None => None,
        Some(a) => {
            let n = normalise_audience(a)?;
            if !audience_scope_has(&assignment.audiences, &n) {
                return None;
            }
            Some(n)
        }
    };
    Some(JitOffer {
        assignment,
        grant,
        audience,
    })
}

fn audience_scope_has(scope: &Scope, aud: &str) -> bool {
    match scope {
        Scope::Any => true,
        Scope::Only(patterns) => patterns.iter().any(|p| audience::pattern_matches(p, aud)),
    }
}

//! The decision procedure, shared by the indexed evaluator and the naive
//! model it is property-tested against.

use crate::caller::{Caller, Request};
use crate::decision::{Decision, Reason};
use crate::model::{Assignment, DenyAssignment};
use crate::role::Role;
use crate::wildcard;

/// Checks that come before any assignment: an unknown caller, a socket
/// shared across users, then deny assignments (which win).
pub(crate) fn precheck(
    deny_assignments: &[DenyAssignment],
    caller: &Caller,
    request: &Request<'_>,
) -> Option<Decision> {
    let Some(uid) = caller.uid else {
        return Some(Decision::deny(Reason::CallerUnknown));
    };
    if caller.processes.iter().any(|p| p.uid != uid) {
        return Some(Decision::deny(Reason::AmbiguousCaller));
    }
    let denies: Vec<String> = deny_assignments
        .iter()
        .filter(|d| d.applies(caller, request))
        .map(|d| d.name.clone())
        .collect();
    if denies.is_empty() {
        None
    } else {
        Some(Decision::with_names(Reason::ExplicitDeny, denies))
    }
}

/// Allow if any of `allowing` is non-empty, else deny by default.
pub(crate) fn conclude(allowing: Vec<String>) -> Decision {
    if allowing.is_empty() {
        Decision::deny(Reason::NoMatchingAssignment)
    } else {
        Decision::with_names(Reason::Allowed, allowing)
    }
}

/// The reference model: scan every assignment, match role patterns afresh.
pub(crate) fn decide_naive(
    roles: &[Role],
    assignments: &[Assignment],
    deny_assignments: &[DenyAssignment],
    caller: &Caller,
    request: &Request<'_>,
) -> Decision {
    if let Some(d) = precheck(deny_assignments, caller, request) {
        return d;
    }
    let action = request.action.as_str();
    let allowing = assignments
        .iter()
        .filter(|a| {
            roles.get(a.role_index).is_some_and(|role| {
                role.actions
                    .iter()
                    .any(|p| wildcard::matches_ignore_case(p, action))
                    && !role
                        .not_actions
                        .iter()
                        .any(|p| wildcard::matches_ignore_case(p, action))
            })
        })
        .filter(|a| a.principal.grants_to(caller) && a.in_scope(request))
        .map(|a| a.name.clone())
        .collect();
    conclude(allowing)
}

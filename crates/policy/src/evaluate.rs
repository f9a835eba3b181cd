//! The decision procedure, shared by the indexed evaluator and the naive
//! model it is property-tested against: they differ only in which
//! assignments they offer as candidates.

use crate::caller::{Caller, Request};
use crate::condition::evaluate;
use crate::decision::{Candidate, Decision, Reason, Trail};
use crate::identity::Identity;
use crate::jit::JitOffer;
use crate::model::{Assignment, DenyAssignment};
use crate::role::Role;
use crate::trusted::{self, TrustedConfig};
use crate::vocabulary::Ctx;
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
        let trail = Trail {
            denied_by: denies.clone(),
            ..Trail::default()
        };
        Some(Decision::with_names(Reason::ExplicitDeny, denies).with_trail(trail))
    }
}

/// What the decision looks at besides the assignments.
pub(crate) struct Inputs<'a> {
    pub identities: &'a [Identity],
    pub deny_assignments: &'a [DenyAssignment],
    pub trusted: TrustedConfig,
}

/// Decide from `candidates` (assignments whose principal grants to the
/// caller and whose role grants the action, in policy order), then `jit`
/// (grants that count now, whose assignment's role grants the action).
pub(crate) fn conclude<'a>(
    inputs: &Inputs<'_>,
    candidates: impl Iterator<Item = &'a Assignment>,
    jit: &[JitOffer<'_>],
    caller: &Caller,
    request: &Request<'_>,
) -> Decision {
    if let Some(d) = precheck(inputs.deny_assignments, caller, request) {
        return d;
    }
    let identity = request
        .identity
        .and_then(|n| inputs.identities.iter().find(|i| i.name == n));
    let ctx = Ctx {
        caller,
        request,
        identity,
    };
    let mut trail = Trail::default();
    let mut allowing = Vec::new();
    let mut absent = None;
    let offers = candidates
        .map(|a| (a.name.clone(), a.in_scope(request), a))
        .chain(
            jit.iter()
                .map(|j| (j.name(), j.in_scope(request), j.assignment)),
        );
    for (name, in_scope, a) in offers {
        let condition = a
            .condition
            .as_ref()
            .filter(|_| in_scope)
            .map(|c| evaluate(&c.expr, &ctx));
        let allows = in_scope && condition.as_ref().is_none_or(|e| e.value);
        if allows {
            allowing.push(name.clone());
        } else if absent.is_none() {
            absent = condition.as_ref().and_then(|e| e.absent.clone());
        }
        trail.candidates.push(Candidate {
            assignment: name,
            in_scope,
            condition,
            allows,
        });
    }
    if !allowing.is_empty() {
        return Decision::with_names(Reason::Allowed, allowing).with_trail(trail);
    }
    if let Some(name) = trusted::find(inputs.trusted, caller, request.action) {
        trail.trusted_service = Some(name);
        return Decision::with_names(Reason::TrustedService(name), Vec::new()).with_trail(trail);
    }
    Decision::deny(Reason::NoMatchingAssignment)
        .with_absent(absent)
        .with_trail(trail)
}

/// Does the role of `a` grant `action`, matching its patterns afresh (the
/// reference model's way, independent of the load-time action sets)?
pub(crate) fn role_grants_naive(roles: &[Role], a: &Assignment, action: &str) -> bool {
    roles.get(a.role_index).is_some_and(|role| {
        role.actions
            .iter()
            .any(|p| wildcard::matches_ignore_case(p, action))
            && !role
                .not_actions
                .iter()
                .any(|p| wildcard::matches_ignore_case(p, action))
    })
}

/// The reference model's candidates: scan every standing (not eligible)
/// assignment, match role patterns afresh.
pub(crate) fn naive_candidates<'a>(
    roles: &'a [Role],
    assignments: &'a [Assignment],
    caller: &'a Caller,
    request: &'a Request<'_>,
) -> impl Iterator<Item = &'a Assignment> {
    let action = request.action.as_str();
    assignments
        .iter()
        .filter(|a| a.eligible.is_none())
        .filter(move |a| role_grants_naive(roles, a, action))
        .filter(move |a| a.principal.grants_to(caller))
}

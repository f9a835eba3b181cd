//! Assignments and deny assignments as loaded: principal, role, scope.

use std::ops::Range;
use std::time::Duration;

use crate::action::{Action, ActionSet};
use crate::audience;
use crate::caller::{Caller, Request};
use crate::condition::Expr;
use crate::principal::Principal;

/// A scope list: `"*"` (anything) or the listed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Any,
    /// Identity names, or normalised audience patterns.
    Only(Vec<String>),
}

/// A role assignment: grants its role's actions to a principal, for token
/// actions only within its identities and audiences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub name: String,
    pub principal: Principal,
    /// The role's canonical name.
    pub role: String,
    pub identities: Scope,
    pub audiences: Scope,
    pub description: Option<String>,
    /// Filters this assignment (never denies).
    pub condition: Option<Condition>,
    pub(crate) role_index: usize,
    pub(crate) spans: Spans,
    /// `check` warnings the operator accepted for this assignment.
    pub allow_warnings: Vec<String>,
    /// `eligible = true`: never standing access, only through an approved
    /// just-in-time [`crate::Grant`].
    pub eligible: Option<Eligibility>,
}

/// A parsed, type-checked condition and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub text: String,
    pub expr: Expr,
}

/// Where an assignment was written, for `check` warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Spans {
    pub table: Range<usize>,
    pub principal: Range<usize>,
    pub condition: Range<usize>,
}

/// A deny assignment: blocks its actions for its principals (bar the
/// excluded ones) before any assignment is considered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyAssignment {
    pub name: String,
    pub principals: Vec<Principal>,
    pub excluded_principals: Vec<Principal>,
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    pub identities: Scope,
    pub audiences: Scope,
    pub description: Option<String>,
    pub(crate) effective: ActionSet,
    pub(crate) spans: Spans,
}

impl Assignment {
    /// Is a token request inside this assignment's identities and audiences?
    /// Non-token actions have no scope. A missing identity or audience is
    /// out of scope (closed).
    pub(crate) fn in_scope(&self, request: &Request<'_>) -> bool {
        if !request.action.is_token() {
            return true;
        }
        let identity_ok = request
            .identity
            .is_some_and(|id| scope_has(&self.identities, |n| n == id));
        // No audience (AWS role credentials have none): only an
        // assignment that does not restrict audiences covers it.
        let audience_ok = match request.audience {
            Some(aud) => scope_has(&self.audiences, |p| audience::pattern_matches(p, aud)),
            None => self.audiences == Scope::Any,
        };
        identity_ok && audience_ok
    }
}

impl DenyAssignment {
    /// Does this deny apply? Errs towards applying: a missing identity or
    /// audience counts as in scope, one holder matching a process principal
    /// is enough, and exclusion needs every holder to match.
    pub(crate) fn applies(&self, caller: &Caller, request: &Request<'_>) -> bool {
        self.effective.contains(request.action)
            && self.covers(request.action, request)
            && self.principals.iter().any(|p| p.denies_to(caller))
            && !self.excluded_principals.iter().any(|p| p.grants_to(caller))
    }

    fn covers(&self, action: Action, request: &Request<'_>) -> bool {
        if !action.is_token() {
            return true;
        }
        let identity = request
            .identity
            .is_none_or(|id| scope_has(&self.identities, |n| n == id));
        let aud = request
            .audience
            .is_none_or(|aud| scope_has(&self.audiences, |p| audience::pattern_matches(p, aud)));
        identity && aud
    }
}

fn scope_has(scope: &Scope, pred: impl Fn(&str) -> bool) -> bool {
    match scope {
        Scope::Any => true,
        Scope::Only(values) => values.iter().any(|v| pred(v)),
    }
}

/// How an eligible assignment may be activated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eligibility {
    /// Activations longer than this are capped to it (at most [`crate::MAX_GRANT`]).
    pub max_duration: Duration,
    pub require_justification: bool,
    pub require_ticket: bool,
    /// Who may approve (uid, user, gid and group principals only: the admin
    /// socket knows only a caller's uid and groups).
    pub approvers: Vec<Principal>,
    pub auto_approve: AutoApprove,
}

/// Whether an activation needs a human approver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoApprove {
    Never,
    Always,
    /// Approved without a human when the condition holds for the requester
    /// and a token request of the asked identity and audience.
    When(Condition),
}

//! Semantic checks: assignments that can never match (a condition that is
//! never true, a deny assignment that always applies to everything they
//! grant) and assignments another one makes redundant. Pure: the policy
//! alone decides these (machine facts stay in [`super::Machine`]).

use super::satisfy::{can_be_true, Context, Verdict};
use super::{covers, Out};
use crate::action::{Action, ActionSet};
use crate::model::{Assignment, DenyAssignment, Scope};
use crate::policy::Policy;
use crate::principal::Principal;

impl Policy {
    /// A condition no caller and no request can make true.
    pub(super) fn always_false(&self, out: &mut Out<'_>, a: &Assignment) {
        let Some(c) = &a.condition else { return };
        let identities = match &a.identities {
            Scope::Any => None,
            Scope::Only(names) => Some(names.as_slice()),
        };
        let ctx = Context {
            actions: self.role_actions(a).iter().map(Action::as_str).collect(),
            principal: &a.principal,
            identities,
        };
        if can_be_true(&c.expr, &ctx) == Verdict::Never {
            out.about(
                a,
                "always-false",
                a.spans.condition.clone(),
                format!(
                    "assignment `{}` can never match: its condition is false for every request {} could make",
                    a.name,
                    principal_words(&a.principal)
                ),
                Some("the comparisons contradict each other, or what the principal and scope fix: fix the condition or remove the assignment".into()),
            );
        }
    }

    /// A deny assignment that applies to every request this one would
    /// allow: no exclusion can spare its callers, its actions and scopes
    /// cover all of this one's.
    pub(super) fn shadowing_deny(&self, a: &Assignment) -> Option<&DenyAssignment> {
        let actions = self.role_actions(a);
        self.deny_assignments.iter().find(|d| {
            actions.minus(d.effective).is_empty()
                && (!has_token(actions)
                    || (covers(&d.identities, &a.identities) && covers(&d.audiences, &a.audiences)))
                && d.principals
                    .iter()
                    .any(|p| principal_covers(p, &a.principal))
                && d.excluded_principals
                    .iter()
                    .all(|x| disjoint(x, &a.principal))
        })
    }

    /// Another standing assignment grants everything this one does, to
    /// every caller it matches, with no condition or the same one.
    pub(super) fn redundant(&self, out: &mut Out<'_>, i: usize, a: &Assignment) {
        let mine = self.role_actions(a);
        if mine.is_empty() {
            return;
        }
        let by = self.assignments.iter().enumerate().find(|(j, b)| {
            *j != i
                && b.eligible.is_none()
                && principal_covers(&b.principal, &a.principal)
                && mine.minus(self.role_actions(b)).is_empty()
                && (!has_token(mine)
                    || (covers(&b.identities, &a.identities)
                        && covers(&b.audiences, &a.audiences)))
                && match (&b.condition, &a.condition) {
                    (None, None) => true,
                    (Some(x), Some(y)) => x.expr == y.expr,
                    // Said by `bypassed` (the condition of `a` changes nothing).
                    (None, Some(_)) => false,
                    (Some(_), None) => false,
                }
                // Two that cover each other: only the later one is redundant;
                // exact copies are `duplicate`s.
                && (*j < i || !self.covers_assignment(a, b))
                && !self.same_assignment(a, b)
        });
        if let Some((_, b)) = by {
            out.about(
                a,
                "redundant",
                a.spans.table.clone(),
                format!(
                    "assignment `{}` is redundant: `{}` already grants everything it grants{}",
                    a.name,
                    b.name,
                    if a.eligible.is_some() {
                        " as standing access, so activating it changes nothing"
                    } else {
                        ""
                    }
                ),
                Some(format!(
                    "remove `{}`, or narrow `{}` if it is the broader one by mistake",
                    a.name, b.name
                )),
            );
        }
    }

    /// Does `b` grant everything `a` does (ignoring conditions)?
    fn covers_assignment(&self, b: &Assignment, a: &Assignment) -> bool {
        let mine = self.role_actions(a);
        principal_covers(&b.principal, &a.principal)
            && mine.minus(self.role_actions(b)).is_empty()
            && covers(&b.identities, &a.identities)
            && covers(&b.audiences, &a.audiences)
    }

    /// What `duplicate` reports: the same principal, eligibility, role,
    /// identities, audiences and condition.
    pub(super) fn same_assignment(&self, a: &Assignment, b: &Assignment) -> bool {
        b.principal == a.principal
            && b.eligible.is_some() == a.eligible.is_some()
            && b.role_index == a.role_index
            && b.identities == a.identities
            && b.audiences == a.audiences
            && b.condition.as_ref().map(|c| &c.expr) == a.condition.as_ref().map(|c| &c.expr)
    }
}

fn has_token(actions: ActionSet) -> bool {
    actions.iter().any(Action::is_token)
}

fn principal_words(p: &Principal) -> String {
    match p {
        Principal::Everyone => "any caller".to_owned(),
        other => format!("`{other}`"),
    }
}

/// Does every caller `inner` matches also match `outer` (as far as the
/// principals alone say)?
pub(super) fn principal_covers(outer: &Principal, inner: &Principal) -> bool {
    match (outer, inner) {
        (Principal::Everyone, _) => true,
        (Principal::CgroupTree(t), Principal::Cgroup(c) | Principal::CgroupTree(c)) => {
            c == t
                || c.strip_prefix(t.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        }
        (o, i) => o == i,
    }
}

/// Can no caller match both? Only what the principals alone prove: two
/// uids, two user names, two executables' hashes or paths, two units.
fn disjoint(x: &Principal, y: &Principal) -> bool {
    match (x, y) {
        (Principal::Uid(a), Principal::Uid(b)) => a != b,
        (Principal::User(a), Principal::User(b))
        | (Principal::ExeHash(a), Principal::ExeHash(b))
        | (Principal::ExePath(a), Principal::ExePath(b))
        | (Principal::Unit(a), Principal::Unit(b)) => a != b,
        _ => false,
    }
}

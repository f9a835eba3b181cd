//! `gatehouse check` warnings: things that load but are probably wrong.
//! The policy crate stays pure: facts about the machine (does this user,
//! group, executable or unit exist?) come in through [`Machine`].

use std::ops::Range;

use crate::action::Action;
use crate::cloud::Cloud;
use crate::condition::AttrName;
use crate::condition::{Expr, Literal, Operand, Source};
use crate::diag::{Diagnostic, Diagnostics, Severity};
use crate::model::{Assignment, Scope};
use crate::policy::Policy;
use crate::principal::Principal;

mod satisfy;
mod semantic;
#[cfg(test)]
pub(crate) mod tests;

/// What `check` asks about the machine it runs on.
pub trait Machine {
    fn user_exists(&self, name: &str) -> bool;
    fn group_exists(&self, name: &str) -> bool;
    fn file_exists(&self, path: &str) -> bool;
    /// A unit file exists (`/etc/systemd/system`, `/lib/systemd/system`, ...).
    fn unit_exists(&self, unit: &str) -> bool;
    /// An account has this uid (`/etc/passwd`). A uid without one can still
    /// run processes (containers, `setuid`), so its absence only warns.
    fn uid_exists(&self, _uid: u32) -> bool {
        true
    }
    /// A group has this gid (`/etc/group`).
    fn gid_exists(&self, _gid: u32) -> bool {
        true
    }
}

/// Warning codes an assignment may accept with `allow_warnings`.
pub const CODES: &[&str] = &[
    "orphan",
    "exe-by-path",
    "over-broad",
    "condition-targets-nothing",
    "sub-operation",
    "unknown-identity",
    "bypassed",
    "duplicate",
    "unreachable",
    "always-false",
    "redundant",
];

struct Out<'t> {
    source: &'t str,
    text: &'t str,
    diags: Diagnostics,
}

impl Out<'_> {
    fn warn(&mut self, code: &str, span: Range<usize>, message: String, help: Option<String>) {
        let mut d = Diagnostic::new(
            Severity::Warning,
            self.source,
            self.text,
            span,
            message,
            help,
        );
        d.code = Some(code.to_owned());
        self.diags.push(d);
    }

    /// A warning about assignment `a`, unless it accepts `code`; the code
    /// is named in the help so the operator knows how to accept it.
    fn about(
        &mut self,
        a: &Assignment,
        code: &str,
        span: Range<usize>,
        message: String,
        help: Option<String>,
    ) {
        if a.allow_warnings.iter().any(|w| w == code) {
            return;
        }
        let accept = format!("to accept it, add `allow_warnings = [\"{code}\"]` to the assignment");
        let help = Some(match help {
            Some(h) => format!("{h}; {accept}"),
            None => accept,
        });
        self.warn(code, span, message, help);
    }
}

impl Policy {
    /// Every warning for this policy, sorted by position. `text` must be the
    /// text the policy was parsed from.
    pub fn lint(&self, source: &str, text: &str, machine: &dyn Machine) -> Diagnostics {
        let mut out = Out {
            source,
            text,
            diags: Diagnostics::default(),
        };
        for (i, a) in self.assignments.iter().enumerate() {
            if let Some(msg) = missing(machine, &a.principal) {
                out.about(
                    a,
                    "orphan",
                    a.spans.principal.clone(),
                    msg,
                    Some(ORPHAN.into()),
                );
            }
            if let Principal::ExePath(p) = &a.principal {
                out.about(
                    a,
                    "exe-by-path",
                    a.spans.principal.clone(),
                    format!("assignment `{}` trusts the executable `{p}` by path only", a.name),
                    Some("anyone who can write that path, or run it with another interpreter's arguments, gets the grant: prefer `exe:sha256:<hex>` or a `unit:`".into()),
                );
            }
            self.over_broad(&mut out, a);
            self.condition_lints(&mut out, a);
            self.bypassed(&mut out, a);
            self.duplicate(&mut out, i, a);
            self.unreachable(&mut out, a);
            self.always_false(&mut out, a);
            self.redundant(&mut out, i, a);
        }
        for d in &self.deny_assignments {
            for p in d.principals.iter().chain(&d.excluded_principals) {
                if let Some(msg) = missing(machine, p) {
                    out.warn("orphan", d.spans.table.clone(), msg, Some(ORPHAN.into()));
                }
            }
        }
        out.diags.sort();
        out.diags
    }

    fn role_actions(&self, a: &Assignment) -> crate::action::ActionSet {
        self.roles
            .get(a.role_index)
            .map(|r| r.effective())
            .unwrap_or_default()
    }

    fn over_broad(&self, out: &mut Out<'_>, a: &Assignment) {
        if self.role_actions(a).contains(Action::TokenRead)
            && a.identities == Scope::Any
            && a.audiences == Scope::Any
            && a.condition.is_none()
        {
            out.about(
                a,
                "over-broad",
                a.spans.table.clone(),
                format!(
                    "assignment `{}` grants tokens for any identity and any audience",
                    a.name
                ),
                Some("least privilege: list the identities and audiences it needs".into()),
            );
        }
    }

    fn condition_lints(&self, out: &mut Out<'_>, a: &Assignment) {
        let Some(c) = &a.condition else { return };
        let span = a.spans.condition.clone();
        let patterns = c.expr.action_patterns();
        let actions = self.role_actions(a);
        if !patterns.is_empty()
            && !patterns.iter().any(|p| {
                actions
                    .iter()
                    .any(|act| crate::wildcard::matches_ignore_case(p, act.as_str()))
            })
        {
            out.about(
                a,
                "condition-targets-nothing",
                span.clone(),
                format!("the condition of `{}` targets none of the actions of role `{}`", a.name, a.role),
                Some("its `ActionMatches` blocks never apply, so the condition does not restrict anything it grants".into()),
            );
        }
        let mut sub_ops = false;
        let mut names = Vec::new();
        c.expr.walk(&mut |e| match e {
            Expr::SubOperationMatches(..) => sub_ops = true,
            Expr::Compare { left, right, .. } => {
                let is_name = |o: &Operand| matches!(o, Operand::Attr(at) if at.source == Source::Resource && at.name == AttrName::Plain("name".into()));
                if is_name(left) || is_name(right) {
                    for o in [left, right] {
                        match o {
                            Operand::Literal(Literal::Str(s, _)) => names.push(s.clone()),
                            Operand::List(items, _) => names.extend(items.iter().filter_map(|l| match l {
                                Literal::Str(s, _) => Some(s.clone()),
                                _ => None,
                            })),
                            _ => {}
                        }
                    }
                }
            }
            _ => {}
        });
        if sub_ops {
            out.about(
                a,
                "sub-operation",
                span.clone(),
                format!("the condition of `{}` uses `SubOperationMatches`", a.name),
                Some("gatehouse actions have no sub-operations: it is always false".into()),
            );
        }
        for n in names {
            if !self.identities.iter().any(|i| i.name == n) {
                out.about(
                    a,
                    "unknown-identity",
                    span.clone(),
                    format!("the condition of `{}` names unknown identity `{n}`", a.name),
                    None,
                );
            }
        }
    }

    fn bypassed(&self, out: &mut Out<'_>, a: &Assignment) {
        if a.condition.is_none() {
            return;
        }
        let mine = self.role_actions(a);
        let by = self.assignments.iter().find(|b| {
            // An eligible assignment is not standing access: it bypasses nothing.
            b.condition.is_none()
                && b.eligible.is_none()
                && (b.principal == a.principal || b.principal == Principal::Everyone)
                && !self.role_actions(b).intersect(mine).is_empty()
                && (!mine.contains(Action::TokenRead)
                    || (covers(&b.identities, &a.identities) && covers(&b.audiences, &a.audiences)))
        });
        if let Some(b) = by {
            out.about(
                a,
                "bypassed",
                a.spans.condition.clone(),
                format!("the condition of `{}` is bypassed by unconditioned assignment `{}`", a.name, b.name),
                Some("role assignments add up: the other assignment grants the same action without the condition".into()),
            );
        }
    }

    fn duplicate(&self, out: &mut Out<'_>, i: usize, a: &Assignment) {
        let same = self
            .assignments
            .iter()
            .take(i)
            .find(|b| self.same_assignment(a, b));
        if let Some(b) = same {
            out.about(
                a,
                "duplicate",
                a.spans.table.clone(),
                format!("assignment `{}` duplicates `{}`", a.name, b.name),
                None,
            );
        }
    }

    fn unreachable(&self, out: &mut Out<'_>, a: &Assignment) {
        let actions = self.role_actions(a);
        if actions.is_empty() {
            out.about(
                a,
                "unreachable",
                a.spans.table.clone(),
                format!(
                    "assignment `{}` grants nothing: role `{}` has no actions left",
                    a.name, a.role
                ),
                None,
            );
            return;
        }
        let blocker = self.shadowing_deny(a);
        if let Some(d) = blocker {
            out.about(a, "unreachable", a.spans.table.clone(), format!("assignment `{}` is unreachable: deny assignment `{}` blocks everything it grants", a.name, d.name), None);
        }
    }
}

/// Does scope `outer` include everything in `inner`?
fn covers(outer: &Scope, inner: &Scope) -> bool {
    match (outer, inner) {
        (Scope::Any, _) => true,
        (Scope::Only(_), Scope::Any) => false,
        (Scope::Only(o), Scope::Only(i)) => i.iter().all(|x| o.contains(x)),
    }
}

const ORPHAN: &str = "an orphaned principal: it matches nothing here (typo, or not installed yet?)";

/// Why `p` matches nothing on this machine, if it does not exist here.
fn missing(m: &dyn Machine, p: &Principal) -> Option<String> {
    match p {
        Principal::User(n) if !m.user_exists(n) => {
            Some(format!("user `{n}` does not exist on this machine"))
        }
        Principal::Group(n) if !m.group_exists(n) => {
            Some(format!("group `{n}` does not exist on this machine"))
        }
        Principal::ExePath(path) if !m.file_exists(path) => Some(format!(
            "executable `{path}` does not exist on this machine"
        )),
        Principal::Uid(u) if !m.uid_exists(*u) => {
            Some(format!("uid `{u}` has no account on this machine"))
        }
        Principal::Gid(g) if !m.gid_exists(*g) => {
            Some(format!("gid `{g}` has no group on this machine"))
        }
        Principal::Unit(u) if u.ends_with(".service") && !m.unit_exists(u) => {
            Some(format!("unit `{u}` does not exist on this machine"))
        }
        _ => None,
    }
}

impl Policy {
    /// Errors for every identity of another cloud than `cloud` (`gatehouse
    /// check --cloud`): a gate speaking one dialect can never serve it, so
    /// an assignment naming it would silently grant nothing.
    pub fn cloud_errors(&self, source: &str, text: &str, cloud: Cloud) -> Diagnostics {
        let mut diags = Diagnostics::default();
        for id in self.identities_not_of(cloud) {
            let header = format!("[identities.{}]", id.name);
            let start = text.find(&header).unwrap_or(0);
            diags.push(Diagnostic::new(
                Severity::Error,
                source,
                text,
                start..start + header.len(),
                format!(
                    "identity `{}` is {} `{}` identity, but the gate speaks `{cloud}`",
                    id.name,
                    match id.kind.cloud() {
                        Cloud::Azure => "an",
                        _ => "a",
                    },
                    id.kind.cloud()
                ),
                Some(format!(
                    "remove it, or check with `--cloud {}` for the machines it belongs to",
                    id.kind.cloud()
                )),
            ));
        }
        diags
    }
}

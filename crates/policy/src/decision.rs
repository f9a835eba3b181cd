//! The outcome of a decision and its trail: only this crate can build one.

use std::fmt;

use crate::condition::Evaluation;
use crate::mode::Mode;

/// Why a decision came out the way it did. `Display` gives short public
/// text that never reveals other principals' assignments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// At least one assignment allows the request.
    Allowed,
    /// Deny by default: nothing allows it.
    NoMatchingAssignment,
    /// The socket's owner could not be determined.
    CallerUnknown,
    /// Processes of different users hold the socket.
    AmbiguousCaller,
    /// A deny assignment applies.
    ExplicitDeny,
    /// No assignment allows it, but the caller is this trusted service.
    TrustedService(&'static str),
    /// The endpoint family's mode is `off`: nothing was decided.
    Unmediated,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Allowed => f.write_str("allowed"),
            Reason::NoMatchingAssignment => f.write_str("no assignment allows this request"),
            Reason::CallerUnknown => f.write_str("the caller could not be identified"),
            Reason::AmbiguousCaller => {
                f.write_str("the connection is held by processes of different users")
            }
            Reason::ExplicitDeny => f.write_str("a deny assignment blocks this request"),
            Reason::TrustedService(name) => write!(f, "allowed for the trusted service `{name}`"),
            Reason::Unmediated => f.write_str("not mediated (mode off)"),
        }
    }
}

/// One assignment looked at: its principal matched and its role grants the
/// action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub assignment: String,
    /// The token request is within its identities and audiences (always
    /// true for other actions).
    pub in_scope: bool,
    /// The condition's evaluation, if it has one and the request was in scope.
    pub condition: Option<Evaluation>,
    pub allows: bool,
}

/// How a decision was reached, for `gatehouse explain` and the audit line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trail {
    /// Deny assignments that applied.
    pub denied_by: Vec<String>,
    /// Candidate assignments, in policy order.
    pub candidates: Vec<Candidate>,
    /// The trusted service that allowed, if any.
    pub trusted_service: Option<&'static str>,
    /// The mode the decision was made under.
    pub mode: Mode,
}

/// A policy decision. `decided_by` names the assignments that allowed (all
/// of them, sorted) or the deny assignments that blocked.
#[must_use]
#[derive(Debug, Clone)]
pub struct Decision {
    allowed: bool,
    reason: Reason,
    decided_by: Vec<String>,
    absent: Option<String>,
    would_deny: bool,
    trail: Trail,
}

/// Equality is of the verdict: the trail (how much was looked at) may
/// differ between the indexed and the naive evaluator.
impl PartialEq for Decision {
    fn eq(&self, o: &Decision) -> bool {
        self.allowed == o.allowed
            && self.reason == o.reason
            && self.decided_by == o.decided_by
            && self.absent == o.absent
            && self.would_deny == o.would_deny
    }
}

impl Eq for Decision {}

impl Decision {
    pub(crate) fn deny(reason: Reason) -> Decision {
        Decision {
            allowed: false,
            reason,
            decided_by: Vec::new(),
            absent: None,
            would_deny: false,
            trail: Trail::default(),
        }
    }

    /// With sorted, de-duplicated names; allowed iff `reason` allows.
    pub(crate) fn with_names(reason: Reason, mut names: Vec<String>) -> Decision {
        names.sort();
        names.dedup();
        let allowed = matches!(
            reason,
            Reason::Allowed | Reason::TrustedService(_) | Reason::Unmediated
        );
        Decision {
            allowed,
            reason,
            decided_by: names,
            absent: None,
            would_deny: false,
            trail: Trail::default(),
        }
    }

    pub(crate) fn with_trail(mut self, trail: Trail) -> Decision {
        self.trail = trail;
        self
    }

    pub(crate) fn with_absent(mut self, absent: Option<String>) -> Decision {
        self.absent = absent;
        self
    }

    /// Audit mode: a denial is let through and marked.
    pub(crate) fn audited(mut self) -> Decision {
        self.trail.mode = Mode::Audit;
        if !self.allowed {
            self.allowed = true;
            self.would_deny = true;
        }
        self
    }

    /// Let the request through? True also in audit mode when the policy
    /// would deny (see [`Decision::would_deny`]) and in mode `off`.
    pub fn is_allowed(&self) -> bool {
        self.allowed
    }

    /// Audit mode let through a request the policy denies; `reason()` says why.
    pub fn would_deny(&self) -> bool {
        self.would_deny
    }

    /// The assignments (or deny assignments) that decided, sorted.
    pub fn decided_by(&self) -> &[String] {
        &self.decided_by
    }

    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The attribute whose absence made a condition false, when that is why
    /// a candidate assignment did not allow (the first such, in policy order).
    pub fn absent_attribute(&self) -> Option<&str> {
        self.absent.as_deref()
    }

    pub fn trail(&self) -> &Trail {
        &self.trail
    }

    /// One line for the audit log: verdict, who decided, and why a
    /// condition failed. Never contains tokens or secrets.
    pub fn summary(&self) -> String {
        let verdict = match (self.allowed, self.would_deny) {
            (_, true) => "would deny (audit)",
            (true, _) => "allow",
            (false, _) => "deny",
        };
        let mut s = format!("{verdict}: {}", self.reason);
        if !self.decided_by.is_empty() {
            s.push_str(&format!(" by {}", self.decided_by.join(", ")));
        }
        let failed: Vec<String> = self
            .trail
            .candidates
            .iter()
            .filter(|c| !c.allows)
            .map(|c| match &c.condition {
                Some(e) if e.absent.is_some() => format!(
                    "{}: condition false, `{}` absent",
                    c.assignment,
                    e.absent.as_deref().unwrap_or_default()
                ),
                Some(_) => format!("{}: condition false", c.assignment),
                None => format!("{}: out of scope", c.assignment),
            })
            .collect();
        if !failed.is_empty() {
            s.push_str(&format!(" [{}]", failed.join("; ")));
        }
        s
    }
}

impl fmt::Display for Trail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "mode: {}", self.mode)?;
        for d in &self.denied_by {
            writeln!(f, "deny assignment `{d}` applies")?;
        }
        if self.candidates.is_empty() {
            writeln!(
                f,
                "no candidate assignments (none names this caller with a role granting the action)"
            )?;
        }
        for c in &self.candidates {
            let verdict = if c.allows { "allows" } else { "does not allow" };
            writeln!(f, "assignment `{}`: {verdict}", c.assignment)?;
            if !c.in_scope {
                writeln!(f, "  identity or audience out of scope")?;
            }
            if let Some(e) = &c.condition {
                writeln!(f, "  condition: {}", e.value)?;
                for (attr, value) in &e.used {
                    writeln!(f, "    {attr} = {value}")?;
                }
                if let Some(a) = &e.absent {
                    writeln!(f, "    false because `{a}` is absent for this request")?;
                }
            }
        }
        if let Some(t) = self.trusted_service {
            writeln!(f, "trusted service `{t}`")?;
        }
        Ok(())
    }
}

//! The outcome of a decision: only this crate can build one.

use std::fmt;

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
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Allowed => "allowed",
            Reason::NoMatchingAssignment => "no assignment allows this request",
            Reason::CallerUnknown => "the caller could not be identified",
            Reason::AmbiguousCaller => "the connection is held by processes of different users",
            Reason::ExplicitDeny => "a deny assignment blocks this request",
        })
    }
}

/// A policy decision. `decided_by` names the assignments that allowed (all
/// of them, sorted) or the deny assignments that blocked.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    reason: Reason,
    decided_by: Vec<String>,
}

impl Decision {
    pub(crate) fn deny(reason: Reason) -> Decision {
        Decision {
            reason,
            decided_by: Vec::new(),
        }
    }

    /// Allowed (if `names` is non-empty) or not-allowed by default, or the
    /// given explicit-deny reason, with sorted, de-duplicated names.
    pub(crate) fn with_names(reason: Reason, mut names: Vec<String>) -> Decision {
        names.sort();
        names.dedup();
        Decision {
            reason,
            decided_by: names,
        }
    }

    pub fn is_allowed(&self) -> bool {
        self.reason == Reason::Allowed
    }

    /// The assignments (or deny assignments) that decided, sorted.
    pub fn decided_by(&self) -> &[String] {
        &self.decided_by
    }

    pub fn reason(&self) -> Reason {
        self.reason
    }
}

//! gatehouse-policy: the pure policy model. Parses the policy file (with
//! Azure ABAC conditions), resolves identities and decides requests with
//! Azure-RBAC semantics. No I/O and no clock: the daemon gathers caller
//! facts and the time and passes them in.
#![forbid(unsafe_code)]

mod action;
mod audience;
mod caller;
mod cloud;
pub mod condition;
mod decision;
mod diag;
mod diff;
mod evaluate;
mod identity;
mod index;
mod jit;
mod lint;
mod load;
mod mode;
mod model;
mod policy;
mod principal;
mod role;
mod suggest;
mod trusted;
pub mod vocabulary;
mod wildcard;

pub use action::{Action, ActionSet, UnknownAction};
pub use audience::normalise_audience;
pub use caller::{Caller, Process, Request};
pub use cloud::{Cloud, UnknownCloud};
pub use decision::{Candidate, Decision, Reason, Trail};
pub use diag::{Diagnostic, Diagnostics, Severity};
pub use diff::{diff, Access, Change, HowActivated, When};
pub use identity::{Identity, IdentityKind, ResolveError, Selector, SelectorKind};
pub use jit::{
    format_duration, parse_duration, Activation, ActivationAsk, AutoApprove, DurationError,
    Eligibility, Grant, JitPort, JitRefusal, JitRefusalKind, PortAsk, PortPlan, PortRequester,
    Protocol, ProtocolError, Requester, MAX_GRANT,
};
pub use lint::Machine;
pub use load::parse;
pub use mode::{Family, Mode, Modes};
pub use model::{Assignment, Condition, DenyAssignment, Scope};
pub use policy::{Needs, Policy};
pub use principal::{Principal, PrincipalError};
pub use role::Role;
pub use trusted::{TrustedConfig, TrustedService, TRUSTED_SERVICES};
pub use wildcard::backtrack as glob;

#[cfg(test)]
mod tests;

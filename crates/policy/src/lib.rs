//! gatehouse-policy: the pure policy model. Parses the policy file, resolves
//! identities and decides requests with Azure-RBAC semantics. No I/O: the
//! daemon gathers caller facts and passes them in.
#![forbid(unsafe_code)]

mod action;
mod audience;
mod caller;
mod decision;
mod diag;
mod evaluate;
mod identity;
mod index;
mod load;
mod model;
mod policy;
mod principal;
mod role;
mod wildcard;

pub use action::{Action, ActionSet, UnknownAction};
pub use audience::normalise_audience;
pub use caller::{Caller, Process, Request};
pub use decision::{Decision, Reason};
pub use diag::{Diagnostic, Diagnostics, Severity};
pub use identity::{Identity, IdentityKind, ResolveError, Selector};
pub use load::parse;
pub use model::{Assignment, DenyAssignment, Scope};
pub use policy::{Needs, Policy};
pub use principal::{Principal, PrincipalError};
pub use role::Role;

#[cfg(test)]
mod tests;

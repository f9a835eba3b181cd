//! A loaded, validated policy and the questions the daemon asks it.

use crate::caller::{Caller, Request};
use crate::decision::Decision;
use crate::evaluate;
use crate::identity::{self, Identity, ResolveError, Selector};
use crate::index::Index;
use crate::model::{Assignment, DenyAssignment};
use crate::principal::Principal;
use crate::role::Role;

/// Which caller facts any (deny) assignment looks at, so the daemon can skip
/// expensive lookups (hashing an executable, reading cgroups).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub exe_hash: bool,
    pub exe_path: bool,
    pub unit: bool,
    pub cgroup: bool,
    pub container: bool,
    pub groups: bool,
    pub user_name: bool,
}

impl Needs {
    fn add(&mut self, p: &Principal) {
        match p {
            Principal::ExeHash(_) => self.exe_hash = true,
            Principal::ExePath(_) => self.exe_path = true,
            Principal::Unit(_) => self.unit = true,
            Principal::Cgroup(_) | Principal::CgroupTree(_) => self.cgroup = true,
            Principal::Container(_) => self.container = true,
            Principal::Gid(_) | Principal::Group(_) => self.groups = true,
            Principal::User(_) => self.user_name = true,
            Principal::Uid(_) | Principal::Everyone => {}
        }
    }
}

/// A validated policy. Built only by [`crate::parse`].
#[derive(Debug)]
pub struct Policy {
    pub(crate) hash: String,
    pub(crate) identities: Vec<Identity>,
    pub(crate) roles: Vec<Role>,
    pub(crate) assignments: Vec<Assignment>,
    pub(crate) deny_assignments: Vec<DenyAssignment>,
    pub(crate) index: Index,
    pub(crate) needs: Needs,
}

impl Policy {
    pub(crate) fn new(
        hash: String,
        identities: Vec<Identity>,
        roles: Vec<Role>,
        assignments: Vec<Assignment>,
        deny_assignments: Vec<DenyAssignment>,
    ) -> Policy {
        let mut needs = Needs::default();
        let principals = assignments.iter().map(|a| &a.principal).chain(
            deny_assignments
                .iter()
                .flat_map(|d| d.principals.iter().chain(&d.excluded_principals)),
        );
        for p in principals {
            needs.add(p);
        }
        let index = Index::build(&roles, &assignments);
        Policy {
            hash,
            identities,
            roles,
            assignments,
            deny_assignments,
            index,
            needs,
        }
    }

    /// SHA-256 (hex) of the exact source bytes, for audit lines.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn identities(&self) -> impl Iterator<Item = &Identity> {
        self.identities.iter()
    }

    /// Built-in roles first, then custom roles in file order.
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.iter()
    }

    pub fn assignments(&self) -> impl Iterator<Item = &Assignment> {
        self.assignments.iter()
    }

    pub fn deny_assignments(&self) -> impl Iterator<Item = &DenyAssignment> {
        self.deny_assignments.iter()
    }

    /// The identity a token request's selector means, by IMDS's rules.
    pub fn resolve_identity(&self, sel: &Selector<'_>) -> Result<&Identity, ResolveError> {
        identity::resolve(&self.identities, sel)
    }

    pub fn needs(&self) -> Needs {
        self.needs
    }

    /// Decide a request, using the load-time index.
    pub fn decide(&self, caller: &Caller, request: &Request<'_>) -> Decision {
        if let Some(d) = evaluate::precheck(&self.deny_assignments, caller, request) {
            return d;
        }
        let allowing = self
            .index
            .candidates(request.action, caller)
            .into_iter()
            .filter_map(|i| self.assignments.get(i))
            .filter(|a| a.principal.grants_to(caller) && a.in_scope(request))
            .map(|a| a.name.clone())
            .collect();
        evaluate::conclude(allowing)
    }

    /// Reference model for property tests: scans everything.
    #[doc(hidden)]
    pub fn decide_naive(&self, caller: &Caller, request: &Request<'_>) -> Decision {
        evaluate::decide_naive(
            &self.roles,
            &self.assignments,
            &self.deny_assignments,
            caller,
            request,
        )
    }
}

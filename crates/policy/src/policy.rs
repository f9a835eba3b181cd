//! A loaded, validated policy and the questions the daemon asks it.

use crate::action::Action;
use crate::caller::{Caller, Request};
use crate::cloud::Cloud;
use crate::decision::{Decision, Reason, Trail};
use crate::evaluate::{self, Inputs};
use crate::identity::{self, Identity, ResolveError, Selector};
use crate::index::Index;
use crate::jit::{self, Grant, JitOffer, JitPort, Protocol};
use crate::mode::{Family, Mode, Modes};
use crate::model::{Assignment, DenyAssignment};
use crate::principal::Principal;
use crate::role::Role;
use crate::trusted::TrustedConfig;
use ipnet::IpNet;

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
    pub(crate) modes: Modes,
    pub(crate) trusted: TrustedConfig,
    pub(crate) break_glass: Vec<IpNet>,
    pub(crate) jit_ports: Vec<JitPort>,
    aws_allow_imdsv1: bool,
}

/// Settings beyond assignments, from the top of the policy file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Settings {
    pub modes: Modes,
    pub trusted: TrustedConfig,
    /// `[jit] break_glass`.
    pub break_glass: Vec<IpNet>,
    /// `[[jit_port]]`, in file order.
    pub jit_ports: Vec<JitPort>,
    /// `aws_allow_imdsv1`.
    pub aws_allow_imdsv1: bool,
}

impl Policy {
    pub(crate) fn new(
        hash: String,
        identities: Vec<Identity>,
        roles: Vec<Role>,
        assignments: Vec<Assignment>,
        deny_assignments: Vec<DenyAssignment>,
        settings: Settings,
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
        // Conditions and trusted services read process facts too.
        if assignments.iter().any(|a| a.condition.is_some()) {
            needs.exe_path = true;
            needs.unit = true;
            needs.cgroup = true;
            needs.container = true;
            needs.groups = true;
            needs.user_name = true;
            needs.exe_hash |= assignments
                .iter()
                .filter_map(|a| a.condition.as_ref())
                .any(|c| c.text.contains("exeSha256"));
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
            modes: settings.modes,
            trusted: settings.trusted,
            break_glass: settings.break_glass,
            jit_ports: settings.jit_ports,
            aws_allow_imdsv1: settings.aws_allow_imdsv1,
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

    /// The AWS role identity of role name `role`, if the policy declares it.
    pub fn aws_role(&self, role: &str) -> Option<&Identity> {
        identity::aws_role(&self.identities, role)
    }

    /// The GCP service account `default` or `email` names, if declared.
    pub fn gcp_account(&self, account: &str) -> Option<&Identity> {
        identity::gcp_account(&self.identities, account)
    }

    /// Identities that belong to another cloud than `cloud`, for
    /// `gatehouse check --cloud` and for the gate's start.
    pub fn identities_not_of(&self, cloud: Cloud) -> impl Iterator<Item = &Identity> {
        self.identities
            .iter()
            .filter(move |i| i.kind.cloud() != cloud)
    }

    /// `aws_allow_imdsv1 = true`: AWS requests without a session token are
    /// served (default: refused with 401, as with `HttpTokens=required`).
    pub fn aws_allow_imdsv1(&self) -> bool {
        self.aws_allow_imdsv1
    }

    /// What any request may need to know about its caller: [`Policy::needs_for`] over
    /// every action.
    pub fn needs(&self) -> Needs {
        let mut n = self.needs;
        if self.trusted.enabled {
            n.exe_path = true;
            n.unit = true;
        }
        n
    }

    /// What deciding `action` needs to know about the caller: the attributes the
    /// assignments' principals and conditions name, and the unit and executable when a
    /// trusted service may do `action` (never a token: tokens always need an assignment).
    /// A policy on uids alone needs nothing for a token.
    pub fn needs_for(&self, action: Action) -> Needs {
        let mut n = self.needs;
        if crate::trusted::action_allowed(self.trusted, action) {
            n.exe_path = true;
            n.unit = true;
        }
        n
    }

    /// What the assignments, deny assignments and conditions read about a caller, for
    /// any action: [`Policy::needs_for`] without what checking a trusted service adds.
    /// A decision on these facts alone is the decision, except that a trusted service
    /// may still allow what it denies for want of an assignment: decide on these
    /// first, and on [`Policy::needs_after`] only when it says so. A policy on uids
    /// alone then reads no process for a request a uid assignment allows.
    pub fn needs_of_assignments(&self) -> Needs {
        self.needs
    }

    /// After deciding `action` on [`Policy::needs_of_assignments`] alone (as `first`):
    /// what a second decision must know, when a trusted service might allow what
    /// `first` denied for want of an assignment (a trusted service's check reads the
    /// unit and executable of every holder); `None` when `first` stands.
    pub fn needs_after(&self, action: Action, first: &Decision) -> Option<Needs> {
        let full = self.needs_for(action);
        (full != self.needs && matches!(first.reason(), Reason::NoMatchingAssignment))
            .then_some(full)
    }

    /// The mode of `action`'s endpoint family (`[modes]`, default enforce).
    pub fn mode(&self, action: Action) -> Mode {
        self.modes.get(Family::of(action))
    }

    /// Trusted services on (`trusted_services`) and allowed to approve
    /// scheduled events (`trusted_services_approve`).
    pub fn trusted_services(&self) -> TrustedConfig {
        self.trusted
    }

    fn inputs(&self) -> Inputs<'_> {
        Inputs {
            identities: &self.identities,
            deny_assignments: &self.deny_assignments,
            trusted: self.trusted,
        }
    }

    /// Apply the endpoint family's mode around a verdict.
    fn in_mode(&self, action: Action, verdict: impl FnOnce() -> Decision) -> Decision {
        match self.mode(action) {
            Mode::Off => Decision::with_names(Reason::Unmediated, Vec::new()).with_trail(Trail {
                mode: Mode::Off,
                ..Trail::default()
            }),
            Mode::Audit => verdict().audited(),
            Mode::Enforce => verdict(),
        }
    }

    /// Ranges always allowed to reach the protected ports (`[jit] break_glass`).
    pub fn break_glass(&self) -> &[IpNet] {
        &self.break_glass
    }

    /// The `[[jit_port]]` entries, in file order.
    pub fn jit_ports(&self) -> &[JitPort] {
        &self.jit_ports
    }

    pub fn jit_port(&self, port: u16, protocol: Protocol) -> Option<&JitPort> {
        self.jit_ports
            .iter()
            .find(|p| p.port == port && p.protocol == protocol)
    }

    /// Decide a request, using the load-time index so only assignments that
    /// can apply are looked at. Under mode `audit` a denial comes back
    /// allowed with [`Decision::would_deny`]; under `off`, allowed as
    /// [`Reason::Unmediated`]. Eligible assignments count only through
    /// grants: see [`Policy::decide_with`].
    pub fn decide(&self, caller: &Caller, request: &Request<'_>) -> Decision {
        self.decide_with(caller, request, &[])
    }

    /// [`Policy::decide`], with active just-in-time grants honoured. A
    /// grant counts only when its uid is the caller's, `request.now` is in
    /// `[starts, expires)`, and its assignment exists, is eligible and
    /// still covers the grant's identity and audience (the policy may have
    /// changed since approval). It then acts as that assignment for
    /// principal `uid:<grant.uid>`, narrowed to the grant's identity and
    /// audience; the assignment's condition still applies and deny
    /// assignments still win. It is named `<assignment> (jit <grant id>)`.
    pub fn decide_with(
        &self,
        caller: &Caller,
        request: &Request<'_>,
        grants: &[Grant],
    ) -> Decision {
        self.in_mode(request.action, || {
            let candidates = self.index.candidates(request.action, caller);
            let assignments = candidates
                .into_iter()
                .filter_map(|i| self.assignments.get(i))
                .filter(|a| a.principal.grants_to(caller));
            let jit: Vec<JitOffer<'_>> = self
                .grant_offers(caller, request, grants)
                .filter(|j| {
                    self.roles
                        .get(j.assignment.role_index)
                        .is_some_and(|r| r.effective().contains(request.action))
                })
                .collect();
            evaluate::conclude(&self.inputs(), assignments, &jit, caller, request)
        })
    }

    /// Reference model for property tests and benchmarks: scans everything.
    #[doc(hidden)]
    pub fn decide_naive(&self, caller: &Caller, request: &Request<'_>) -> Decision {
        self.decide_naive_with(caller, request, &[])
    }

    /// Reference model of [`Policy::decide_with`].
    #[doc(hidden)]
    pub fn decide_naive_with(
        &self,
        caller: &Caller,
        request: &Request<'_>,
        grants: &[Grant],
    ) -> Decision {
        self.in_mode(request.action, || {
            let candidates =
                evaluate::naive_candidates(&self.roles, &self.assignments, caller, request);
            let action = request.action.as_str();
            let jit: Vec<JitOffer<'_>> = self
                .grant_offers(caller, request, grants)
                .filter(|j| evaluate::role_grants_naive(&self.roles, j.assignment, action))
                .collect();
            evaluate::conclude(&self.inputs(), candidates, &jit, caller, request)
        })
    }

    fn grant_offers<'a>(
        &'a self,
        caller: &'a Caller,
        request: &'a Request<'_>,
        grants: &'a [Grant],
    ) -> impl Iterator<Item = JitOffer<'a>> {
        grants
            .iter()
            .filter_map(move |g| jit::valid_grant(&self.assignments, caller, request.now, g))
    }
}

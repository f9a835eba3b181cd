//! What changes between two policies, in meaning rather than text: who
//! gains or loses which (identity, audience, action), whose conditions
//! change, which just-in-time eligibilities change, which deny
//! assignments, modes and trusted-service settings change.
//!
//! Both policies are expanded into *grants*: one per principal, action,
//! identity and audience pattern, with the conditions under which it holds
//! (none: always). Names of assignments and roles, the order of anything,
//! the spelling of a condition (`&&` or `AND`, layout) and of an audience
//! (`/.default`, a trailing `/`) take no part; identities are matched by
//! what they are (kind and ids), not by their policy name, so renaming one
//! changes nothing either.

use std::collections::{BTreeMap, BTreeSet};

use crate::action::Action;
use crate::audience;
use crate::identity::{Identity, IdentityKind};
use crate::model::{Assignment, AutoApprove, Scope};
use crate::policy::Policy;

/// One grant's coordinates. `identity` and `audience` are `-` for actions
/// other than tokens.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub principal: String,
    pub action: Action,
    /// The identity's name (in the new policy when it is in both).
    pub identity: String,
    /// A normalised audience pattern (`*` for any).
    pub audience: String,
}

/// When a grant holds: always, or when one of these conditions does
/// (their canonical text).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum When {
    Always,
    If(BTreeSet<String>),
}

/// How an eligible grant is activated, in comparable form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HowActivated {
    pub max_duration_secs: u64,
    pub require_justification: bool,
    pub require_ticket: bool,
    pub approvers: BTreeSet<String>,
    /// `never`, `always`, or the condition's canonical text.
    pub auto_approve: String,
    pub when: When,
}

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// Standing access the new policy grants and the old did not.
    Gained { access: Access, when: When },
    /// Standing access the old policy granted and the new does not.
    Lost { access: Access, when: When },
    /// Granted by both, under different conditions.
    ConditionChanged {
        access: Access,
        old: When,
        new: When,
    },
    /// Eligible (just in time) in the new policy only.
    EligibleGained { access: Access, how: HowActivated },
    /// Eligible in the old policy only.
    EligibleLost { access: Access, how: HowActivated },
    /// Eligible in both, activated differently.
    EligibleChanged {
        access: Access,
        old: HowActivated,
        new: HowActivated,
    },
    /// A deny that applies in the new policy only.
    DenyGained {
        access: Access,
        excluded: BTreeSet<String>,
    },
    /// A deny that applied in the old policy only.
    DenyLost {
        access: Access,
        excluded: BTreeSet<String>,
    },
    /// An endpoint family's mode.
    Mode {
        family: &'static str,
        old: &'static str,
        new: &'static str,
    },
    /// `trusted_services` or `trusted_services_approve`.
    Trusted {
        setting: &'static str,
        old: bool,
        new: bool,
    },
}

/// The differences from `old` to `new`, sorted; empty when they mean the
/// same.
pub fn diff(old: &Policy, new: &Policy) -> Vec<Change> {
    let names = IdentityNames::new(old, new);
    let (old_grants, old_eligible) = grants(old, &names, Side::Old);
    let (new_grants, new_eligible) = grants(new, &names, Side::New);
    let mut out = Vec::new();
    for (access, when) in &new_grants {
        match old_grants.get(access) {
            None if !covered(&old_grants, access, when) => out.push(Change::Gained {
                access: access.clone(),
                when: when.clone(),
            }),
            Some(old) if old != when => out.push(Change::ConditionChanged {
                access: access.clone(),
                old: old.clone(),
                new: when.clone(),
            }),
            _ => {}
        }
    }
    for (access, when) in &old_grants {
        if !new_grants.contains_key(access) && !covered(&new_grants, access, when) {
            out.push(Change::Lost {
                access: access.clone(),
                when: when.clone(),
            });
        }
    }
    for (access, how) in &new_eligible {
        match old_eligible.get(access) {
            None => out.push(Change::EligibleGained {
                access: access.clone(),
                how: how.clone(),
            }),
            Some(old) if old != how => out.push(Change::EligibleChanged {
                access: access.clone(),
                old: old.clone(),
                new: how.clone(),
            }),
            Some(_) => {}
        }
    }
    for (access, how) in &old_eligible {
        if !new_eligible.contains_key(access) {
            out.push(Change::EligibleLost {
                access: access.clone(),
                how: how.clone(),
            });
        }
    }
    let (old_denies, new_denies) = (
        denies(old, &names, Side::Old),
        denies(new, &names, Side::New),
    );
    for (access, excluded) in new_denies.difference(&old_denies) {
        out.push(Change::DenyGained {
            access: access.clone(),
            excluded: excluded.clone(),
        });
    }
    for (access, excluded) in old_denies.difference(&new_denies) {
        out.push(Change::DenyLost {
            access: access.clone(),
            excluded: excluded.clone(),
        });
    }
    for family in crate::mode::Family::ALL {
        let (a, b) = (old.modes.get(family), new.modes.get(family));
        if a != b {
            out.push(Change::Mode {
                family: family.key(),
                old: a.as_str(),
                new: b.as_str(),
            });
        }
    }
    for (setting, a, b) in [
        ("trusted_services", old.trusted.enabled, new.trusted.enabled),
        (
            "trusted_services_approve",
            old.trusted.approve,
            new.trusted.approve,
        ),
    ] {
        if a != b {
            out.push(Change::Trusted {
                setting,
                old: a,
                new: b,
            });
        }
    }
    out.sort();
    out
}

/// Is `access` (a concrete audience) granted in `grants` by a pattern
/// that covers it, under the same conditions?
fn covered(grants: &BTreeMap<Access, When>, access: &Access, when: &When) -> bool {
    if access.identity == "-" {
        return false;
    }
    grants.iter().any(|(other, w)| {
        other.principal == access.principal
            && other.action == access.action
            && other.identity == access.identity
            && other.audience != access.audience
            && audience::pattern_matches(&other.audience, &access.audience)
            && covers(w, when)
    })
}

/// Does a grant under `wider` hold whenever one under `narrower` does?
fn covers(wider: &When, narrower: &When) -> bool {
    match (wider, narrower) {
        (When::Always, _) => true,
        (When::If(_), When::Always) => false,
        (When::If(a), When::If(b)) => b.is_subset(a),
    }
}

#[derive(Clone, Copy)]
enum Side {
    Old,
    New,
}

/// Identities by what they are, so a renamed identity is the same one.
struct IdentityNames {
    /// (side's name) → the name shown (the new policy's, if it has it).
    old: BTreeMap<String, String>,
    new: BTreeMap<String, String>,
    /// Every identity of each side, by shown name.
    old_all: Vec<String>,
    new_all: Vec<String>,
}

fn identity_key(i: &Identity) -> String {
    match i.kind {
        IdentityKind::System => "system".to_owned(),
        IdentityKind::User => format!(
            "user {} {} {}",
            i.client_id.as_deref().unwrap_or(""),
            i.object_id.as_deref().unwrap_or(""),
            i.resource_id.as_deref().unwrap_or("").to_lowercase()
        ),
        IdentityKind::AwsRole => format!(
            "aws_role {}",
            i.role.as_deref().unwrap_or("").to_lowercase()
        ),
        IdentityKind::GcpServiceAccount => format!(
            "gcp_service_account {} {}",
            i.email.as_deref().unwrap_or("").to_lowercase(),
            i.default_account
        ),
    }
}

impl IdentityNames {
    fn new(old: &Policy, new: &Policy) -> IdentityNames {
        let by_key: BTreeMap<String, String> = new
            .identities
            .iter()
            .map(|i| (identity_key(i), i.name.clone()))
            .collect();
        let old_map: BTreeMap<String, String> = old
            .identities
            .iter()
            .map(|i| {
                let shown = by_key
                    .get(&identity_key(i))
                    .cloned()
                    .unwrap_or_else(|| i.name.clone());
                (i.name.clone(), shown)
            })
            .collect();
        let new_map: BTreeMap<String, String> = new
            .identities
            .iter()
            .map(|i| (i.name.clone(), i.name.clone()))
            .collect();
        IdentityNames {
            old_all: old_map.values().cloned().collect(),
            new_all: new_map.values().cloned().collect(),
            old: old_map,
            new: new_map,
        }
    }

    /// The identities a scope names, by shown name (`Any`: every one).
    fn expand(&self, scope: &Scope, side: Side) -> Vec<String> {
        let (map, all) = match side {
            Side::Old => (&self.old, &self.old_all),
            Side::New => (&self.new, &self.new_all),
        };
        match scope {
            Scope::Any => all.clone(),
            Scope::Only(names) => names
                .iter()
                .map(|n| map.get(n).cloned().unwrap_or_else(|| n.clone()))
                .collect(),
        }
    }
}

fn audiences(scope: &Scope) -> Vec<String> {
    match scope {
        Scope::Any => vec!["*".to_owned()],
        Scope::Only(patterns) => patterns.clone(),
    }
}

/// Every (access) an assignment or deny covers.
fn accesses(
    principal: &str,
    actions: crate::action::ActionSet,
    identities: &Scope,
    audience_scope: &Scope,
    names: &IdentityNames,
    side: Side,
) -> Vec<Access> {
    let mut out = Vec::new();
    for action in actions.iter() {
        if action.is_token() {
            for identity in names.expand(identities, side) {
                for audience in audiences(audience_scope) {
                    out.push(Access {
                        principal: principal.to_owned(),
                        action,
                        identity: identity.clone(),
                        audience,
                    });
                }
            }
        } else {
            out.push(Access {
                principal: principal.to_owned(),
                action,
                identity: "-".to_owned(),
                audience: "-".to_owned(),
            });
        }
    }
    out
}

fn when_of(a: &Assignment) -> When {
    match &a.condition {
        None => When::Always,
        Some(c) => When::If(BTreeSet::from([c.expr.to_string()])),
    }
}

/// Two grants of one access: it holds when either does.
fn either(a: &When, b: &When) -> When {
    match (a, b) {
        (When::If(x), When::If(y)) => When::If(x.union(y).cloned().collect()),
        _ => When::Always,
    }
}

type Grants = BTreeMap<Access, When>;
type Eligible = BTreeMap<Access, HowActivated>;

fn grants(policy: &Policy, names: &IdentityNames, side: Side) -> (Grants, Eligible) {
    let mut standing = Grants::new();
    let mut eligible = Eligible::new();
    for a in &policy.assignments {
        let Some(role) = policy.roles.get(a.role_index) else {
            continue;
        };
        let principal = a.principal.to_string();
        let when = when_of(a);
        for access in accesses(
            &principal,
            role.effective(),
            &a.identities,
            &a.audiences,
            names,
            side,
        ) {
            match &a.eligible {
                None => {
                    let merged = standing
                        .get(&access)
                        .map_or_else(|| when.clone(), |w| either(w, &when));
                    standing.insert(access, merged);
                }
                Some(e) => {
                    let how = HowActivated {
                        max_duration_secs: e.max_duration.as_secs(),
                        require_justification: e.require_justification,
                        require_ticket: e.require_ticket,
                        approvers: e.approvers.iter().map(ToString::to_string).collect(),
                        auto_approve: match &e.auto_approve {
                            AutoApprove::Never => "never".to_owned(),
                            AutoApprove::Always => "always".to_owned(),
                            AutoApprove::When(c) => c.expr.to_string(),
                        },
                        when: when.clone(),
                    };
                    // Several eligible assignments for one access: the
                    // first in the file is shown (the planner prefers
                    // auto-approval, then the longest; both are compared).
                    eligible.entry(access).or_insert(how);
                }
            }
        }
    }
    (standing, eligible)
}

fn denies(
    policy: &Policy,
    names: &IdentityNames,
    side: Side,
) -> BTreeSet<(Access, BTreeSet<String>)> {
    let mut out = BTreeSet::new();
    for d in &policy.deny_assignments {
        let excluded: BTreeSet<String> = d
            .excluded_principals
            .iter()
            .map(ToString::to_string)
            .collect();
        for p in &d.principals {
            for access in accesses(
                &p.to_string(),
                d.effective,
                &d.identities,
                &d.audiences,
                names,
                side,
            ) {
                out.insert((access, excluded.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;

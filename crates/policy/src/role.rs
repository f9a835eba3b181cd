//! Role definitions: built-in roles and custom ones from the policy file.

use crate::action::ActionSet;

/// A role: named action patterns minus not-action patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub description: Option<String>,
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    pub builtin: bool,
    /// `actions − not_actions`, computed once at load time.
    pub(crate) effective: ActionSet,
}

impl Role {
    pub(crate) fn new(
        name: String,
        description: Option<String>,
        actions: Vec<String>,
        not_actions: Vec<String>,
        builtin: bool,
    ) -> Role {
        let effective = effective(&actions, &not_actions);
        Role {
            name,
            description,
            actions,
            not_actions,
            builtin,
            effective,
        }
    }

    /// The actions this role allows.
    pub fn effective(&self) -> ActionSet {
        self.effective
    }
}

/// `actions − not_actions`, Azure style.
pub(crate) fn effective(actions: &[String], not_actions: &[String]) -> ActionSet {
    let union = |pats: &[String]| {
        pats.iter()
            .fold(ActionSet::default(), |s, p| s.union(ActionSet::matching(p)))
    };
    union(actions).minus(union(not_actions))
}

/// The built-in roles, which always exist and cannot be redefined.
pub(crate) fn builtins() -> Vec<Role> {
    let def = |name: &str, description: &str, actions: &[&str]| {
        Role::new(
            name.to_owned(),
            Some(description.to_owned()),
            actions.iter().map(|a| (*a).to_owned()).collect(),
            Vec::new(),
            true,
        )
    };
    vec![
        def(
            "Token Reader",
            "get managed-identity tokens (scoped by identities and audiences)",
            &["Gatehouse/token/read"],
        ),
        def(
            "Instance Metadata Reader",
            "read instance metadata, versions, identity info and the attested document",
            &[
                "Gatehouse/instance/read",
                "Gatehouse/versions/read",
                "Gatehouse/identityInfo/read",
                "Gatehouse/attestedDocument/read",
            ],
        ),
        def(
            "Scheduled Events Reader",
            "read scheduled events",
            &["Gatehouse/scheduledEvents/read"],
        ),
        def(
            "Scheduled Events Approver",
            "read and approve scheduled events",
            &[
                "Gatehouse/scheduledEvents/read",
                "Gatehouse/scheduledEvents/approve/action",
            ],
        ),
        def(
            "User Data Reader",
            "read AWS user data (which often holds secrets)",
            &["Gatehouse/userData/read"],
        ),
        def("Metadata Owner", "everything", &["Gatehouse/*"]),
    ]
}

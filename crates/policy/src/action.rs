//! The closed set of actions a request can perform, named like Azure
//! role-definition actions so roles read the way Azure admins expect.

use std::fmt;
use std::str::FromStr;

use crate::wildcard;

/// One thing a local caller can ask the metadata service to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// `Gatehouse/token/read`: a managed-identity token.
    TokenRead,
    /// `Gatehouse/instance/read`: `/metadata/instance`.
    InstanceRead,
    /// `Gatehouse/versions/read`: `/metadata/versions`.
    VersionsRead,
    /// `Gatehouse/identityInfo/read`: `/metadata/identity/info`.
    IdentityInfoRead,
    /// `Gatehouse/attestedDocument/read`: `/metadata/attested/document`.
    AttestedDocumentRead,
    /// `Gatehouse/scheduledEvents/read`: GET `/metadata/scheduledevents`.
    ScheduledEventsRead,
    /// `Gatehouse/scheduledEvents/approve/action`: POST `/metadata/scheduledevents`.
    ScheduledEventsApprove,
    /// `Gatehouse/userData/read`: AWS `/latest/user-data` (often holds
    /// secrets; no other cloud has its like under this name).
    UserDataRead,
}

impl Action {
    /// Every action, in a fixed order (the index order of [`ActionSet`]).
    pub const ALL: [Action; 8] = [
        Action::TokenRead,
        Action::InstanceRead,
        Action::VersionsRead,
        Action::IdentityInfoRead,
        Action::AttestedDocumentRead,
        Action::ScheduledEventsRead,
        Action::ScheduledEventsApprove,
        Action::UserDataRead,
    ];

    /// The canonical action string.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::TokenRead => "Gatehouse/token/read",
            Action::InstanceRead => "Gatehouse/instance/read",
            Action::VersionsRead => "Gatehouse/versions/read",
            Action::IdentityInfoRead => "Gatehouse/identityInfo/read",
            Action::AttestedDocumentRead => "Gatehouse/attestedDocument/read",
            Action::ScheduledEventsRead => "Gatehouse/scheduledEvents/read",
            Action::ScheduledEventsApprove => "Gatehouse/scheduledEvents/approve/action",
            Action::UserDataRead => "Gatehouse/userData/read",
        }
    }

    /// Token actions are the only ones scoped by identity and audience.
    pub fn is_token(self) -> bool {
        matches!(self, Action::TokenRead)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for a string that names no known action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAction;

impl fmt::Display for UnknownAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown action")
    }
}

impl std::error::Error for UnknownAction {}

impl FromStr for Action {
    type Err = UnknownAction;

    /// Case-insensitive, like Azure action names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or(UnknownAction)
    }
}

/// A set of actions; the effective permissions of a role are computed once at
/// load time into one of these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ActionSet(u8);

impl ActionSet {
    /// Every known action a role-definition pattern matches (Azure matching:
    /// `*` any run, case-insensitive).
    pub(crate) fn matching(pattern: &str) -> ActionSet {
        let mut set = ActionSet::default();
        for action in Action::ALL {
            if wildcard::matches_ignore_case(pattern, action.as_str()) {
                set.0 |= action.bit();
            }
        }
        set
    }

    pub(crate) fn union(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 | other.0)
    }

    pub(crate) fn intersect(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 & other.0)
    }

    pub(crate) fn minus(self, other: ActionSet) -> ActionSet {
        ActionSet(self.0 & !other.0)
    }

    /// Does the set contain `action`?
    pub fn contains(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    /// Is the set empty?
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The actions in the set, in [`Action::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

//! Modes per endpoint family, so a policy can be rolled out on a live
//! machine: `audit` decides and records what would be denied but lets the
//! request through; `off` does not decide at all.

use std::fmt;

use crate::action::Action;

/// How the gate treats one endpoint family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Decide and enforce (the default).
    #[default]
    Enforce,
    /// Decide and record, but let the request through.
    Audit,
    /// No decision: pass through, audited as unmediated.
    Off,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "enforce" => Some(Mode::Enforce),
            "audit" => Some(Mode::Audit),
            "off" => Some(Mode::Off),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
            Mode::Off => "off",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The endpoint families a `[modes]` table names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `Gatehouse/token/read`
    Token,
    /// `Gatehouse/instance/read`, `Gatehouse/versions/read`
    Instance,
    /// `Gatehouse/identityInfo/read`
    IdentityInfo,
    /// `Gatehouse/attestedDocument/read`
    AttestedDocument,
    /// `Gatehouse/scheduledEvents/read`, `.../approve/action`
    ScheduledEvents,
}

impl Family {
    pub const ALL: [Family; 5] = [
        Family::Token,
        Family::Instance,
        Family::IdentityInfo,
        Family::AttestedDocument,
        Family::ScheduledEvents,
    ];

    /// The key in `[modes]`.
    pub fn key(self) -> &'static str {
        match self {
            Family::Token => "token",
            Family::Instance => "instance",
            Family::IdentityInfo => "identity_info",
            Family::AttestedDocument => "attested_document",
            Family::ScheduledEvents => "scheduled_events",
        }
    }

    pub fn of(action: Action) -> Family {
        match action {
            Action::TokenRead => Family::Token,
            Action::InstanceRead | Action::VersionsRead | Action::UserDataRead => Family::Instance,
            Action::IdentityInfoRead => Family::IdentityInfo,
            Action::AttestedDocumentRead => Family::AttestedDocument,
            Action::ScheduledEventsRead | Action::ScheduledEventsApprove => Family::ScheduledEvents,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The mode of every family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Modes([Mode; 5]);

impl Modes {
    pub fn get(&self, family: Family) -> Mode {
        self.0.get(family.index()).copied().unwrap_or_default()
    }

    pub(crate) fn set(&mut self, family: Family, mode: Mode) {
        if let Some(slot) = self.0.get_mut(family.index()) {
            *slot = mode;
        }
    }
}

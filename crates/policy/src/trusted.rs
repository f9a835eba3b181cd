//! Trusted services: the analogue of Azure's "allow trusted services"
//! exception. A shipped list of VM agents may read the non-identity
//! endpoints without per-agent assignments; approving scheduled events needs
//! the policy's opt-in, and tokens always need an assignment.
//!
//! An entry matches only when every process holding the socket runs in one
//! of the entry's systemd system units (read from the cgroup, which only
//! root can place a process in) AND its executable is one the entry names:
//! a verified path to a root-owned file, or a listed SHA-256. The Azure
//! Linux agent is a Python script, so its running executable is the
//! `python3` interpreter: the unit is what sets it apart from any other
//! Python program, the root-owned interpreter path what keeps a user's copy
//! of Python out. The command line is never trusted (anyone can spoof it).

use crate::action::Action;
use crate::caller::{Caller, Process};

/// One trusted service.
#[derive(Debug, Clone, Copy)]
pub struct TrustedService {
    pub name: &'static str,
    /// systemd system units the service runs as.
    pub units: &'static [&'static str],
    /// Executable paths (verified, root-owned).
    pub exes: &'static [&'static str],
    /// SHA-256 of known executables (lower-case hex), an alternative to `exes`.
    pub sha256: &'static [&'static str],
}

const PYTHON3: &[&str] = &[
    "/usr/bin/python3",
    "/usr/bin/python3.6",
    "/usr/bin/python3.7",
    "/usr/bin/python3.8",
    "/usr/bin/python3.9",
    "/usr/bin/python3.10",
    "/usr/bin/python3.11",
    "/usr/bin/python3.12",
    "/usr/bin/python3.13",
    "/usr/libexec/platform-python3.6",
];

/// The shipped list.
pub const TRUSTED_SERVICES: &[TrustedService] = &[
    TrustedService {
        name: "azure-linux-agent",
        units: &["walinuxagent.service", "waagent.service"],
        exes: PYTHON3,
        sha256: &[],
    },
    TrustedService {
        name: "azure-monitor-agent",
        units: &["azuremonitoragent.service"],
        exes: &[
            "/opt/microsoft/azuremonitoragent/bin/mdsd",
            "/opt/microsoft/azuremonitoragent/bin/amacoreagent",
            "/opt/microsoft/azuremonitoragent/bin/agentlauncher",
        ],
        sha256: &[],
    },
    TrustedService {
        name: "oms-agent",
        units: &["omsagent.service"],
        exes: &["/opt/microsoft/omsagent/ruby/bin/ruby"],
        sha256: &[],
    },
];

/// The policy's settings: `trusted_services` (default true) and
/// `trusted_services_approve` (default false).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedConfig {
    pub enabled: bool,
    pub approve: bool,
}

impl Default for TrustedConfig {
    fn default() -> Self {
        TrustedConfig {
            enabled: true,
            approve: false,
        }
    }
}

impl TrustedService {
    fn matches_process(&self, p: &Process) -> bool {
        let unit = p.unit.as_deref().is_some_and(|u| self.units.contains(&u));
        let by_path = p.exe_path_verified
            && p.exe_owner_uid == Some(0)
            && p.exe_path
                .as_deref()
                .is_some_and(|e| self.exes.contains(&e));
        let by_hash = p
            .exe_sha256
            .as_deref()
            .is_some_and(|h| self.sha256.iter().any(|s| s.eq_ignore_ascii_case(h)));
        unit && (by_path || by_hash)
    }

    /// Every holder (at least one) is this service.
    pub fn matches(&self, caller: &Caller) -> bool {
        !caller.processes.is_empty() && caller.processes.iter().all(|p| self.matches_process(p))
    }
}

/// May a trusted service do `action` under `config`?
pub(crate) fn action_allowed(config: TrustedConfig, action: Action) -> bool {
    match action {
        Action::InstanceRead | Action::VersionsRead | Action::ScheduledEventsRead => config.enabled,
        Action::ScheduledEventsApprove => config.enabled && config.approve,
        Action::TokenRead
        | Action::IdentityInfoRead
        | Action::AttestedDocumentRead
        | Action::UserDataRead => false,
    }
}

/// The trusted service `caller` is, if it may do `action`.
pub(crate) fn find(config: TrustedConfig, caller: &Caller, action: Action) -> Option<&'static str> {
    if !action_allowed(config, action) {
        return None;
    }
    TRUSTED_SERVICES
        .iter()
        .find(|s| s.matches(caller))
        .map(|s| s.name)
}

//! What a reload ends in, and the control socket's two messages
//! (`gatehouse reload` asks the running gate to reload and waits for this
//! answer). docs/architecture.md, "Lifecycle".

use serde::{Deserialize, Serialize};

/// Largest control request or reply (one JSON line).
pub const MAX_CONTROL_MESSAGE: usize = 16 * 1024;

/// The end of one reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// The new policy is in force (audited `policy_loaded`).
    Loaded { policy: String },
    /// The file was refused; `policy` (the last good one) stays in force
    /// (audited `policy_rejected` with the reason).
    Kept {
        policy: String,
        reason: String,
        /// Every error, with file, line and column (for `gatehouse reload`).
        details: String,
    },
    /// No gate answered in time (the worker is wedged or gone).
    Unanswered { reason: String },
}

impl ReloadOutcome {
    /// One line for people: what is in force now.
    pub fn describe(&self) -> String {
        let short = |h: &str| h.get(..16).unwrap_or(h).to_owned();
        match self {
            ReloadOutcome::Loaded { policy } => {
                format!("policy loaded (sha256 {})", short(policy))
            }
            ReloadOutcome::Kept { policy, reason, .. } => format!(
                "reload refused: {reason}; the previous policy (sha256 {}) stays in force",
                short(policy)
            ),
            ReloadOutcome::Unanswered { reason } => format!("no answer from the gate: {reason}"),
        }
    }
}

/// A request on the control socket (one JSON line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum ControlRequest {
    /// Reload the policy and answer with the [`ReloadOutcome`].
    Reload,
}

/// The gate's answer on the control socket (one JSON line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlReply {
    pub reload: ReloadOutcome,
}

/// The one-line `STATUS=` the service manager shows.
pub fn status_line(policy_hash: &str, callers: &str, served: u64) -> String {
    format!(
        "policy sha256 {}; callers: {callers}; {served} requests served",
        policy_hash.get(..16).unwrap_or(policy_hash)
    )
}

#[cfg(test)]
mod tests;

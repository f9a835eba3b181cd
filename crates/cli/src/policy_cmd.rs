//! `gatehouse policy …`: work out a policy from evidence, compare two.

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Suggest the policy that grants exactly what the audit log shows was
    /// asked for (from a period in audit mode, or enforce mode's denials).
    ///
    /// Each assignment goes to the narrowest principal the records support
    /// — a systemd unit or an executable's SHA-256 (pinned to the uids seen
    /// by a condition), else a uid — for one identity and the audiences
    /// seen, with a comment giving the evidence (count, first and last
    /// seen). Nothing is widened unless asked (`--any-audience`). The output
    /// passes `gatehouse check --strict` on the machine that recorded it;
    /// `--patch` prints a diff adding only what `--policy` does not allow yet.
    Suggest(crate::suggest::Args),
    /// What changes in meaning from OLD to NEW: who gains or loses which
    /// identity, audience and action, whose conditions change, which
    /// just-in-time eligibilities, deny assignments, modes and trusted
    /// services change. Renaming and reordering change nothing and print
    /// nothing. Exit 0: the same; 1: changes; 2: a policy does not load.
    Diff(crate::policy_diff::Args),
}

pub fn main(command: Command) -> ExitCode {
    match command {
        Command::Suggest(args) => crate::suggest::main(args),
        Command::Diff(args) => crate::policy_diff::main(args),
    }
}

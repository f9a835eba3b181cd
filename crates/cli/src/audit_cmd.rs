//! `gatehouse audit verify`: find any edited, removed or reordered line.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Verify the hash chain of an audit log (and its rotated predecessors).
    ///
    /// With one path, the rotation set `PATH.N … PATH.1, PATH` is verified
    /// oldest first. Exits 0 when the chain holds, 1 naming the first broken
    /// line otherwise. Every record must also be one gatehouse writes: a
    /// record type or field this version does not know fails too (a newer
    /// gatehouse's log, or an edit that recomputed the chain). Deleting lines
    /// at the very end cannot be seen from the
    /// file alone: keep a copy off the machine for evidence against root.
    Verify {
        /// The audit log (default: the gate's default path).
        #[arg(default_value = "/var/log/gatehouse/audit.log")]
        path: PathBuf,
        /// Verify only this file, not its rotated predecessors.
        #[arg(long)]
        single: bool,
    },
    /// Print the JSON Schema (2020-12) of one audit record line.
    ///
    /// Generated from the same types the gate writes records with; every
    /// record type and field is described in it (and in docs/audit.md).
    /// Point a SIEM's or a pipeline's validator at it.
    Schema,
    /// Print the records that match the filters: a table, or `--json` lines.
    Show(Box<crate::audit_show::Args>),
    /// Summarise a period: tokens served per identity and audience, unused
    /// assignments, denials by caller, just-in-time grants, trusted services.
    Report(Box<crate::audit_report::Args>),
}

pub fn main(command: Command) -> ExitCode {
    match command {
        Command::Show(args) => crate::audit_show::main(*args),
        Command::Report(args) => crate::audit_report::main(*args),
        Command::Schema => match serde_json::to_string_pretty(&gatehouse_audit::json_schema()) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => crate::fail(&format!("cannot print the schema: {e}"), None),
        },
        Command::Verify { path, single } => {
            let paths = if single {
                vec![path.clone()]
            } else {
                match gatehouse_audit::rotation_set(&path) {
                    Ok(p) => p,
                    Err(e) => {
                        return crate::fail(&format!("cannot read `{}`: {e}", path.display()), None)
                    }
                }
            };
            match gatehouse_audit::verify(&paths) {
                Ok(report) => {
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(failure) => {
                    eprintln!("gatehouse: audit log does not verify: {failure}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

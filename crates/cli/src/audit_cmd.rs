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
        #[arg(long, conflicts_with = "against")]
        single: bool,
        /// Also check the log against evidence collected off the machine: a
        /// file of exported records or checkpoint lines (JSON, or syslog
        /// lines carrying it). Reports a truncation, a rewrite (even with the
        /// chain recomputed) or a gap (a deleted rotated file) up to the last
        /// signed checkpoint, naming the first record that differs. Exits 0
        /// when the log matches, 1 when it was tampered with, 3 when the
        /// evidence is refused (a checkpoint of another key or with a bad
        /// signature, none at all, two that contradict each other).
        #[arg(long, value_name = "FILE", requires = "key")]
        against: Option<PathBuf>,
        /// With `--against`: the gate's public key, as `gatehouse audit key`
        /// printed it (`ed25519:<hex> [fingerprint]`), or a file holding it.
        #[arg(long, value_name = "PUB|FILE", requires = "against")]
        key: Option<String>,
    },
    /// Print the public half of the gate's checkpoint key and its
    /// fingerprint, as one line `ed25519:<hex> SHA256:<fingerprint>`: keep it
    /// off the machine to verify exported checkpoints with.
    Key {
        /// The key file (`gatehouse run --audit-key`).
        #[arg(long, value_name = "PATH", default_value = crate::run::DEFAULT_AUDIT_KEY)]
        audit_key: PathBuf,
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
        Command::Key { audit_key } => match gatehouse_audit::CheckpointKey::load(&audit_key) {
            Ok(key) => {
                println!("{} {}", key.public(), key.public().key_id());
                ExitCode::SUCCESS
            }
            Err(e) => crate::fail(&e.to_string(), Some("the gate creates it at first start; run this as the user that owns it (root with `--user`)")),
        },
        Command::Verify {
            path,
            against: Some(evidence),
            key: Some(key),
            ..
        } => verify_against(&path, &evidence, &key),
        Command::Verify { path, single, .. } => {
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

/// `audit verify --against FILE --key PUB`.
fn verify_against(path: &std::path::Path, evidence: &std::path::Path, key: &str) -> ExitCode {
    let key_text = if key.starts_with("ed25519:") {
        key.to_owned()
    } else {
        match std::fs::read_to_string(key) {
            Ok(t) => t,
            Err(e) => return crate::fail(
                &format!("cannot read the key file `{key}`: {e}"),
                Some(
                    "give `ed25519:<hex>` as `gatehouse audit key` prints it, or a file holding it",
                ),
            ),
        }
    };
    let public = match gatehouse_audit::PublicKey::parse(&key_text) {
        Ok(k) => k,
        Err(e) => return crate::fail(&e.to_string(), None),
    };
    let text = match std::fs::read(evidence) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return crate::fail(&format!("cannot read `{}`: {e}", evidence.display()), None),
    };
    match gatehouse_audit::verify_against(path, &text, &public) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(gatehouse_audit::AgainstFailure::Tampered(t)) => {
            eprintln!("gatehouse: the audit log does not match the evidence: {t}");
            ExitCode::from(1)
        }
        Err(e @ gatehouse_audit::AgainstFailure::Evidence(_)) => {
            eprintln!("gatehouse: `{}`: {e}", evidence.display());
            ExitCode::from(3)
        }
        Err(e) => crate::fail(&e.to_string(), None),
    }
}

//! `gatehouse check`: every error with file:line:column, then warnings
//! (principals missing on this machine, over-broad or bypassed grants...).
//! Exit 0 clean, 1 warnings with `--strict`, 2 errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gatehouse_policy::{Diagnostic, Diagnostics, Machine, Severity};
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// The policy file to check.
    #[arg(long, default_value = "/etc/gatehouse/policy.toml")]
    policy: PathBuf,
    /// Exit 1 if there are warnings.
    #[arg(long)]
    strict: bool,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// The cloud the gate will speak (as `gatehouse run --cloud`): an
    /// identity of another cloud is an error.
    #[arg(long, default_value = "azure", value_name = "azure|aws|gcp")]
    cloud: gatehouse_policy::Cloud,
}

/// Real lookups on this machine, for the warnings.
pub(crate) struct ThisMachine;

fn names_in(file: &str) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(':').next())
        .map(str::to_owned)
        .collect()
}

impl Machine for ThisMachine {
    fn user_exists(&self, name: &str) -> bool {
        names_in("/etc/passwd").iter().any(|n| n == name)
    }
    fn group_exists(&self, name: &str) -> bool {
        names_in("/etc/group").iter().any(|n| n == name)
    }
    fn file_exists(&self, path: &str) -> bool {
        Path::new(path).is_file()
    }
    fn unit_exists(&self, unit: &str) -> bool {
        [
            "/etc/systemd/system",
            "/lib/systemd/system",
            "/usr/lib/systemd/system",
        ]
        .iter()
        .any(|dir| Path::new(dir).join(unit).exists())
    }
}

fn diag_json(d: &Diagnostic) -> serde_json::Value {
    json!({
        "severity": d.severity.to_string(),
        "file": d.source,
        "line": d.line,
        "column": d.column,
        "message": d.message,
        "help": d.help,
        "snippet": d.snippet,
    })
}

fn report(args: &Args, name: &str, diags: &Diagnostics, hash: Option<&str>) -> ExitCode {
    let errors = diags.error_count();
    let warnings = diags.len() - errors;
    let code = if errors > 0 {
        2
    } else if warnings > 0 && args.strict {
        1
    } else {
        0
    };
    if args.json {
        let ordered: Vec<&Diagnostic> = diags
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .chain(diags.iter().filter(|d| d.severity == Severity::Warning))
            .collect();
        let out = json!({
            "file": name,
            "ok": errors == 0,
            "errors": errors,
            "warnings": warnings,
            "sha256": hash,
            "diagnostics": ordered.into_iter().map(diag_json).collect::<Vec<_>>(),
        });
        println!("{out}");
    } else {
        for d in diags.iter().filter(|d| d.severity == Severity::Error) {
            eprintln!("{d}\n");
        }
        for d in diags.iter().filter(|d| d.severity == Severity::Warning) {
            eprintln!("{d}\n");
        }
        match hash {
            Some(h) if warnings == 0 => {
                println!("{name}: ok (sha256 {})", h.get(..16).unwrap_or(""))
            }
            Some(h) => println!(
                "{name}: ok with {warnings} warning{} (sha256 {})",
                if warnings == 1 { "" } else { "s" },
                h.get(..16).unwrap_or("")
            ),
            // Each diagnostic is printed above; only the count is left.
            None => eprintln!("{errors} error{}", if errors == 1 { "" } else { "s" }),
        }
    }
    ExitCode::from(code)
}

pub fn main(args: Args) -> ExitCode {
    let text = match std::fs::read_to_string(&args.policy) {
        Ok(t) => t,
        Err(e) => {
            return crate::fail(
                &format!("cannot read `{}`: {e}", args.policy.display()),
                None,
            )
        }
    };
    let name = args.policy.display().to_string();
    match gatehouse_policy::parse(&name, &text) {
        Ok(p) => {
            let wrong_cloud = p.cloud_errors(&name, &text, args.cloud);
            if !wrong_cloud.is_empty() {
                return report(&args, &name, &wrong_cloud, None);
            }
            let warnings = p.lint(&name, &text, &ThisMachine);
            report(&args, &name, &warnings, Some(p.hash()))
        }
        Err(diagnostics) => report(&args, &name, &diagnostics, None),
    }
}

//! `gatehouse check`: every error with file:line:column, then warnings
//! (principals missing on this machine, over-broad or bypassed grants...).
//! Exit 0 clean, 1 warnings with `--strict`, 2 errors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gatehouse_policy::{Diagnostic, Diagnostics, Machine, Severity};
use serde_json::json;

mod sarif;

#[derive(clap::Args)]
pub struct Args {
    /// The policy file to check.
    #[arg(long, default_value = "/etc/gatehouse/policy.toml")]
    policy: PathBuf,
    /// The daemon settings to check too (export sinks). Default:
    /// /etc/gatehouse/gatehouse.toml if it exists.
    #[arg(long, value_name = "PATH")]
    settings: Option<PathBuf>,
    /// Exit 1 if there are warnings.
    #[arg(long)]
    strict: bool,
    /// Print the result as one JSON object on stdout (`--format json`).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// How to print the result: `human` (stderr, like rustc), `json` (one
    /// object on stdout) or `sarif` (a SARIF 2.1.0 log on stdout, for a
    /// policy repository's CI to show findings inline). The exit code is
    /// the same in every format.
    #[arg(long, value_enum, value_name = "human|json|sarif")]
    format: Option<Format>,
    /// Replay the requests recorded in these audit logs (each with its
    /// rotated predecessors) against the policy, with the recorded callers
    /// and times, and show what changes; exit 1 if a recorded allow would
    /// now be denied.
    #[arg(long, value_name = "FILES", num_args = 1..)]
    replay: Vec<PathBuf>,
    /// The cloud the gate will speak (as `gatehouse run --cloud`): an
    /// identity of another cloud is an error.
    #[arg(long, default_value = "azure", value_name = "azure|aws|gcp")]
    cloud: gatehouse_policy::Cloud,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Human,
    Json,
    Sarif,
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

/// The third field (uid or gid) of each line of `/etc/passwd` or `/etc/group`.
fn ids_in(file: &str) -> Vec<u32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(':').nth(2)?.parse().ok())
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
    fn uid_exists(&self, uid: u32) -> bool {
        ids_in("/etc/passwd").contains(&uid)
    }
    fn gid_exists(&self, gid: u32) -> bool {
        ids_in("/etc/group").contains(&gid)
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

fn report(
    args: &Args,
    name: &str,
    text: &str,
    diags: &Diagnostics,
    hash: Option<&str>,
) -> ExitCode {
    let errors = diags.error_count();
    let warnings = diags.len() - errors;
    let code = if errors > 0 {
        2
    } else if warnings > 0 && args.strict {
        1
    } else {
        0
    };
    let format = match (args.format, args.json) {
        (Some(f), _) => f,
        (None, true) => Format::Json,
        (None, false) => Format::Human,
    };
    if format == Format::Sarif {
        match sarif::render(name, text, diags) {
            Ok(log) => println!("{log}"),
            Err(e) => return crate::fail(&format!("cannot write the SARIF log: {e}"), None),
        }
    } else if format == Format::Json {
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
    let settings = check_settings(args.settings.as_deref());
    let policy = check_policy(&args);
    if settings != ExitCode::SUCCESS {
        return settings;
    }
    policy
}

/// The settings file: its syntax and every sink (URL, facility, the TLS
/// CA bundle read and parsed). No connection is made.
fn check_settings(named: Option<&Path>) -> ExitCode {
    let settings = match crate::run::export::load_settings(named) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let origin = gatehouse_export::Origin {
        hostname: String::new(),
        vm_id: None,
    };
    if let Err(e) = gatehouse_export::Prepared::new(&settings.export.sinks, &origin) {
        return crate::fail(
            &e.to_string(),
            Some("fix the sink's `ca` in the settings file"),
        );
    }
    if !settings.export.sinks.is_empty() {
        println!(
            "settings: ok ({} export sink(s): {})",
            settings.export.sinks.len(),
            settings
                .export
                .sinks
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    ExitCode::SUCCESS
}

fn check_policy(args: &Args) -> ExitCode {
    let text = match crate::read_text(&args.policy) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let name = args.policy.display().to_string();
    match gatehouse_policy::parse(&name, &text) {
        Ok(p) if !args.replay.is_empty() => crate::replay::main(
            &name,
            &p,
            &args.replay,
            false,
            args.json || args.format == Some(Format::Json),
        ),
        Ok(p) => {
            let wrong_cloud = p.cloud_errors(&name, &text, args.cloud);
            if !wrong_cloud.is_empty() {
                return report(args, &name, &text, &wrong_cloud, None);
            }
            let warnings = p.lint(&name, &text, &ThisMachine);
            report(args, &name, &text, &warnings, Some(p.hash()))
        }
        Err(diagnostics) => report(args, &name, &text, &diagnostics, None),
    }
}

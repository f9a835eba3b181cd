//! `gatehouse`: who on this machine may use which cloud identity.

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod audit_cmd;
mod check;
mod doctor;
mod emulate;
mod explain;
mod firewall;
mod generate;
mod jit;
mod logging;
mod policy_man;
mod reload;
mod run;
mod status;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "A policy gate in front of the cloud instance metadata service (IMDS)",
    long_about = "gatehouse sits between the processes on a VM and the instance metadata \
service. It identifies the process behind every request (uid, groups, executable, \
systemd unit, cgroup, container), decides with an Azure-RBAC-style policy which \
managed identity and audience it may have, forwards what is allowed, answers \
everything else with an IMDS-shaped error, and records each decision in a \
hash-chained audit log.\n\n\
Try it (no cloud needed):\n  gatehouse run --upstream emulator --policy examples/policy.toml\n\n\
On a VM (the Debian package installs the units):\n  gatehouse check --strict --policy /etc/gatehouse/policy.toml\n  \
systemctl start gatehouse\n\n\
The policy file's format: gatehouse-policy(5). Logs: the journal under systemd, \
else stderr (--log-format); the audit log: /var/log/gatehouse/audit.log.",
    after_long_help = "Environment:\n  GATEHOUSE_LOG  what to log, as a tracing filter \
(`info`, the default; `debug`; `gatehouse_gate=debug`)\n  JOURNAL_STREAM  set by systemd; \
with --log-format auto, logs go to the journal when stderr is this stream"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Where and how gatehouse's own log lines are written (the audit log is
    /// separate): `auto` is the journal when systemd connected stderr to it,
    /// else `text` on stderr; `json` is one JSON object per line on stderr.
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Auto)]
    log_format: logging::LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gate (the daemon): answer every IMDS request on this machine
    /// as the policy decides, and audit each decision.
    ///
    /// Under systemd (gatehouse.service) it starts as root, runs the request
    /// path as `--user gatehouse` with no capabilities, and keeps the
    /// nftables table in place. SIGHUP re-reads the policy (an invalid one is
    /// refused and the old one stays); SIGTERM stops.
    Run(Box<run::Args>),
    /// Run the IMDS emulator on its own, to test applications without a cloud.
    Emulate(emulate::Args),
    /// Check a policy file and report every error with file:line:column.
    ///
    /// Exit 0: the gate would load it; 1: warnings under `--strict`; 2:
    /// errors (every one is listed, with a hint).
    Check(check::Args),
    /// Explain how the policy decides one request, with the trail.
    Explain(explain::Args),
    /// Ask a running gate to re-read its policy (same as sending it SIGHUP).
    Reload(reload::Args),
    /// Work with the audit log (hash-chained JSON lines, one per decision).
    Audit {
        #[command(subcommand)]
        command: audit_cmd::Command,
    },
    /// Just-in-time access: request, approve, list and revoke time-bound
    /// role activations and inbound ports through a running gate.
    Jit(jit::Args),
    /// A running gate's health: policy, callers, firewall, upstream, cache,
    /// just-in-time grants, audit. Exit 0 healthy, 1 degraded, 3 down.
    Status(status::Args),
    /// Read-only checks before or after install: kernel, cgroups, nftables,
    /// eBPF, the policy's owner and mode, and other agents guarding IMDS.
    Doctor(doctor::Args),
    /// The nftables table that sends every IMDS connection through the gate.
    Firewall {
        #[command(subcommand)]
        command: firewall::Command,
    },
}

fn main() -> ExitCode {
    // `gatehouse generate …` writes the man pages and completions of the
    // tree below; it is kept out of that tree so that no page or completion
    // offers it (clap_complete lists hidden commands for zsh and fish).
    if std::env::args_os().nth(1).is_some_and(|a| a == "generate") {
        logging::init(logging::LogFormat::Text);
        return generate::main(generate::Cli::parse_from(std::env::args_os().skip(1)));
    }
    let cli = Cli::parse();
    logging::init(cli.log_format);
    match cli.command {
        Command::Run(args) => run::main(*args),
        Command::Emulate(args) => emulate::main(args),
        Command::Check(args) => check::main(args),
        Command::Explain(args) => explain::main(args),
        Command::Reload(args) => reload::main(args),
        Command::Audit { command } => audit_cmd::main(command),
        Command::Firewall { command } => firewall::main(command),
        Command::Jit(args) => jit::main(args),
        Command::Status(args) => status::main(args),
        Command::Doctor(args) => doctor::main(args),
    }
}

/// Print a one-line error (and optional help) the way every subcommand does.
pub(crate) fn fail(message: &str, help: Option<&str>) -> ExitCode {
    eprintln!("gatehouse: error: {message}");
    if let Some(h) = help {
        eprintln!("  help: {h}");
    }
    ExitCode::from(2)
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(&format!("cannot start the async runtime: {e}"), None))
}

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
mod jit;
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
On a VM:\n  gatehouse run --upstream imds --policy /etc/gatehouse/policy.toml"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gate (the daemon).
    Run(run::Args),
    /// Run the IMDS emulator on its own, to test applications without a cloud.
    Emulate(emulate::Args),
    /// Check a policy file and report every error with file:line:column.
    Check(check::Args),
    /// Explain how the policy decides one request, with the trail.
    Explain(explain::Args),
    /// Ask a running gate to re-read its policy (same as sending it SIGHUP).
    Reload(reload::Args),
    /// Work with the audit log.
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
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Run(args) => run::main(args),
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

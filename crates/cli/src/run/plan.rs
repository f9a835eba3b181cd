//! `gatehouse run`'s flags settled once. Every decision start-up makes from
//! the flags alone is made here, without touching the system, so that it can
//! be tested as a table; the broker and the worker then start from the plan.
//! A new setting is one more field (and its line in [`Plan::new`]).

use super::{Args, CallerLookup, DEFAULT_MARK};
use crate::firewall::{Shape, Watching};
use gatehouse_gate::metrics_listener::MetricsAddr;
use gatehouse_gate::upstream::UpstreamKindError;
use gatehouse_gate::UpstreamKind;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Which process of the gate this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// One process does everything (as root, or as whoever started it).
    Alone,
    /// `--user NAME` started as root: the broker, which starts the worker.
    Broker { user: String },
    /// `--internal-worker`: the unprivileged half, started by the broker.
    Worker,
}

/// Where the audit log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuditLog {
    Path(PathBuf),
    /// `--upstream emulator` without `--audit`: a private directory under
    /// the temp dir, made at start.
    TryIt,
}

/// Just-in-time access as the flags set it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JitPlan {
    /// `--jit-db`; `None`: the try-it directory or the default.
    pub db: Option<PathBuf>,
    /// `--admin-socket`; naming it turns just-in-time access on.
    pub admin_socket: Option<PathBuf>,
    pub retention: Duration,
    pub knock_listen: Option<SocketAddr>,
    pub knock_host: Option<String>,
    pub allowed_signers: PathBuf,
}

/// Everything `gatehouse run` decided from its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// `--cloud`: whose metadata dialect the gate speaks.
    pub cloud: gatehouse_policy::Cloud,
    pub upstream: UpstreamKind,
    pub emulator_config: Option<PathBuf>,
    pub role: Role,
    pub policy: PathBuf,
    /// Who may own the policy file.
    pub trusted_uids: Vec<u32>,
    pub listen: SocketAddr,
    pub audit: AuditLog,
    pub audit_rotate_bytes: Option<u64>,
    /// The socket mark of upstream connections; `None`: unmarked.
    pub mark: Option<u32>,
    /// Whether the table is kept for this gate (by this process, or by the
    /// worker's broker).
    pub firewall: Watching,
    pub firewall_every: Duration,
    pub firewall_shape: Shape,
    pub cache_margin: Option<Duration>,
    pub upstream_limits: bool,
    pub upstream_timeout: Duration,
    pub max_connections_per_uid: usize,
    /// Serving threads (`--threads`).
    pub threads: u16,
    /// How callers are found (`--all-holders` settles it as `sock-diag`).
    pub lookup: CallerLookup,
    pub all_holders: bool,
    pub jit: JitPlan,
    pub metrics: Option<MetricsAddr>,
    /// The pid file (and the control socket beside it); never the worker's.
    pub pid_file: Option<PathBuf>,
    /// `--audit-key`; `None`: the try-it directory or the default.
    pub audit_key: Option<PathBuf>,
    /// Seconds between audit checkpoints; zero: only on stop.
    pub checkpoint_every: Duration,
    /// `--settings` (export sinks); `None`: the default file if it exists.
    pub settings: Option<PathBuf>,
    /// `--export NAME=URL`, applied over the settings file.
    pub export: Vec<String>,
}

impl Plan {
    /// The plan for these flags in a process of effective uid `me`.
    pub(crate) fn new(args: &Args, me: u32) -> Result<Plan, StartError> {
        let upstream =
            UpstreamKind::parse(args.upstream.as_deref().ok_or(StartError::NoUpstream)?)?;
        let role = match (&args.user, args.internal_worker) {
            (_, true) => Role::Worker,
            (Some(_), false) if me != 0 => return Err(StartError::UserNeedsRoot),
            (Some(user), false) => Role::Broker { user: user.clone() },
            (None, false) => Role::Alone,
        };
        let try_it = upstream == UpstreamKind::Emulator;
        // Deployment: only root may own the policy. Try-it: also whoever runs
        // it (not the worker's user: it was started by root).
        let trusted_uids = if try_it && me != 0 && role != Role::Worker {
            vec![0, me]
        } else {
            vec![0]
        };
        let mark = match (args.upstream_mark, args.no_upstream_mark, &upstream) {
            (_, true, _) => None,
            (Some(m), _, _) => Some(m),
            (None, _, UpstreamKind::Imds) => Some(DEFAULT_MARK),
            (None, _, _) => None,
        };
        let firewall = args.firewall.unwrap_or(if upstream == UpstreamKind::Imds {
            Watching::Watch
        } else {
            Watching::Off
        });
        if firewall == Watching::Watch && mark.is_none() {
            return Err(StartError::WatchWithoutMark);
        }
        let audit = match (&args.audit, &upstream) {
            (Some(p), _) => AuditLog::Path(p.clone()),
            (None, UpstreamKind::Emulator) => AuditLog::TryIt,
            (None, _) => AuditLog::Path(PathBuf::from("/var/log/gatehouse/audit.log")),
        };
        if args.all_holders && args.caller_lookup == CallerLookup::Ebpf {
            return Err(StartError::AllHoldersWithEbpf);
        }
        let lookup = if args.all_holders {
            CallerLookup::SockDiag
        } else {
            args.caller_lookup
        };
        let metrics = args.metrics_listen.as_deref().cloned();
        if let Some(MetricsAddr::Tcp(a)) = &metrics {
            let same = a.port() != 0 && *a == args.listen;
            if a.ip() == std::net::Ipv4Addr::new(169, 254, 169, 254) || same {
                return Err(StartError::MetricsOnImdsPath(*a));
            }
        }
        Ok(Plan {
            cloud: args.cloud,
            upstream,
            emulator_config: args.emulator_config.clone(),
            trusted_uids,
            policy: args.policy.clone(),
            listen: args.listen,
            audit,
            audit_rotate_bytes: (args.audit_rotate_bytes > 0).then_some(args.audit_rotate_bytes),
            mark,
            firewall,
            firewall_every: Duration::from_secs(args.firewall_every),
            firewall_shape: args.firewall_shape.clone(),
            cache_margin: (!args.no_cache).then(|| Duration::from_secs(args.cache_margin)),
            upstream_limits: !args.no_upstream_limits,
            upstream_timeout: args.upstream_timeout,
            max_connections_per_uid: args.max_connections_per_uid,
            threads: args.threads,
            lookup,
            all_holders: args.all_holders,
            jit: JitPlan {
                db: args.jit_db.clone(),
                admin_socket: args.admin_socket.clone(),
                retention: Duration::from_secs(
                    args.jit_retention_days.saturating_mul(86_400).max(86_400),
                ),
                knock_listen: args.knock_listen,
                knock_host: args.knock_host.clone(),
                allowed_signers: args.allowed_signers.clone(),
            },
            metrics,
            pid_file: match role {
                Role::Worker => None,
                _ => args.pid_file.clone(),
            },
            role,
            audit_key: args.audit_key.clone(),
            checkpoint_every: Duration::from_secs(args.checkpoint_every),
            settings: args.settings.clone(),
            export: args.export.clone(),
        })
    }

    pub(crate) fn try_it(&self) -> bool {
        self.upstream == UpstreamKind::Emulator
    }

    /// Whether this process runs the firewall watcher (the worker cannot
    /// run `nft`: its broker watches the table).
    pub(crate) fn watches_here(&self) -> Watching {
        match self.role {
            Role::Worker => Watching::Off,
            _ => self.firewall,
        }
    }

    /// The audit log the flags name; `None`: the try-it private directory.
    pub(crate) fn named_audit_path(&self) -> Option<&std::path::Path> {
        match &self.audit {
            AuditLog::Path(p) => Some(p),
            AuditLog::TryIt => None,
        }
    }
}

const NO_UPSTREAM_HELP: &str = "`--upstream imds` on a VM, `--upstream emulator` to try gatehouse \
with its built-in emulator, or `--upstream http://HOST:PORT`. gatehouse never picks one for you, \
so a machine meant to use IMDS can never end up serving emulator tokens, or the reverse.";

/// Why `gatehouse run` did not start: from the flags, or from a start-up
/// step. `main` prints the message and the hint.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StartError {
    #[error("no upstream named: say where tokens come from")]
    NoUpstream,
    #[error(transparent)]
    Upstream(#[from] UpstreamKindError),
    #[error("`--user` needs gatehouse to be started as root")]
    UserNeedsRoot,
    #[error("`--all-holders` and `--caller-lookup ebpf` contradict each other: the eBPF path names the process that connected, not every holder")]
    AllHoldersWithEbpf,
    #[error("`--firewall watch` needs the upstream mark: without it the table would block the gate's own IMDS connections")]
    WatchWithoutMark,
    #[error("`--metrics-listen {0}` is the IMDS path")]
    MetricsOnImdsPath(SocketAddr),
    /// The policy's own report (every error, with spans) is printed first.
    #[error("the policy `{}` was not loaded; the gate did not start", path.display())]
    Policy { path: PathBuf, report: String },
    /// A start-up step that failed: what it found, and what to do.
    #[error("{message}")]
    Step {
        message: String,
        hint: Option<String>,
    },
}

impl StartError {
    pub(crate) fn step(message: impl Into<String>, hint: Option<&str>) -> StartError {
        StartError::Step {
            message: message.into(),
            hint: hint.map(str::to_owned),
        }
    }

    /// What to do about it.
    pub(crate) fn hint(&self) -> Option<&str> {
        match self {
            StartError::NoUpstream | StartError::Upstream(_) => Some(NO_UPSTREAM_HELP),
            StartError::UserNeedsRoot => Some("drop `--user` to run unseparated as yourself"),
            StartError::AllHoldersWithEbpf => Some("drop one of them"),
            StartError::WatchWithoutMark => {
                Some("drop `--no-upstream-mark`, or pass `--firewall off`")
            }
            StartError::MetricsOnImdsPath(_) => {
                Some("metrics get a listener of their own, e.g. `127.0.0.1:9925`")
            }
            StartError::Policy { .. } => None,
            StartError::Step { hint, .. } => hint.as_deref(),
        }
    }

    /// Print it the way every subcommand prints an error; the exit code.
    pub(crate) fn print(&self) -> ExitCode {
        if let StartError::Policy { report, .. } = self {
            eprintln!("{report}");
        }
        crate::fail(&self.to_string(), self.hint())
    }
}

#[cfg(test)]
mod tests;

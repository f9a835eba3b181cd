//! `gatehouse run`: the gate.

mod checkpoints;
pub(crate) mod export;
mod jit;
pub(crate) mod lifecycle;
mod observe;
mod plan;
mod privsep;

pub(crate) use plan::StartError;
use plan::{Plan, Role};

use gatehouse_gate::clock::SystemClock;
use gatehouse_gate::{Gate, GateConfig, UpstreamKind};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct Args {
    /// Where tokens come from: `imds` (the platform's 169.254.169.254),
    /// `emulator` (gatehouse's built-in emulator, for trying it out) or a base
    /// URL `http://HOST:PORT`. Required: gatehouse never picks one for you.
    #[arg(long, value_name = "imds|emulator|URL")]
    upstream: Option<String>,

    /// Which cloud's metadata service this is: `azure` (IMDS), `aws` (EC2
    /// IMDSv2) or `gcp` (Compute Engine's metadata server).
    /// Never guessed from the network.
    #[arg(long, default_value = "azure", value_name = "azure|aws|gcp")]
    cloud: gatehouse_policy::Cloud,

    /// The policy file.
    #[arg(long, default_value = "/etc/gatehouse/policy.toml")]
    policy: PathBuf,

    /// Address the gate listens on (loopback).
    #[arg(long, default_value = "127.0.0.1:16925")]
    listen: SocketAddr,

    /// The audit log. Default: /var/log/gatehouse/audit.log, or with
    /// `--upstream emulator` a private directory under the temp dir.
    #[arg(long)]
    audit: Option<PathBuf>,

    /// Rotate the audit log when it reaches this many bytes (0: never).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    audit_rotate_bytes: u64,

    /// The key that signs audit checkpoints (Ed25519; created at first
    /// start, mode 0600; a start is refused when group or others can read
    /// it or another user owns it). With `--user` the root broker holds it.
    /// Default: /var/lib/gatehouse-keys/audit.key, or with `--upstream
    /// emulator` the try-it private directory. `gatehouse audit key`
    /// prints its public half.
    #[arg(long, value_name = "PATH", env = "GATEHOUSE_AUDIT_KEY")]
    audit_key: Option<PathBuf>,

    /// Sign a checkpoint of the audit chain head this often (seconds), and
    /// always on stop; 0: only on stop. Checkpoints are audit records, so
    /// they leave the machine with the others (`audit verify --against`).
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    checkpoint_every: u64,

    /// Emulator config for `--upstream emulator` (default: the built-in demo VM).
    #[arg(long)]
    emulator_config: Option<PathBuf>,

    /// Write the gate's pid here, and answer `gatehouse reload` on a control
    /// socket beside it (the same name ending in `.sock`, mode 0600). A stale
    /// pid file is replaced; one naming a running gatehouse refuses the start.
    #[arg(long)]
    pid_file: Option<PathBuf>,

    /// Mark the gate's upstream connections with this socket mark (the
    /// nftables rules let only marked packets reach IMDS). Needs
    /// CAP_NET_ADMIN. Default with `--upstream imds`: 0x6761 ("ga").
    #[arg(long, value_parser = parse_mark)]
    upstream_mark: Option<u32>,

    /// Do not mark upstream connections (testing without the firewall).
    #[arg(long, conflicts_with = "upstream_mark")]
    no_upstream_mark: bool,

    /// Serve a cached token while more than this many seconds of its
    /// validity are left (refreshed in the background before that).
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    cache_margin: u64,

    /// Never serve tokens from the cache (every request asks IMDS).
    #[arg(long)]
    no_cache: bool,

    /// Do not hold upstream requests to IMDS's rate limits (identity: 20/s
    /// and 5 at a time; other endpoints 5/s). Only for testing.
    #[arg(long)]
    no_upstream_limits: bool,

    /// Open connections one uid may hold at once; more are closed at accept.
    #[arg(long, default_value_t = gatehouse_gate::server::MAX_CONNECTIONS_PER_UID)]
    max_connections_per_uid: usize,

    /// Threads that serve requests (1 to 64), each accepting connections
    /// and answering them on its own. One serves tens of thousands of
    /// cached tokens a second, far above IMDS's own limits (20 token
    /// requests a second); more help only with many concurrent clients on
    /// a VM with cores to spare.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,

    /// A caller's whole time budget upstream, retries included (seconds,
    /// e.g. `1.5`; 0.2 to 60). When the metadata service refuses, drops or
    /// fails, the caller gets an IMDS-shaped 503/504 with `Retry-After`
    /// within this — keep it below the clients' own timeouts (azure-identity
    /// and msal wait about 2 s). Callers of one key share one upstream
    /// exchange; a failed key is remembered for 2 s (or IMDS's Retry-After).
    #[arg(long, visible_alias = "upstream-budget", default_value = "1.5", value_name = "SECONDS", value_parser = parse_budget)]
    upstream_timeout: Duration,

    /// Keep gatehouse's nftables table as `gatehouse firewall apply` renders
    /// it for this gate: `watch` repairs any drift and audits each repair,
    /// and at start probes (as uid nobody, like `firewall verify`) that a
    /// connection to 169.254.169.254:80 reaches this gate, refusing to serve
    /// when it does not; `off` leaves the table alone and does not probe.
    /// Default: `watch` with `--upstream imds`.
    #[arg(long, value_enum, value_name = "watch|off")]
    firewall: Option<crate::firewall::Watching>,

    /// With `--firewall watch`: also check the table this often (seconds),
    /// as a backstop to nftables' change events.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    firewall_every: u64,

    #[command(flatten)]
    firewall_shape: crate::firewall::Shape,

    /// Started as root: run everything that parses requests as this system
    /// user with no capabilities, and keep only CAP_NET_ADMIN, CAP_SYS_PTRACE
    /// and CAP_DAC_READ_SEARCH in a small root process (the broker) that
    /// identifies callers and opens marked upstream connections for it. The
    /// audit log's directory must belong to this user.
    #[arg(long, value_name = "USER")]
    user: Option<String>,

    /// Just-in-time access: the database of requests and grants (SQLite,
    /// created with mode 0600). Default: /var/lib/gatehouse/jit.db, or with
    /// `--upstream emulator` the try-it private directory.
    #[arg(long, value_name = "PATH")]
    jit_db: Option<PathBuf>,

    /// The admin socket `gatehouse jit` talks to (callers are identified by
    /// the kernel, SO_PEERCRED). Default: /run/gatehouse/admin.sock, or with
    /// `--upstream emulator` the try-it private directory. Just-in-time
    /// access starts when the policy has eligible assignments or
    /// `[[jit_port]]`s, or when this is named.
    #[arg(long, value_name = "PATH")]
    admin_socket: Option<PathBuf>,

    /// Keep finished just-in-time requests (denied, revoked, expired,
    /// lapsed) in the database this many days; the audit log keeps them
    /// for good.
    #[arg(long, default_value_t = 90, value_name = "DAYS")]
    jit_retention_days: u64,

    /// Listen for signed port requests (`gatehouse jit knock`) on this UDP
    /// address, e.g. `0.0.0.0:62201`. Off unless named.
    #[arg(long, value_name = "ADDR")]
    knock_listen: Option<SocketAddr>,

    /// With `--knock-listen`: refuse signed requests that do not name this
    /// host (the HOST given to `gatehouse jit knock`), so a packet signed
    /// for another machine that trusts the same key is refused here.
    #[arg(long, value_name = "NAME")]
    knock_host: Option<String>,

    /// Keys allowed to sign port requests, in OpenSSH's allowed-signers
    /// format (`man ssh-keygen`); the principal names `signer:NAME` in
    /// `[[jit_port]] requesters`.
    #[arg(
        long,
        default_value = "/etc/gatehouse/allowed_signers",
        value_name = "PATH"
    )]
    allowed_signers: PathBuf,

    /// How callers are found when the policy needs more than the uid.
    /// `sock-diag`: the kernel's socket table gives the socket's uid and
    /// inode, and /proc is searched for the processes holding it (the found
    /// holder's parent chain and descendants; every process with
    /// `--all-holders`). `ebpf`: programs on the cgroup v2 root record which
    /// process connects to IMDS or the gate, at connect() time, and note every
    /// fork and exec; when the connector has done neither since and still holds
    /// the socket, the gate reads just its /proc entry, else it searches as
    /// `sock-diag` does (a connector that passed the socket over SCM_RIGHTS and
    /// closed its copy is not the caller; one that kept its copy is taken)
    /// (needs a build with `--features ebpf`, root with CAP_BPF and
    /// CAP_PERFMON, and the gate in the initial pid namespace). `auto`: `ebpf`
    /// if it can be attached, else `sock-diag`; the banner says which.
    #[arg(
        long,
        value_enum,
        default_value = "auto",
        value_name = "auto|ebpf|sock-diag"
    )]
    caller_lookup: CallerLookup,

    /// Look for every process holding the caller's socket, on every request
    /// and in all of /proc, even when the policy decides on uids alone: a
    /// socket held by a process of another uid than its creator's (handed on
    /// by fork or passed over SCM_RIGHTS) is then always denied. Without it, a
    /// token decision on uids alone takes the socket's uid (a socket handed on
    /// counts as its creator's), and other decisions search only the found
    /// holder's parent chain and descendants. Costs a scan of every process's
    /// fds per request (tens of ms at thousands of processes); implies
    /// `--caller-lookup sock-diag`.
    #[arg(long)]
    all_holders: bool,

    /// Serve Prometheus metrics (OpenMetrics text at `/metrics`) on this
    /// address of their own, `HOST:PORT` or `unix:/path`: never on the IMDS
    /// listener. Off unless named. With `--user` the unprivileged worker
    /// binds it (docs/metrics.md).
    #[arg(long, value_name = "ADDR|unix:PATH", value_parser = observe::parse_addr)]
    metrics_listen: Option<Box<gatehouse_gate::metrics_listener::MetricsAddr>>,

    /// Daemon settings (TOML, docs/audit.md "Export"): where the audit log
    /// is exported. Default: /etc/gatehouse/gatehouse.toml if it exists.
    #[arg(long, value_name = "PATH")]
    settings: Option<PathBuf>,

    /// Export the audit log to this sink too, `NAME=URL` (repeatable; e.g.
    /// `siem=syslog+tls://siem.example:6514`); replaces the URL of the
    /// settings file's sink of that name.
    #[arg(long = "export", value_name = "NAME=URL")]
    export: Vec<String>,

    /// Internal: this process is the unprivileged worker of `--user`; its
    /// stdin is the broker's socket.
    #[arg(long, hide = true, conflicts_with = "user")]
    internal_worker: bool,
}

/// `--caller-lookup`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CallerLookup {
    Auto,
    Ebpf,
    #[value(name = "sock-diag")]
    SockDiag,
}

/// Identification options for a gate listening on `listen`: the eBPF path's connect
/// records attached when `--caller-lookup` asks for them (and, for `auto`, when they
/// can be). Prints which path identifies callers. Needs root for the eBPF path.
pub(crate) fn identify_options(
    plan: &Plan,
    listen: SocketAddr,
) -> Result<gatehouse_sys::IdentifyOptions, StartError> {
    let mut opts = gatehouse_sys::IdentifyOptions {
        // Only a scan of every process finds a socket passed to an unrelated one.
        exhaustive_holders: plan.all_holders,
        ..gatehouse_sys::IdentifyOptions::default()
    };
    let lookup = plan.lookup;
    if lookup == CallerLookup::SockDiag {
        eprintln!("gatehouse: callers: sock_diag and /proc");
        return Ok(opts);
    }
    let targets = [SocketAddr::from(([169, 254, 169, 254], 80)), listen];
    match gatehouse_sys::ConnectRecords::attach(&targets) {
        Ok(records) => {
            eprintln!(
                "gatehouse: callers: eBPF connect records (programs on {}; IPv4), the holder search when a record cannot be taken (and for IPv6 callers)",
                records.cgroup_root()
            );
            opts.connect_records = Some(Arc::new(records));
            Ok(opts)
        }
        Err(e) if lookup == CallerLookup::Auto => {
            if gatehouse_sys::EBPF_BUILT {
                eprintln!(
                    "gatehouse: callers: sock_diag and /proc (the eBPF path is unavailable: {e})"
                );
            } else {
                eprintln!("gatehouse: callers: sock_diag and /proc");
            }
            Ok(opts)
        }
        Err(e) => Err(StartError::step(
            format!("`--caller-lookup ebpf`: {e}"),
            Some(if gatehouse_sys::EBPF_BUILT {
                "run as root in the initial pid namespace, or use `--caller-lookup sock-diag`"
            } else {
                "build with `cargo build --release --features ebpf` (needs clang), or use `--caller-lookup sock-diag`"
            }),
        )),
    }
}

/// What the start-up probe checks: (where it connects, the gate's listener
/// it must reach) — 169.254.169.254:80 at the IPv4 listener, and
/// [fd00:ec2::254]:80 at the IPv6 one when the gate has it.
pub(crate) fn probe_targets(
    listen: SocketAddr,
    listen6: Option<SocketAddr>,
) -> Vec<(SocketAddr, SocketAddr)> {
    use crate::firewall::probe::{IMDS6_TARGET, IMDS_TARGET};
    let mut out = vec![(IMDS_TARGET, listen)];
    out.extend(listen6.map(|l| (IMDS6_TARGET, l)));
    out
}

/// The gate's IPv6 listener, [::1] on the IPv4 listener's port, where the
/// table sends IMDS's IPv6 address (`--ipv6`; `None` when it refuses it).
/// A table that sends it to a port no gate holds would let any user bind
/// that port and answer everyone's IPv6 requests: failing to listen stops
/// the start, saying whether IPv6 is off here.
pub(crate) fn listen6(
    listen: SocketAddr,
    shape: &crate::firewall::Shape,
) -> Result<Option<std::net::TcpListener>, StartError> {
    if shape.ipv6.resolve() != gatehouse_firewall::Ipv6::Intercept {
        return Ok(None);
    }
    let addr = SocketAddr::new(gatehouse_firewall::ruleset::GATE6.into(), listen.port());
    std::net::TcpListener::bind(addr).map(Some).map_err(|e| {
        let off = if crate::firewall::ipv6_enabled() {
            ""
        } else {
            " — IPv6 is not enabled on the loopback interface here"
        };
        StartError::step(
            format!("cannot listen on {addr} for IMDS's IPv6 address (fd00:ec2::254): {e}{off}"),
            Some("pass `--ipv6 refuse` (to `gatehouse run` and `gatehouse firewall apply|verify`) and the table refuses fd00:ec2::254 instead of sending it to the gate, or enable IPv6 (`sysctl net.ipv6.conf.lo.disable_ipv6=0`)"),
        )
    })
}

/// `Ok` when every start-up probe reached the gate; otherwise the error
/// that stops the start, naming what the probe found and what `doctor`
/// finds in the way. Fail closed: a gate that serves while callers reach
/// IMDS past it (or cannot reach it at all) would report a protection
/// that is not there.
pub(crate) fn start_probe_holds(
    probes: &[crate::firewall::probe::StartProbe],
) -> Result<(), StartError> {
    let Some(failed) = probes.iter().find(|p| !p.holds()) else {
        for p in probes {
            eprintln!("gatehouse: {}", p.message());
        }
        return Ok(());
    };
    let mut why = format!("not serving: {}", failed.message());
    let others = crate::doctor::other_agents();
    if !others.is_empty() {
        why.push_str("; in the way: ");
        why.push_str(&others.join("; "));
    }
    Err(StartError::step(
        why,
        Some("remove the other redirect or route (or stop its agent), then start again; `gatehouse firewall verify` repeats the probe"),
    ))
}

/// The socket mark the firewall exempts by default ("ga").
pub const DEFAULT_MARK: u32 = 0x6761;

/// A flag value clap hands over that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ValueError {
    #[error("`{0}` is not a non-zero mark (decimal or 0x-hex)")]
    Mark(String),
    #[error("`{0}` is not a budget between 0.2 and 60 seconds (e.g. `1.5`)")]
    Budget(String),
}

pub(crate) fn parse_mark(s: &str) -> Result<u32, ValueError> {
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    };
    match parsed {
        Ok(0) | Err(_) => Err(ValueError::Mark(s.to_owned())),
        Ok(m) => Ok(m),
    }
}

/// `--upstream-timeout`: seconds, fractions allowed, within sane bounds.
pub(crate) fn parse_budget(s: &str) -> Result<Duration, ValueError> {
    match s.trim().parse::<f64>() {
        Ok(secs) if (0.2..=60.0).contains(&secs) => Ok(Duration::from_secs_f64(secs)),
        _ => Err(ValueError::Budget(s.to_owned())),
    }
}

/// Settle the plan, then start the process it names.
pub fn main(args: Args) -> Result<ExitCode, StartError> {
    // The export settings, checked before anything starts (the broker too);
    // their report is printed with its places.
    if let Err(code) = export::effective(args.settings.as_deref(), &args.export) {
        return Ok(code);
    }
    let me = gatehouse_sys::effective_uid();
    let plan = Plan::new(&args, me)?;
    match &plan.role {
        Role::Worker => privsep::worker_main(plan),
        Role::Broker { user } => privsep::broker_main(&plan, user),
        Role::Alone => {
            if me == 0 {
                eprintln!(
                    "gatehouse: warning: running as root without `--user`: the process that parses \
                     requests holds every privilege (see `--user`)"
                );
            }
            runtime()?.block_on(run(plan, None))
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, StartError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError::step(format!("cannot start the async runtime: {e}"), None))
}

/// What the unprivileged worker got from the broker.
pub(crate) struct WorkerParts {
    pub client: Arc<gatehouse_gate::privsep::BrokerClient>,
    pub listener: std::net::TcpListener,
    /// The IPv6 listener (`--ipv6`), when the broker bound one.
    pub listener6: Option<std::net::TcpListener>,
    pub events: std::os::fd::OwnedFd,
    /// How often the request loop tells the broker it is alive.
    pub heartbeat: Duration,
}

/// Where the checkpoint key lives unless `--audit-key` says otherwise.
pub(crate) const DEFAULT_AUDIT_KEY: &str = checkpoints::DEFAULT_KEY;

/// Start the gate from `plan` (this process alone, or the worker of a
/// broker) and serve until asked to stop.
async fn run(plan: Plan, worker: Option<WorkerParts>) -> Result<ExitCode, StartError> {
    let me = gatehouse_sys::effective_uid();
    let mut emulator = None;
    let (base, demo) = match &plan.upstream {
        UpstreamKind::Imds => (gatehouse_gate::upstream::IMDS_BASE.to_owned(), false),
        UpstreamKind::Url(u) => (u.clone(), false),
        UpstreamKind::Emulator => {
            let (config, demo) = match &plan.emulator_config {
                Some(path) => (load_emulator_config(path)?, false),
                None => (gatehouse_emulator::EmulatorConfig::demo(), true),
            };
            let options = gatehouse_emulator::Options {
                dialect: crate::emulate::dialect_of(plan.cloud),
                ..gatehouse_emulator::Options::default()
            };
            let e = gatehouse_emulator::start(config, options)
                .await
                .map_err(|e| StartError::step(format!("cannot start the emulator: {e}"), None))?;
            let base = format!("http://{}", e.addr());
            emulator = Some(e);
            (base, demo)
        }
    };

    let audit_path = match plan.named_audit_path() {
        Some(p) => p.to_path_buf(),
        None => demo_dir(me)?.join("audit.log"),
    };
    let signer = checkpoints::signer(&plan, me, worker.as_ref().map(|w| Arc::clone(&w.client)))?;
    // With `--user` the broker identifies callers (and attached the eBPF path, if any).
    let identify = match &worker {
        Some(_) => gatehouse_sys::IdentifyOptions::default(),
        None => identify_options(&plan, plan.listen)?,
    };
    let records = identify.connect_records.clone();
    let callers = lifecycle::callers_label(records.is_some(), plan.all_holders);
    // Stop on SIGTERM/SIGINT, or when the broker says so (with --user).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel::<Option<String>>(None);
    let signals = lifecycle::listen_signals()?;
    let config = GateConfig {
        policy_path: plan.policy.clone(),
        trusted_uids: plan.trusted_uids.clone(),
        audit_path: audit_path.clone(),
        audit_options: gatehouse_audit::Options {
            rotate_bytes: plan.audit_rotate_bytes,
            ..gatehouse_audit::Options::default()
        },
        upstream_base: base,
        upstream_label: plan.upstream.label(),
        upstream_timeout: plan.upstream_timeout,
        upstream_mark: plan.mark,
        cache_margin: plan.cache_margin,
        upstream_limits: plan
            .upstream_limits
            .then(gatehouse_gate::limiter::Limits::default),
        max_connections_per_uid: plan.max_connections_per_uid,
        identify,
        all_holders: plan.all_holders,
        cloud: plan.cloud,
    };
    let started = match &worker {
        Some(w) => Gate::with_caller_source(&config, Arc::new(SystemClock), w.client.clone()),
        None => Gate::new(&config, Arc::new(SystemClock)),
    };
    let gate = match started {
        Ok(g) => Arc::new(g),
        Err(gatehouse_gate::StartError::Policy(e)) => {
            return Err(StartError::Policy {
                path: plan.policy.clone(),
                report: e.to_string(),
            })
        }
        Err(e) => return Err(StartError::step(e.to_string(), None)),
    };
    let broker_ports: Option<Arc<dyn gatehouse_gate::jit::ports::PortControl>> = match &worker {
        Some(w) if plan.firewall == crate::firewall::Watching::Watch => {
            Some(w.client.clone() as Arc<dyn gatehouse_gate::jit::ports::PortControl>)
        }
        _ => None,
    };
    let mut broker_link = None;
    let mut heartbeat = lifecycle::heartbeat_period();
    let mut worker = worker;
    // With `--user` the broker bound the IPv6 listener too.
    let passed6 = worker.as_mut().map(|w| w.listener6.take());
    let bound = match worker {
        Some(w) => {
            heartbeat = w.heartbeat;
            broker_link = Some(privsep::follow_broker(
                w.events,
                Arc::clone(&gate),
                stop_tx.clone(),
            ));
            w.listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(w.listener))
        }
        None => tokio::net::TcpListener::bind(plan.listen).await,
    };
    let listener = bound.map_err(|e| {
        StartError::step(
            format!("cannot listen on {}: {e}", plan.listen),
            Some("pick another address with `--listen`"),
        )
    })?;
    let listen = listener.local_addr().unwrap_or(plan.listen);
    let listener6 = match passed6 {
        Some(passed) => passed,
        None => listen6(listen, &plan.firewall_shape)?,
    };
    let listener6 = match listener6 {
        None => None,
        Some(l) => Some(
            l.set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(l))
                .map_err(|e| StartError::step(format!("cannot serve on IPv6: {e}"), None))?,
        ),
    };
    let listen6 = listener6.as_ref().and_then(|l| l.local_addr().ok());
    if let Some(r) = &records {
        // `--listen` with port 0: record connections to the port actually bound.
        r.add_target(listen).map_err(|e| {
            StartError::step(
                format!("cannot record connections to {listen}: {e}"),
                Some("use `--caller-lookup sock-diag`"),
            )
        })?;
    }
    let pid_file = plan.pid_file.as_ref();
    let mut control = None;
    if let Some(pid_file) = pid_file {
        lifecycle::claim_pid_file(pid_file)?;
        match lifecycle::bind_control(pid_file) {
            Ok(c) => control = Some(c),
            Err(e) => {
                lifecycle::release_pid_file(pid_file);
                return Err(e);
            }
        }
    }
    let watching = plan.watches_here();
    let jit_ports = crate::firewall::jit_ports(&gate.policy());
    let keeper = match (&jit_ports, watching) {
        (Some(j), crate::firewall::Watching::Watch) => {
            Some(Arc::new(gatehouse_gate::jit::ports::PortKeeper::new(
                gatehouse_firewall::Nft::system(),
                j.ports.clone(),
            )))
        }
        _ => None,
    };
    let firewall = crate::firewall::watch_for_gate(
        watching,
        listen,
        plan.mark,
        &plan.firewall_shape,
        plan.firewall_every,
        &gate,
        jit_ports.clone().zip(keeper.clone()),
    )?;
    if firewall.as_ref().is_some_and(|w| !w.verified_at_start()) {
        return Err(StartError::step(
            privsep::TABLE_UNREPAIRED,
            Some("check `gatehouse firewall verify`, or pass `--firewall off`"),
        ));
    }
    if firewall.is_some() {
        // The table is as rendered; is the gate really in the path? (With
        // `--user` the broker probed before this worker started.)
        let targets = probe_targets(listen, listen6);
        let probes = tokio::task::spawn_blocking(move || {
            crate::firewall::probe::start_probe(&targets, "start")
        })
        .await
        .map_err(|e| StartError::step(format!("the start-up probe failed: {e}"), None))?;
        for p in &probes {
            if let Err(e) = gate.record_event_public(&p.audit_record()) {
                tracing::error!(error = %e, "cannot audit the start-up probe");
            }
        }
        start_probe_holds(&probes)?;
    }
    let ports = match (keeper, broker_ports) {
        (Some(k), _) => Some(k as Arc<dyn gatehouse_gate::jit::ports::PortControl>),
        (None, Some(b)) if jit_ports.is_some() => Some(b),
        _ => None,
    };
    let state_dir = if plan.try_it()
        && (plan.jit.db.is_none() || plan.jit.admin_socket.is_none())
        && jit::wanted(&gate.policy(), &plan.jit)
    {
        Some(demo_dir(me)?)
    } else {
        None
    };
    let jit_service = jit::start(&plan, state_dir.as_deref(), &gate, ports).await?;
    // With `--user` the broker keeps the table for this worker.
    let kept = plan.firewall == crate::firewall::Watching::Watch;
    let _metrics = observe::start(&plan, &gate, records.is_some(), kept).await?;
    let exporter = export::start(&plan, &gate, &audit_path, me).await?;
    print_banner(
        plan.cloud,
        &plan.upstream,
        demo,
        listen,
        &plan.policy,
        &audit_path,
        &gate.policy_hash(),
    );
    if let Some(l6) = listen6 {
        eprintln!("  ipv6:      IMDS's IPv6 address (fd00:ec2::254) is answered on http://{l6}");
    }
    if !plan.all_holders
        && gate.policy().needs_for(gatehouse_policy::Action::TokenRead)
            == gatehouse_policy::Needs::default()
    {
        eprintln!(
            "  callers:   the policy names uids and users only, so a token request is decided on its socket's uid \
             alone (a socket handed to another uid counts as its creator's; `--all-holders` refuses such sockets)"
        );
    }
    if plan.role == Role::Worker {
        eprintln!("  privileges: separated; requests are parsed as uid {me} with no capabilities");
    }

    let periodic = checkpoints::start_periodic(&plan, &gate, &signer);
    let (mut asks, stop_signals) = signals.split(control)?;
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            let why = stop_signals.await;
            stop_tx.send_replace(Some(why.to_owned()));
        });
    }
    let reloader = {
        let gate = Arc::clone(&gate);
        tokio::spawn(async move {
            while let Some(ask) = asks.recv().await {
                lifecycle::notify(&[gatehouse_sys::Notice::Reloading]);
                let outcome = lifecycle::reload_gate(&gate);
                lifecycle::notify_ready(&gate.policy_hash(), callers, gate.requests_served());
                ask.answer(&outcome);
            }
        })
    };
    // Ready: listening, the policy loaded, the firewall verified.
    let beat: Box<dyn FnMut() + Send> = match broker_link {
        Some(link) => {
            let ready = gatehouse_gate::privsep::wire::ToBroker::Ready {
                policy: gate.policy_hash(),
                served: gate.requests_served(),
            };
            if let Err(e) = gatehouse_gate::privsep::send_to_broker(&*link, &ready) {
                tracing::error!(error = %e, "cannot tell the broker the worker is ready");
            }
            let gate = Arc::clone(&gate);
            Box::new(move || {
                let alive = gatehouse_gate::privsep::wire::ToBroker::Alive {
                    policy: gate.policy_hash(),
                    served: gate.requests_served(),
                };
                if let Err(e) = gatehouse_gate::privsep::send_to_broker(&*link, &alive) {
                    tracing::error!(error = %e, "cannot send the broker the heartbeat");
                }
            })
        }
        None => {
            lifecycle::notify_ready(&gate.policy_hash(), callers, gate.requests_served());
            let gate = Arc::clone(&gate);
            Box::new(move || {
                lifecycle::notify_alive(&gate.policy_hash(), callers, gate.requests_served());
            })
        }
    };
    let heartbeat = gatehouse_gate::server::Heartbeat {
        every: heartbeat,
        beat,
    };
    let mut stopping = stop_rx.clone();
    let shutdown = async move {
        // An error means every sender is gone: nothing can ask any more; stop.
        let _ = stopping.wait_for(Option::is_some).await;
        lifecycle::notify(&[gatehouse_sys::Notice::Stopping]);
    };
    gatehouse_gate::server::serve_threads(
        Arc::clone(&gate),
        listener,
        listener6,
        shutdown,
        Some(heartbeat),
        usize::from(plan.threads),
    )
    .await;
    reloader.abort();
    let reason = stop_rx
        .borrow()
        .clone()
        .unwrap_or_else(|| "stopped".to_owned());
    drop(firewall);
    drop(jit_service);
    if let Some(p) = periodic {
        p.abort();
    }
    lifecycle::audit_stopped(&gate, &reason);
    checkpoints::on_stop(&gate, &*signer);
    if let Some(e) = exporter {
        e.finish(export::FINISH_LIMIT).await;
    }
    if let Some(e) = emulator {
        e.shutdown();
    }
    if let Some(pid_file) = pid_file {
        lifecycle::release_pid_file(pid_file);
    }
    Ok(ExitCode::SUCCESS)
}

fn load_emulator_config(path: &Path) -> Result<gatehouse_emulator::EmulatorConfig, StartError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| StartError::step(format!("cannot read `{}`: {e}", path.display()), None))?;
    gatehouse_emulator::EmulatorConfig::from_toml(&text)
        .map_err(|e| StartError::step(format!("`{}`: {e}", path.display()), None))
}

/// A private directory for the try-it audit log.
fn demo_dir(uid: u32) -> Result<PathBuf, StartError> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let dir = std::env::temp_dir().join(format!("gatehouse-demo-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(StartError::step(
                format!("cannot create `{}`: {e}", dir.display()),
                None,
            ))
        }
    }
    let meta = std::fs::symlink_metadata(&dir)
        .map_err(|e| StartError::step(format!("cannot stat `{}`: {e}", dir.display()), None))?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        return Err(StartError::step(
            format!("`{}` is not a private directory of yours", dir.display()),
            Some("remove it, or name an audit log with `--audit`"),
        ));
    }
    Ok(dir)
}

fn print_banner(
    cloud: gatehouse_policy::Cloud,
    kind: &UpstreamKind,
    demo: bool,
    listen: SocketAddr,
    policy: &Path,
    audit: &Path,
    hash: &str,
) {
    let upstream = match kind {
        UpstreamKind::Emulator => "its built-in IMDS emulator".to_owned(),
        UpstreamKind::Imds => "IMDS at 169.254.169.254".to_owned(),
        UpstreamKind::Url(u) => u.clone(),
    };
    eprintln!("gatehouse is listening on http://{listen} in front of {upstream} ({cloud})");
    eprintln!(
        "  policy:    {} (sha256 {})",
        policy.display(),
        hash.get(..16).unwrap_or("")
    );
    eprintln!("  audit log: {}", audit.display());
    if demo && cloud == gatehouse_policy::Cloud::Aws {
        let base = format!("http://{listen}/latest");
        eprintln!();
        eprintln!("Try it (the example policy lets /usr/bin/curl have the role's credentials, and nobody the user data):");
        eprintln!("  session: TOKEN=$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' {base}/api/token)");
        eprintln!("  allowed: curl -s -H \"X-aws-ec2-metadata-token: $TOKEN\" {base}/meta-data/iam/security-credentials/gatehouse-demo-role");
        eprintln!("  denied:  curl -s -H \"X-aws-ec2-metadata-token: $TOKEN\" {base}/user-data");
        eprintln!("  audit:   gatehouse audit verify {}", audit.display());
    } else if demo && cloud == gatehouse_policy::Cloud::Gcp {
        let base = format!("http://{listen}/computeMetadata/v1/instance/service-accounts/default");
        eprintln!();
        eprintln!("Try it (the example policy lets /usr/bin/curl have the account's tokens for Google API scopes and ID tokens for https://api.example.com):");
        eprintln!("  allowed: curl -s -H 'Metadata-Flavor: Google' '{base}/token?scopes=https://www.googleapis.com/auth/cloud-platform'");
        eprintln!("  denied:  curl -s -H 'Metadata-Flavor: Google' '{base}/identity?audience=https://other.example'");
        eprintln!("  audit:   gatehouse audit verify {}", audit.display());
    } else if demo && cloud == gatehouse_policy::Cloud::Azure {
        let base = format!("http://{listen}/metadata/identity/oauth2/token?api-version=2018-02-01");
        eprintln!();
        eprintln!("Try it (the example policy lets /usr/bin/curl have a storage token as `storage-writer`, and nobody the vault identity):");
        eprintln!("  allowed: curl -s -H 'Metadata: true' '{base}&resource=https://storage.azure.com&client_id=2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809'");
        eprintln!("  denied:  curl -s -H 'Metadata: true' '{base}&resource=https://vault.azure.net&client_id=4b8d9eaf-b0c1-42d3-a4f5-a6b7c8d9e0fb'");
        eprintln!("  audit:   gatehouse audit verify {}", audit.display());
    }
}

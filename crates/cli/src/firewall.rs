//! `gatehouse firewall`: the nftables table that makes the kernel send every
//! IMDS connection on the machine through the gate.

use gatehouse_firewall::{Containers, JitPorts, Nft, Options, Ruleset};
use std::net::{SocketAddr, SocketAddrV4};
use std::process::ExitCode;

pub(crate) mod probe;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print the batch `apply` sends to `nft -f -` (one transaction).
    Print(Args),
    /// Replace gatehouse's table (`inet gatehouse`) in one transaction; idempotent.
    Apply(Args),
    /// Compare the kernel's table with what `print` renders, then check
    /// with a probe connection from an unprivileged uid (nobody) to
    /// 169.254.169.254:80 (and, when the table intercepts IPv6, to
    /// [fd00:ec2::254]:80) that it reaches the gate's listener; exit 1 and
    /// say what differs or where the probe went instead. Also warns about
    /// anything that redirects metadata traffic before nftables sees it.
    Verify(VerifyArgs),
    /// The probe's own connection (run by `verify` as nobody).
    #[command(hide = true)]
    ProbeConnect { addr: SocketAddr },
    /// Delete gatehouse's table and nothing else.
    Remove,
}

#[derive(clap::Args)]
pub struct Args {
    /// The gate's listen address (as `gatehouse run --listen`).
    #[arg(long, default_value = "127.0.0.1:16925")]
    listen: SocketAddr,

    /// The gate's upstream socket mark, which alone may reach IMDS
    /// (as `gatehouse run --upstream-mark`). Default: 0x6761.
    #[arg(long, value_parser = crate::run::parse_mark)]
    mark: Option<u32>,

    #[command(flatten)]
    shape: Shape,

    /// Take the just-in-time ports and break-glass ranges from this policy
    /// (as the gate's watcher does with `gatehouse run --policy`).
    #[arg(long)]
    policy: Option<std::path::PathBuf>,

    /// `apply` even if it would keep the SSH session it runs in from
    /// connecting again (its client is not in `[jit] break_glass`).
    #[arg(long)]
    allow_lockout: bool,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    table: Args,

    /// Compare the table only: no probe connection (e.g. before the gate
    /// starts, when nothing listens yet and the probe is refused).
    #[arg(long)]
    no_probe: bool,
}

/// The choices that shape the table beyond the listener and the mark
/// (shared with `gatehouse run`, whose watcher keeps the same table).
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Leave out the rule that lets only root and the gate reach the
    /// WireServer (168.63.129.16).
    #[arg(long)]
    pub no_wireserver: bool,

    /// IMDS traffic from containers and other network namespaces: refuse it
    /// (`drop`), or send it to the gate (`redirect`; with a loopback listener
    /// this needs `sysctl net.ipv4.conf.<bridge>.route_localnet=1`), which
    /// denies callers it cannot attribute.
    #[arg(long, value_enum, default_value_t = ContainerMode::Drop)]
    pub containers: ContainerMode,

    /// IMDS's IPv6 address (fd00:ec2::254): `intercept` sends local
    /// connections to it to the gate's IPv6 listener ([::1] on the
    /// `--listen` port), as 169.254.169.254 is sent to the IPv4 one;
    /// `refuse` refuses them to all but the gate's own sockets (for a
    /// machine without IPv6); `auto` intercepts when IPv6 is enabled on
    /// the loopback interface here, else refuses.
    #[arg(long, value_enum, default_value_t = Ipv6Mode::Auto)]
    pub ipv6: Ipv6Mode,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerMode {
    Drop,
    Redirect,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv6Mode {
    Auto,
    Intercept,
    Refuse,
}

impl Ipv6Mode {
    /// What the table does with IMDS's IPv6 address in this network
    /// namespace.
    pub fn resolve(self) -> gatehouse_firewall::Ipv6 {
        use gatehouse_firewall::Ipv6;
        match self {
            Ipv6Mode::Intercept => Ipv6::Intercept,
            Ipv6Mode::Refuse => Ipv6::Refuse,
            Ipv6Mode::Auto if ipv6_enabled() => Ipv6::Intercept,
            Ipv6Mode::Auto => Ipv6::Refuse,
        }
    }
}

/// Whether IPv6 is enabled on this network namespace's loopback interface
/// (where the gate's IPv6 listener, [::1], lives). `/proc/sys/net` shows
/// the reader's namespace; the file is missing when the kernel has no IPv6.
pub fn ipv6_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv6/conf/lo/disable_ipv6")
        .is_ok_and(|v| v.trim() == "0")
}

/// The just-in-time part of the table, from the policy: its protected
/// ports and break-glass ranges (`None` when it protects no port).
pub fn jit_ports(policy: &gatehouse_policy::Policy) -> Option<JitPorts> {
    if policy.jit_ports().is_empty() {
        return None;
    }
    let ports = policy
        .jit_ports()
        .iter()
        .map(|p| (p.protocol, p.port))
        .collect();
    Some(JitPorts {
        ports,
        break_glass: policy.break_glass().to_vec(),
    })
}

/// Why no table can be rendered for these flags.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("the gate's listen address `{0}` is not IPv4; IMDS is reached over IPv4 only")]
    NotIpv4(SocketAddr),
    #[error(transparent)]
    Options(#[from] gatehouse_firewall::OptionsError),
}

/// The table for a gate listening on `listen` with upstream mark `mark`.
pub fn ruleset(
    listen: SocketAddr,
    mark: u32,
    shape: &Shape,
    jit: Option<JitPorts>,
) -> Result<Ruleset, TableError> {
    Ok(Ruleset::new(&options(listen, mark, shape, jit)?)?)
}

/// What the table is rendered from.
pub fn options(
    listen: SocketAddr,
    mark: u32,
    shape: &Shape,
    jit: Option<JitPorts>,
) -> Result<Options, TableError> {
    let SocketAddr::V4(listen) = listen else {
        return Err(TableError::NotIpv4(listen));
    };
    let options = Options {
        listen: SocketAddrV4::new(*listen.ip(), listen.port()),
        mark,
        wireserver: !shape.no_wireserver,
        containers: match shape.containers {
            ContainerMode::Drop => Containers::Drop,
            ContainerMode::Redirect => Containers::Redirect,
        },
        ipv6: shape.ipv6.resolve(),
        jit,
    };
    Ok(options)
}

pub fn main(command: Command) -> ExitCode {
    let nft = Nft::system();
    let args = match command {
        Command::Remove => {
            return match gatehouse_firewall::remove(&nft) {
                Ok(()) => {
                    println!("removed table `inet gatehouse` (nothing else was touched)");
                    ExitCode::SUCCESS
                }
                Err(e) => crate::fail(&e.to_string(), Some(NFT_HELP)),
            };
        }
        Command::Print(ref a) | Command::Apply(ref a) => a,
        Command::Verify(ref v) => &v.table,
        Command::ProbeConnect { addr } => return probe::child(addr),
    };
    let mark = args.mark.unwrap_or(crate::run::DEFAULT_MARK);
    let jit = match &args.policy {
        None => None,
        Some(path) => {
            let me = gatehouse_sys::effective_uid();
            match gatehouse_gate::policy_store::load_file(path, &[0, me]) {
                Ok(p) => jit_ports(&p),
                Err(e) => {
                    eprintln!("{e}");
                    return crate::fail(
                        &format!("the policy `{}` was not loaded", path.display()),
                        None,
                    );
                }
            }
        }
    };
    let options = match options(args.listen, mark, &args.shape, jit) {
        Ok(o) => o,
        Err(e) => return crate::fail(&e.to_string(), None),
    };
    let ruleset = match Ruleset::new(&options) {
        Ok(r) => r,
        Err(e) => return crate::fail(&e.to_string(), None),
    };
    match command {
        Command::Print(_) => {
            print!("{}", ruleset.batch());
            ExitCode::SUCCESS
        }
        Command::Apply(_) => apply(&nft, &ruleset, &options, args),
        Command::Verify(ref v) => {
            let table = verify(&nft, &ruleset);
            if table != ExitCode::SUCCESS || v.no_probe {
                return table;
            }
            let probes = probe::start_probe(&probe::targets(&options), "verify");
            let mut code = ExitCode::SUCCESS;
            for p in &probes {
                if p.holds() {
                    println!("{}", p.message());
                } else {
                    // Exit 1, as for a table that differs: not in the path.
                    eprintln!("gatehouse: {}", p.message());
                    code = ExitCode::from(1);
                }
            }
            if code != ExitCode::SUCCESS {
                eprintln!("hint: {PROBE_HELP}");
            }
            code
        }
        Command::Remove | Command::ProbeConnect { .. } => ExitCode::SUCCESS,
    }
}

const PROBE_HELP: &str = "`gatehouse doctor` names other agents that redirect or block metadata traffic; `--no-probe` compares the table only";

const NFT_HELP: &str = "gatehouse runs `nft` (apt-get install nftables) and needs CAP_NET_ADMIN";

fn apply(nft: &Nft, ruleset: &Ruleset, options: &Options, args: &Args) -> ExitCode {
    // Open ports (a running gate's grants) survive the apply: it recreates
    // the table, so they are put back with what is left of their time.
    let current = gatehouse_firewall::jit::list(nft).unwrap_or_default();
    if !args.allow_lockout {
        let ssh = std::env::var("SSH_CONNECTION").ok();
        if let Some(why) = gatehouse_firewall::would_lock_out(options, ssh.as_deref(), &current) {
            return crate::fail(
                &why,
                Some("or pass `--allow-lockout` if you have another way in"),
            );
        }
    }
    if let Err(e) = gatehouse_firewall::apply(nft, ruleset) {
        return crate::fail(&e.to_string(), Some(NFT_HELP));
    }
    if options.jit.is_some() && !current.is_empty() {
        if let Err(e) = gatehouse_firewall::jit::sync(nft, &current) {
            eprintln!("gatehouse: warning: {} open port(s) could not be put back: {e}; a running gate restores them within 30 s", current.len());
        }
    }
    match gatehouse_firewall::verify(nft, ruleset) {
        Ok(d) if d.is_empty() => {}
        Ok(d) => {
            print_differences(&d);
            return crate::fail("the table differs right after it was applied", None);
        }
        Err(e) => {
            return crate::fail(
                &format!("applied, but cannot read the table back: {e}"),
                Some(NFT_HELP),
            )
        }
    }
    println!(
        "applied table `inet gatehouse`: {} rules in {} chains; IMDS connections now go to {}",
        ruleset.rule_count(),
        ruleset.chains.len(),
        args.listen
    );
    if args.shape.containers == ContainerMode::Redirect && args.listen.ip().is_loopback() {
        println!(
            "note: containers reach the loopback listener only where `net.ipv4.conf.<bridge>.route_localnet=1`; \
             the table drops every other packet from outside to 127.0.0.0/8"
        );
    }
    ExitCode::SUCCESS
}

fn verify(nft: &Nft, ruleset: &Ruleset) -> ExitCode {
    let bypass = gatehouse_firewall::bypass::check();
    for w in &bypass.warnings {
        eprintln!("gatehouse: warning: {w}");
    }
    for n in &bypass.notes {
        eprintln!("gatehouse: note: {n}");
    }
    match gatehouse_firewall::verify(nft, ruleset) {
        Ok(d) if d.is_empty() => {
            println!(
                "ok: table `inet gatehouse` is as rendered ({} rules)",
                ruleset.rule_count()
            );
            ExitCode::SUCCESS
        }
        Ok(d) => {
            println!(
                "table `inet gatehouse` differs from what `gatehouse firewall print` renders:"
            );
            print_differences(&d);
            println!("`gatehouse firewall apply` (or a running gate's watcher) puts it back");
            ExitCode::from(1)
        }
        Err(e) => crate::fail(&e.to_string(), Some(NFT_HELP)),
    }
}

fn print_differences(differences: &[gatehouse_firewall::Difference]) {
    for d in differences {
        println!("  - {d}");
    }
}

/// `gatehouse run --firewall`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watching {
    Watch,
    Off,
}

/// A watcher event in the log; after a repair, the just-in-time grants put
/// back (a re-applied table has empty port sets). Recording the event is
/// the caller's: the gate audits it, the broker passes it to its worker.
pub(crate) fn after_watch_event(
    event: &gatehouse_firewall::WatchEvent,
    keeper: Option<&gatehouse_gate::jit::ports::PortKeeper>,
) {
    log_watch_event(event);
    if matches!(event, gatehouse_firewall::WatchEvent::Repaired { .. }) {
        if let Some(k) = keeper {
            if let Err(e) = k.resync() {
                tracing::error!(error = %e, "cannot restore the just-in-time port sets");
            }
        }
    }
}

/// A watcher event in the log.
pub(crate) fn log_watch_event(event: &gatehouse_firewall::WatchEvent) {
    match event {
        gatehouse_firewall::WatchEvent::Verified { trigger } => {
            tracing::info!(trigger = trigger.label(), "firewall table verified");
        }
        gatehouse_firewall::WatchEvent::Repaired {
            trigger,
            differences,
            ..
        } => {
            tracing::warn!(
                trigger = trigger.label(),
                differences = differences.len(),
                "firewall table repaired"
            );
        }
        other => tracing::error!(?other, "firewall watcher"),
    }
}

/// Start the watcher that keeps the table for this gate and audits every
/// repair through it. `Ok(None)` with `--firewall off`. The returned watcher
/// stops when dropped; the table itself stays (a stopped gate then leaves
/// IMDS refused, not open).
pub fn watch_for_gate(
    watching: Watching,
    listen: SocketAddr,
    mark: Option<u32>,
    shape: &Shape,
    every: std::time::Duration,
    gate: &std::sync::Arc<gatehouse_gate::Gate>,
    jit: Option<(
        JitPorts,
        std::sync::Arc<gatehouse_gate::jit::ports::PortKeeper>,
    )>,
) -> Result<Option<gatehouse_firewall::Watcher>, crate::run::StartError> {
    use crate::run::StartError;
    if watching == Watching::Off {
        return Ok(None);
    }
    let mark = mark.ok_or(StartError::WatchWithoutMark)?;
    let (jit, keeper) = jit.map_or((None, None), |(j, k)| (Some(j), Some(k)));
    let ruleset = ruleset(listen, mark, shape, jit)
        .map_err(|e| StartError::step(e.to_string(), Some("or pass `--firewall off`")))?;
    let gate = std::sync::Arc::clone(gate);
    let options = gatehouse_firewall::WatchOptions {
        every,
        monitor: true,
        checked_before: false,
    };
    let watcher = gatehouse_firewall::watch(Nft::system(), ruleset, options, move |event| {
        after_watch_event(event, keeper.as_deref());
        if let Err(e) = gate.record_event_public(&event.audit_record()) {
            tracing::error!(error = %e, "cannot audit a firewall event");
        }
    })
    .map_err(|e| StartError::step(format!("cannot watch the firewall: {e}"), Some(NFT_HELP)))?;
    Ok(Some(watcher))
}

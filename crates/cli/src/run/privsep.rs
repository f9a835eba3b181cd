//! `gatehouse run --user NAME`: the two processes (docs/architecture.md,
//! "Privilege separation"). The broker is the process root started; it
//! binds the listener, starts this binary again as the worker, drops every
//! capability but three, then answers the worker and watches the firewall.
//!
//! Signals reach the broker (systemd's main process, the pid file's pid),
//! which cannot signal the worker (another uid, and no CAP_KILL): it sends
//! the worker "reload" and "stop" on the event socket and relays what the
//! worker answers to `gatehouse reload` and to systemd (docs/architecture.md,
//! "Lifecycle").

use super::lifecycle::{self, ReloadAsk};
use super::plan::{Plan, StartError};
use super::WorkerParts;
use gatehouse_gate::lifecycle::ReloadOutcome;
use gatehouse_gate::privsep::wire::{ToBroker, ToWorker};
use gatehouse_gate::privsep::{self as ps, Broker, BrokerClient, ConnectTargets, Worker};
use gatehouse_gate::{Gate, UpstreamKind};
use gatehouse_sys::{Account, Notice};
use std::ffi::OsString;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Why a gate whose table is not as rendered does not serve.
pub(super) const TABLE_UNREPAIRED: &str =
    "the firewall table is not as rendered and could not be repaired (see the audit log); not serving";
/// The worker's exit code when its broker is gone.
const BROKER_GONE: u8 = 3;
/// How long the worker may take to answer a reload.
const RELOAD_ANSWER: Duration = Duration::from_secs(10);
/// How long the worker may take to stop before its sockets are closed
/// (which ends it at once); the whole stop stays within 2 s.
const STOP_GRACE: Duration = Duration::from_millis(1500);

/// In the root process, before any thread exists.
pub(super) fn broker_main(plan: &Plan, user: &str) -> Result<ExitCode, StartError> {
    let account = match gatehouse_sys::lookup_account(user) {
        Ok(Some(a)) if a.uid != 0 => a,
        Ok(Some(_)) => {
            return Err(StartError::step(
                format!("`--user {user}` is root: nothing would be separated"),
                None,
            ))
        }
        Ok(None) => {
            return Err(StartError::step(
                format!("no user `{user}`"),
                Some("create it (packaging/gatehouse.sysusers: `systemd-sysusers`), or name an existing system user"),
            ))
        }
        Err(e) => return Err(StartError::step(format!("cannot read /etc/passwd: {e}"), None)),
    };
    if let Some(path) = plan.named_audit_path() {
        check_audit_dir(path, user, account)?;
    }
    // The broker holds the checkpoint key: the worker parses untrusted
    // requests and must not be able to read it (docs/threats.md).
    let checkpoint_key = super::checkpoints::load_key(plan, 0)?;
    let mark = plan.mark;
    let (listen, every, shape) = (plan.listen, plan.firewall_every, &plan.firewall_shape);
    let mut keeper = None;
    let ruleset = match plan.firewall {
        crate::firewall::Watching::Off => None,
        crate::firewall::Watching::Watch => {
            let mark = mark.ok_or(StartError::WatchWithoutMark)?;
            let jit = match gatehouse_gate::policy_store::load_file(&plan.policy, &[0]) {
                Ok(p) => crate::firewall::jit_ports(&p),
                Err(e) => {
                    return Err(StartError::Policy {
                        path: plan.policy.clone(),
                        report: e.to_string(),
                    })
                }
            };
            keeper = jit.as_ref().map(|j| {
                Arc::new(gatehouse_gate::jit::ports::PortKeeper::new(
                    gatehouse_firewall::Nft::system(),
                    j.ports.clone(),
                ))
            });
            let ruleset = crate::firewall::ruleset(listen, mark, shape, jit)
                .map_err(|e| StartError::step(e.to_string(), Some("or pass `--firewall off`")))?;
            Some(ruleset)
        }
    };
    let targets = connect_targets(&plan.upstream)?;
    let listener = match std::net::TcpListener::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            return Err(StartError::step(
                format!("cannot listen on {listen}: {e}"),
                Some("pick another address with `--listen`"),
            ))
        }
    };
    let listen = listener.local_addr().unwrap_or(listen);
    let listener6 = super::listen6(listen, shape)?;
    let listen6 = listener6.as_ref().and_then(|l| l.local_addr().ok());
    // The broker identifies callers: it attaches the eBPF path, while it still may.
    let identify = super::identify_options(plan, listen)?;
    // Signals are ours from before the worker starts (whose banner tells the
    // world the gate is there): a runtime on this thread alone, so the
    // capability drop below still happens while it is the only thread.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return Err(StartError::step(
                format!("cannot start the async runtime: {e}"),
                None,
            ))
        }
    };
    let signals = {
        let _inside = rt.enter();
        lifecycle::listen_signals()?
    };
    // The table verified (or repaired) before the worker exists: its banner
    // says the gate is there, and a crash from then on must leave the table
    // in place. On this thread, before the capability drop: no thread is
    // started, only `nft`. The worker audits what this found once it runs.
    let start_events = std::cell::RefCell::new(Vec::new());
    let verified = ruleset.as_ref().is_none_or(|r| {
        gatehouse_firewall::ensure(&gatehouse_firewall::Nft::system(), r, |event| {
            crate::firewall::log_watch_event(event);
            start_events.borrow_mut().push(event.audit_record());
        })
    });
    // Then whether an unprivileged connection to IMDS really reaches this
    // listener (the probe runs as nobody, which needs CAP_SETUID: still
    // ours). Its connection waits in the listener's queue; the worker
    // accepts it later and finds it closed. The worker audits the result;
    // a probe that does not reach the gate stops the start (`Supervisor`).
    let mut probe_failure = None;
    if verified && ruleset.is_some() {
        let probes =
            crate::firewall::probe::start_probe(&super::probe_targets(listen, listen6), "start");
        start_events.borrow_mut().extend(
            probes
                .iter()
                .map(crate::firewall::probe::StartProbe::audit_record),
        );
        if let Err(e) = super::start_probe_holds(&probes) {
            probe_failure = Some(e);
        }
    }
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            return Err(StartError::step(
                format!("cannot find this program to start the worker: {e}"),
                None,
            ))
        }
    };
    let mut worker = match ps::spawn_worker(
        &program,
        &worker_args(std::env::args_os()),
        account,
        &listener,
        listener6.as_ref(),
        lifecycle::heartbeat_period(),
    ) {
        Ok(w) => w,
        Err(e) => {
            return Err(StartError::step(
                format!("cannot start the worker as `{user}`: {e}"),
                None,
            ))
        }
    };
    drop(listener);
    drop(listener6);
    let pid_file = plan.pid_file.clone();
    let mut control = None;
    if let Some(path) = &pid_file {
        if let Err(e) = lifecycle::claim_pid_file(path) {
            stop(&mut worker);
            return Err(e);
        }
        match lifecycle::bind_control(path) {
            Ok(c) => control = Some(c),
            Err(e) => {
                stop(&mut worker);
                lifecycle::release_pid_file(path);
                return Err(e);
            }
        }
    }
    // Now, while this is the only thread: threads started later copy these sets.
    if let Err(e) = gatehouse_sys::keep_only_capabilities(&gatehouse_sys::BROKER_CAPABILITIES) {
        stop(&mut worker);
        return Err(StartError::step(
            format!("cannot drop capabilities: {e}"),
            None,
        ));
    }
    // Reading the eBPF maps needs only their fds on recent kernels; on older ones
    // with unprivileged BPF off it needs CAP_BPF, which is gone now. Find out here,
    // not by every lookup failing quietly.
    let mut identify = identify;
    if let Some(records) = &identify.connect_records {
        if let Err(e) = records.probe() {
            if plan.lookup == super::CallerLookup::Ebpf {
                stop(&mut worker);
                return Err(StartError::step(
                    format!("`--caller-lookup ebpf`: after dropping capabilities: {e}"),
                    Some("use `--caller-lookup sock-diag` on this kernel"),
                ));
            }
            eprintln!("gatehouse: callers: sock_diag and /proc after all (the eBPF maps cannot be read without CAP_BPF here: {e})");
            identify.connect_records = None;
        }
    }
    let callers = lifecycle::callers_label(identify.connect_records.is_some(), plan.all_holders);
    let mut broker = Broker::new(listen, mark, targets)
        .with_listen6(listen6)
        .with_identify_options(identify)
        .with_checkpoint_key(checkpoint_key);
    if let Some(k) = &keeper {
        broker = broker.with_ports(Arc::clone(k));
    }
    let supervisor = Supervisor {
        ruleset,
        verified,
        probe_failure,
        start_events: start_events.into_inner(),
        every,
        keeper,
        control,
        callers,
        signals,
    };
    let code = rt.block_on(supervisor.run(worker, broker));
    if let Some(path) = &pid_file {
        lifecycle::release_pid_file(path);
    }
    rt.shutdown_timeout(Duration::from_millis(200));
    Ok(code)
}

/// The worker writes and rotates the audit log, so its directory must be
/// the worker user's.
fn check_audit_dir(path: &Path, user: &str, account: Account) -> Result<(), StartError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let owner = std::fs::metadata(dir).map(|m| m.uid());
    match owner {
        Ok(uid) if uid == account.uid => Ok(()),
        Ok(uid) => Err(StartError::step(
            format!("the audit directory `{}` belongs to uid {uid}, not to `{user}`", dir.display()),
            Some("the worker writes and rotates the log there: `chown` it to that user (packaging/gatehouse.tmpfiles does)"),
        )),
        Err(e) => Err(StartError::step(format!("cannot stat the audit directory `{}`: {e}", dir.display()), None)),
    }
}

/// Where the broker may open marked connections to.
fn connect_targets(kind: &UpstreamKind) -> Result<ConnectTargets, StartError> {
    use std::net::ToSocketAddrs;
    let base = match kind {
        UpstreamKind::Emulator => return Ok(ConnectTargets::Loopback),
        UpstreamKind::Imds => gatehouse_gate::upstream::IMDS_BASE.to_owned(),
        UpstreamKind::Url(u) => u.clone(),
    };
    let authority = base.trim_start_matches("http://");
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    with_port
        .to_socket_addrs()
        .map(|a| ConnectTargets::Only(a.collect()))
        .map_err(|e| StartError::step(format!("cannot resolve the upstream `{base}`: {e}"), None))
}

/// This program's arguments, without `--user`, plus the worker flag.
fn worker_args(argv: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for arg in argv.skip(1) {
        if skip_value {
            skip_value = false;
            continue;
        }
        if arg == "--user" {
            skip_value = true;
            continue;
        }
        if arg.to_str().is_some_and(|a| a.starts_with("--user=")) {
            continue;
        }
        out.push(arg);
    }
    out.push(OsString::from("--internal-worker"));
    out
}

/// Before the worker serves: it cannot be signalled after the capability
/// drop, but it can before, and it dies with the broker anyway.
fn stop(worker: &mut Worker) {
    if let Err(e) = worker.child.kill() {
        let _ = writeln!(
            std::io::stderr(),
            "gatehouse: broker: cannot stop the worker: {e}"
        );
    }
    if let Err(e) = worker.child.wait() {
        let _ = writeln!(
            std::io::stderr(),
            "gatehouse: broker: cannot reap the worker: {e}"
        );
    }
}

/// What the broker runs besides answering the worker.
struct Supervisor {
    ruleset: Option<gatehouse_firewall::Ruleset>,
    /// Whether the table was as rendered (or repaired so) before the worker started.
    verified: bool,
    /// Why the start-up probe says the gate is not in the path (then it
    /// does not serve).
    probe_failure: Option<StartError>,
    /// What that first check found, for the worker to audit.
    start_events: Vec<gatehouse_audit::Event>,
    every: Duration,
    keeper: Option<Arc<gatehouse_gate::jit::ports::PortKeeper>>,
    control: Option<std::os::unix::net::UnixListener>,
    callers: &'static str,
    signals: lifecycle::Signals,
}

/// A reload sent to the worker and not yet answered.
struct PendingReload {
    id: u64,
    askers: Vec<ReloadAsk>,
    deadline: tokio::time::Instant,
}

/// End the worker without a signal: closing both sockets makes it exit at
/// once (and wakes our own threads blocked on them).
fn close_channels(control: &OwnedFd, events: &OwnedFd) {
    for (fd, name) in [(control, "request"), (events, "event")] {
        if let Err(e) = gatehouse_sys::shutdown_socket(fd) {
            let _ = writeln!(
                std::io::stderr(),
                "gatehouse: broker: cannot close the worker's {name} socket: {e}"
            );
        }
    }
}

impl Supervisor {
    /// Serve the worker until either side ends; turn signals into messages.
    async fn run(self, worker: Worker, broker: Broker) -> ExitCode {
        let Worker {
            child,
            control,
            events,
        } = worker;
        let control = Arc::new(control);
        // Held until the end: the worker takes its closing as the broker's death.
        let events = Arc::new(events);
        for record in &self.start_events {
            if let Err(e) = ps::send_event(&*events, record) {
                tracing::error!(error = %e, "cannot pass a firewall event to the worker to audit");
            }
        }
        if !self.verified {
            close_channels(&control, &events);
            return finish(child, TABLE_UNREPAIRED, None).await;
        }
        if let Some(e) = self.probe_failure {
            close_channels(&control, &events);
            reap(child).await;
            return e.print();
        }
        let firewall = match self
            .ruleset
            .map(|r| watch_firewall(r, self.every, Arc::clone(&events), self.keeper))
        {
            Some(Err(e)) => {
                close_channels(&control, &events);
                return finish(child, "cannot watch the firewall", Some(e.to_string())).await;
            }
            Some(Ok(w)) if !w.verified_at_start() => {
                close_channels(&control, &events);
                return finish(child, TABLE_UNREPAIRED, None).await;
            }
            Some(Ok(w)) => Some(w),
            None => None,
        };
        let (mut asks, stop_signals) = match self.signals.split(self.control) {
            Ok(s) => s,
            Err(e) => {
                let code = e.print();
                close_channels(&control, &events);
                let _ = finish(child, "cannot listen for reloads", None).await;
                return code;
            }
        };
        tokio::pin!(stop_signals);
        let mut from_worker = read_worker(Arc::clone(&events));
        let serving_on = Arc::clone(&control);
        let mut serving = tokio::task::spawn_blocking(move || broker.serve(&*serving_on));
        let mut child = child;
        let mut waiting = tokio::task::spawn_blocking(move || child.wait());

        let callers = self.callers;
        let mut policy = String::new();
        let mut served = 0;
        let mut pending: Option<PendingReload> = None;
        let mut next_id = 1u64;
        let mut stop_by: Option<tokio::time::Instant> = None;
        let mut closed = false;
        let far = || tokio::time::Instant::now() + Duration::from_secs(3600);
        let code = loop {
            let reload_by = pending.as_ref().map_or_else(far, |p| p.deadline);
            tokio::select! {
                served_out = &mut serving => {
                    // The worker closed its socket (it exited) or the socket failed:
                    // never leave a worker running without its broker.
                    if let Ok(Err(e)) = served_out {
                        let _ = writeln!(std::io::stderr(), "gatehouse: broker: the worker's socket failed: {e}");
                    }
                    close_channels(&control, &events);
                    let status = waiting.await;
                    break exit_code(status.ok().and_then(Result::ok), stop_by.is_some());
                }
                status = &mut waiting => {
                    break exit_code(status.ok().and_then(Result::ok), stop_by.is_some());
                }
                Some(message) = from_worker.recv() => match message {
                    ToBroker::Ready { policy: p, served: n } => {
                        (policy, served) = (p, n);
                        lifecycle::notify_ready(&policy, callers, served);
                    }
                    ToBroker::Alive { policy: p, served: n } => {
                        (policy, served) = (p, n);
                        lifecycle::notify_alive(&policy, callers, served);
                    }
                    ToBroker::Reloaded { id, outcome } => match pending.take() {
                        Some(p) if p.id == id => {
                            if let ReloadOutcome::Loaded { policy: ref h } | ReloadOutcome::Kept { policy: ref h, .. } = outcome {
                                policy.clone_from(h);
                            }
                            let _ = writeln!(std::io::stderr(), "gatehouse: broker: {}", outcome.describe());
                            lifecycle::notify_ready(&policy, callers, served);
                            for ask in p.askers {
                                ask.answer(&outcome);
                            }
                        }
                        other => {
                            tracing::warn!(id, "broker: an answer to a reload not asked for");
                            pending = other;
                        }
                    },
                },
                Some(ask) = asks.recv() => {
                    if stop_by.is_some() {
                        ask.answer(&ReloadOutcome::Unanswered { reason: "the gate is stopping".to_owned() });
                    } else if let Some(p) = pending.as_mut() {
                        // One reload at a time; this one reads the same file.
                        p.askers.push(ask);
                    } else {
                        lifecycle::notify(&[Notice::Reloading]);
                        let id = next_id;
                        next_id += 1;
                        match ps::send_to_worker(&*events, &ToWorker::Reload { id }) {
                            Ok(()) => {
                                pending = Some(PendingReload {
                                    id,
                                    askers: vec![ask],
                                    deadline: tokio::time::Instant::now() + RELOAD_ANSWER,
                                });
                            }
                            Err(e) => {
                                let outcome = ReloadOutcome::Unanswered { reason: format!("cannot reach the worker: {e}") };
                                let _ = writeln!(std::io::stderr(), "gatehouse: broker: {}", outcome.describe());
                                lifecycle::notify_ready(&policy, callers, served);
                                ask.answer(&outcome);
                            }
                        }
                    }
                }
                () = tokio::time::sleep_until(reload_by), if pending.is_some() => {
                    if let Some(p) = pending.take() {
                        let outcome = ReloadOutcome::Unanswered {
                            reason: format!("the worker did not answer within {} s", RELOAD_ANSWER.as_secs()),
                        };
                        let _ = writeln!(std::io::stderr(), "gatehouse: broker: {}", outcome.describe());
                        lifecycle::notify_ready(&policy, callers, served);
                        for ask in p.askers {
                            ask.answer(&outcome);
                        }
                    }
                }
                why = &mut stop_signals, if stop_by.is_none() => {
                    lifecycle::notify(&[Notice::Stopping]);
                    stop_by = Some(tokio::time::Instant::now() + STOP_GRACE);
                    if let Err(e) = ps::send_to_worker(&*events, &ToWorker::Stop { reason: why.to_owned() }) {
                        let _ = writeln!(std::io::stderr(), "gatehouse: broker: cannot tell the worker to stop ({e}); closing its sockets");
                        close_channels(&control, &events);
                        closed = true;
                    }
                }
                () = tokio::time::sleep_until(stop_by.unwrap_or_else(far)), if stop_by.is_some() && !closed => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "gatehouse: broker: the worker did not stop within {} ms; closing its sockets",
                        STOP_GRACE.as_millis()
                    );
                    close_channels(&control, &events);
                    closed = true;
                }
            }
        };
        if let Some(p) = pending.take() {
            for ask in p.askers {
                ask.answer(&ReloadOutcome::Unanswered {
                    reason: "the worker is gone".to_owned(),
                });
            }
        }
        // Stops `nft monitor`; the table itself stays, so IMDS stays closed.
        drop(firewall);
        code
    }
}

/// The worker's messages, read on a thread of their own; the channel closes
/// when the worker's end does.
fn read_worker(events: Arc<OwnedFd>) -> tokio::sync::mpsc::Receiver<ToBroker> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    std::thread::spawn(move || loop {
        match ps::recv_from_worker(&*events) {
            Ok(Some(message)) => {
                if tx.blocking_send(message).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                tracing::error!(error = %e, "broker: malformed message from the worker");
            }
            Err(e) => {
                tracing::error!(error = %e, "broker: the worker's event socket failed");
                return;
            }
        }
    });
    rx
}

/// Wait for a worker whose sockets are closed, and fail with `message`.
async fn finish(child: std::process::Child, message: &str, detail: Option<String>) -> ExitCode {
    reap(child).await;
    match detail {
        Some(d) => crate::fail(&format!("{message}: {d}"), None),
        None => crate::fail(message, None),
    }
}

/// Wait for a worker whose sockets are closed.
async fn reap(child: std::process::Child) {
    let mut child = child;
    match tokio::task::spawn_blocking(move || child.wait()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            let _ = writeln!(
                std::io::stderr(),
                "gatehouse: broker: cannot reap the worker: {e}"
            );
        }
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "gatehouse: broker: cannot reap the worker: {e}"
            );
        }
    }
}

/// The broker's exit code from the worker's: 0 only when the worker stopped
/// cleanly.
fn exit_code(status: Option<std::process::ExitStatus>, asked_to_stop: bool) -> ExitCode {
    match status.and_then(|s| s.code()) {
        Some(0) => {
            if !asked_to_stop {
                let _ = writeln!(
                    std::io::stderr(),
                    "gatehouse: broker: the worker stopped; stopping"
                );
            }
            ExitCode::SUCCESS
        }
        Some(c) => {
            let _ = writeln!(
                std::io::stderr(),
                "gatehouse: broker: the worker exited with {c}; stopping"
            );
            ExitCode::from(u8::try_from(c).unwrap_or(1).max(1))
        }
        None => {
            let _ = writeln!(
                std::io::stderr(),
                "gatehouse: broker: the worker was killed; stopping"
            );
            ExitCode::from(1)
        }
    }
}

/// The firewall watcher, with each event sent to the worker to audit.
fn watch_firewall(
    ruleset: gatehouse_firewall::Ruleset,
    every: Duration,
    events: Arc<OwnedFd>,
    keeper: Option<Arc<gatehouse_gate::jit::ports::PortKeeper>>,
) -> Result<gatehouse_firewall::Watcher, gatehouse_firewall::Error> {
    // The broker's `ensure` at start reported the first verdict.
    let options = gatehouse_firewall::WatchOptions {
        every,
        monitor: true,
        checked_before: true,
    };
    gatehouse_firewall::watch(
        gatehouse_firewall::Nft::system(),
        ruleset,
        options,
        move |event| {
            crate::firewall::after_watch_event(event, keeper.as_deref());
            if let Err(e) = ps::send_event(&*events, &event.audit_record()) {
                tracing::error!(error = %e, "cannot pass a firewall event to the worker to audit");
            }
        },
    )
}

/// In the worker (`--internal-worker`): check that nothing privileged is
/// left, take over the broker's socket and descriptors, and run the gate.
pub(super) fn worker_main(plan: Plan) -> Result<ExitCode, StartError> {
    if let Err(e) = gatehouse_sys::forbid_new_privileges() {
        return Err(StartError::step(
            format!("cannot set no_new_privs: {e}"),
            None,
        ));
    }
    let caps = gatehouse_sys::effective_capabilities();
    if gatehouse_sys::effective_uid() == 0 || !matches!(caps, Ok(0)) {
        return Err(StartError::step(
            "`--internal-worker` must run as an unprivileged user without capabilities",
            None,
        ));
    }
    let start = match ps::worker_start() {
        Ok(s) => s,
        Err(e) => {
            return Err(StartError::step(
                format!("no broker: {e}"),
                Some("`--internal-worker` is started by `gatehouse run --user`, not by hand"),
            ))
        }
    };
    let client = match BrokerClient::new(start.control) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            return Err(StartError::step(
                format!("cannot use the broker's socket: {e}"),
                None,
            ))
        }
    };
    if plan.mark.is_some()
        && gatehouse_gate::connector::use_upstream_sockets(client.clone()).is_err()
    {
        return Err(StartError::step(
            "upstream sockets were already configured",
            None,
        ));
    }
    let rt = super::runtime()?;
    let parts = WorkerParts {
        client,
        listener: start.listener,
        listener6: start.listener6,
        events: start.events,
        heartbeat: start.heartbeat,
    };
    rt.block_on(super::run(plan, Some(parts)))
}

/// Follow the broker: audit the events it reports, reload and stop when it
/// says so (answering the reload's outcome). When its socket closes the
/// broker is gone and the worker stops at once (fail closed: no gate without
/// its broker). Returns the socket, for sending the broker messages.
pub(super) fn follow_broker(
    events: OwnedFd,
    gate: Arc<Gate>,
    stop: tokio::sync::watch::Sender<Option<String>>,
) -> Arc<OwnedFd> {
    let events = Arc::new(events);
    let link = Arc::clone(&events);
    std::thread::spawn(move || loop {
        match ps::recv_from_broker(&*events) {
            Ok(Some(ToWorker::Audit(event))) => {
                if let Err(e) = gate.record_event_public(&event) {
                    tracing::error!(error = %e, "cannot audit a broker event");
                }
            }
            Ok(Some(ToWorker::Reload { id })) => {
                let outcome = lifecycle::reload_gate(&gate);
                if let Err(e) = ps::send_to_broker(&*events, &ToBroker::Reloaded { id, outcome }) {
                    tracing::error!(error = %e, "cannot tell the broker the reload's outcome");
                }
            }
            Ok(Some(ToWorker::Stop { reason })) => {
                stop.send_replace(Some(reason));
            }
            Ok(None) => {
                // Not eprintln!: a closed stderr must not stop the exit.
                let _ = writeln!(
                    std::io::stderr(),
                    "gatehouse: the broker is gone; the worker stops"
                );
                std::process::exit(i32::from(BROKER_GONE));
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                tracing::error!(error = %e, "malformed message from the broker");
            }
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "gatehouse: the broker's socket failed ({e}); the worker stops"
                );
                std::process::exit(i32::from(BROKER_GONE));
            }
        }
    });
    link
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_args_drop_user_and_add_the_worker_flag() {
        let cases: [(&[&str], &[&str]); 3] = [
            (
                &["gh", "run", "--user", "gatehouse", "--upstream", "imds"],
                &["run", "--upstream", "imds", "--internal-worker"],
            ),
            (
                &["gh", "run", "--user=gatehouse", "--listen", "127.0.0.1:1"],
                &["run", "--listen", "127.0.0.1:1", "--internal-worker"],
            ),
            (&["gh", "run"], &["run", "--internal-worker"]),
        ];
        for (argv, want) in cases {
            let got = worker_args(argv.iter().map(OsString::from));
            let want: Vec<OsString> = want.iter().map(OsString::from).collect();
            assert_eq!(got, want, "{argv:?}");
        }
    }
}

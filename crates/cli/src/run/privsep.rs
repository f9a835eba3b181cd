//! `gatehouse run --user NAME`: the two processes (docs/architecture.md,
//! "Privilege separation"). The broker is the process root started; it
//! binds the listener, starts this binary again as the worker, drops every
//! capability but three, then answers the worker and watches the firewall.

use super::{Args, WorkerParts};
use gatehouse_gate::privsep::{self as ps, Broker, BrokerClient, ConnectTargets, Worker};
use gatehouse_gate::{Gate, UpstreamKind};
use gatehouse_sys::{Account, ForwardedSignal};
use std::ffi::OsString;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// The worker's exit code when its broker is gone.
const BROKER_GONE: u8 = 3;

/// In the root process, before any thread exists.
pub(super) fn broker_main(args: Args, kind: UpstreamKind, user: &str) -> ExitCode {
    let account = match gatehouse_sys::lookup_account(user) {
        Ok(Some(a)) if a.uid != 0 => a,
        Ok(Some(_)) => return crate::fail(&format!("`--user {user}` is root: nothing would be separated"), None),
        Ok(None) => {
            return crate::fail(
                &format!("no user `{user}`"),
                Some("create it (packaging/gatehouse.sysusers: `systemd-sysusers`), or name an existing system user"),
            )
        }
        Err(e) => return crate::fail(&format!("cannot read /etc/passwd: {e}"), None),
    };
    if let Some(path) = super::named_audit_path(&args, &kind) {
        if let Err(code) = check_audit_dir(&path, user, account) {
            return code;
        }
    }
    let mark = super::upstream_mark(&args, &kind);
    let (listen, pid_file, every, shape) = super::broker_view(&args);
    let mut keeper = None;
    let ruleset = match super::watching(&args, &kind) {
        crate::firewall::Watching::Off => None,
        crate::firewall::Watching::Watch => {
            let Some(mark) = mark else {
                return crate::fail(
                    "`--firewall watch` needs the upstream mark: without it the table would block the gate's own IMDS connections",
                    Some("drop `--no-upstream-mark`, or pass `--firewall off`"),
                );
            };
            let jit = match gatehouse_gate::policy_store::load_file(&args.policy, &[0]) {
                Ok(p) => crate::firewall::jit_ports(&p),
                Err(e) => {
                    eprintln!("{e}");
                    return crate::fail(
                        &format!(
                            "the policy `{}` was not loaded; the gate did not start",
                            args.policy.display()
                        ),
                        None,
                    );
                }
            };
            keeper = jit.as_ref().map(|j| {
                Arc::new(gatehouse_gate::jit::ports::PortKeeper::new(
                    gatehouse_firewall::Nft::system(),
                    j.ports.clone(),
                ))
            });
            match crate::firewall::ruleset(listen, mark, shape, jit) {
                Ok(r) => Some(r),
                Err(e) => return crate::fail(&e, Some("or pass `--firewall off`")),
            }
        }
    };
    let targets = match connect_targets(&kind) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let listener = match std::net::TcpListener::bind(listen) {
        Ok(l) => l,
        Err(e) => {
            return crate::fail(
                &format!("cannot listen on {listen}: {e}"),
                Some("pick another address with `--listen`"),
            )
        }
    };
    let listen = listener.local_addr().unwrap_or(listen);
    // The broker identifies callers: it attaches the eBPF path, while it still may.
    let identify = match super::identify_options(&args, listen) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let program = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            return crate::fail(
                &format!("cannot find this program to start the worker: {e}"),
                None,
            )
        }
    };
    let mut worker = match ps::spawn_worker(
        &program,
        &worker_args(std::env::args_os()),
        account,
        &listener,
    ) {
        Ok(w) => w,
        Err(e) => return crate::fail(&format!("cannot start the worker as `{user}`: {e}"), None),
    };
    drop(listener);
    let pid_file = pid_file.map(Path::to_path_buf);
    if let Some(path) = &pid_file {
        if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
            stop(&mut worker);
            return crate::fail(
                &format!("cannot write pid file `{}`: {e}", path.display()),
                None,
            );
        }
    }
    // Now, while this is the only thread: threads started later copy these sets.
    if let Err(e) = gatehouse_sys::keep_only_capabilities(&gatehouse_sys::BROKER_CAPABILITIES) {
        stop(&mut worker);
        return crate::fail(&format!("cannot drop capabilities: {e}"), None);
    }
    // Reading the eBPF maps needs only their fds on recent kernels; on older ones
    // with unprivileged BPF off it needs CAP_BPF, which is gone now. Find out here,
    // not by every lookup failing quietly.
    let mut identify = identify;
    if let Some(records) = &identify.connect_records {
        if let Err(e) = records.probe() {
            if args.caller_lookup == super::CallerLookup::Ebpf {
                stop(&mut worker);
                return crate::fail(
                    &format!("`--caller-lookup ebpf`: after dropping capabilities: {e}"),
                    Some("use `--caller-lookup sock-diag` on this kernel"),
                );
            }
            eprintln!("gatehouse: callers: sock_diag and /proc after all (the eBPF maps cannot be read without CAP_BPF here: {e})");
            identify.connect_records = None;
        }
    }
    let rt = match crate::runtime() {
        Ok(rt) => rt,
        Err(code) => {
            stop(&mut worker);
            return code;
        }
    };
    let mut broker = Broker::new(listen, mark, targets).with_identify_options(identify);
    if let Some(k) = &keeper {
        broker = broker.with_ports(Arc::clone(k));
    }
    let code = rt.block_on(supervise(worker, broker, ruleset, every, keeper));
    if let Some(path) = &pid_file {
        let _ = std::fs::remove_file(path);
    }
    rt.shutdown_timeout(Duration::from_millis(200));
    code
}

/// The worker writes and rotates the audit log, so its directory must be
/// the worker user's.
fn check_audit_dir(path: &Path, user: &str, account: Account) -> Result<(), ExitCode> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let owner = std::fs::metadata(dir).map(|m| m.uid());
    match owner {
        Ok(uid) if uid == account.uid => Ok(()),
        Ok(uid) => Err(crate::fail(
            &format!("the audit directory `{}` belongs to uid {uid}, not to `{user}`", dir.display()),
            Some("the worker writes and rotates the log there: `chown` it to that user (packaging/gatehouse.tmpfiles does)"),
        )),
        Err(e) => Err(crate::fail(&format!("cannot stat the audit directory `{}`: {e}", dir.display()), None)),
    }
}

/// Where the broker may open marked connections to.
fn connect_targets(kind: &UpstreamKind) -> Result<ConnectTargets, ExitCode> {
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
        .map_err(|e| crate::fail(&format!("cannot resolve the upstream `{base}`: {e}"), None))
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

fn stop(worker: &mut Worker) {
    let _ = worker.child.kill();
    let _ = worker.child.wait();
}

/// Serve the worker until either side ends; pass signals on.
async fn supervise(
    worker: Worker,
    broker: Broker,
    ruleset: Option<gatehouse_firewall::Ruleset>,
    every: Duration,
    keeper: Option<Arc<gatehouse_gate::jit::ports::PortKeeper>>,
) -> ExitCode {
    use tokio::signal::unix::{signal, SignalKind};
    let Worker {
        mut child,
        control,
        events,
    } = worker;
    let pid = child.id();
    // Held until the end: the worker takes its closing as the broker's death.
    let events = Arc::new(events);
    let _firewall = match ruleset.map(|r| watch_firewall(r, every, Arc::clone(&events), keeper)) {
        Some(Err(e)) => {
            let _ = gatehouse_sys::send_signal(pid, ForwardedSignal::Kill);
            let _ = tokio::task::spawn_blocking(move || child.wait()).await;
            return crate::fail(&format!("cannot watch the firewall: {e}"), None);
        }
        Some(Ok(w)) => Some(w),
        None => None,
    };
    let mut serving = tokio::task::spawn_blocking(move || broker.serve(&control));
    let mut waiting = tokio::task::spawn_blocking(move || child.wait());
    let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        let _ = gatehouse_sys::send_signal(pid, ForwardedSignal::Kill);
        return crate::fail("cannot listen for signals", None);
    };
    loop {
        tokio::select! {
            served = &mut serving => {
                // The worker closed its socket (it exited) or the socket failed:
                // never leave a worker running without its broker.
                if let Ok(Err(e)) = served {
                    let _ = writeln!(std::io::stderr(), "gatehouse: broker: the worker's socket failed: {e}");
                }
                let _ = gatehouse_sys::send_signal(pid, ForwardedSignal::Kill);
                let status = waiting.await;
                return exit_code(status.ok().and_then(Result::ok));
            }
            status = &mut waiting => {
                return exit_code(status.ok().and_then(Result::ok));
            }
            _ = hup.recv() => { let _ = gatehouse_sys::send_signal(pid, ForwardedSignal::Hangup); }
            _ = term.recv() => { let _ = gatehouse_sys::send_signal(pid, ForwardedSignal::Terminate); }
            _ = int.recv() => { let _ = gatehouse_sys::send_signal(pid, ForwardedSignal::Terminate); }
        }
    }
}

fn exit_code(status: Option<std::process::ExitStatus>) -> ExitCode {
    match status.and_then(|s| s.code()) {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => {
            let _ = writeln!(
                std::io::stderr(),
                "gatehouse: broker: the worker exited with {c}; stopping"
            );
            ExitCode::from(u8::try_from(c).unwrap_or(1))
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
    let options = gatehouse_firewall::WatchOptions {
        every,
        monitor: true,
    };
    gatehouse_firewall::watch(
        gatehouse_firewall::Nft::system(),
        ruleset,
        options,
        move |event| {
            match event {
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
                    // A re-applied table has empty port sets: put the grants back.
                    if let Some(k) = &keeper {
                        if let Err(e) = k.resync() {
                            tracing::error!(error = %e, "cannot restore the just-in-time port sets");
                        }
                    }
                }
                other => tracing::error!(?other, "firewall watcher"),
            }
            if let Err(e) = ps::send_event(&*events, &event.audit_record()) {
                tracing::error!(error = %e, "cannot pass a firewall event to the worker to audit");
            }
        },
    )
}

/// In the worker (`--internal-worker`): check that nothing privileged is
/// left, take over the broker's socket and descriptors, and run the gate.
pub(super) fn worker_main(args: Args, kind: UpstreamKind) -> ExitCode {
    if let Err(e) = gatehouse_sys::forbid_new_privileges() {
        return crate::fail(&format!("cannot set no_new_privs: {e}"), None);
    }
    let caps = gatehouse_sys::effective_capabilities();
    if gatehouse_sys::effective_uid() == 0 || !matches!(caps, Ok(0)) {
        return crate::fail(
            "`--internal-worker` must run as an unprivileged user without capabilities",
            None,
        );
    }
    let start = match ps::worker_start() {
        Ok(s) => s,
        Err(e) => {
            return crate::fail(
                &format!("no broker: {e}"),
                Some("`--internal-worker` is started by `gatehouse run --user`, not by hand"),
            )
        }
    };
    let client = match BrokerClient::new(start.control) {
        Ok(c) => Arc::new(c),
        Err(e) => return crate::fail(&format!("cannot use the broker's socket: {e}"), None),
    };
    if super::upstream_mark(&args, &kind).is_some()
        && gatehouse_gate::connector::use_upstream_sockets(client.clone()).is_err()
    {
        return crate::fail("upstream sockets were already configured", None);
    }
    let rt = match crate::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let parts = WorkerParts {
        client,
        listener: start.listener,
        events: start.events,
    };
    rt.block_on(super::run(args, kind, Some(parts)))
}

/// Audit what the broker reports; when its socket closes, the broker is gone
/// and the worker stops at once (fail closed: no gate without its broker).
pub(super) fn audit_broker_events(events: OwnedFd, gate: Arc<Gate>) {
    std::thread::spawn(move || loop {
        match ps::recv_event(&events) {
            Ok(Some(event)) => {
                if let Err(e) = gate.record_event_public(&event) {
                    tracing::error!(error = %e, "cannot audit a broker event");
                }
            }
            Ok(None) => {
                // Not eprintln!: a closed stderr must not stop the exit.
                let _ = writeln!(
                    std::io::stderr(),
                    "gatehouse: the broker is gone; the worker stops"
                );
                std::process::exit(i32::from(BROKER_GONE));
            }
            Err(e) => tracing::error!(error = %e, "malformed event from the broker"),
        }
    });
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

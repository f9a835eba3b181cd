//! The gate's life as a service (docs/architecture.md, "Lifecycle"): the
//! pid file, the control socket `gatehouse reload` talks to, what SIGHUP and
//! SIGTERM mean, and what systemd is told (`Type=notify`).
//!
//! One process receives the signals and talks to systemd: the gate itself,
//! or with `--user` the broker (systemd's main process, the pid file's pid),
//! which turns them into messages to the worker and relays its answers.

use super::StartError;
use gatehouse_gate::lifecycle::{ControlReply, ControlRequest, ReloadOutcome, MAX_CONTROL_MESSAGE};
use gatehouse_gate::Gate;
use gatehouse_sys::Notice;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// How often the status line is refreshed when systemd wants no watchdog.
const STATUS_EVERY: Duration = Duration::from_secs(10);
/// How long a control connection may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Tell systemd (nothing without `NOTIFY_SOCKET`); a failure is reported,
/// never ignored.
pub(crate) fn notify(notices: &[Notice<'_>]) {
    if let Err(e) = gatehouse_sys::notify_service_manager(notices) {
        let _ = writeln!(
            std::io::stderr(),
            "gatehouse: cannot notify the service manager: {e}"
        );
    }
}

/// How often the request loop beats: half systemd's watchdog timeout, else
/// the status period.
pub(crate) fn heartbeat_period() -> Duration {
    gatehouse_sys::watchdog_timeout()
        .map_or(STATUS_EVERY, |t| (t / 2).max(Duration::from_millis(100)))
}

/// `STATUS=` and `WATCHDOG=1` (when systemd set a watchdog) in one datagram.
pub(crate) fn notify_alive(policy: &str, callers: &str, served: u64) {
    let status = gatehouse_gate::lifecycle::status_line(policy, callers, served);
    if gatehouse_sys::watchdog_timeout().is_some() {
        notify(&[Notice::Watchdog, Notice::Status(&status)]);
    } else {
        notify(&[Notice::Status(&status)]);
    }
}

/// `READY=1` with the status line.
pub(crate) fn notify_ready(policy: &str, callers: &str, served: u64) {
    let status = gatehouse_gate::lifecycle::status_line(policy, callers, served);
    notify(&[Notice::Ready, Notice::Status(&status)]);
}

/// How callers are identified, for the status line.
pub(crate) fn callers_label(ebpf: bool, all_holders: bool) -> &'static str {
    match (ebpf, all_holders) {
        (true, _) => "eBPF connect records",
        (false, true) => "sock_diag, every holder",
        (false, false) => "sock_diag",
    }
}

/// The control socket of a gate with this pid file: beside it, `.sock`.
pub(crate) fn control_path(pid_file: &Path) -> PathBuf {
    pid_file.with_extension("sock")
}

/// Write this process's pid to `path`. A pid file naming a live gatehouse
/// refuses the start (two gates, one pid file); one naming a dead process
/// or another program is stale, and is said so and replaced.
pub(crate) fn claim_pid_file(path: &Path) -> Result<(), StartError> {
    match std::fs::read_to_string(path) {
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(pid) if pid != std::process::id() && gatehouse_sys::is_live_gatehouse(pid) => {
                return Err(StartError::step(
                    format!(
                        "another gate (pid {pid}) is running with the pid file `{}`",
                        path.display()
                    ),
                    Some("stop it first, or name another `--pid-file`"),
                ));
            }
            Ok(pid) => eprintln!(
                "gatehouse: replacing the stale pid file `{}` (pid {pid} is not a running gatehouse)",
                path.display()
            ),
            Err(_) => eprintln!(
                "gatehouse: replacing the stale pid file `{}` (it holds no pid)",
                path.display()
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(StartError::step(
                format!("cannot read pid file `{}`: {e}", path.display()),
                None,
            ))
        }
    }
    std::fs::write(path, format!("{}\n", std::process::id())).map_err(|e| {
        StartError::step(
            format!("cannot write pid file `{}`: {e}", path.display()),
            None,
        )
    })
}

/// Remove the pid file (if it is still ours) and the control socket.
pub(crate) fn release_pid_file(path: &Path) {
    let ours = std::fs::read_to_string(path)
        .is_ok_and(|t| t.trim().parse::<u32>().ok() == Some(std::process::id()));
    if ours {
        remove_reporting(path, "pid file");
        remove_reporting(&control_path(path), "control socket");
    }
}

fn remove_reporting(path: &Path, what: &str) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "gatehouse: cannot remove the {what} `{}`: {e}",
                path.display()
            );
        }
    }
}

/// Bind the control socket beside `pid_file`: mode 0600, and only root or
/// this process's own uid is answered (checked again by `SO_PEERCRED`).
pub(crate) fn bind_control(
    pid_file: &Path,
) -> Result<std::os::unix::net::UnixListener, StartError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let path = control_path(pid_file);
    match std::fs::symlink_metadata(&path) {
        // A socket left by a gate that died (its pid file was stale).
        Ok(m) if m.file_type().is_socket() => remove_reporting(&path, "stale control socket"),
        Ok(_) => {
            return Err(StartError::step(
                format!("`{}` exists and is not a socket", path.display()),
                Some("remove it, or name another `--pid-file`"),
            ))
        }
        Err(_) => {}
    }
    let listener = std::os::unix::net::UnixListener::bind(&path).map_err(|e| {
        StartError::step(
            format!(
                "cannot listen on the control socket `{}`: {e}",
                path.display()
            ),
            None,
        )
    })?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        StartError::step(format!("cannot restrict `{}`: {e}", path.display()), None)
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| StartError::step(format!("cannot use the control socket: {e}"), None))?;
    Ok(listener)
}

/// One request to reload: from SIGHUP (no one to answer) or from the
/// control socket (`gatehouse reload`, which waits for the outcome).
pub(crate) struct ReloadAsk {
    pub reply: Option<oneshot::Sender<ReloadOutcome>>,
}

impl ReloadAsk {
    pub(crate) fn answer(self, outcome: &ReloadOutcome) {
        if let Some(reply) = self.reply {
            // The asker hung up: nothing is waiting for the answer.
            let _ = reply.send(outcome.clone());
        }
    }
}

/// The signals the gate acts on, listened for from the moment this is made
/// (before that, SIGTERM and SIGHUP would end the process): make it before
/// anything tells the world the gate is there.
pub(crate) struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

/// Start listening for SIGHUP, SIGTERM and SIGINT (inside a runtime).
pub(crate) fn listen_signals() -> Result<Signals, StartError> {
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind| {
        signal(kind).map_err(|e| StartError::step(format!("cannot listen for signals: {e}"), None))
    };
    Ok(Signals {
        hup: listen(SignalKind::hangup())?,
        term: listen(SignalKind::terminate())?,
        int: listen(SignalKind::interrupt())?,
    })
}

impl Signals {
    /// Reloads: every SIGHUP, and every request on `control`, as a
    /// [`ReloadAsk`]; and why the gate stops: the first SIGTERM or SIGINT.
    pub(crate) fn split(
        self,
        control: Option<std::os::unix::net::UnixListener>,
    ) -> Result<
        (
            mpsc::Receiver<ReloadAsk>,
            impl std::future::Future<Output = &'static str>,
        ),
        StartError,
    > {
        let Signals {
            hup,
            mut term,
            mut int,
        } = self;
        let asks = reload_asks(hup, control)?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            }
        };
        Ok((asks, stop))
    }
}

fn reload_asks(
    mut hup: tokio::signal::unix::Signal,
    control: Option<std::os::unix::net::UnixListener>,
) -> Result<mpsc::Receiver<ReloadAsk>, StartError> {
    let (tx, rx) = mpsc::channel(16);
    let on_hup = tx.clone();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if on_hup.send(ReloadAsk { reply: None }).await.is_err() {
                return;
            }
        }
    });
    if let Some(listener) = control {
        let listener = tokio::net::UnixListener::from_std(listener)
            .map_err(|e| StartError::step(format!("cannot use the control socket: {e}"), None))?;
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(answer_control(stream, tx.clone()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "control socket: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    Ok(rx)
}

/// One control connection: root's (or our own uid's) request, then the answer.
async fn answer_control(mut stream: tokio::net::UnixStream, asks: mpsc::Sender<ReloadAsk>) {
    let me = gatehouse_sys::effective_uid();
    match stream.peer_cred() {
        Ok(c) if c.uid() == 0 || c.uid() == me => {}
        Ok(c) => {
            tracing::warn!(
                uid = c.uid(),
                "control socket: refused a caller that is not root"
            );
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "control socket: no peer credentials");
            return;
        }
    }
    let mut line = String::new();
    let limit = u64::try_from(MAX_CONTROL_MESSAGE).unwrap_or(u64::MAX);
    let read = {
        let mut reader = tokio::io::BufReader::new((&mut stream).take(limit));
        tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await
    };
    if !matches!(read, Ok(Ok(n)) if n > 0) {
        tracing::warn!("control socket: no request");
        return;
    }
    let Ok(ControlRequest::Reload) = serde_json::from_str::<ControlRequest>(line.trim()) else {
        tracing::warn!("control socket: malformed request");
        return;
    };
    let (reply, outcome) = oneshot::channel();
    let outcome = match asks.send(ReloadAsk { reply: Some(reply) }).await {
        Ok(()) => outcome.await.unwrap_or_else(|_| ReloadOutcome::Unanswered {
            reason: "the gate is stopping".to_owned(),
        }),
        Err(_) => ReloadOutcome::Unanswered {
            reason: "the gate is stopping".to_owned(),
        },
    };
    let reply = ControlReply { reload: outcome };
    match serde_json::to_vec(&reply) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            if let Err(e) = stream.write_all(&bytes).await {
                tracing::warn!(error = %e, "control socket: the answer was not delivered");
            }
        }
        Err(e) => tracing::error!(error = %e, "control socket: cannot encode the answer"),
    }
}

/// Reload `gate`'s policy and say what happened (stderr; the audit log has
/// `policy_loaded` or `policy_rejected`).
pub(crate) fn reload_gate(gate: &Gate) -> ReloadOutcome {
    let ports_before = crate::firewall::jit_ports(&gate.policy());
    let outcome = gate.reload_outcome();
    match &outcome {
        ReloadOutcome::Loaded { .. } => {
            let _ = writeln!(std::io::stderr(), "gatehouse: {}", outcome.describe());
            // The table is rendered at start (by the broker with --user).
            if crate::firewall::jit_ports(&gate.policy()) != ports_before {
                let _ = writeln!(
                    std::io::stderr(),
                    "gatehouse: warning: the reloaded policy changes the just-in-time ports or break-glass \
                     ranges; the firewall keeps the old ones until the gate restarts"
                );
                if let Err(e) =
                    gate.record_event_public(&gatehouse_audit::Event::JitPortsChangedNeedRestart {})
                {
                    tracing::error!(error = %e, "cannot audit the port change");
                }
            }
        }
        ReloadOutcome::Kept { details, .. } => {
            let _ = writeln!(
                std::io::stderr(),
                "gatehouse: {}\n{details}",
                outcome.describe()
            );
        }
        ReloadOutcome::Unanswered { .. } => {}
    }
    outcome
}

/// The last audit line of a gate that stops cleanly.
pub(crate) fn audit_stopped(gate: &Arc<Gate>, reason: &str) {
    if let Err(e) = gate.record_event_public(&gatehouse_audit::Event::GateStopped {
        reason: reason.to_owned(),
        requests_served: gate.requests_served(),
    }) {
        let _ = writeln!(std::io::stderr(), "gatehouse: cannot audit the stop: {e}");
    }
}

//! Starting the worker (in the broker) and taking over what the broker
//! passed (in the worker). No `fork()` without `exec`: the worker is this
//! same binary run again, as another user.

use super::wire::{Hello, MAX_HELLO};
use gatehouse_sys::Account;
use std::ffi::OsString;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The worker as the broker holds it.
#[derive(Debug)]
pub struct Worker {
    pub child: Child,
    /// The broker's end of the request socketpair.
    pub control: OwnedFd,
    /// The broker's end of the event socketpair.
    pub events: OwnedFd,
}

/// Run `program args` as `account` (std clears the supplementary groups when
/// root sets a uid) with its
/// end of the request socketpair as stdin, then send it the listener and its
/// end of the event socketpair. Every other descriptor stays close-on-exec.
/// The worker is killed with the broker (`PR_SET_PDEATHSIG`): call this on
/// the broker's main thread. It does not inherit the service manager's
/// notification environment (the broker relays, so systemd's
/// `NotifyAccess=main` holds).
pub fn spawn_worker(
    program: &Path,
    args: &[OsString],
    account: gatehouse_sys::Account,
    listener: &TcpListener,
    listener6: Option<&TcpListener>,
    heartbeat: Duration,
) -> io::Result<Worker> {
    let Account { uid, gid } = account;
    if uid == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the worker must not run as root",
        ));
    }
    let (control, control_child) = gatehouse_sys::seqpacket_pair()?;
    let (events, events_child) = gatehouse_sys::seqpacket_pair()?;
    let listen = listener.local_addr()?;
    let mut command = Command::new(program);
    command
        .args(args)
        .uid(uid)
        .gid(gid)
        .current_dir("/")
        .stdin(Stdio::from(control_child));
    for name in gatehouse_sys::NOTIFY_ENVIRONMENT {
        command.env_remove(name);
    }
    let child = gatehouse_sys::die_with_parent(&mut command).spawn()?;
    let listen6 = listener6.map(TcpListener::local_addr).transpose()?;
    let hello = Hello {
        listen,
        listen6,
        broker_pid: std::process::id(),
        heartbeat_ms: u64::try_from(heartbeat.as_millis()).unwrap_or(u64::MAX),
    };
    let hello = serde_json::to_vec(&hello).map_err(io::Error::other)?;
    let mut fds = vec![listener.as_fd(), events_child.as_fd()];
    fds.extend(listener6.map(AsFd::as_fd));
    gatehouse_sys::send_message(&control, &hello, &fds)?;
    Ok(Worker {
        child,
        control,
        events,
    })
}

/// What the worker takes over from the broker.
#[derive(Debug)]
pub struct WorkerStart {
    pub control: OwnedFd,
    pub events: OwnedFd,
    pub listener: TcpListener,
    /// The IPv6 listener, when the broker bound one.
    pub listener6: Option<TcpListener>,
    /// How often to tell the broker the request loop is alive.
    pub heartbeat: Duration,
}

/// In the worker: stdin is the request socket; read the broker's hello.
pub fn worker_start() -> io::Result<WorkerStart> {
    let control = io::stdin().as_fd().try_clone_to_owned()?;
    gatehouse_sys::set_receive_timeout(&control, Some(Duration::from_secs(10)))?;
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let message = gatehouse_sys::recv_message(&control, MAX_HELLO)?
        .ok_or_else(|| invalid("stdin closed before the broker's hello"))?;
    let hello: Hello =
        serde_json::from_slice(&message.bytes).map_err(|_| invalid("malformed hello"))?;
    let mut fds = message.fds.into_iter();
    let (Some(listener), Some(events), listener6, None) =
        (fds.next(), fds.next(), fds.next(), fds.next())
    else {
        return Err(invalid(
            "the hello must carry the listener and the event socket (and at most the IPv6 listener)",
        ));
    };
    let listener6 = listener6.map(TcpListener::from);
    let listen6 = listener6
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    if listen6 != hello.listen6 {
        return Err(invalid("the passed IPv6 listener is not the announced one"));
    }
    let listener = TcpListener::from(listener);
    let listen: SocketAddr = listener.local_addr()?;
    if listen != hello.listen {
        return Err(invalid("the passed listener is not the announced one"));
    }
    // Started with PR_SET_PDEATHSIG by this parent: if it is already gone the
    // signal was missed, and this worker must not serve alone.
    if std::os::unix::process::parent_id() != hello.broker_pid {
        return Err(invalid("the broker that started this worker is gone"));
    }
    Ok(WorkerStart {
        control,
        events,
        listener,
        listener6,
        heartbeat: Duration::from_millis(hello.heartbeat_ms.max(100)),
    })
}

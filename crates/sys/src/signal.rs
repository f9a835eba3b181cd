//! Signals the broker passes on to the worker it started.

use std::io;

/// The signals one gatehouse process sends the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedSignal {
    /// Reload the policy.
    Hangup,
    /// Shut down cleanly.
    Terminate,
    /// Stop at once (the other process is gone: fail closed).
    Kill,
}

/// Send `signal` to process `pid`.
pub fn send_signal(pid: u32, signal: ForwardedSignal) -> io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a process id"))?;
    let signal = match signal {
        ForwardedSignal::Hangup => rustix::process::Signal::HUP,
        ForwardedSignal::Terminate => rustix::process::Signal::TERM,
        ForwardedSignal::Kill => rustix::process::Signal::KILL,
    };
    rustix::process::kill_process(pid, signal)?;
    Ok(())
}

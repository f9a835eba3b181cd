//! systemd's service notification protocol (`sd_notify(3)`): one datagram of
//! `KEY=VALUE` lines to the socket named by `NOTIFY_SOCKET`, through the
//! `sd-notify` crate. Without `NOTIFY_SOCKET` (not started by systemd with
//! `Type=notify`) every call does nothing.

use std::io;
use std::time::Duration;

/// What the service tells its manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice<'a> {
    /// `READY=1`: serving (after start, and after a reload).
    Ready,
    /// `RELOADING=1` with `MONOTONIC_USEC=` now, as the reload protocol asks.
    Reloading,
    /// `STOPPING=1`.
    Stopping,
    /// `WATCHDOG=1`: still alive.
    Watchdog,
    /// `STATUS=`: a one-line summary (newlines are replaced by spaces).
    Status(&'a str),
}

/// The environment variables of the protocol, which a child that must not
/// talk to the manager itself should not inherit.
pub const NOTIFY_ENVIRONMENT: [&str; 3] = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// Send `notices` in one datagram. `Ok(())` when no manager listens.
pub fn notify_service_manager(notices: &[Notice<'_>]) -> io::Result<()> {
    use sd_notify::NotifyState;
    let mut states = Vec::with_capacity(notices.len() + 1);
    let mut status = String::new();
    for notice in notices {
        match notice {
            Notice::Ready => states.push(NotifyState::Ready),
            Notice::Reloading => {
                states.push(NotifyState::Reloading);
                states.push(NotifyState::monotonic_usec_now()?);
            }
            Notice::Stopping => states.push(NotifyState::Stopping),
            Notice::Watchdog => states.push(NotifyState::Watchdog),
            Notice::Status(s) => status = s.replace(['\n', '\r'], " "),
        }
    }
    if !status.is_empty() {
        states.push(NotifyState::Status(&status));
    }
    sd_notify::notify(&states)
}

/// How often the manager wants `WATCHDOG=1` (`WATCHDOG_USEC`, when meant for
/// this process: `WATCHDOG_PID` unset or ours); `None` without a watchdog.
pub fn watchdog_timeout() -> Option<Duration> {
    sd_notify::watchdog_enabled().filter(|d| !d.is_zero())
}

//! Small facts about and actions on processes that the CLI and daemon need.

use std::io;
use std::process::Command;

/// The effective uid of this process.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether `pid` is a live (not zombie) process whose command is `gatehouse`:
/// a pid file naming anything else is stale (the pid was reused, or the
/// gate is gone).
pub fn is_live_gatehouse(pid: u32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"));
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat"));
    let zombie = state.as_deref().ok().is_none_or(|s| {
        s.rsplit_once(')')
            .is_none_or(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
    });
    comm.is_ok_and(|c| c.trim_end() == "gatehouse") && !zombie
}

/// Have the kernel SIGKILL the child `command` starts when the thread that
/// starts it ends (`PR_SET_PDEATHSIG`), and refuse to start it if this
/// process is already gone by the time the child runs. So a gatehouse
/// process killed with SIGKILL takes its children with it. Call it on a
/// thread that lives as long as the process (the kernel ties the signal to
/// the parent *thread*). The setting is made after `Command`'s own uid and
/// gid changes (which would clear it) and survives the `exec` of a program
/// that is neither set-uid nor has file capabilities.
#[allow(
    unsafe_code,
    reason = "Command::pre_exec is unsafe; the hook makes two syscalls and allocates nothing"
)]
pub fn die_with_parent(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    // SAFETY: the hook runs in the child between fork and exec, where only
    // async-signal-safe operations are allowed. It makes two raw syscalls
    // through rustix (prctl(PR_SET_PDEATHSIG) and getppid), touches no lock,
    // allocates nothing (the error is a plain errno value) and captures only
    // a `Pid`, which is `Copy`.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // The parent died before the setting took: stop here.
            if rustix::process::getppid() != Some(parent) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        })
    }
}

//! Small facts about and actions on processes that the CLI and daemon need.

use std::io;

/// The effective uid of this process.
pub fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Ask a running gate to reload its policy (SIGHUP). Refuses a pid whose
/// command is not `gatehouse`, so a stale pid file cannot make us signal an
/// unrelated process that reused the pid.
pub fn send_reload_signal(pid: u32) -> io::Result<()> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))?;
    if comm.trim_end() != "gatehouse" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "pid {pid} is `{}`, not gatehouse (stale pid file?)",
                comm.trim_end()
            ),
        ));
    }
    let raw = i32::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    let pid = rustix::process::Pid::from_raw(raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "pid 0"))?;
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).map_err(io::Error::from)
}

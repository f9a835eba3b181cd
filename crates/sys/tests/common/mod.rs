//! Shared helpers: real client processes on loopback, cleaned up even when a test fails.
#![allow(
    dead_code,
    reason = "shared test helpers: not every test binary uses each one"
)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process_group, Pid, Signal};

/// Kills the client's whole process group and reaps the leader on drop.
pub struct Client {
    child: Child,
}

impl Client {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if let Some(pgid) = Pid::from_raw(self.child.id() as i32) {
            let _ = kill_process_group(pgid, Signal::KILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when running as root; otherwise prints a loud skip line (or panics when
/// `GATEHOUSE_REQUIRE_PRIVILEGED=1`).
pub fn root_or_skip(what: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var("GATEHOUSE_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!("needs root: {what}");
    }
    eprintln!("SKIPPED (needs root): {what}");
    false
}

/// Runs `script` under bash (in its own process group) with `PORT` set to the listener's
/// port; optionally as `uid`/`gid`.
pub fn spawn(script: &str, port: u16, ids: Option<(u32, u32)>) -> Client {
    let mut cmd = Command::new("/usr/bin/bash");
    cmd.arg("-c")
        .arg(script)
        .env("PORT", port.to_string())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .process_group(0);
    if let Some((uid, gid)) = ids {
        cmd.uid(uid).gid(gid);
    }
    Client {
        child: cmd.spawn().expect("spawn client"),
    }
}

/// Accepts one connection within 10 s.
pub fn accept(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match listener.accept() {
            Ok((s, _)) => return s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// The (client, listener) addresses of an accepted connection.
pub fn tuple(s: &TcpStream) -> (SocketAddr, SocketAddr) {
    (s.peer_addr().unwrap(), s.local_addr().unwrap())
}

/// Waits (≤ 10 s) until `pid` runs an executable whose path ends with `suffix`.
pub fn wait_exe(pid: u32, suffix: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(p) = std::fs::read_link(format!("/proc/{pid}/exe")) {
            if p.to_string_lossy().ends_with(suffix) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("pid {pid} never ran `{suffix}`");
}

/// Waits (≤ 10 s) for a child of `pid` running `suffix`; returns its pid.
pub fn wait_child_exe(pid: u32, suffix: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        for c in children
            .split_whitespace()
            .filter_map(|c| c.parse::<u32>().ok())
        {
            if std::fs::read_link(format!("/proc/{c}/exe"))
                .is_ok_and(|p| p.to_string_lossy().ends_with(suffix))
            {
                return c;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("pid {pid} never had a child running `{suffix}`");
}

/// Script: connect fd 3 to 127.0.0.1:$PORT, then `exec` the rest.
pub fn connect_then(rest: &str) -> String {
    format!("exec 3<>/dev/tcp/127.0.0.1/$PORT; {rest}")
}

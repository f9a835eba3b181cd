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

/// Accepts one connection (as [`accept`]): the stream, kept open by the
/// caller, and its (client, listener) addresses.
pub fn accepted(listener: &TcpListener) -> (TcpStream, SocketAddr, SocketAddr) {
    let conn = accept(listener);
    let (src, dst) = tuple(&conn);
    (conn, src, dst)
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

/// `pass_fd.py`: a TCP socket passed over `SCM_RIGHTS` between two unrelated processes.
pub const PASS_FD: &str = include_str!("pass_fd.py");

/// A `pass_fd.py` process and the lines it prints.
pub struct Py {
    pub client: Client,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Py {
    /// Runs `pass_fd.py args…` as `uid`/`gid`.
    pub fn start(args: &[&str], (uid, gid): (u32, u32)) -> Py {
        use std::io::BufRead;
        let mut child = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(PASS_FD)
            .args(args)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .uid(uid)
            .gid(gid)
            .spawn()
            .expect("spawn python3");
        let out = child.stdout.take().expect("piped stdout");
        Py {
            client: Client { child },
            lines: std::io::BufReader::new(out).lines(),
        }
    }

    /// The next line it prints (it gives up within 20 s by itself).
    pub fn line(&mut self) -> String {
        match self.lines.next() {
            Some(Ok(l)) => l,
            other => panic!("pass_fd.py ended early: {other:?}"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.client.pid()
    }
}

/// The sender (`sender` ids) connects to 127.0.0.1:`port` and passes the socket to an
/// unrelated receiver (`receiver` ids), keeping its own copy when `keep`. Returns
/// (sender, receiver) once the receiver holds the socket.
pub fn pass_socket(port: u16, sender: (u32, u32), receiver: (u32, u32), keep: bool) -> (Py, Py) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "gatehouse-pass-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut recv = Py::start(&["recv", &name], receiver);
    assert_eq!(recv.line(), "ready");
    let port = port.to_string();
    let mode = if keep { "keep" } else { "close" };
    let mut send = Py::start(&["send", &name, &port, mode], sender);
    assert_eq!(send.line(), "sent");
    assert_eq!(recv.line(), "received");
    (send, recv)
}

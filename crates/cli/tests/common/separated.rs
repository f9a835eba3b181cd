//! What the tests of `gatehouse run --user` share: the worker's system user
//! and reading processes from /proc.

use std::process::Command;
use std::time::{Duration, Instant};

pub const WORKER_USER: &str = "gh-privsep-test";
pub const WORKER_UID: u32 = 46099;

pub fn ensure_worker_user() {
    static ONCE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = ONCE.lock().unwrap_or_else(|p| p.into_inner());
    let known = || {
        std::fs::read_to_string("/etc/passwd")
            .unwrap()
            .lines()
            .any(|l| l.starts_with(&format!("{WORKER_USER}:")))
    };
    if !known() {
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                "--uid",
                &WORKER_UID.to_string(),
                WORKER_USER,
            ])
            .status()
            .unwrap();
        // Another test binary may have created it meanwhile.
        assert!(status.success() || known(), "useradd failed");
    }
}

/// Fields of /proc/PID/status.
pub fn status_field(pid: u32, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        l.strip_prefix(&format!("{name}:"))
            .map(|v| v.trim().to_owned())
    })
}

pub fn hex_field(pid: u32, name: &str) -> u64 {
    u64::from_str_radix(&status_field(pid, name).unwrap(), 16).unwrap()
}

/// Live (not zombie) children of `parent`.
pub fn children(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| status_field(*pid, "PPid").as_deref() == Some(&parent.to_string()))
        .filter(|pid| {
            !status_field(*pid, "State")
                .unwrap_or_default()
                .starts_with('Z')
        })
        .collect()
}

pub fn gone(pid: u32) -> bool {
    status_field(pid, "State").is_none_or(|s| s.starts_with('Z'))
}

pub fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting until {what}");
}

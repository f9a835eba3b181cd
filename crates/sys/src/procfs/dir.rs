//! A handle on one `/proc/PID` directory that stays bound to that process.
//!
//! Once the directory fd is open, every read is `openat`/`readlinkat` relative to it. If
//! the process exits (and its PID is reused), those reads fail with `ESRCH`/`ENOENT`
//! instead of returning the new process's data. Nothing here reads `/proc/PID/...` by path.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{openat, readlinkat, Dir, Mode, OFlags, CWD};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

/// An open `/proc/PID` directory (and, on the real procfs, a pidfd for the same process).
#[derive(Debug)]
pub struct ProcDir {
    pid: u32,
    dir: OwnedFd,
    _pidfd: Option<OwnedFd>,
}

impl ProcDir {
    /// Opens `<proc_root>/<pid>`. With `want_pidfd`, also `pidfd_open(pid)`; it fails for a
    /// thread id that is not a thread-group leader, so candidates are processes only.
    ///
    /// Between the directory open and `pidfd_open` the PID could be reused; the caller's
    /// next read through the directory (the socket check) then fails, so a mismatched pair
    /// is never used.
    pub fn open(proc_root: &Path, pid: u32, want_pidfd: bool) -> io::Result<Self> {
        let path = proc_root.join(pid.to_string());
        let dir = openat(
            CWD,
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let pidfd = if want_pidfd {
            let raw =
                i32::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            let pid =
                Pid::from_raw(raw).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
            Some(pidfd_open(pid, PidfdFlags::empty())?)
        } else {
            None
        };
        Ok(Self {
            pid,
            dir,
            _pidfd: pidfd,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Opens a file below the directory, read-only (following magic links such as `exe`).
    pub fn open_file(&self, name: &str) -> io::Result<File> {
        let fd = openat(
            &self.dir,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(File::from(fd))
    }

    /// Reads a small text file below the directory (`status`, `cgroup`, `comm`).
    pub fn read_to_string(&self, name: &str) -> io::Result<String> {
        let mut text = String::new();
        self.open_file(name)?.read_to_string(&mut text)?;
        Ok(text)
    }

    /// `readlinkat` below the directory; non-UTF-8 bytes are replaced.
    pub fn readlink(&self, name: &str) -> io::Result<String> {
        let target = readlinkat(&self.dir, name, Vec::new())?;
        Ok(target.to_string_lossy().into_owned())
    }

    /// The fd number through which this process holds `socket:[inode]`, if any.
    pub fn find_socket_fd(&self, inode: u64) -> io::Result<Option<u32>> {
        let fd_dir = openat(
            &self.dir,
            "fd",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let wanted = socket_link(inode);
        for entry in Dir::new(fd_dir)? {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            let Some(fd) = std::str::from_utf8(name)
                .ok()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            // An fd closed since the listing is not an error, just not ours.
            if let Ok(target) = readlinkat(&self.dir, format!("fd/{fd}"), Vec::new()) {
                if target.to_bytes() == wanted.as_bytes() {
                    return Ok(Some(fd));
                }
            }
        }
        // A process that exited during the listing must not look like "not a holder"
        // silently when it was one; re-probing the directory surfaces ESRCH.
        self.read_to_string("stat")?;
        Ok(None)
    }

    /// Whether fd `fd` still is `socket:[inode]`; errors when the process is gone.
    pub fn fd_is_socket(&self, fd: u32, inode: u64) -> io::Result<bool> {
        let target = readlinkat(&self.dir, format!("fd/{fd}"), Vec::new())?;
        Ok(target.to_bytes() == socket_link(inode).as_bytes())
    }

    /// Child pids of every thread (`task/*/children`).
    pub fn children(&self) -> io::Result<Vec<u32>> {
        let task = openat(
            &self.dir,
            "task",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut out = Vec::new();
        for entry in Dir::new(task)? {
            let entry = entry?;
            let Ok(tid) = std::str::from_utf8(entry.file_name().to_bytes()) else {
                continue;
            };
            if tid.parse::<u32>().is_err() {
                continue;
            }
            let Ok(text) = self.read_to_string(&format!("task/{tid}/children")) else {
                continue;
            };
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
        Ok(out)
    }
}

fn socket_link(inode: u64) -> String {
    format!("socket:[{inode}]")
}

#[cfg(test)]
mod tests;

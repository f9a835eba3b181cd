//! A handle on one `/proc/PID` directory that stays bound to that process.
//!
//! Once the directory fd is open, every read is `openat`/`readlinkat` relative to it. If
//! the process exits (and its PID is reused), those reads fail with `ESRCH`/`ENOENT`
//! instead of returning the new process's data. Nothing here reads `/proc/PID/...` by path.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{openat, readlinkat, readlinkat_raw, Dir, Mode, OFlags, CWD};
use rustix::io::Errno;
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
    ///
    /// procfs renders such a file in one go when the first read is large enough, so one
    /// 4 KiB read usually gets all of it (no `fstat`, no growing buffer).
    pub fn read_to_string(&self, name: &str) -> io::Result<String> {
        self.read(name, false)
    }

    /// [`Self::read_to_string`] for a file procfs renders as a single record (`stat`,
    /// `status`, `cgroup`: `single_open` in the kernel): a first read that is short of the
    /// buffer and ends a line is then the whole file, and the read that would return 0 is
    /// skipped. (A file of many records, such as `smaps`, can read short mid-file.)
    pub fn read_single_record(&self, name: &str) -> io::Result<String> {
        self.read(name, true)
    }

    fn read(&self, name: &str, single_record: bool) -> io::Result<String> {
        const FIRST_READ: usize = 4096;
        let file = openat(
            &self.dir,
            name,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut buf = [0u8; FIRST_READ];
        let mut bytes = Vec::new();
        let mut first = true;
        loop {
            let n = rustix::io::read(&file, &mut buf)?;
            if n == 0 {
                break;
            }
            let chunk = buf.get(..n).unwrap_or_default();
            bytes.extend_from_slice(chunk);
            if single_record && first && n < FIRST_READ && chunk.last() == Some(&b'\n') {
                break;
            }
            first = false;
        }
        String::from_utf8(bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not utf-8"))
    }

    /// Identity of the file `name` names, following magic links such as `exe` (`statx`
    /// through the directory: no open, no close).
    pub fn file_id(&self, name: &str) -> io::Result<crate::exe::FileId> {
        let st = rustix::fs::statat(&self.dir, name, rustix::fs::AtFlags::empty())?;
        Ok(crate::exe::FileId::from_stat(&st))
    }

    /// `readlinkat` below the directory; non-UTF-8 bytes are replaced.
    pub fn readlink(&self, name: &str) -> io::Result<String> {
        let target = readlinkat(&self.dir, name, Vec::new())?;
        Ok(target.to_string_lossy().into_owned())
    }

    /// The fd number through which this process holds `socket:[inode]`, if any.
    ///
    /// This is the hot loop of caller identification (one `readlinkat` per open fd of
    /// every candidate), so it allocates nothing per fd: links are read relative to the
    /// `fd` directory into a stack buffer and compared as bytes.
    pub fn find_socket_fd(&self, inode: u64) -> io::Result<Option<u32>> {
        match self.scan_fds(inode)? {
            Some(fd) => Ok(Some(fd)),
            None => {
                // A process that exited during the listing must not look like "not a
                // holder" silently when it was one; re-probing surfaces ESRCH.
                self.parent_pid()?;
                Ok(None)
            }
        }
    }

    /// [`Self::find_socket_fd`], trying the fds in `likely` first: one `readlinkat` each
    /// instead of listing the fd table and reading every link, which is most of the cost of
    /// confirming a holder (and grows with its fd count). The answer means the same: an fd
    /// is returned only when its link is `socket:[inode]` now. When no likely fd is the
    /// socket (or one cannot be read), the whole table is scanned as before.
    pub fn find_socket_fd_trying(&self, inode: u64, likely: &[u32]) -> io::Result<Option<u32>> {
        let wanted = SocketLink::new(inode);
        for &fd in likely {
            if wanted.matches_at(&self.dir, fd_path(fd).as_str()) == Ok(true) {
                return Ok(Some(fd));
            }
        }
        self.find_socket_fd(inode)
    }

    /// [`Self::find_socket_fd`] for the ancestor walk: `Err(ppid)` when this process does
    /// not hold the socket (the parent read doubles as the liveness probe).
    pub fn socket_fd_or_parent(&self, inode: u64) -> io::Result<Result<u32, u32>> {
        match self.scan_fds(inode)? {
            Some(fd) => Ok(Ok(fd)),
            None => Ok(Err(self.parent_pid()?)),
        }
    }

    fn scan_fds(&self, inode: u64) -> io::Result<Option<u32>> {
        let fd_dir = openat(
            &self.dir,
            "fd",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let wanted = SocketLink::new(inode);
        let mut dir = Dir::new(fd_dir)?;
        while let Some(entry) = dir.read() {
            let entry = entry?;
            let name = entry.file_name();
            let Some(fd) = parse_fd(name.to_bytes()) else {
                continue;
            };
            match wanted.matches_at(dir.fd()?, name) {
                Ok(true) => return Ok(Some(fd)),
                Ok(false) => {}
                // Every fd of a process is behind the same ptrace access check: one
                // refusal means none of them can be read, so stop here.
                Err(e) if e == Errno::ACCESS || e == Errno::PERM => break,
                // An fd closed since the listing is not an error, just not ours.
                Err(_) => {}
            }
        }
        Ok(None)
    }

    /// Whether fd `fd` still is `socket:[inode]`; errors when the process is gone.
    pub fn fd_is_socket(&self, fd: u32, inode: u64) -> io::Result<bool> {
        Ok(SocketLink::new(inode).matches_at(&self.dir, fd_path(fd).as_str())?)
    }

    /// The parent pid, from `stat` (smaller and cheaper to render than `status`).
    pub fn parent_pid(&self) -> io::Result<u32> {
        let stat = self.read_single_record("stat")?;
        parse_stat_ppid(&stat)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unparsable stat"))
    }

    /// When the process started, in clock ticks since boot (`stat` field 22).
    pub fn start_ticks(&self) -> io::Result<u64> {
        let stat = self.read_single_record("stat")?;
        parse_stat_start(&stat)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unparsable stat"))
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

/// A short ASCII text rendered into a buffer on the stack (no allocation).
struct StackText<const N: usize> {
    text: [u8; N],
    len: usize,
}

impl<const N: usize> StackText<N> {
    /// `args` rendered; the callers size `N` for the longest text they write.
    fn new(args: std::fmt::Arguments<'_>) -> Self {
        let mut text = [0u8; N];
        let mut cursor = std::io::Cursor::new(&mut text[..]);
        let _ = cursor.write_fmt(args);
        let len = usize::try_from(cursor.position()).unwrap_or(0);
        Self { text, len }
    }

    fn as_bytes(&self) -> &[u8] {
        self.text.get(..self.len).unwrap_or_default()
    }

    fn as_str(&self) -> &str {
        // Only ASCII is written.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

/// `fd/N`, the link of one fd below a `/proc/PID` directory (3 + 10 digits fit in 16).
fn fd_path(fd: u32) -> StackText<16> {
    StackText::new(format_args!("fd/{fd}"))
}

/// `socket:[INODE]`, the target of an fd link to a socket, rendered once per search
/// (8 + 20 digits + 1 fit in 32).
struct SocketLink(StackText<32>);

impl SocketLink {
    fn new(inode: u64) -> Self {
        Self(StackText::new(format_args!("socket:[{inode}]")))
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Whether the link `name` below `dir` points at this socket. A longer target fills
    /// the buffer and so can never compare equal.
    fn matches_at(&self, dir: impl AsFd, name: impl rustix::path::Arg) -> rustix::io::Result<bool> {
        let mut buf = [0u8; 48];
        let len = readlinkat_raw(dir, name, &mut buf)?;
        Ok(buf.get(..len) == Some(self.as_bytes()))
    }
}

/// The fourth field of `/proc/PID/stat`; the command name before it is in parentheses and
/// may itself contain spaces and parentheses, so fields are counted after the last `)`.
fn parse_stat_ppid(stat: &str) -> Option<u32> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Field 22, `starttime`: the 20th field after the command name's closing parenthesis
/// (the name itself may hold spaces and parentheses).
fn parse_stat_start(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// An `fd` directory entry name as an fd number (`.` and `..` are not).
fn parse_fd(name: &[u8]) -> Option<u32> {
    if name.is_empty() || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name).ok()?.parse().ok()
}

#[cfg(test)]
mod tests;

//! Who is on the other end of a Unix stream socket: `SO_PEERCRED` and
//! `SO_PEERGROUPS` (the credentials and supplementary groups the kernel
//! recorded at `connect`; Linux 4.13+). Only where `SO_PEERGROUPS` is
//! missing are the groups read from `/proc/PID/status` through a
//! pidfd-checked directory. The admin socket trusts only this, never what a
//! client says.

use crate::procfs::status::parse_status;
use crate::procfs::ProcDir;
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

/// The peer of an admin connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCredentials {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups of the peer process (may be empty when the
    /// process is gone; the primary gid is always known).
    pub groups: Vec<u32>,
    /// True when `groups` are the kernel's record from `connect`
    /// (`SO_PEERGROUPS`), or came from the live peer process whose
    /// credentials still matched `SO_PEERCRED`'s.
    pub groups_verified: bool,
}

/// `SO_PEERCRED` of a connected Unix socket, and the peer's groups.
///
/// The groups are read from `/proc/PID/status` of the pid the kernel
/// recorded. If that process is gone, or its real/effective uid or gid no
/// longer match what the kernel recorded (PID reuse, or it changed
/// credentials), the supplementary groups are left empty: a caller is never
/// given groups it may not have.
pub fn peer_credentials(fd: impl AsFd) -> io::Result<PeerCredentials> {
    let cred = rustix::net::sockopt::socket_peercred(fd.as_fd())?;
    let pid = u32::try_from(cred.pid.as_raw_nonzero().get()).unwrap_or(0);
    let uid = cred.uid.as_raw();
    let gid = cred.gid.as_raw();
    if let Some(groups) = peer_groups(fd.as_fd())? {
        return Ok(PeerCredentials {
            pid,
            uid,
            gid,
            groups,
            groups_verified: true,
        });
    }
    let mut groups = Vec::new();
    let mut verified = false;
    if pid != 0 {
        if let Ok(dir) = ProcDir::open(Path::new("/proc"), pid, true) {
            if let Some(status) = dir
                .read_to_string("status")
                .ok()
                .as_deref()
                .and_then(parse_status)
            {
                if (status.ruid == uid || status.euid == uid)
                    && (status.egid == gid || status.rgid == gid)
                {
                    groups = status.groups;
                    verified = true;
                }
            }
        }
    }
    Ok(PeerCredentials {
        pid,
        uid,
        gid,
        groups,
        groups_verified: verified,
    })
}

/// Most supplementary groups a process can have (`NGROUPS_MAX`).
const MAX_GROUPS: usize = 65_536;

/// `getsockopt(SO_PEERGROUPS)`: `Ok(None)` when the kernel does not have it.
#[allow(
    unsafe_code,
    reason = "rustix has no SO_PEERGROUPS; one getsockopt, bounds checked"
)]
fn peer_groups(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<Option<Vec<u32>>> {
    use std::os::fd::AsRawFd;
    let gid_size = std::mem::size_of::<libc::gid_t>();
    let mut buf: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = libc::socklen_t::try_from(buf.len() * gid_size)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `buf` is a live, writable allocation of `len` bytes (its
        // length times the size of `gid_t`), and the kernel writes at most
        // `len` bytes into it and stores the size it wrote (or needs) in
        // `len`; `fd` is a socket borrowed for the duration of the call.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                buf.as_mut_ptr().cast::<libc::c_void>(),
                &mut len,
            )
        };
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if rc == 0 {
            buf.truncate(len.min(buf.len() * gid_size) / gid_size);
            return Ok(Some(buf));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            // Too small: the kernel said how much it needs.
            Some(libc::ERANGE) if len / gid_size > buf.len() && len / gid_size <= MAX_GROUPS => {
                buf.resize(len / gid_size, 0);
            }
            Some(libc::ENOPROTOOPT) => return Ok(None),
            _ => return Err(err),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_socketpair_peer_is_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let cred = peer_credentials(&a).unwrap();
        assert_eq!(cred.pid, std::process::id());
        assert_eq!(cred.uid, crate::effective_uid());
        assert!(cred.groups_verified);
        // The kernel's record of this process's supplementary groups.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let mine: Vec<u32> = status
            .lines()
            .find_map(|l| l.strip_prefix("Groups:"))
            .unwrap()
            .split_whitespace()
            .map(|g| g.parse().unwrap())
            .collect();
        let mut got = cred.groups.clone();
        got.sort_unstable();
        let mut want = mine;
        want.sort_unstable();
        assert_eq!(got, want);
    }
}

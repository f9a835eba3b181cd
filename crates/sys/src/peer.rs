//! Who is on the other end of a Unix stream socket: `SO_PEERCRED` (the
//! credentials the kernel recorded at `connect`), plus the peer's
//! supplementary groups read from `/proc/PID/status` through a pidfd-checked
//! directory. The admin socket trusts only this, never what a client says.

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
    /// True when `groups` came from the live peer process and its
    /// credentials there still matched `SO_PEERCRED`'s.
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
    let mut groups = Vec::new();
    let mut verified = false;
    if pid != 0 {
        if let Ok(dir) = ProcDir::open(Path::new("/proc"), pid, true) {
            if let Some(status) = dir.read_to_string("status").ok().as_deref().and_then(parse_status) {
                if (status.ruid == uid || status.euid == uid) && (status.egid == gid || status.rgid == gid) {
                    groups = status.groups;
                    verified = true;
                }
            }
        }
    }
    Ok(PeerCredentials { pid, uid, gid, groups, groups_verified: verified })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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
    }
}

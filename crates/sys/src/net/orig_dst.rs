//! `SO_ORIGINAL_DST`: where a connection redirected by NAT was originally headed.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::BorrowedFd;

use rustix::io::Errno;
use rustix::net::{getsockname, sockopt};

/// `SO_ORIGINAL_DST` of an accepted IPv4 socket: `Some` when the connection was redirected
/// by NAT, `None` when it was not.
///
/// Without a conntrack entry the kernel answers `ENOENT`; with an entry but no NAT it
/// answers the socket's own local address. Both mean "not redirected".
pub fn original_dst(sock: BorrowedFd<'_>) -> io::Result<Option<SocketAddrV4>> {
    let orig = match sockopt::ip_original_dst(sock) {
        Ok(addr) => addr,
        Err(e) if e == Errno::NOENT || e == Errno::NOPROTOOPT => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let local = getsockname(sock)?;
    let local = SocketAddr::try_from(local).ok();
    if local == Some(SocketAddr::V4(orig)) {
        return Ok(None);
    }
    Ok(Some(orig))
}

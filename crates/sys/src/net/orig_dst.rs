//! `SO_ORIGINAL_DST` (and `IP6T_SO_ORIGINAL_DST`): where a connection
//! redirected by NAT was originally headed.

use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;

use rustix::io::Errno;
use rustix::net::{getsockname, sockopt};

/// The original destination of an accepted TCP socket of either family:
/// `Some` when the connection was redirected by NAT, `None` when it was not.
///
/// Without a conntrack entry the kernel answers `ENOENT`; with an entry but no NAT it
/// answers the socket's own local address. Both mean "not redirected". An IPv6 socket is
/// asked with `IP6T_SO_ORIGINAL_DST` (the same number, at `SOL_IPV6`).
pub fn original_dst(sock: BorrowedFd<'_>) -> io::Result<Option<SocketAddr>> {
    let local = SocketAddr::try_from(getsockname(sock)?).ok();
    let orig = match local {
        Some(SocketAddr::V6(_)) => sockopt::ipv6_original_dst(sock).map(SocketAddr::V6),
        _ => sockopt::ip_original_dst(sock).map(SocketAddr::V4),
    };
    let orig = match orig {
        Ok(addr) => addr,
        Err(e) if e == Errno::NOENT || e == Errno::NOPROTOOPT => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if local == Some(orig) {
        return Ok(None);
    }
    Ok(Some(orig))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use std::os::fd::AsFd;

    /// A connection that was not redirected has no original destination,
    /// for either family (the IPv6 one is asked with `IP6T_SO_ORIGINAL_DST`).
    #[test]
    fn a_direct_connection_has_no_original_destination() {
        for at in ["127.0.0.1:0", "[::1]:0"] {
            let l = std::net::TcpListener::bind(at).unwrap();
            let _client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (accepted, _) = l.accept().unwrap();
            assert_eq!(super::original_dst(accepted.as_fd()).unwrap(), None, "{at}");
        }
    }
}

//! Sockets carrying a firewall mark.
//!
//! The gate's own connections to IMDS are the only ones nftables lets
//! through; they are told apart by a socket mark *and* the socket's owner,
//! uid 0. Setting the mark needs CAP_NET_ADMIN or (since Linux 5.17)
//! CAP_NET_RAW, which non-root processes may hold, so the firewall does not
//! trust the mark alone; the gate's marked sockets are made by root.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

/// A new non-blocking, close-on-exec TCP socket for `addr`'s family with
/// `SO_MARK` set, not yet connected.
pub fn marked_tcp_socket(addr: &SocketAddr, mark: u32) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let socket = Socket::new(
        domain,
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_mark(mark)?;
    socket.set_tcp_nodelay(true)?;
    Ok(socket.into())
}

//! Upstream connections started by one process and finished by another: the
//! broker (which may set socket marks) starts the connect, the worker waits
//! for it to complete.

use socket2::{SockRef, Socket};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};

/// A non-blocking TCP socket to `addr` with `SO_MARK` `mark` whose connect
/// has been started (it may still be in progress). Needs CAP_NET_ADMIN.
pub fn start_marked_connect(addr: &SocketAddr, mark: u32) -> io::Result<OwnedFd> {
    let socket = Socket::from(crate::mark::marked_tcp_socket(addr, mark)?);
    match socket.connect(&(*addr).into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// The `SO_MARK` of a socket.
pub fn socket_mark(socket: impl AsFd) -> io::Result<u32> {
    SockRef::from(&socket).mark()
}

/// Whether `socket` is a TCP stream socket (what a passed upstream
/// connection must be).
pub fn is_tcp_stream(socket: impl AsFd) -> io::Result<bool> {
    let s = SockRef::from(&socket);
    Ok(s.r#type()? == socket2::Type::STREAM
        && matches!(s.domain()?, socket2::Domain::IPV4 | socket2::Domain::IPV6))
}

#[cfg(test)]
mod tests;

//! Messages between gatehouse's two processes (see `docs/architecture.md`,
//! "Privilege separation"): a `SOCK_SEQPACKET` socketpair keeps message
//! boundaries, so one send is one request and a short read cannot split one,
//! and `SCM_RIGHTS` carries sockets from one process to the other.

use rustix::net::{
    recvmsg, sendmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage,
    RecvFlags, ReturnFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketFlags,
    SocketType,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// Descriptors one message may carry (the broker's hello: the listener, the
/// event socket and the IPv6 listener).
pub const MAX_FDS_PER_MESSAGE: usize = 3;

/// One received message and the descriptors that came with it (close-on-exec).
#[derive(Debug)]
pub struct Message {
    pub bytes: Vec<u8>,
    pub fds: Vec<OwnedFd>,
}

/// A connected pair of close-on-exec `AF_UNIX` `SOCK_SEQPACKET` sockets.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(socketpair(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Send `bytes` (not empty: an empty message reads as end of stream) as one
/// message, with `fds` attached.
pub fn send_message(socket: impl AsFd, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if bytes.is_empty() || fds.len() > MAX_FDS_PER_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a message needs a body and at most three descriptors",
        ));
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_MESSAGE))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::other(
            "descriptors do not fit the control buffer",
        ));
    }
    let sent = loop {
        match sendmsg(
            socket.as_fd(),
            &[IoSlice::new(bytes)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    if sent != bytes.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "message sent in part",
        ));
    }
    Ok(())
}

/// Receive one message of at most `max` bytes. `Ok(None)`: the other end is
/// closed. A longer message, or one with more descriptors than
/// [`MAX_FDS_PER_MESSAGE`], is an error (its descriptors are closed).
pub fn recv_message(socket: impl AsFd, max: usize) -> io::Result<Option<Message>> {
    let mut bytes = vec![0u8; max];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_MESSAGE))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = loop {
        let mut iov = [IoSliceMut::new(&mut bytes)];
        match recvmsg(
            socket.as_fd(),
            &mut iov,
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received_fds) = message {
            fds.extend(received_fds);
        }
    }
    if received
        .flags
        .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message larger than {max} bytes or with too many descriptors"),
        ));
    }
    if received.bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    bytes.truncate(received.bytes);
    Ok(Some(Message { bytes, fds }))
}

/// Make receives on `socket` give up after `timeout` (`None`: wait forever);
/// a receive that times out fails with `WouldBlock`.
pub fn set_receive_timeout(socket: impl AsFd, timeout: Option<Duration>) -> io::Result<()> {
    rustix::net::sockopt::set_socket_timeout(socket, rustix::net::sockopt::Timeout::Recv, timeout)?;
    Ok(())
}

#[cfg(test)]
mod tests;

/// Shut `socket` down both ways: the peer reads end of file at once, and a
/// thread of ours blocked reading it wakes with end of file too (closing our
/// descriptor would do neither while another thread still holds it).
pub fn shutdown_socket(socket: impl AsFd) -> io::Result<()> {
    rustix::net::shutdown(socket.as_fd(), rustix::net::Shutdown::Both).map_err(io::Error::from)
}

//! `SOCK_DIAG_BY_FAMILY` exact lookups: the uid and inode of the client's TCP socket.
//!
//! The request names the client's own socket: source = the client's address (the peer
//! seen on accept), destination = where the client believes it is connected (the NAT
//! original destination, or the listener's address when not redirected). The uid is the
//! socket's owner as the kernel recorded it at creation (what nftables' `meta skuid` sees);
//! passing the fd to another process does not change it.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::time::Duration;

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::Socket;

/// Errors of the sock_diag lookup.
#[derive(Debug, thiserror::Error)]
pub enum SysError {
    #[error("sock_diag netlink i/o failed")]
    Netlink(#[source] io::Error),
    #[error("sock_diag reply could not be decoded: {0}")]
    Decode(String),
    #[error("sock_diag answered with error code {0}")]
    Kernel(i32),
    #[error("addresses `{src}` and `{dst}` are of different families")]
    MixedFamilies { src: SocketAddr, dst: SocketAddr },
}

/// The kernel's record of a socket: who created it and its inode (`socket:[INODE]`).
///
/// `inode` is 0 for sockets no process holds any more (e.g. `TIME_WAIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOwner {
    pub uid: u32,
    pub inode: u64,
    /// The socket's cookie (`SO_COOKIE`; unique while the system runs).
    pub cookie: u64,
}

/// Upper bound on datagrams read for one request; an exact lookup answers with one.
const MAX_REPLIES: usize = 8;
/// The kernel answers synchronously; the timeout only guards against a wedged socket.
const RECV_TIMEOUT: Duration = Duration::from_secs(2);
/// `INET_DIAG_NOCOOKIE`: match on the 4-tuple alone.
const NO_COOKIE: [u8; 8] = [0xff; 8];

/// sock_diag lookup of the client's socket by exact 4-tuple, any TCP state.
///
/// `src` is the client's address (the peer seen on accept), `dst` the original
/// destination if redirected, else the listener's local address. IPv4, IPv6 and
/// v4-mapped IPv6 addresses (as a dual-stack listener reports them) are accepted.
/// `Ok(None)` when no such socket exists.
pub fn socket_owner(src: SocketAddr, dst: SocketAddr) -> Result<Option<SocketOwner>, SysError> {
    let (src, dst) = normalise(src, dst)?;
    let mut conn = match CACHED.with(|c| c.borrow_mut().take()) {
        Some(conn) => conn,
        None => DiagSocket {
            socket: open_socket().map_err(SysError::Netlink)?,
            sequence: 0,
        },
    };
    conn.sequence = conn.sequence.wrapping_add(1);
    let answer = lookup(&conn, src, dst)?;
    // Only a socket whose exchange completed goes back: nothing of it is left unread.
    CACHED.with(|c| *c.borrow_mut() = Some(conn));
    Ok(answer)
}

/// A netlink socket kept per thread: opening one costs five syscalls, more than the
/// lookup itself. Replies carry the request's sequence number, so a late reply to an
/// earlier, abandoned request is never taken for the current one.
struct DiagSocket {
    socket: Socket,
    sequence: u32,
}

thread_local! {
    static CACHED: RefCell<Option<DiagSocket>> = const { RefCell::new(None) };
}

fn lookup(
    conn: &DiagSocket,
    src: SocketAddr,
    dst: SocketAddr,
) -> Result<Option<SocketOwner>, SysError> {
    let request = build_request(src, dst, conn.sequence);
    conn.socket.send(&request, 0).map_err(SysError::Netlink)?;
    let mut buf = [0u8; 8192];
    for _ in 0..MAX_REPLIES {
        let len = conn
            .socket
            .recv(&mut &mut buf[..], 0)
            .map_err(SysError::Netlink)?;
        let mut data = buf.get(..len).unwrap_or_default();
        while !data.is_empty() {
            let msg = NetlinkMessage::<SockDiagMessage>::deserialize(data)
                .map_err(|e| SysError::Decode(e.to_string()))?;
            let msg_len = usize::try_from(msg.header.length).unwrap_or(0);
            if msg.header.sequence_number == conn.sequence {
                match msg.payload {
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(resp)) => {
                        let id = &resp.header.socket_id;
                        if id.source_port == src.port() && id.destination_port == dst.port() {
                            return Ok(Some(SocketOwner {
                                uid: resp.header.uid,
                                inode: u64::from(resp.header.inode),
                                cookie: cookie_of(&id.cookie),
                            }));
                        }
                    }
                    NetlinkPayload::Error(err) => match err.code {
                        None => {}
                        Some(code) if code.get() == -enoent() => return Ok(None),
                        Some(code) => return Err(SysError::Kernel(code.get())),
                    },
                    NetlinkPayload::Done(_) => return Ok(None),
                    _ => {}
                }
            }
            if msg_len == 0 {
                break;
            }
            data = data.get(msg_len..).unwrap_or_default();
        }
    }
    Ok(None)
}

/// `idiag_cookie` is two host-order u32s, low half first.
fn cookie_of(bytes: &[u8; 8]) -> u64 {
    let half = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map_or(0, u32::from_ne_bytes)
    };
    u64::from(half(0)) | (u64::from(half(4)) << 32)
}

fn enoent() -> i32 {
    rustix::io::Errno::NOENT.raw_os_error()
}

/// A sock_diag netlink socket, bound, with a receive timeout. (Also `destroy.rs`'s.)
pub(crate) fn open_socket() -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&netlink_sys::SocketAddr::new(0, 0))?;
    rustix::net::sockopt::set_socket_timeout(
        socket.as_fd(),
        rustix::net::sockopt::Timeout::Recv,
        Some(RECV_TIMEOUT),
    )?;
    Ok(socket)
}

/// Unmaps v4-mapped IPv6 addresses and checks both sides are the same family.
fn normalise(src: SocketAddr, dst: SocketAddr) -> Result<(SocketAddr, SocketAddr), SysError> {
    let unmap = |a: SocketAddr| match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    };
    let (s, d) = (unmap(src), unmap(dst));
    if s.is_ipv4() != d.is_ipv4() {
        return Err(SysError::MixedFamilies { src, dst });
    }
    Ok((s, d))
}

fn build_request(src: SocketAddr, dst: SocketAddr, sequence: u32) -> Vec<u8> {
    let (family, mut socket_id) = if src.is_ipv4() {
        (AF_INET, SocketId::new_v4())
    } else {
        (AF_INET6, SocketId::new_v6())
    };
    socket_id.source_port = src.port();
    socket_id.destination_port = dst.port();
    socket_id.source_address = src.ip();
    socket_id.destination_address = dst.ip();
    socket_id.cookie = NO_COOKIE;

    let mut header = NetlinkHeader::default();
    // An exact lookup: NLM_F_REQUEST without NLM_F_DUMP.
    header.flags = NLM_F_REQUEST;
    header.sequence_number = sequence;
    let mut packet = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id,
        })
        .into(),
    );
    packet.finalize();
    let mut buf = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

//! Cutting sessions: `SOCK_DESTROY` on every socket of one local port and one peer, what
//! `ss -K` does.
//!
//! Closing a just-in-time port only stops *new* connections: conntrack lets established
//! ones through, and deleting their conntrack entries does not help either — the server's
//! next packet recreates the entry as established. Destroying the server's sockets does:
//! the kernel closes them (a TCP socket sends a reset) and the process holding them sees
//! `ECONNABORTED` on its next call.
//!
//! The sockets are found with one sock_diag dump per address family (every state) and
//! filtered here, rather than asked for by exact 4-tuple: the peer's port is not known.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::{SockDiagDestroy, SockDiagMessage};
use netlink_sys::Socket;

/// A dump datagram is at most a few pages; a shorter buffer would truncate it.
const RECV_BUFFER: usize = 1 << 16;

/// Destroy every socket in this network namespace whose local port is `local_port`, protocol
/// `proto` (IPPROTO_TCP/UDP as u8), and whose remote address is `peer` (v4, v6, and v4-mapped
/// v6 for v4 peers) — what `ss -K` does. Needs CAP_NET_ADMIN and a kernel with
/// CONFIG_INET_DIAG_DESTROY. Returns how many were destroyed.
///
/// A socket that closes by itself between the dump and its destruction is not counted.
/// Only sockets with a remote address are found: a listener or an unconnected UDP socket
/// has none, and is never destroyed — an unspecified or multicast `peer` (which would
/// match them, or nobody) is refused.
pub fn destroy_sockets(local_port: u16, proto: u8, peer: IpAddr) -> io::Result<usize> {
    let peer = peer.to_canonical();
    if peer.is_unspecified() || peer.is_multicast() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{peer}` is not one peer's address: no sessions are cut"),
        ));
    }
    let mut conn = Diag::open()?;
    let mut targets = Vec::new();
    let families: &[u8] = match peer {
        // A v4 peer also reaches dual-stack (AF_INET6) sockets, as ::ffff:a.b.c.d.
        IpAddr::V4(_) => &[AF_INET, AF_INET6],
        IpAddr::V6(_) => &[AF_INET6],
    };
    for &family in families {
        for id in conn.dump(family, proto)? {
            if id.source_port == local_port && same_peer(id.destination_address, peer) {
                targets.push((family, id));
            }
        }
    }
    let mut destroyed = 0;
    for (family, id) in targets {
        if conn.destroy(family, proto, id)? {
            destroyed += 1;
        }
    }
    Ok(destroyed)
}

/// Whether a socket's remote address `remote` is `peer` (already canonical).
fn same_peer(remote: IpAddr, peer: IpAddr) -> bool {
    remote.to_canonical() == peer
}

/// A sock_diag netlink socket and the sequence number of its last request.
struct Diag {
    socket: Socket,
    sequence: u32,
    buf: Vec<u8>,
}

impl Diag {
    fn open() -> io::Result<Diag> {
        let socket = crate::net::sock_diag::open_socket()?;
        Ok(Diag {
            socket,
            sequence: 0,
            buf: vec![0u8; RECV_BUFFER],
        })
    }

    /// Every `proto` socket of `family`, in every state.
    fn dump(&mut self, family: u8, proto: u8) -> io::Result<Vec<SocketId>> {
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        let socket_id = if family == AF_INET {
            SocketId::new_v4()
        } else {
            SocketId::new_v6()
        };
        let request = SockDiagMessage::InetRequest(inet_request(family, proto, socket_id));
        self.send(request, NLM_F_REQUEST | NLM_F_DUMP)?;
        let mut found = Vec::new();
        self.receive(sequence, |payload| match payload {
            NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(resp)) => {
                found.push(resp.header.socket_id);
                None
            }
            NetlinkPayload::Done(_) => Some(Ok(std::mem::take(&mut found))),
            NetlinkPayload::Error(err) => err.code.map(|code| Err(dump_error(proto, code.get()))),
            _ => None,
        })
    }

    /// Destroy the socket `id` names exactly (its cookie included, so a socket that
    /// took the same 4-tuple since the dump is left alone). `Ok(false)`: it is gone.
    fn destroy(&mut self, family: u8, proto: u8, id: SocketId) -> io::Result<bool> {
        self.sequence = self.sequence.wrapping_add(1);
        let sequence = self.sequence;
        let request = SockDiagDestroy::new(SockDiagMessage::InetRequest(inet_request(
            family, proto, id,
        )));
        self.send(request, NLM_F_REQUEST | NLM_F_ACK)?;
        self.receive(sequence, |payload| match payload {
            NetlinkPayload::Error(err) => Some(match err.code.map(|c| c.get()) {
                None => Ok(true),
                Some(code) if -code == errno(rustix::io::Errno::NOENT) => Ok(false),
                Some(code) => Err(destroy_error(code)),
            }),
            _ => None,
        })
    }

    /// Read replies until `on_reply`, given the payload of each message answering
    /// request `sequence` (others are skipped), returns the outcome.
    fn receive<T>(
        &mut self,
        sequence: u32,
        mut on_reply: impl FnMut(NetlinkPayload<SockDiagMessage>) -> Option<io::Result<T>>,
    ) -> io::Result<T> {
        loop {
            let len = self.socket.recv(&mut &mut self.buf[..], 0)?;
            let mut data = self.buf.get(..len).unwrap_or_default();
            while !data.is_empty() {
                let msg = NetlinkMessage::<SockDiagMessage>::deserialize(data)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let msg_len = usize::try_from(msg.header.length).unwrap_or(0);
                if msg.header.sequence_number == sequence {
                    if let Some(outcome) = on_reply(msg.payload) {
                        return outcome;
                    }
                }
                if msg_len == 0 {
                    break;
                }
                data = data.get(msg_len..).unwrap_or_default();
            }
        }
    }

    fn send<M>(&self, message: M, flags: u16) -> io::Result<()>
    where
        M: netlink_packet_core::NetlinkSerializable,
        NetlinkPayload<M>: From<M>,
    {
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        Ok(())
    }
}

fn inet_request(family: u8, proto: u8, socket_id: SocketId) -> InetRequest {
    InetRequest {
        family,
        protocol: proto,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::all(),
        socket_id,
    }
}

fn errno(e: rustix::io::Errno) -> i32 {
    e.raw_os_error()
}

fn dump_error(proto: u8, code: i32) -> io::Error {
    let os = io::Error::from_raw_os_error(-code);
    if -code == errno(rustix::io::Errno::NOENT) {
        return io::Error::new(
            os.kind(),
            format!(
                "the kernel cannot list protocol {proto} sockets ({os}): load its sock_diag \
                 module (`modprobe tcp_diag` or `modprobe udp_diag`)"
            ),
        );
    }
    io::Error::new(
        os.kind(),
        format!("listing sockets with sock_diag failed: {os}"),
    )
}

fn destroy_error(code: i32) -> io::Error {
    let os = io::Error::from_raw_os_error(-code);
    let help = if -code == errno(rustix::io::Errno::OPNOTSUPP) {
        "this kernel cannot destroy sockets: it needs CONFIG_INET_DIAG_DESTROY=y \
         (and `udp_diag` for UDP); until then, cut sessions by restarting the server"
    } else if -code == errno(rustix::io::Errno::PERM) || -code == errno(rustix::io::Errno::ACCESS) {
        "destroying sockets needs CAP_NET_ADMIN in the socket's network namespace: run as root"
    } else {
        "SOCK_DESTROY failed"
    };
    io::Error::new(os.kind(), format!("{help} ({os})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn peers_match_across_v4_mapping() {
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2));
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 77, 0, 2).to_ipv6_mapped());
        let other = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 3));
        let v6 = IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2));
        let cases = [
            (v4, v4, true),
            (mapped, v4, true),
            (other, v4, false),
            (v6, v6, true),
            (v6, v4, false),
            (v4, v6, false),
        ];
        for (remote, peer, want) in cases {
            assert_eq!(same_peer(remote, peer), want, "{remote} vs {peer}");
        }
    }

    #[test]
    fn no_peer_is_not_everyone() {
        // These would match listeners (or nobody): refused before any netlink.
        for peer in ["0.0.0.0", "::", "::ffff:0.0.0.0", "224.0.0.1", "ff02::1"] {
            let e = destroy_sockets(
                22,
                6,
                peer.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            );
            assert_eq!(
                e.map_err(|e| e.kind()),
                Err(io::ErrorKind::InvalidInput),
                "{peer}"
            );
        }
    }

    #[test]
    fn unsupported_destroy_names_the_kernel_option() {
        let e = destroy_error(-errno(rustix::io::Errno::OPNOTSUPP));
        assert!(e.to_string().contains("CONFIG_INET_DIAG_DESTROY"), "{e}");
    }
}

//! The broker's side: answers the worker's requests, strictly, one at a
//! time. It never sees HTTP, only the few fields of [`Ask`].

use super::wire::{Answer, Ask, Reply, Request, MAX_REPLY, MAX_REQUEST};
use gatehouse_sys::{CallerFacts, Identifier, IdentifyOptions};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// IMDS, the destination a redirected connection still names.
const IMDS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)), 80);
/// IMDS's IPv6 address (fd00:ec2::254), port 80.
const IMDS6: SocketAddr = SocketAddr::new(
    IpAddr::V6(std::net::Ipv6Addr::new(
        0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254,
    )),
    80,
);

/// Where the broker opens marked connections to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectTargets {
    /// These addresses only (the upstream's, resolved at start).
    Only(Vec<SocketAddr>),
    /// Any loopback address (an emulator inside the worker, port unknown).
    Loopback,
}

impl ConnectTargets {
    fn allows(&self, addr: &SocketAddr) -> bool {
        match self {
            ConnectTargets::Only(list) => list.contains(addr),
            ConnectTargets::Loopback => addr.ip().is_loopback(),
        }
    }
}

pub struct Broker {
    identifier: Identifier,
    listen: SocketAddr,
    /// The IPv6 listener, when the gate has one: then connections to it and
    /// to IMDS's IPv6 address (redirected to it) are the gate's too.
    listen6: Option<SocketAddr>,
    mark: Option<u32>,
    targets: ConnectTargets,
    /// Just-in-time ports, when the broker keeps the firewall and the
    /// policy protects some.
    ports: Option<std::sync::Arc<crate::jit::ports::PortKeeper>>,
    /// The audit checkpoint key: here, out of reach of the worker.
    checkpoints: Option<crate::checkpoint::LocalSigner>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("listen", &self.listen)
            .field("mark", &self.mark)
            .field("targets", &self.targets)
            .finish()
    }
}

impl Broker {
    /// A broker for a gate listening on `listen`; with `mark`, it opens
    /// connections with that mark (and no other) to `targets`.
    pub fn new(listen: SocketAddr, mark: Option<u32>, targets: ConnectTargets) -> Self {
        Broker {
            identifier: Identifier::new(IdentifyOptions::default()),
            listen,
            listen6: None,
            mark,
            targets,
            ports: None,
            checkpoints: None,
        }
    }

    /// The gate listens on IPv6 at `listen6` too.
    pub fn with_listen6(mut self, listen6: Option<SocketAddr>) -> Self {
        self.listen6 = listen6;
        self
    }

    /// Sign the worker's audit checkpoints with this key.
    pub fn with_checkpoint_key(mut self, key: gatehouse_audit::CheckpointKey) -> Self {
        self.checkpoints = Some(crate::checkpoint::LocalSigner::new(key));
        self
    }

    /// Identify callers with these options (e.g. with the eBPF path's connect records).
    pub fn with_identify_options(mut self, opts: IdentifyOptions) -> Self {
        self.identifier = Identifier::new(opts);
        self
    }

    /// Let the worker open and close these just-in-time ports.
    pub fn with_ports(mut self, ports: std::sync::Arc<crate::jit::ports::PortKeeper>) -> Self {
        self.ports = Some(ports);
        self
    }

    /// Answer requests on `control` until the worker closes its end
    /// (`Ok(())`) or the socket fails.
    ///
    /// A reply that cannot be sent (larger than [`MAX_REPLY`], or refused by
    /// the kernel, e.g. `EMSGSIZE` below a small socket buffer) is answered
    /// with a short refusal instead: one caller's request must never end the
    /// broker, which would take the gate down for everyone.
    pub fn serve(&self, control: impl AsFd) -> io::Result<()> {
        serve_with(control.as_fd(), MAX_REPLY, |bytes, fds| {
            self.answer(bytes, fds)
        })
    }

    /// The reply to one request (and the socket it hands over, if any).
    pub fn answer(&self, bytes: &[u8], attached_fds: usize) -> (Reply, Option<OwnedFd>) {
        let request: Request = match serde_json::from_slice(bytes) {
            Ok(r) if attached_fds == 0 => r,
            Ok(r) => return (refused(r.id, "requests carry no descriptors"), None),
            Err(_) => {
                tracing::warn!("broker: malformed request refused");
                return (refused(0, "malformed request"), None);
            }
        };
        let id = request.id;
        match request.ask {
            Ask::Identify { src, dst, needs } => {
                if let Err(why) = self.check_connection(src, dst) {
                    tracing::warn!(%src, %dst, "broker: identify refused: {why}");
                    return (refused(id, &why.to_string()), None);
                }
                match self.identifier.identify(src, dst, needs) {
                    Ok(facts) => (caller(id, facts), None),
                    Err(e) => (refused(id, &e.to_string()), None),
                }
            }
            Ask::Connect { addr, mark } => {
                if self.mark != Some(mark) {
                    tracing::warn!(mark, "broker: connect with another mark refused");
                    return (
                        refused(id, &format!("mark `{mark:#x}` is not the gate's")),
                        None,
                    );
                }
                if !self.targets.allows(&addr) {
                    tracing::warn!(%addr, "broker: connect to a non-upstream address refused");
                    return (refused(id, &format!("`{addr}` is not the upstream")), None);
                }
                match gatehouse_sys::start_marked_connect(&addr, mark) {
                    Ok(fd) => (
                        Reply {
                            id,
                            answer: Answer::Connecting,
                        },
                        Some(fd),
                    ),
                    Err(e) => (
                        refused(id, &format!("cannot connect to `{addr}`: {e}")),
                        None,
                    ),
                }
            }
            Ask::JitSync { elements } => {
                use crate::jit::ports::PortControl;
                let Some(ports) = &self.ports else {
                    return (refused(id, "this gate keeps no just-in-time ports"), None);
                };
                match ports.sync(&elements) {
                    Ok(summary) => (
                        Reply {
                            id,
                            answer: Answer::JitSynced(summary),
                        },
                        None,
                    ),
                    Err(e) => (refused(id, &e.to_string()), None),
                }
            }
            Ask::JitCut {
                source,
                protocol,
                port,
            } => {
                use crate::jit::ports::PortControl;
                let Some(ports) = &self.ports else {
                    return (refused(id, "this gate keeps no just-in-time ports"), None);
                };
                match ports.cut(source, protocol, port) {
                    Ok(n) => (
                        Reply {
                            id,
                            answer: Answer::JitCut(n),
                        },
                        None,
                    ),
                    Err(e) => (refused(id, &e.to_string()), None),
                }
            }
            Ask::SignCheckpoint {
                head_seq,
                head_hash,
                signed_at,
                rotated_kept,
            } => {
                use crate::checkpoint::CheckpointSigner;
                let Some(signer) = &self.checkpoints else {
                    return (refused(id, "this broker holds no checkpoint key"), None);
                };
                match signer.sign(head_seq, &head_hash, &signed_at, rotated_kept) {
                    Ok(cp) => (
                        Reply {
                            id,
                            answer: Answer::Checkpoint(Box::new(cp)),
                        },
                        None,
                    ),
                    Err(e) => {
                        tracing::warn!(head_seq, "broker: checkpoint refused: {e}");
                        (refused(id, &e), None)
                    }
                }
            }
        }
    }

    /// Only connections to the gate are asked about: to its listener, or to
    /// IMDS (redirected to it by the firewall); with an IPv6 listener, to it
    /// or to IMDS's IPv6 address.
    fn check_connection(&self, src: SocketAddr, dst: SocketAddr) -> Result<(), NotAsked> {
        if src.port() == 0 || src.ip().is_unspecified() {
            return Err(NotAsked::Peer(src));
        }
        let to_listener = dst == self.listen
            || (self.listen.ip().is_unspecified()
                && dst.port() == self.listen.port()
                && !dst.ip().is_unspecified());
        let to_listener6 = self.listen6.is_some() && (Some(dst) == self.listen6 || dst == IMDS6);
        if to_listener || dst == IMDS || to_listener6 {
            Ok(())
        } else {
            Err(NotAsked::Destination(dst))
        }
    }
}

/// A connection the broker is not asked about: identification is only for
/// callers of the gate.
#[derive(Debug, thiserror::Error)]
enum NotAsked {
    #[error("`{0}` is not a peer address")]
    Peer(SocketAddr),
    #[error("`{0}` is not the gate's address")]
    Destination(SocketAddr),
}

/// The loop of [`Broker::serve`], with the answering and the reply limit as
/// parameters so tests can provoke replies too large to send.
pub(super) fn serve_with(
    control: BorrowedFd<'_>,
    max_reply: usize,
    mut answer: impl FnMut(&[u8], usize) -> (Reply, Option<OwnedFd>),
) -> io::Result<()> {
    loop {
        let message = match gatehouse_sys::recv_message(control, MAX_REQUEST) {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(()),
            // Too large: refused below like any malformed request.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => gatehouse_sys::Message {
                bytes: Vec::new(),
                fds: Vec::new(),
            },
            Err(e) => return Err(e),
        };
        let (reply, fd) = answer(&message.bytes, message.fds.len());
        let id = reply.id;
        let (bytes, fd) = match encode(&reply, max_reply) {
            Ok(bytes) => (bytes, fd),
            Err(why) => {
                tracing::warn!(id, "broker: {why}; refused instead");
                (encode_refusal(id, why)?, None)
            }
        };
        let fds: Vec<_> = fd.iter().map(AsFd::as_fd).collect();
        if let Err(e) = gatehouse_sys::send_message(control, &bytes, &fds) {
            tracing::warn!(id, "broker: reply not sent ({e}); refused instead");
            // A socket that cannot take a short message is broken: stop.
            gatehouse_sys::send_message(
                control,
                &encode_refusal(id, "the reply could not be sent")?,
                &[],
            )?;
        }
    }
}

/// The reply as sent, or why it cannot be (the worker reads at most
/// `max_reply` bytes).
fn encode(reply: &Reply, max_reply: usize) -> Result<Vec<u8>, &'static str> {
    let too_large = match reply.answer {
        Answer::Caller(_) => "too many holders",
        _ => "reply too large",
    };
    match serde_json::to_vec(reply) {
        Ok(bytes) if bytes.len() <= max_reply => Ok(bytes),
        Ok(_) => Err(too_large),
        Err(_) => Err("reply could not be encoded"),
    }
}

fn encode_refusal(id: u64, why: &str) -> io::Result<Vec<u8>> {
    serde_json::to_vec(&refused(id, why)).map_err(io::Error::other)
}

fn refused(id: u64, why: &str) -> Reply {
    Reply {
        id,
        answer: Answer::Refused(why.to_owned()),
    }
}

fn caller(id: u64, facts: CallerFacts) -> Reply {
    Reply {
        id,
        answer: Answer::Caller(Box::new(facts)),
    }
}

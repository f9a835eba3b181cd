//! The worker's side of the broker: a blocking request/reply over the
//! control socket, one request at a time.

use super::wire::{Answer, Ask, Reply, Request, MAX_REPLY};
use crate::caller::{CallerError, CallerSource};
use crate::connector::UpstreamSockets;
use crate::jit::ports::PortError;
use gatehouse_sys::{CallerFacts, Needs};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How long one answer may take (a full `/proc` scan on a busy machine).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Late replies to earlier, timed-out requests skipped before giving up.
const MAX_STALE_REPLIES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The broker closed its end: the worker must stop (fail closed).
    #[error("the privileged broker is gone")]
    Gone,
    #[error("talking to the broker failed: {0}")]
    Io(#[source] io::Error),
    /// The broker said no, or identification failed there.
    #[error("{0}")]
    Refused(String),
    /// An answer that does not fit the question.
    #[error("broker protocol error: {0}")]
    Protocol(&'static str),
}

pub struct BrokerClient {
    control: Mutex<OwnedFd>,
    next_id: AtomicU64,
}

impl fmt::Debug for BrokerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerClient").finish_non_exhaustive()
    }
}

impl BrokerClient {
    pub fn new(control: OwnedFd) -> io::Result<Self> {
        gatehouse_sys::set_receive_timeout(&control, Some(ANSWER_TIMEOUT))?;
        Ok(BrokerClient {
            control: Mutex::new(control),
            next_id: AtomicU64::new(1),
        })
    }

    /// Who is behind the connection `src` → `dst`, found by the broker.
    pub fn identify(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        needs: Needs,
    ) -> Result<CallerFacts, BrokerError> {
        match self.ask(Ask::Identify { src, dst, needs })? {
            (Answer::Caller(facts), None) => Ok(*facts),
            (Answer::Refused(why), None) => Err(BrokerError::Refused(why)),
            _ => Err(BrokerError::Protocol(
                "identify answered with something else",
            )),
        }
    }

    /// A socket with `SO_MARK` `mark` whose connect to `addr` has started.
    pub fn connect(&self, addr: SocketAddr, mark: u32) -> Result<OwnedFd, BrokerError> {
        match self.ask(Ask::Connect { addr, mark })? {
            (Answer::Connecting, Some(fd)) => {
                if gatehouse_sys::is_tcp_stream(&fd).map_err(BrokerError::Io)? {
                    Ok(fd)
                } else {
                    Err(BrokerError::Protocol(
                        "the passed descriptor is not a TCP socket",
                    ))
                }
            }
            (Answer::Refused(why), None) => Err(BrokerError::Refused(why)),
            _ => Err(BrokerError::Protocol(
                "connect answered with something else",
            )),
        }
    }

    fn ask(&self, ask: Ask) -> Result<(Answer, Option<OwnedFd>), BrokerError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = serde_json::to_vec(&Request { id, ask })
            .map_err(|_| BrokerError::Protocol("unencodable request"))?;
        let control = match self.control.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        gatehouse_sys::send_message(&*control, &request, &[]).map_err(|e| match e.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => BrokerError::Gone,
            _ => BrokerError::Io(e),
        })?;
        for _ in 0..=MAX_STALE_REPLIES {
            let message = gatehouse_sys::recv_message(&*control, MAX_REPLY)
                .map_err(BrokerError::Io)?
                .ok_or(BrokerError::Gone)?;
            let reply: Reply = serde_json::from_slice(&message.bytes)
                .map_err(|_| BrokerError::Protocol("malformed reply"))?;
            if reply.id != id {
                continue;
            }
            let mut fds = message.fds.into_iter();
            let fd = fds.next();
            if fds.next().is_some() {
                return Err(BrokerError::Protocol("more than one descriptor"));
            }
            return Ok((reply.answer, fd));
        }
        Err(BrokerError::Protocol("no reply to this request"))
    }
}

impl crate::jit::ports::PortControl for BrokerClient {
    fn sync(
        &self,
        desired: &[crate::jit::ports::PortElement],
    ) -> Result<crate::jit::ports::SyncSummary, PortError> {
        match self.ask(Ask::JitSync {
            elements: desired.to_vec(),
        })? {
            (Answer::JitSynced(s), None) => Ok(s),
            (Answer::Refused(why), None) => Err(BrokerError::Refused(why).into()),
            _ => Err(
                BrokerError::Protocol("the broker answered a port sync with something else").into(),
            ),
        }
    }

    fn cut(
        &self,
        source: std::net::IpAddr,
        protocol: gatehouse_policy::Protocol,
        port: u16,
    ) -> Result<usize, PortError> {
        let ask = Ask::JitCut {
            source,
            protocol,
            port,
        };
        match self.ask(ask)? {
            (Answer::JitCut(n), None) => Ok(n),
            (Answer::Refused(why), None) => Err(BrokerError::Refused(why).into()),
            _ => Err(BrokerError::Protocol(
                "the broker answered a session cut with something else",
            )
            .into()),
        }
    }
}

impl crate::checkpoint::CheckpointSigner for BrokerClient {
    fn sign(
        &self,
        head_seq: u64,
        head_hash: &str,
        signed_at: &str,
        rotated_kept: Option<u64>,
    ) -> Result<gatehouse_audit::Checkpoint, String> {
        let ask = Ask::SignCheckpoint {
            head_seq,
            head_hash: head_hash.to_owned(),
            signed_at: signed_at.to_owned(),
            rotated_kept,
        };
        match self.ask(ask).map_err(|e| e.to_string())? {
            (Answer::Checkpoint(cp), None) => Ok(*cp),
            (Answer::Refused(why), None) => Err(why),
            _ => Err("the broker answered a checkpoint with something else".to_owned()),
        }
    }
}

impl CallerSource for BrokerClient {
    fn identify(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        needs: Needs,
    ) -> Result<CallerFacts, CallerError> {
        Ok(BrokerClient::identify(self, src, dst, needs)?)
    }
}

impl UpstreamSockets for BrokerClient {
    fn start_connect(&self, addr: SocketAddr, mark: u32) -> io::Result<OwnedFd> {
        self.connect(addr, mark).map_err(|e| match e {
            BrokerError::Io(e) => e,
            other => io::Error::other(other.to_string()),
        })
    }
}

//! The upstream connector: plain TCP, optionally with a socket mark so the
//! firewall can tell the gate's own IMDS connections from everyone else's.
//!
//! Setting a mark needs CAP_NET_ADMIN. A gate without it (the worker of
//! `gatehouse run --user`) gets its marked sockets from the privileged
//! broker instead: see [`use_upstream_sockets`].

use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

#[derive(Debug, Clone)]
pub struct MarkedConnector {
    pub mark: Option<u32>,
    pub connect_timeout: Duration,
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TokioIo<TcpStream>>> + Send>>;

impl tower_service::Service<http::Uri> for MarkedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let mark = self.mark;
        let timeout = self.connect_timeout;
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "upstream URI has no host")
                })?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(80);
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect();
            let mut last = io::Error::new(io::ErrorKind::NotFound, "upstream host has no address");
            for addr in addrs {
                match tokio::time::timeout(timeout, connect(addr, mark)).await {
                    Ok(Ok(stream)) => return Ok(TokioIo::new(stream)),
                    Ok(Err(e)) => last = e,
                    Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
                }
            }
            Err(last)
        })
    }
}

/// Where marked sockets come from: a socket whose connect to `addr` has
/// started, with `SO_MARK` `mark`.
pub trait UpstreamSockets: Send + Sync {
    fn start_connect(&self, addr: SocketAddr, mark: u32) -> io::Result<OwnedFd>;
}

/// Sockets made here (needs CAP_NET_ADMIN).
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalSockets;

impl UpstreamSockets for LocalSockets {
    fn start_connect(&self, addr: SocketAddr, mark: u32) -> io::Result<OwnedFd> {
        gatehouse_sys::start_marked_connect(&addr, mark)
    }
}

/// Set once, at start, in a process that cannot mark sockets itself.
static SOCKETS: OnceLock<Arc<dyn UpstreamSockets>> = OnceLock::new();

/// From now on every marked upstream socket of this process comes from
/// `sockets`. Whether a process may set socket marks is a property of the
/// process, so this is process-wide; it can be set once (`Err` after that).
pub fn use_upstream_sockets(
    sockets: Arc<dyn UpstreamSockets>,
) -> Result<(), Arc<dyn UpstreamSockets>> {
    SOCKETS.set(sockets)
}

async fn connect(addr: SocketAddr, mark: Option<u32>) -> io::Result<TcpStream> {
    let stream = match mark {
        None => TcpStream::connect(addr).await?,
        Some(mark) => {
            let sockets: Arc<dyn UpstreamSockets> = match SOCKETS.get() {
                Some(s) => Arc::clone(s),
                None => Arc::new(LocalSockets),
            };
            // The broker answers over a blocking socket.
            let fd = tokio::task::spawn_blocking(move || sockets.start_connect(addr, mark))
                .await
                .map_err(io::Error::other)??;
            finish_connect(fd, addr).await?
        }
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Wait for a started connect to complete and check it reached `addr`.
async fn finish_connect(fd: OwnedFd, addr: SocketAddr) -> io::Result<TcpStream> {
    if !gatehouse_sys::is_tcp_stream(&fd)? {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a TCP socket",
        ));
    }
    let std_stream = std::net::TcpStream::from(fd);
    std_stream.set_nonblocking(true)?;
    let stream = TcpStream::from_std(std_stream)?;
    stream.writable().await?;
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    let peer = stream.peer_addr()?;
    if peer != addr {
        return Err(io::Error::other(format!(
            "connected to `{peer}`, not `{addr}`"
        )));
    }
    Ok(stream)
}

//! The upstream connector: plain TCP, optionally with a socket mark so the
//! firewall can tell the gate's own IMDS connections from everyone else's.

use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
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
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "upstream URI has no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(80);
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port)).await?.collect();
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

async fn connect(addr: SocketAddr, mark: Option<u32>) -> io::Result<TcpStream> {
    let stream = match mark {
        None => TcpStream::connect(addr).await?,
        Some(mark) => {
            let fd = gatehouse_sys::marked_tcp_socket(&addr, mark)?;
            let socket = tokio::net::TcpSocket::from_std_stream(std::net::TcpStream::from(fd));
            socket.connect(addr).await?
        }
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

//! Accepting connections: bounded, with header timeouts, one task each.

use crate::handler::ConnInfo;
use crate::Gate;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 512;
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Serve until `shutdown` completes.
pub async fn serve(gate: Arc<Gate>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => return,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let conn = match conn_info(&stream, peer) {
            Some(c) => c,
            None => continue,
        };
        let _ = stream.set_nodelay(true);
        let gate = Arc::clone(&gate);
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |req| {
                let gate = Arc::clone(&gate);
                async move { Ok::<_, Infallible>(gate.handle(conn, req).await) }
            });
            let result = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
}

fn conn_info(stream: &tokio::net::TcpStream, peer: SocketAddr) -> Option<ConnInfo> {
    use std::os::fd::AsFd;
    let local = stream.local_addr().ok()?;
    let original = gatehouse_sys::original_dst(stream.as_fd()).ok().flatten();
    Some(match original {
        Some(dst) if SocketAddr::V4(dst) != local => ConnInfo {
            peer,
            dst: SocketAddr::V4(dst),
            redirected: true,
        },
        _ => ConnInfo {
            peer,
            dst: local,
            redirected: false,
        },
    })
}

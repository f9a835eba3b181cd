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
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections one uid may hold open at once, by default. A flood from one
/// user (or one compromised service) is turned away at accept and cannot
/// starve everyone else of the gate.
pub const MAX_CONNECTIONS_PER_UID: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Serve until `shutdown` completes.
pub async fn serve(gate: Arc<Gate>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_uid = PerUid::new(gate.max_connections_per_uid);
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
        // The socket's owner, from the kernel (about 4 µs); unknown owners
        // share one bucket.
        let owner = gatehouse_sys::socket_owner(conn.peer, conn.dst)
            .ok()
            .flatten()
            .map_or(u32::MAX, |o| o.uid);
        let Some(uid_slot) = per_uid.enter(owner) else {
            crate::metrics::connection_refused("per_uid_limit");
            tracing::warn!(
                uid = owner,
                "connection refused: too many open connections for this uid"
            );
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let gate = Arc::clone(&gate);
        tokio::spawn(async move {
            let _permit = permit;
            let _uid_slot = uid_slot;
            let service = service_fn(move |req| {
                let gate = Arc::clone(&gate);
                async move {
                    // The request runs in a task of its own: if the client
                    // goes away mid-request hyper drops this future, but the
                    // decision, any upstream call and the audit line still
                    // complete — nothing reaches IMDS unrecorded.
                    let handled = tokio::spawn(async move { gate.handle(conn, req).await });
                    Ok::<_, Infallible>(
                        handled
                            .await
                            .unwrap_or_else(|_| crate::handler::internal_error()),
                    )
                }
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

/// Open connections per uid.
#[derive(Clone)]
struct PerUid {
    limit: usize,
    open: Arc<std::sync::Mutex<std::collections::HashMap<u32, usize>>>,
}

/// Holds one of a uid's connection slots until dropped.
struct UidSlot {
    uid: u32,
    open: Arc<std::sync::Mutex<std::collections::HashMap<u32, usize>>>,
}

impl PerUid {
    fn new(limit: usize) -> Self {
        PerUid {
            limit,
            open: Arc::default(),
        }
    }

    fn enter(&self, uid: u32) -> Option<UidSlot> {
        let mut open = match self.open.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let n = open.entry(uid).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(UidSlot {
            uid,
            open: Arc::clone(&self.open),
        })
    }
}

impl Drop for UidSlot {
    fn drop(&mut self) {
        let mut open = match self.open.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(n) = open.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.uid);
            }
        }
    }
}

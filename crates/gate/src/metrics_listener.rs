//! The metrics listener (`gatehouse run --metrics-listen`): `GET /metrics`
//! answers the OpenMetrics text, anything else 404. A listener of its own,
//! off by default and never the IMDS one, so a scrape can neither reach the
//! request path nor be reached through the redirect. Bounded like the
//! gate's: a few connections at once, a header timeout.

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Semaphore;

const MAX_CONNECTIONS: usize = 16;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Prometheus's classic text format, for clients that do not ask for OpenMetrics.
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Where metrics are served: `HOST:PORT` or `unix:/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a metrics address: give `HOST:PORT` (e.g. `127.0.0.1:9925`) or `unix:/path/to/socket`")]
pub struct ParseError(String);

impl std::str::FromStr for MetricsAddr {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.starts_with('/') {
                return Ok(MetricsAddr::Unix(PathBuf::from(path)));
            }
            return Err(ParseError(s.to_owned()));
        }
        s.parse()
            .map(MetricsAddr::Tcp)
            .map_err(|_| ParseError(s.to_owned()))
    }
}

impl std::fmt::Display for MetricsAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricsAddr::Tcp(a) => write!(f, "http://{a}/metrics"),
            MetricsAddr::Unix(p) => write!(f, "unix:{} (GET /metrics)", p.display()),
        }
    }
}

/// A bound metrics listener.
#[derive(Debug)]
pub enum Bound {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, PathBuf),
}

impl Bound {
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Bound::Tcp(l) => l.local_addr().ok(),
            Bound::Unix(..) => None,
        }
    }
}

/// Bind `addr`. A unix socket replaces a stale socket (never another kind
/// of file) and is made 0660: the group of its directory's owner reads it.
pub async fn bind(addr: &MetricsAddr) -> std::io::Result<Bound> {
    match addr {
        MetricsAddr::Tcp(a) => tokio::net::TcpListener::bind(a).await.map(Bound::Tcp),
        MetricsAddr::Unix(path) => {
            use std::os::unix::fs::{FileTypeExt, PermissionsExt};
            match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
                Ok(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        format!("`{}` exists and is not a socket", path.display()),
                    ))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            let l = tokio::net::UnixListener::bind(path)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
            Ok(Bound::Unix(l, path.clone()))
        }
    }
}

fn answer(req: &http::Request<hyper::body::Incoming>) -> http::Response<Full<Bytes>> {
    let (status, ctype, body) = if req.method() != http::Method::GET {
        (
            405,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"GET only\n"),
        )
    } else if req.uri().path() == "/metrics" {
        // Prometheus asks for OpenMetrics in `Accept`; anything else gets
        // the classic format.
        let open = req
            .headers()
            .get_all(http::header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("application/openmetrics-text"));
        let m = crate::metrics::global();
        if open {
            (200, CONTENT_TYPE, Bytes::from(m.encode()))
        } else {
            (200, CLASSIC_CONTENT_TYPE, Bytes::from(m.encode_classic()))
        }
    } else {
        (
            404,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"metrics are at /metrics\n"),
        )
    };
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, ctype)
        .body(Full::new(body))
        .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new())))
}

fn spawn_conn<S>(stream: S, permit: tokio::sync::OwnedSemaphorePermit)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let _permit = permit;
        let service = service_fn(|req| async move { Ok::<_, Infallible>(answer(&req)) });
        let _ = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service)
            .await;
    });
}

/// Serve until the task is dropped (a unix socket's file is removed then).
pub async fn serve(bound: Bound) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let _cleanup = match &bound {
        Bound::Unix(_, p) => Some(RemoveOnDrop(p.clone())),
        Bound::Tcp(_) => None,
    };
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let accepted = match &bound {
            Bound::Tcp(l) => l.accept().await.map(|(s, _)| {
                spawn_conn(s, permit);
            }),
            Bound::Unix(l, _) => l.accept().await.map(|(s, _)| {
                spawn_conn(s, permit);
            }),
        };
        if let Err(e) = accepted {
            tracing::warn!(error = %e, "metrics: accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        let ok = [
            (
                "127.0.0.1:9925",
                MetricsAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 9925))),
            ),
            (
                "[::1]:9925",
                MetricsAddr::Tcp("[::1]:9925".parse().unwrap()),
            ),
            (
                "unix:/run/gatehouse/metrics.sock",
                MetricsAddr::Unix(PathBuf::from("/run/gatehouse/metrics.sock")),
            ),
        ];
        for (s, want) in ok {
            assert_eq!(s.parse::<MetricsAddr>(), Ok(want), "{s}");
        }
        for bad in ["9925", "unix:relative.sock", "localhost", ""] {
            assert!(bad.parse::<MetricsAddr>().is_err(), "{bad}");
        }
    }
}

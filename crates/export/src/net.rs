//! Connections to collectors: TCP, optionally TLS (rustls, ring), with a
//! bounded connect and handshake; and how many written bytes the peer has
//! not acknowledged yet.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

use crate::target::Endpoint;

/// The bundle used when a TLS sink names no `ca`.
pub const SYSTEM_CA: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why a collector could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve `{host}`: {source}")]
    Resolve { host: String, source: io::Error },
    #[error("`{host}` resolves to no address")]
    NoAddress { host: String },
    #[error("cannot connect to {endpoint}: {source}")]
    Connect { endpoint: String, source: io::Error },
    #[error("connecting to {endpoint} timed out after {secs} s")]
    Timeout { endpoint: String, secs: u64 },
    #[error("TLS handshake with {endpoint} failed: {source}")]
    Handshake { endpoint: String, source: io::Error },
    #[error("`{host}` is not a valid TLS server name")]
    ServerName { host: String },
}

/// Why a TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("cannot read the CA certificates `{path}`: {reason}")]
    Ca { path: PathBuf, reason: String },
    #[error("`{path}` holds no usable CA certificate")]
    NoCa { path: PathBuf },
    #[error("TLS setup: {0}")]
    Rustls(String),
}

/// A TLS client configuration trusting the certificates in `ca` (PEM).
pub fn tls_config(ca: &Path) -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    let certs = CertificateDer::pem_file_iter(ca)
        .map_err(|e| TlsConfigError::Ca {
            path: ca.to_path_buf(),
            reason: e.to_string(),
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::Ca {
            path: ca.to_path_buf(),
            reason: e.to_string(),
        })?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsConfigError::NoCa {
            path: ca.to_path_buf(),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A connected stream to a collector, plain or TLS.
pub struct Conn {
    io: Io,
    /// A duplicate of the TCP socket, for `SIOCOUTQ`.
    socket: OwnedFd,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").finish_non_exhaustive()
    }
}

/// Connects to `endpoint` within `limit` (resolution, connect and
/// handshake together), with TLS when `tls` is given.
pub async fn connect(
    endpoint: &Endpoint,
    tls: Option<&Arc<rustls::ClientConfig>>,
    limit: Duration,
) -> Result<Conn, ConnectError> {
    let shown = endpoint.to_string();
    match tokio::time::timeout(limit, connect_inner(endpoint, tls)).await {
        Ok(r) => r,
        Err(_) => Err(ConnectError::Timeout {
            endpoint: shown,
            secs: limit.as_secs().max(1),
        }),
    }
}

async fn connect_inner(
    endpoint: &Endpoint,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Conn, ConnectError> {
    let shown = endpoint.to_string();
    let addrs: Vec<_> = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|source| ConnectError::Resolve {
            host: endpoint.host.clone(),
            source,
        })?
        .collect();
    let mut last = None;
    let mut tcp = None;
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let tcp = match (tcp, last) {
        (Some(s), _) => s,
        (None, Some(source)) => {
            return Err(ConnectError::Connect {
                endpoint: shown,
                source,
            })
        }
        (None, None) => {
            return Err(ConnectError::NoAddress {
                host: endpoint.host.clone(),
            })
        }
    };
    let _ = tcp.set_nodelay(true);
    let socket = socket2_dup(&tcp).map_err(|source| ConnectError::Connect {
        endpoint: shown.clone(),
        source,
    })?;
    let io = match tls {
        None => Io::Plain(tcp),
        Some(config) => {
            let name = ServerName::try_from(endpoint.host.clone()).map_err(|_| {
                ConnectError::ServerName {
                    host: endpoint.host.clone(),
                }
            })?;
            let stream = tokio_rustls::TlsConnector::from(Arc::clone(config))
                .connect(name, tcp)
                .await
                .map_err(|source| ConnectError::Handshake {
                    endpoint: shown,
                    source,
                })?;
            Io::Tls(Box::new(stream))
        }
    };
    Ok(Conn { io, socket })
}

fn socket2_dup(tcp: &TcpStream) -> io::Result<OwnedFd> {
    use std::os::fd::AsFd;
    tcp.as_fd().try_clone_to_owned()
}

impl Conn {
    /// Bytes written and not yet acknowledged by the peer's TCP.
    pub fn unacked(&self) -> io::Result<u32> {
        gatehouse_sys::unacked_bytes(&self.socket)
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The kernel's host name, for records that name their machine.
pub fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

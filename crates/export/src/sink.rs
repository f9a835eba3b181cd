//! A sink: one configured destination, built from its settings.

use std::path::PathBuf;
use std::time::Duration;

use crate::line::Line;
use crate::net::{self, ConnectError, TlsConfigError};
use crate::settings::SinkConfig;
use crate::syslog::{SyslogSink, Transport};
use crate::target::Target;

/// Why a batch did not reach the collector (it is sent again).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("cannot send to the syslog socket `{path}`: {source}")]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(std::io::Error),
    #[error("not connected")]
    NotConnected,
    #[error("the collector acknowledged nothing of the last {bytes} bytes within {secs} s")]
    NotAcked { bytes: u32, secs: u64 },
    #[error("the collector closed the connection")]
    Closed,
    #[error("the collector answered HTTP {status}")]
    Http { status: u16 },
    #[error("HTTP exchange failed: {0}")]
    Hyper(String),
}

/// Why a sink could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("sink `{sink}`: {source}")]
    Tls {
        sink: String,
        source: TlsConfigError,
    },
}

/// Host facts every sink stamps on its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub hostname: String,
    pub vm_id: Option<String>,
}

/// How long connecting (with the TLS handshake) may take.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(5);

/// A configured sink and its connection state.
#[derive(Debug)]
pub enum Sink {
    Syslog(SyslogSink),
    Otlp(crate::otlp::OtlpSink),
}

impl Sink {
    pub fn build(config: &SinkConfig, origin: &Origin) -> Result<Sink, BuildError> {
        let tls = || {
            let ca = config
                .ca
                .clone()
                .unwrap_or_else(|| PathBuf::from(net::SYSTEM_CA));
            net::tls_config(&ca).map_err(|source| BuildError::Tls {
                sink: config.name.clone(),
                source,
            })
        };
        Ok(match &config.target {
            Target::SyslogUnix(path) => Sink::Syslog(SyslogSink::new(
                Transport::Unix(path.clone()),
                config.facility,
                origin.hostname.clone(),
                CONNECT_LIMIT,
            )),
            Target::SyslogTcp(ep) => Sink::Syslog(SyslogSink::new(
                Transport::Tcp(ep.clone()),
                config.facility,
                origin.hostname.clone(),
                CONNECT_LIMIT,
            )),
            Target::SyslogTls(ep) => Sink::Syslog(SyslogSink::new(
                Transport::Tls(ep.clone(), tls()?),
                config.facility,
                origin.hostname.clone(),
                CONNECT_LIMIT,
            )),
            Target::Otlp {
                endpoint,
                tls: with_tls,
                path,
            } => Sink::Otlp(crate::otlp::OtlpSink::new(
                endpoint.clone(),
                if *with_tls { Some(tls()?) } else { None },
                path.clone(),
                origin.clone(),
            )),
        })
    }

    pub async fn send(&mut self, lines: &[Line]) -> Result<(), SendError> {
        match self {
            Sink::Syslog(s) => s.send(lines).await,
            Sink::Otlp(s) => s.send(lines).await,
        }
    }

    /// Connects once (the check at start): `Err` says why it cannot.
    pub async fn probe(&mut self) -> Result<(), SendError> {
        match self {
            Sink::Syslog(s) => s.connect().await,
            Sink::Otlp(s) => s.connect().await,
        }
    }

    /// Whether an acknowledged batch can still be lost with the connection
    /// (a byte stream without acknowledgements of records): TCP and TLS syslog.
    pub fn replays(&self) -> bool {
        matches!(self, Sink::Syslog(s) if s.is_stream())
    }

    /// Whether the connection is still up (no reset, no end of stream).
    pub async fn alive(&mut self) -> bool {
        match self {
            Sink::Syslog(s) => s.alive().await,
            Sink::Otlp(_) => true,
        }
    }

    pub fn reset(&mut self) {
        match self {
            Sink::Syslog(s) => s.reset(),
            Sink::Otlp(s) => s.reset(),
        }
    }
}

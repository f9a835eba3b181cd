//! The one way gatehouse talks to IMDS: a pooled HTTP/1 client that sends the
//! canonical target with `Metadata: true` and nothing else from the caller.

use crate::connector::MarkedConnector;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::fmt;
use std::time::Duration;

/// Where tokens come from. Always named explicitly: gatehouse never falls
/// back from one to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamKind {
    /// The platform's IMDS at 169.254.169.254.
    Imds,
    /// gatehouse's embedded emulator (try-it mode).
    Emulator,
    /// Any other base URL (`http://host:port`), e.g. a stand-alone emulator.
    Url(String),
}

impl UpstreamKind {
    pub fn parse(s: &str) -> Result<Self, UpstreamKindError> {
        match s {
            "imds" => Ok(UpstreamKind::Imds),
            "emulator" => Ok(UpstreamKind::Emulator),
            url if url.starts_with("http://") => {
                let rest = url.trim_start_matches("http://").trim_end_matches('/');
                if rest.is_empty() || rest.contains('/') || rest.contains('?') {
                    return Err(UpstreamKindError::Path(s.to_owned()));
                }
                Ok(UpstreamKind::Url(format!("http://{rest}")))
            }
            _ => Err(UpstreamKindError::Unknown(s.to_owned())),
        }
    }

    pub fn label(&self) -> String {
        match self {
            UpstreamKind::Imds => "imds".to_owned(),
            UpstreamKind::Emulator => "emulator".to_owned(),
            UpstreamKind::Url(u) => u.clone(),
        }
    }
}

/// An `--upstream` that names no metadata service.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamKindError {
    #[error("upstream `{0}` must be a base URL without a path, e.g. `http://127.0.0.1:8080`")]
    Path(String),
    #[error("upstream `{0}` is not `imds`, `emulator` or an `http://host:port` URL")]
    Unknown(String),
}

pub const IMDS_BASE: &str = "http://169.254.169.254";
/// A metadata service that does not complete a TCP handshake within this
/// (or a third of the budget, if shorter) is not there: IMDS is one hop away.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const MAX_BODY: usize = 1 << 20;

/// Why the metadata service gave no answer. Cloneable (its causes kept as
/// text): one failed exchange is the answer of every caller sharing it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream did not answer in time")]
    Timeout,
    #[error("upstream unreachable: {0}")]
    Connect(String),
    #[error("upstream answer too large")]
    BodyTooLarge,
    #[error("upstream request failed: {0}")]
    Request(String),
    /// The task that talked to the upstream for a shared flight is gone.
    #[error("the upstream exchange was abandoned")]
    Abandoned,
}

/// What came back, reduced to what is handed to the client.
#[derive(Debug, Clone)]
pub struct UpstreamAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    pub body: Bytes,
}

#[derive(Clone)]
pub struct Upstream {
    base: String,
    client: Client<MarkedConnector, Full<Bytes>>,
    timeout: Duration,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("base", &self.base)
            .finish()
    }
}

impl Upstream {
    /// `mark`: the socket mark the firewall exempts (needs CAP_NET_ADMIN).
    pub fn new(base: &str, timeout: Duration, mark: Option<u32>) -> Self {
        let connector = MarkedConnector {
            mark,
            connect_timeout: CONNECT_TIMEOUT.min(timeout / 3),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(8)
            .build(connector);
        Upstream {
            base: base.trim_end_matches('/').to_owned(),
            client,
            timeout,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The whole time budget of one caller's request (`--upstream-timeout`).
    pub fn budget(&self) -> Duration {
        self.timeout
    }

    /// Send `method target` upstream with only the headers IMDS needs.
    pub async fn send(
        &self,
        method: &http::Method,
        target: &str,
        body: Option<(Bytes, String)>,
    ) -> Result<UpstreamAnswer, UpstreamError> {
        self.send_within(method, target, body, self.timeout).await
    }

    /// As `send`, giving up after `timeout`.
    pub async fn send_within(
        &self,
        method: &http::Method,
        target: &str,
        body: Option<(Bytes, String)>,
        timeout: Duration,
    ) -> Result<UpstreamAnswer, UpstreamError> {
        let uri = format!("{}{}", self.base, target);
        let mut builder = http::Request::builder()
            .method(method.clone())
            .uri(uri)
            .header("Metadata", "true");
        let payload = match body {
            Some((bytes, content_type)) => {
                builder = builder.header(http::header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(payload))
            .map_err(|e| UpstreamError::Request(e.to_string()))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    UpstreamError::Connect(e.to_string())
                } else {
                    UpstreamError::Request(e.to_string())
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|_| UpstreamError::BodyTooLarge)?
                .to_bytes();
            let header = |name: http::header::HeaderName| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            Ok(UpstreamAnswer {
                status: parts.status.as_u16(),
                content_type: header(http::header::CONTENT_TYPE),
                retry_after: header(http::header::RETRY_AFTER),
                body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| UpstreamError::Timeout)?
    }
}

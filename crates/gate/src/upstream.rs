//! The one way gatehouse talks to IMDS: a pooled HTTP/1 client that sends the
//! canonical target with the dialect's own headers (Azure `Metadata: true`,
//! AWS the gate's own IMDSv2 session token, GCP `Metadata-Flavor: Google`)
//! and nothing else from the caller.

mod conn;

use crate::connector::MarkedConnector;
use bytes::Bytes;
use gatehouse_policy::Cloud;
use http_body_util::Full;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

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
    /// `base` as a URI (where new connections go) and its `Host` header.
    uri: http::Uri,
    host: http::HeaderValue,
    pool: Arc<conn::Pool>,
    timeout: Duration,
    /// Which metadata service this is: the headers it needs differ.
    cloud: Cloud,
    /// AWS: the gate's own IMDSv2 session with the metadata service (never
    /// a client's: clients hold sessions issued by the gate).
    aws_session: Arc<Mutex<Option<(String, Instant)>>>,
}

/// The TTL the gate asks AWS for (the most IMDS allows), and how long
/// before its end a session is renewed.
const AWS_SESSION_TTL: Duration = Duration::from_secs(21600);
const AWS_SESSION_RENEW: Duration = Duration::from_secs(300);

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
        let base = base.trim_end_matches('/').to_owned();
        // `UpstreamKind::parse` and the gate's own constants give
        // `http://host[:port]`; anything else fails at the first exchange.
        let uri: http::Uri = base.parse().unwrap_or_default();
        let host = host_header(&uri);
        Upstream {
            base,
            uri,
            host,
            pool: Arc::new(conn::Pool::new(connector, 8, Duration::from_secs(30))),
            timeout,
            cloud: Cloud::Azure,
            aws_session: Arc::new(Mutex::new(None)),
        }
    }

    /// The same upstream, speaking `cloud`'s dialect.
    pub fn with_cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = cloud;
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The metadata dialect this upstream speaks.
    pub fn cloud(&self) -> Cloud {
        self.cloud
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
        match self.cloud {
            Cloud::Azure => {
                self.exchange(method, target, body, timeout, &[("Metadata", "true")])
                    .await
            }
            Cloud::Gcp => {
                self.exchange(
                    method,
                    target,
                    body,
                    timeout,
                    &[("Metadata-Flavor", "Google")],
                )
                .await
            }
            Cloud::Aws => self.send_aws(method, target, timeout).await,
        }
    }

    /// AWS: with the gate's session token, renewed before it ends; a 401
    /// (IMDS forgot the session, e.g. after a restart) renews it once.
    async fn send_aws(
        &self,
        method: &http::Method,
        target: &str,
        timeout: Duration,
    ) -> Result<UpstreamAnswer, UpstreamError> {
        let started = Instant::now();
        let mut renewed = false;
        loop {
            let left = timeout.saturating_sub(started.elapsed());
            let token = self.aws_token(left, renewed).await?;
            let left = timeout.saturating_sub(started.elapsed());
            let answer = self
                .exchange(
                    method,
                    target,
                    None,
                    left,
                    &[("X-aws-ec2-metadata-token", token.as_str())],
                )
                .await?;
            if answer.status != 401 || renewed {
                return Ok(answer);
            }
            renewed = true;
        }
    }

    /// The gate's IMDSv2 session token: the cached one, or a new one.
    async fn aws_token(&self, timeout: Duration, renew: bool) -> Result<String, UpstreamError> {
        let now = Instant::now();
        if !renew {
            let held = self
                .aws_session
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            if let Some((token, _)) = held.filter(|(_, until)| *until > now + AWS_SESSION_RENEW) {
                return Ok(token);
            }
        }
        let ttl = AWS_SESSION_TTL.as_secs().to_string();
        let answer = self
            .exchange(
                &http::Method::PUT,
                "/latest/api/token",
                None,
                timeout,
                &[("X-aws-ec2-metadata-token-ttl-seconds", ttl.as_str())],
            )
            .await?;
        if answer.status != 200 {
            return Err(UpstreamError::Request(format!(
                "session token request answered {}",
                answer.status
            )));
        }
        let token = std::str::from_utf8(&answer.body)
            .ok()
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| UpstreamError::Request("session token answer is not a token".into()))?
            .to_owned();
        *self
            .aws_session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((token.clone(), now + AWS_SESSION_TTL));
        Ok(token)
    }

    /// One exchange with exactly `headers` (and a body's content type).
    async fn exchange(
        &self,
        method: &http::Method,
        target: &str,
        body: Option<(Bytes, String)>,
        timeout: Duration,
        headers: &[(&str, &str)],
    ) -> Result<UpstreamAnswer, UpstreamError> {
        let mut builder = http::Request::builder()
            .method(method.clone())
            .uri(target)
            .header(http::header::HOST, self.host.clone());
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
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
        if self.uri.host().is_none() {
            return Err(UpstreamError::Connect(format!(
                "upstream `{}` names no host",
                self.base
            )));
        }
        let exchange = async {
            let answer =
                self.pool
                    .send(&self.uri, request, MAX_BODY)
                    .await
                    .map_err(|e| match e {
                        conn::Failed::Connect(e) => UpstreamError::Connect(e.to_string()),
                        conn::Failed::TooLarge => UpstreamError::BodyTooLarge,
                        conn::Failed::Request(e) => UpstreamError::Request(e),
                    })?;
            let header = |name: http::header::HeaderName| {
                answer
                    .parts
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            Ok(UpstreamAnswer {
                status: answer.parts.status.as_u16(),
                content_type: header(http::header::CONTENT_TYPE),
                retry_after: header(http::header::RETRY_AFTER),
                body: answer.body,
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| UpstreamError::Timeout)?
    }
}

/// The `Host` header for `uri`: its host, and its port unless that is 80.
fn host_header(uri: &http::Uri) -> http::HeaderValue {
    let host = uri.host().unwrap_or("");
    let value = match uri.port_u16() {
        Some(port) if port != 80 => format!("{host}:{port}"),
        _ => host.to_owned(),
    };
    http::HeaderValue::from_str(&value).unwrap_or_else(|_| http::HeaderValue::from_static(""))
}

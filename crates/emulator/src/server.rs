//! Starting and stopping the emulator: listeners, per-connection HTTP/1.1
//! (keep-alive on), and shutdown when the [`Emulator`] handle goes away.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::SystemClock;
use crate::config::{ConfigError, EmulatorConfig};
use crate::faults::{Faults, FaultsError};
use crate::keys::{KeyError, KeySource, Signer};
use crate::reply::Reply;
use crate::state::{lock, State};
use crate::stats::Stats;

/// Slow-loris guard: a client must send its headers within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run the emulator.
#[derive(Debug, Clone)]
pub struct Options {
    /// IMDS port address.
    pub listen: SocketAddr,
    /// Control port address; `None` disables the control port.
    pub control_listen: Option<SocketAddr>,
    /// IMDS throttling (identity 20/s and 5 concurrent, others 5/s).
    pub rate_limits: bool,
    /// Signing key.
    pub key: KeySource,
    /// Faults active from the start.
    pub faults: Faults,
    /// Which metadata service to be (`--cloud`).
    pub dialect: crate::aws::Dialect,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            control_listen: None,
            rate_limits: true,
            key: KeySource::Generate,
            faults: Faults::default(),
            dialect: crate::aws::Dialect::Azure,
        }
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("invalid faults: {0}")]
    Faults(#[from] FaultsError),
    #[error("cannot listen on `{addr}`: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("key loading task failed: {0}")]
    Task(String),
}

/// A running emulator. Dropping it (or [`Emulator::shutdown`]) stops the
/// listeners and closes open connections.
pub struct Emulator {
    addr: SocketAddr,
    control_addr: Option<SocketAddr>,
    state: Arc<State>,
    _shutdown: watch::Sender<bool>,
}

#[derive(Clone, Copy)]
enum Port {
    Imds,
    Control,
}

/// Starts an emulator for `config`.
pub async fn start(config: EmulatorConfig, options: Options) -> Result<Emulator, Error> {
    config.validate()?;
    options.faults.validate()?;
    let key = options.key.clone();
    let signer = tokio::task::spawn_blocking(move || Signer::load(&key))
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
    let imds = bind(options.listen).await?;
    let control = match options.control_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let addr = local_addr(&imds, options.listen)?;
    let control_addr = match (&control, options.control_listen) {
        (Some(listener), Some(asked)) => Some(local_addr(listener, asked)?),
        _ => None,
    };
    let state = Arc::new(State::new(
        config,
        signer,
        options.rate_limits,
        options.faults,
        Arc::new(SystemClock),
        options.dialect,
    ));
    let (tx, rx) = watch::channel(false);
    tokio::spawn(accept_loop(
        imds,
        Arc::clone(&state),
        rx.clone(),
        Port::Imds,
    ));
    if let Some(control) = control {
        tokio::spawn(accept_loop(control, Arc::clone(&state), rx, Port::Control));
    }
    tracing::info!(%addr, ?control_addr, "imds emulator listening");
    Ok(Emulator {
        addr,
        control_addr,
        state,
        _shutdown: tx,
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, asked: SocketAddr) -> Result<SocketAddr, Error> {
    listener.local_addr().map_err(|source| Error::Bind {
        addr: asked,
        source,
    })
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
    port: Port,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(err) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if matches!(port, Port::Imds) && lock(&state.faults).close_at_once {
            lock(&state.stats).closed_at_accept += 1;
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        let state = Arc::clone(&state);
        let shutdown = shutdown.clone();
        match port {
            Port::Imds => {
                let svc = service_fn(move |req| crate::imds::serve(Arc::clone(&state), req));
                tokio::spawn(connection(io, svc, shutdown));
            }
            Port::Control => {
                let svc = service_fn(move |req| crate::control::serve(Arc::clone(&state), req));
                tokio::spawn(connection(io, svc, shutdown));
            }
        }
    }
}

async fn connection<S, F, E>(
    io: TokioIo<tokio::net::TcpStream>,
    svc: S,
    mut shutdown: watch::Receiver<bool>,
) where
    S: hyper::service::Service<Request<Incoming>, Response = Reply, Error = E, Future = F>,
    F: Future<Output = Result<Reply, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(io, svc);
    tokio::select! {
        result = conn => {
            if let Err(err) = result {
                tracing::debug!(error = %err, "connection ended");
            }
        }
        _ = shutdown.changed() => {}
    }
}

impl Emulator {
    /// The IMDS port's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The control port's address, if enabled.
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    /// Request counts so far.
    pub fn stats(&self) -> Stats {
        lock(&self.state.stats).clone()
    }

    /// Replaces the active faults. A forced status that is not a valid HTTP
    /// status is answered as 500; use [`Faults::validate`] to check first.
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.state.faults) = faults;
    }

    /// The active faults (counted ones show what is left).
    pub fn faults(&self) -> Faults {
        lock(&self.state.faults).clone()
    }

    /// Clears faults and counters.
    pub fn reset(&self) {
        crate::control::reset(&self.state);
    }

    /// The public signing key as a JWK set.
    pub fn jwks(&self) -> serde_json::Value {
        self.state.signer.jwks()
    }

    /// Stops listening and closes connections.
    pub fn shutdown(self) {
        drop(self);
    }
}

/// A fresh 2048-bit RSA key as PKCS#8 PEM, so tests and the CLI can write a
/// key file once instead of generating a key per start.
pub fn generate_key_pem() -> Result<String, Error> {
    Ok(crate::keys::generate_pem()?)
}

/// Reads a config file.
pub fn load_config(path: &std::path::Path) -> Result<EmulatorConfig, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    EmulatorConfig::from_toml(&text).map_err(|source| LoadError::Config {
        path: path.to_path_buf(),
        source,
    })
}

/// Why a config file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read emulator config `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Config { path: PathBuf, source: ConfigError },
}

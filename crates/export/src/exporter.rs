//! The running export: one pump per sink, their status, and the stop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::cursor;
use crate::pump::{self, Host, Pump, SinkState, SinkStatus, Stop};
use crate::settings::SinkConfig;
use crate::sink::{BuildError, Origin, Sink};

/// Every sink's task.
#[derive(Debug)]
pub struct Exporter {
    sinks: Vec<Arc<SinkState>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: watch::Sender<Stop>,
    host: Arc<dyn Host>,
}

impl std::fmt::Debug for dyn Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Host")
    }
}

/// A sink that could not be reached at start (it is retried all the same).
#[derive(Debug)]
pub struct Unreachable {
    pub sink: String,
    pub error: String,
}

/// The sinks, built (TLS configurations read) but not yet started.
#[derive(Debug)]
pub struct Prepared {
    sinks: Vec<(SinkConfig, Sink)>,
}

impl Prepared {
    pub fn new(configs: &[SinkConfig], origin: &Origin) -> Result<Prepared, BuildError> {
        let mut sinks = Vec::new();
        for c in configs {
            sinks.push((c.clone(), Sink::build(c, origin)?));
        }
        Ok(Prepared { sinks })
    }

    /// Connects to every sink once, within `limit` each, and says which
    /// could not be reached.
    pub async fn probe(&mut self, limit: Duration) -> Vec<Unreachable> {
        let mut bad = Vec::new();
        for (config, sink) in &mut self.sinks {
            let r = tokio::time::timeout(limit, sink.probe()).await;
            let error = match r {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no connection within {} s", limit.as_secs()),
            };
            sink.reset();
            bad.push(Unreachable {
                sink: config.name.clone(),
                error,
            });
        }
        bad
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Starts one pump per sink reading `log`, cursors in `state_dir`.
    pub fn start(self, log: &Path, state_dir: &Path, host: Arc<dyn Host>) -> Exporter {
        let (stop, rx) = watch::channel(Stop::Run);
        let mut sinks = Vec::new();
        let mut tasks = Vec::new();
        for (config, sink) in self.sinks {
            let state = Arc::new(SinkState::new(config.name.clone(), config.url.clone()));
            sinks.push(Arc::clone(&state));
            let pump = Pump {
                state,
                sink,
                log: log.to_path_buf(),
                cursor_path: cursor::path_for(state_dir, &config.name),
                host: Arc::clone(&host),
            };
            tasks.push(tokio::spawn(pump::run(pump, rx.clone())));
        }
        Exporter {
            sinks,
            tasks,
            stop,
            host,
        }
    }
}

/// What `gatehouse status` reads of a running export.
#[derive(Debug, Clone)]
pub struct View {
    sinks: Vec<Arc<SinkState>>,
    host: Arc<dyn Host>,
}

impl View {
    pub fn status(&self) -> Vec<SinkStatus> {
        let head = self.host.head_seq();
        let now = self.host.now();
        self.sinks.iter().map(|s| s.status(head, now)).collect()
    }
}

impl Exporter {
    pub fn view(&self) -> View {
        View {
            sinks: self.sinks.clone(),
            host: Arc::clone(&self.host),
        }
    }

    /// Delivers what is in the log (within `limit`), then stops every pump.
    /// What is not delivered by then stays in the log for the next start.
    pub async fn finish(self, limit: Duration) {
        self.stop.send_replace(Stop::Drain);
        let all = futures_join(self.tasks);
        if tokio::time::timeout(limit, all).await.is_err() {
            self.stop.send_replace(Stop::Now);
        }
    }
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

/// Default directory of the cursors.
pub fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/gatehouse")
}

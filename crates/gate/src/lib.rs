//! The gate: an IMDS-compatible HTTP server that identifies each caller,
//! decides with the policy, forwards what is allowed and records everything.
//!
//! Request path (see docs/architecture.md): [`server`] accepts and notes the
//! connection's addresses → [`handler`] checks headers and canonicalises the
//! target → resolves the identity → [`caller`] identifies the process through
//! `gatehouse-sys` → `gatehouse-policy` decides → [`upstream`] forwards →
//! the token's claims are checked → one audit line → the answer.

#![forbid(unsafe_code)]

mod audit;
mod aws;
mod azure;
mod cache;
pub mod caller;
pub mod checkpoint;
pub mod clock;
pub mod connector;
mod dialect;
pub mod export;
mod fetch;
mod gcp;
mod handler;
pub mod jit;
pub mod lifecycle;
pub mod limiter;
pub mod metrics;
pub mod metrics_listener;
pub mod policy_store;
pub mod privsep;
mod refusal;
pub mod server;
pub mod sessions;
pub mod status;
mod token_path;
pub mod upstream;

use caller::CallerSource;
use clock::Clock;
use gatehouse_audit::Event;
use gatehouse_sys::Identifier;
use policy_store::{LoadError, PolicyStore};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use upstream::Upstream;

pub use handler::ConnInfo;
pub use upstream::UpstreamKind;

/// Everything the gate needs to start.
#[derive(Debug, Clone)]
pub struct GateConfig {
    pub policy_path: PathBuf,
    /// Owners a policy file and every directory above it may have.
    pub trusted_uids: Vec<u32>,
    pub audit_path: PathBuf,
    pub audit_options: gatehouse_audit::Options,
    /// Base URL requests are forwarded to (already resolved from the kind).
    pub upstream_base: String,
    pub upstream_label: String,
    pub upstream_timeout: Duration,
    /// Socket mark on upstream connections, which the firewall lets through.
    pub upstream_mark: Option<u32>,
    /// Serve cached tokens while more than this much validity is left;
    /// `None` turns the cache off.
    pub cache_margin: Option<Duration>,
    /// Stay under IMDS's rate limits; `None` turns the limiter off.
    pub upstream_limits: Option<limiter::Limits>,
    /// Open connections one uid may hold (`server::MAX_CONNECTIONS_PER_UID`).
    pub max_connections_per_uid: usize,
    /// How callers are identified when the gate does it itself (not `--user`):
    /// caches, and the connect-time records of the eBPF path if attached.
    pub identify: gatehouse_sys::IdentifyOptions,
    /// Find every holder of the caller's socket on every request, even when the
    /// policy needs only the uid, by scanning every process
    /// (`gatehouse run --all-holders`; sets `identify.exhaustive_holders`).
    pub all_holders: bool,
    /// Which cloud's metadata dialect the gate speaks (`--cloud`; never
    /// guessed from the network).
    pub cloud: gatehouse_policy::Cloud,
}

#[derive(Debug)]
pub enum StartError {
    Policy(LoadError),
    Audit(gatehouse_audit::AuditError),
    /// The policy declares an identity of another cloud than `--cloud`.
    Cloud {
        identity: String,
        of: gatehouse_policy::Cloud,
        cloud: gatehouse_policy::Cloud,
    },
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Policy(e) => write!(f, "{e}"),
            StartError::Audit(e) => write!(f, "cannot open the audit log: {e}"),
            StartError::Cloud {
                identity,
                of,
                cloud,
            } => write!(
                f,
                "the policy's identity `{identity}` is of `{of}`, but the gate speaks `{cloud}` \
                 (`gatehouse check --cloud {cloud}` lists every such identity)"
            ),
        }
    }
}

impl std::error::Error for StartError {}

pub struct Gate {
    policy: PolicyStore,
    audit: audit::Audit,
    tokens: token_path::TokenPath,
    identifier: Arc<dyn CallerSource>,
    clock: Arc<dyn Clock>,
    max_connections_per_uid: usize,
    all_holders: bool,
    /// Active just-in-time grants, replaced whole by the JIT service after
    /// every change; the decision engine checks their times itself.
    grants: std::sync::RwLock<Arc<Vec<gatehouse_policy::Grant>>>,
    /// Requests answered since start (for the service manager's status).
    served: std::sync::atomic::AtomicU64,
    // What `gatehouse status` reports (status.rs).
    started_at: std::time::SystemTime,
    policy_loaded_at: std::sync::Mutex<std::time::SystemTime>,
    reloads: std::sync::atomic::AtomicU64,
    caller_lookup: std::sync::OnceLock<String>,
    export: std::sync::OnceLock<gatehouse_export::exporter::View>,
    firewall_watched: std::sync::atomic::AtomicBool,
    upstream_label: String,
    upstream_limits: Option<limiter::Limits>,
    checkpoints: checkpoint::Checkpoints,
    cloud: gatehouse_policy::Cloud,
    /// AWS session tokens the gate issued (empty on other clouds).
    sessions: sessions::Sessions,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("upstream", &self.tokens.fetcher.upstream)
            .finish()
    }
}

impl Gate {
    /// Load the policy (refusing an untrusted or invalid one), open the audit
    /// log and record that the gate started with this policy.
    pub fn new(config: &GateConfig, clock: Arc<dyn Clock>) -> Result<Gate, StartError> {
        let mut opts = config.identify.clone();
        // "Every holder" must include one an fd was passed to over SCM_RIGHTS,
        // which only a scan of every process finds.
        opts.exhaustive_holders |= config.all_holders;
        let local = Identifier::new(opts);
        Gate::with_caller_source(config, clock, Arc::new(local))
    }

    /// As [`Gate::new`], with callers identified by `callers` (the broker,
    /// when this is the unprivileged worker of `gatehouse run --user`).
    pub fn with_caller_source(
        config: &GateConfig,
        clock: Arc<dyn Clock>,
        callers: Arc<dyn CallerSource>,
    ) -> Result<Gate, StartError> {
        let policy = PolicyStore::load(&config.policy_path, config.trusted_uids.clone())
            .map_err(StartError::Policy)?;
        if let Some(other) = policy.current().identities_not_of(config.cloud).next() {
            return Err(StartError::Cloud {
                identity: other.name.clone(),
                of: other.kind.cloud(),
                cloud: config.cloud,
            });
        }
        let audit = audit::Audit::open(&config.audit_path, config.audit_options.clone())
            .map_err(StartError::Audit)?;
        let started_at = clock.now();
        metrics::started_at(
            started_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        );
        let gate = Gate {
            policy,
            audit,
            tokens: token_path::TokenPath {
                fetcher: fetch::Fetcher {
                    upstream: Upstream::new(
                        &config.upstream_base,
                        config.upstream_timeout,
                        config.upstream_mark,
                    )
                    .with_cloud(config.cloud),
                    limiter: config.upstream_limits.map(limiter::Limiter::new),
                },
                cache: config
                    .cache_margin
                    .map(|m| Arc::new(cache::TokenCache::new(m))),
                clock: Arc::clone(&clock),
            },
            identifier: callers,
            clock,
            max_connections_per_uid: config.max_connections_per_uid.max(1),
            all_holders: config.all_holders,
            grants: std::sync::RwLock::new(Arc::new(Vec::new())),
            served: std::sync::atomic::AtomicU64::new(0),
            started_at,
            policy_loaded_at: std::sync::Mutex::new(started_at),
            reloads: std::sync::atomic::AtomicU64::new(0),
            caller_lookup: std::sync::OnceLock::new(),
            export: std::sync::OnceLock::new(),
            firewall_watched: std::sync::atomic::AtomicBool::new(false),
            upstream_label: config.upstream_label.clone(),
            upstream_limits: config.upstream_limits,
            checkpoints: checkpoint::Checkpoints::default(),
            cloud: config.cloud,
            sessions: sessions::Sessions::default(),
        };
        let hash = gate.policy.current().hash().to_owned();
        gate.record_event(&Event::GateStarted {
            upstream: config.upstream_label.to_string(),
            policy_path: config.policy_path.display().to_string(),
            policy: hash,
        })
        .map_err(StartError::Audit)?;
        Ok(gate)
    }

    /// Re-read the policy file. An invalid or untrusted file keeps the policy
    /// in force; either way the audit log says what happened.
    pub fn reload(&self) -> Result<String, LoadError> {
        let reloaded = self.policy.reload();
        metrics::policy_reload(reloaded.is_ok());
        match reloaded {
            Ok(p) => {
                self.reloads
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                *self
                    .policy_loaded_at
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = self.clock.now();
                let hash = p.hash().to_owned();
                let _ = self.record_event(&Event::PolicyLoaded {
                    policy: hash.clone(),
                });
                Ok(hash)
            }
            Err(e) => {
                let kept = self.policy.current().hash().to_owned();
                let _ = self.record_event(&Event::PolicyRejected {
                    reason: e.summary(),
                    kept,
                });
                Err(e)
            }
        }
    }

    /// [`Gate::reload`], as the outcome the reloader reports.
    pub fn reload_outcome(&self) -> lifecycle::ReloadOutcome {
        match self.reload() {
            Ok(policy) => lifecycle::ReloadOutcome::Loaded { policy },
            Err(e) => lifecycle::ReloadOutcome::Kept {
                policy: self.policy_hash(),
                reason: e.summary(),
                details: e.to_string(),
            },
        }
    }

    /// The cloud whose metadata dialect this gate speaks.
    pub fn cloud(&self) -> gatehouse_policy::Cloud {
        self.cloud
    }

    /// Requests answered since start.
    pub fn requests_served(&self) -> u64 {
        self.served.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn count_request(&self) {
        self.served
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<gatehouse_policy::Policy> {
        self.policy.current()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Replace the just-in-time grants the decision engine honours.
    pub fn set_grants(&self, grants: Vec<gatehouse_policy::Grant>) {
        metrics::jit_role_grants(grants.len());
        let grants = Arc::new(grants);
        match self.grants.write() {
            Ok(mut g) => *g = grants,
            Err(poisoned) => *poisoned.into_inner() = grants,
        }
    }

    /// The grants in force now (a cheap snapshot).
    pub fn grants(&self) -> Arc<Vec<gatehouse_policy::Grant>> {
        match self.grants.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The last audit write failed (requests are refused until one works).
    pub fn audit_failing(&self) -> bool {
        self.audit.failing()
    }

    pub fn policy_hash(&self) -> String {
        self.policy.current().hash().to_owned()
    }

    /// Record an event from outside the request path (e.g. the firewall
    /// watcher's repairs) in the same hash chain.
    pub fn record_event_public(&self, event: &Event) -> Result<(), gatehouse_audit::AuditError> {
        metrics::event(event);
        self.record_event(event)
    }

    fn record_event(&self, event: &Event) -> Result<(), gatehouse_audit::AuditError> {
        let time = clock::rfc3339(self.clock.now());
        self.audit.append(&time, event)
    }
}

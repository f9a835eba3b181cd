//! `gatehouse status`: what a running gate says about itself over the
//! admin socket. Counts, times and names only: never a token, a key or a
//! request's contents.

use crate::metrics::{self, FirewallState};
use crate::Gate;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant, SystemTime};

/// An upstream error more recent than this, with no success since, makes
/// the gate degraded.
const UPSTREAM_RECENT: Duration = Duration::from_secs(300);

/// An export sink this far behind after a failure makes the gate degraded.
const EXPORT_LAG_DEGRADED: u64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateStatus {
    pub version: String,
    pub pid: u32,
    pub started_at: String,
    pub uptime_secs: u64,
    pub health: Health,
    pub policy: PolicyStatus,
    pub callers: CallerStatus,
    pub firewall: FirewallStatus,
    pub upstream: UpstreamStatus,
    /// `None`: the cache is off (`--no-cache`).
    pub cache: Option<CacheStatus>,
    /// `None`: just-in-time access is not running.
    pub jit: Option<JitStatus>,
    pub audit: AuditStatus,
    /// Audit export sinks (empty: none configured).
    #[serde(default)]
    pub export: Vec<gatehouse_export::SinkStatus>,
}

/// `healthy`, or `degraded` with the reasons; a gate that does not answer
/// is `down` (the client's verdict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Healthy,
    Degraded,
    Down,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Degraded => "degraded",
            Verdict::Down => "down",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub verdict: Verdict,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStatus {
    pub path: String,
    pub sha256: String,
    pub loaded_at: String,
    pub reloads: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerStatus {
    /// How this process identifies callers: `sock-diag`, `ebpf`, or
    /// `broker` (with `--user`, the root broker does; its banner says how).
    pub lookup: String,
    /// Identifications so far, by the path that found the caller.
    pub by_path: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallStatus {
    /// Whether this gate (or its broker) keeps the table.
    pub watching: bool,
    pub state: FirewallState,
    pub since_secs: Option<u64>,
    pub repairs: u64,
    pub last_error: Option<String>,
    pub monitor_lost: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamStatus {
    pub upstream: String,
    /// The metadata dialect (`--cloud`): `azure`, `aws` or `gcp`.
    #[serde(default = "azure")]
    pub cloud: String,
    /// AWS: live session tokens the gate issued (never the tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_sessions: Option<usize>,
    pub last_success_secs_ago: Option<u64>,
    pub last_error_secs_ago: Option<u64>,
    pub last_error: Option<String>,
    pub limiter: Option<LimiterStatus>,
}

fn azure() -> String {
    "azure".to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimiterStatus {
    pub identity_in_flight: usize,
    pub identity_concurrent: usize,
    pub waits: u64,
    pub refusals: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheStatus {
    pub entries: usize,
    pub valid: usize,
    pub hits: u64,
    pub misses: u64,
    pub stale: u64,
    pub refreshes: u64,
    pub next_refresh_in_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JitStatus {
    pub grants: Vec<JitGrantStatus>,
    pub ports: Vec<JitGrantStatus>,
    pub pending: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JitGrantStatus {
    pub id: String,
    /// Role and identity (and audience), or port, protocol and source.
    pub what: String,
    pub requester: String,
    pub expires_at: Option<String>,
    pub expires_in_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditStatus {
    pub path: String,
    pub records: u64,
    pub write_errors: u64,
    /// Sequence number and hash of the last record this gate wrote.
    pub head_seq: Option<u64>,
    pub head_sha256: Option<String>,
}

fn ago(t: Instant) -> u64 {
    t.elapsed().as_secs()
}

impl Gate {
    /// Name how this process identifies callers (shown by `gatehouse status`).
    pub fn set_caller_lookup(&self, label: &str) {
        let _ = self.caller_lookup.set(label.to_owned());
    }

    /// Tell `gatehouse status` that this gate keeps the firewall table.
    pub fn set_firewall_watched(&self) {
        self.firewall_watched
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The gate's status now; `jit` from the just-in-time service, if any.
    pub fn status(&self, jit: Option<JitStatus>) -> GateStatus {
        let now = self.clock.now();
        let m = metrics::global();
        let counts = m.counts();
        let up = m.upstream_health();
        let fw = m.firewall_health();
        let policy = self.policy.current();
        let loaded_at = *self
            .policy_loaded_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let epoch = crate::token_path::epoch_secs(self.clock.as_ref());
        let cache = self.tokens.cache.as_ref().map(|c| {
            let s = c.summary(epoch);
            CacheStatus {
                entries: s.entries,
                valid: s.valid,
                hits: counts.cache_hits,
                misses: counts.cache_misses,
                stale: counts.cache_stale,
                refreshes: counts.cache_refreshes,
                next_refresh_in_secs: s.next_refresh_in,
            }
        });
        let limiter = match (&self.tokens.fetcher.limiter, &self.upstream_limits) {
            (Some(l), Some(limits)) => {
                let st = l.state(limits);
                Some(LimiterStatus {
                    identity_in_flight: st.identity_in_flight,
                    identity_concurrent: st.identity_concurrent,
                    waits: counts.limiter_waits,
                    refusals: counts.limiter_refusals,
                })
            }
            _ => None,
        };
        let watching = self
            .firewall_watched
            .load(std::sync::atomic::Ordering::Relaxed);
        let head = self.audit.head();
        let mut status = GateStatus {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            started_at: crate::clock::rfc3339(self.started_at),
            uptime_secs: now
                .duration_since(self.started_at)
                .unwrap_or_default()
                .as_secs(),
            health: Health {
                verdict: Verdict::Healthy,
                reasons: Vec::new(),
            },
            policy: PolicyStatus {
                path: self.policy.path().display().to_string(),
                sha256: policy.hash().to_owned(),
                loaded_at: crate::clock::rfc3339(loaded_at),
                reloads: self.reloads.load(std::sync::atomic::Ordering::Relaxed),
            },
            callers: CallerStatus {
                lookup: self
                    .caller_lookup
                    .get()
                    .cloned()
                    .unwrap_or_else(|| "sock-diag".to_owned()),
                by_path: counts.lookups.clone(),
            },
            firewall: FirewallStatus {
                watching,
                state: fw.state,
                since_secs: fw.since.map(ago),
                repairs: counts.firewall_repairs,
                last_error: fw.last_error.clone(),
                monitor_lost: fw.monitor_lost,
            },
            upstream: UpstreamStatus {
                upstream: self.upstream_label.clone(),
                cloud: self.cloud.as_str().to_owned(),
                aws_sessions: (self.cloud == gatehouse_policy::Cloud::Aws)
                    .then(|| self.sessions.count(tokio::time::Instant::now())),
                last_success_secs_ago: up.last_success.map(ago),
                last_error_secs_ago: up.last_error.as_ref().map(|(t, _)| ago(*t)),
                last_error: up.last_error.as_ref().map(|(_, e)| e.clone()),
                limiter,
            },
            cache,
            jit,
            audit: AuditStatus {
                path: self.audit.path().display().to_string(),
                records: counts.audit_records,
                write_errors: counts.audit_write_errors,
                head_seq: head.as_ref().map(|h| h.seq),
                head_sha256: head.map(|h| h.hash),
            },
            export: self.export_status(),
        };
        status.health = judge(&status, self.audit_failing());
        status
    }
}

/// Healthy unless something a user would want to know about is wrong.
pub fn judge(s: &GateStatus, audit_failing: bool) -> Health {
    let mut reasons = Vec::new();
    if audit_failing {
        reasons.push(
            "the last audit write failed: every request is refused until the log can be written"
                .to_owned(),
        );
    }
    if s.firewall.watching {
        match s.firewall.state {
            FirewallState::Drifted => reasons.push(
                "the firewall table still differs from what it should be after a repair".to_owned(),
            ),
            FirewallState::Failed => reasons.push(format!(
                "the last firewall check or repair failed: {}",
                s.firewall.last_error.as_deref().unwrap_or("unknown error")
            )),
            FirewallState::Verified | FirewallState::Unknown => {}
        }
        if s.firewall.monitor_lost {
            reasons.push(
                "`nft monitor` stopped: drift is found by the periodic check only".to_owned(),
            );
        }
    }
    let failing = match (
        s.upstream.last_error_secs_ago,
        s.upstream.last_success_secs_ago,
    ) {
        (Some(e), Some(ok)) => e < ok && e < UPSTREAM_RECENT.as_secs(),
        (Some(e), None) => e < UPSTREAM_RECENT.as_secs(),
        _ => false,
    };
    if failing {
        reasons.push(format!(
            "the upstream's last answer was an error ({}) and nothing succeeded since",
            s.upstream.last_error.as_deref().unwrap_or("unknown")
        ));
    }
    for sink in &s.export {
        if sink.lag_records > 0 && sink.last_error.is_some() && sink.lag_secs >= EXPORT_LAG_DEGRADED
        {
            reasons.push(format!(
                "audit export `{}` is {} records ({} s) behind: {}",
                sink.name,
                sink.lag_records,
                sink.lag_secs,
                sink.last_error.as_deref().unwrap_or("unknown error")
            ));
        }
    }
    Health {
        verdict: if reasons.is_empty() {
            Verdict::Healthy
        } else {
            Verdict::Degraded
        },
        reasons,
    }
}

/// Seconds from `now` to `t`, if `t` is ahead.
pub fn secs_until(t: SystemTime, now: SystemTime) -> Option<u64> {
    t.duration_since(now).ok().map(|d| d.as_secs())
}

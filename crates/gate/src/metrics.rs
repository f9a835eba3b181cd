//! Prometheus metrics (OpenMetrics text, `prometheus-client`), served on a
//! listener of their own (`gatehouse run --metrics-listen`), never on the
//! IMDS one. docs/metrics.md lists every metric.
//!
//! One registry per process: the request path, the fetcher, the limiter,
//! the cache and the audit log each record with a one-line call below, so
//! nothing has to carry a handle. Label values are bounded: endpoints,
//! decisions, lookup paths and statuses are fixed sets; rule names come
//! from the policy (a just-in-time grant counts under its assignment's
//! name, not its id); no uid, pid or path is ever a label.
//!
//! Beside the counters this keeps the few facts `gatehouse status` shows
//! that a counter cannot: when the upstream last answered, its last error,
//! the firewall's last verdict.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: String,
    decision: &'static str,
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabel {
    path: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

/// An export sink, by its configured name (bounded: at most the sinks of
/// the settings, each name 1 to 32 of `a-z0-9-_`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    sink: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabel {
    trigger: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabel {
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds, 10 µs to about 0.65 s: identification and decisions.
fn fast_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_01, 4.0, 9))
}

/// Seconds, 1 ms to about 16 s: upstream calls and whole requests.
fn slow_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// When the upstream last answered, and its last failure.
#[derive(Debug, Default, Clone)]
pub struct UpstreamHealth {
    pub last_success: Option<Instant>,
    pub last_error: Option<(Instant, String)>,
}

/// The firewall watcher's last word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirewallState {
    /// No watcher reported (the gate does not keep the table, or nothing
    /// was checked yet).
    Unknown,
    /// The last check or repair left the table as rendered.
    Verified,
    /// The last repair left differences.
    Drifted,
    /// The last check or repair failed.
    Failed,
}

#[derive(Debug, Clone)]
pub struct FirewallHealth {
    pub state: FirewallState,
    pub since: Option<Instant>,
    pub last_error: Option<String>,
    /// `nft monitor` stopped: only the periodic check is left.
    pub monitor_lost: bool,
}

struct Health {
    upstream: UpstreamHealth,
    firewall: FirewallHealth,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms<EndpointLabel>,
    caller_lookup_seconds: Histograms<PathLabel>,
    caller_lookup_failures: Counter,
    /// Not exposed (the histogram's `_count` is): read by `gatehouse status`.
    caller_lookups: Family<PathLabel, Counter>,
    decision_seconds: Histogram,
    cache: Family<ResultLabel, Counter>,
    cache_entries: Gauge,
    upstream_requests: Family<StatusLabel, Counter>,
    upstream_seconds: Histogram,
    limiter_waits: Family<ClassLabel, Counter>,
    limiter_refusals: Family<ClassLabel, Counter>,
    firewall_repairs: Family<TriggerLabel, Counter>,
    firewall_failures: Counter,
    jit_grants_active: Gauge,
    jit_ports_open: Gauge,
    jit_events: Family<EventLabel, Counter>,
    audit_records: Counter,
    audit_write_errors: Counter,
    policy_reloads: Family<ResultLabel, Counter>,
    connections_refused: Family<ReasonLabel, Counter>,
    export_records: Family<SinkLabel, Counter>,
    export_failures: Family<SinkLabel, Counter>,
    export_lag_records: Family<SinkLabel, Gauge>,
    export_lag_seconds: Family<SinkLabel, Gauge>,
    start_time: Gauge<f64, AtomicU64>,
    health: Mutex<Health>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// This process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::with_prefix("gatehouse"),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(slow_histogram),
            caller_lookup_seconds: Family::new_with_constructor(fast_histogram),
            caller_lookup_failures: Counter::default(),
            caller_lookups: Family::default(),
            decision_seconds: fast_histogram(),
            cache: Family::default(),
            cache_entries: Gauge::default(),
            upstream_requests: Family::default(),
            upstream_seconds: slow_histogram(),
            limiter_waits: Family::default(),
            limiter_refusals: Family::default(),
            firewall_repairs: Family::default(),
            firewall_failures: Counter::default(),
            jit_grants_active: Gauge::default(),
            jit_ports_open: Gauge::default(),
            jit_events: Family::default(),
            audit_records: Counter::default(),
            audit_write_errors: Counter::default(),
            policy_reloads: Family::default(),
            connections_refused: Family::default(),
            export_records: Family::default(),
            export_failures: Family::default(),
            export_lag_records: Family::default(),
            export_lag_seconds: Family::default(),
            start_time: Gauge::default(),
            health: Mutex::new(Health {
                upstream: UpstreamHealth::default(),
                firewall: FirewallHealth {
                    state: FirewallState::Unknown,
                    since: None,
                    last_error: None,
                    monitor_lost: false,
                },
            }),
        };
        m.register()
    }

    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        let build: Family<VersionLabel, Gauge> = Family::default();
        build
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        r.register("build_info", "The running gatehouse's version", build);
        r.register(
            "start_time_seconds",
            "When the gate started, in seconds since the epoch",
            self.start_time.clone(),
        );
        r.register(
            "requests",
            "Requests answered, by endpoint, decision (allow, deny, error, rejected) and the assignment, deny assignment or trusted service that decided",
            self.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from a request's head to its answer, by endpoint",
            self.request_seconds.clone(),
        );
        r.register(
            "caller_lookup_duration_seconds",
            "Time to identify the caller, by the path that found it",
            self.caller_lookup_seconds.clone(),
        );
        r.register(
            "caller_lookup_failures",
            "Callers that could not be identified (answered 403)",
            self.caller_lookup_failures.clone(),
        );
        r.register(
            "decision_duration_seconds",
            "Time the policy took to decide",
            self.decision_seconds.clone(),
        );
        r.register(
            "token_cache_lookups",
            "Token cache lookups: hit, miss, stale (served while IMDS failed), refresh (background refresh started)",
            self.cache.clone(),
        );
        r.register(
            "token_cache_entries",
            "Keys the token cache holds",
            self.cache_entries.clone(),
        );
        r.register(
            "upstream_requests",
            "Upstream attempts, by IMDS's status or `timeout`/`error`",
            self.upstream_requests.clone(),
        );
        r.register(
            "upstream_duration_seconds",
            "Time of one upstream attempt",
            self.upstream_seconds.clone(),
        );
        r.register(
            "upstream_limiter_waits",
            "Upstream calls that waited for the limiter, by class (identity, other)",
            self.limiter_waits.clone(),
        );
        r.register(
            "upstream_limiter_refusals",
            "Upstream calls refused by the limiter within the time budget (answered 429)",
            self.limiter_refusals.clone(),
        );
        r.register(
            "firewall_repairs",
            "Repairs of the `inet gatehouse` table, by what found the drift",
            self.firewall_repairs.clone(),
        );
        r.register(
            "firewall_failures",
            "Failed firewall checks or repairs",
            self.firewall_failures.clone(),
        );
        r.register(
            "jit_grants_active",
            "Active just-in-time role grants",
            self.jit_grants_active.clone(),
        );
        r.register(
            "jit_ports_open",
            "Ports open just in time (port grants active)",
            self.jit_ports_open.clone(),
        );
        r.register(
            "jit_events",
            "Just-in-time events: requested, approved, denied, activated, expired, revoked, lapsed",
            self.jit_events.clone(),
        );
        r.register(
            "audit_records",
            "Audit records written",
            self.audit_records.clone(),
        );
        r.register(
            "audit_write_errors",
            "Audit writes that failed (requests are refused while they fail)",
            self.audit_write_errors.clone(),
        );
        r.register(
            "policy_reloads",
            "Policy reloads, by result (loaded, rejected)",
            self.policy_reloads.clone(),
        );
        r.register(
            "connections_refused",
            "Connections closed at accept, by reason",
            self.connections_refused.clone(),
        );
        r.register(
            "export_records",
            "Audit records delivered to an export sink (resent ones again)",
            self.export_records.clone(),
        );
        r.register(
            "export_failures",
            "Failed sends to an export sink (the records are sent again)",
            self.export_failures.clone(),
        );
        r.register(
            "export_lag_records",
            "Audit records in the log not yet delivered to an export sink",
            self.export_lag_records.clone(),
        );
        r.register(
            "export_lag_seconds",
            "Age of the oldest audit record not yet delivered to an export sink",
            self.export_lag_seconds.clone(),
        );
        self
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
            out.push_str("# EOF\n");
        }
        out
    }

    /// The same figures in Prometheus's classic text format (0.0.4), for
    /// scrapers and tools that do not ask for OpenMetrics (`curl`, older
    /// `promtool`): a counter's family takes its samples' `_total` name and
    /// there is no `# EOF`.
    pub fn encode_classic(&self) -> String {
        classic(&self.encode())
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn upstream_health(&self) -> UpstreamHealth {
        self.health().upstream.clone()
    }

    pub fn firewall_health(&self) -> FirewallHealth {
        self.health().firewall.clone()
    }

    /// Counter values `gatehouse status` shows.
    pub fn counts(&self) -> Counts {
        let cache = |r| {
            self.cache
                .get(&ResultLabel { result: r })
                .map_or(0, |c| c.get())
        };
        let class = |f: &Family<ClassLabel, Counter>| {
            ["identity", "other"]
                .iter()
                .map(|c| f.get(&ClassLabel { class: c }).map_or(0, |x| x.get()))
                .sum()
        };
        Counts {
            cache_hits: cache("hit"),
            cache_misses: cache("miss"),
            cache_stale: cache("stale"),
            cache_refreshes: cache("refresh"),
            limiter_waits: class(&self.limiter_waits),
            limiter_refusals: class(&self.limiter_refusals),
            firewall_repairs: ["start", "nft-event", "periodic"]
                .iter()
                .map(|t| {
                    self.firewall_repairs
                        .get(&TriggerLabel { trigger: t })
                        .map_or(0, |x| x.get())
                })
                .sum(),
            audit_records: self.audit_records.get(),
            audit_write_errors: self.audit_write_errors.get(),
            lookups: LOOKUP_PATHS
                .iter()
                .filter_map(|p| {
                    let n = self
                        .caller_lookups
                        .get(&PathLabel { path: p })
                        .map_or(0, |c| c.get());
                    (n > 0).then(|| ((*p).to_owned(), n))
                })
                .collect(),
        }
    }
}

/// Figures from the counters, for `gatehouse status`.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_stale: u64,
    pub cache_refreshes: u64,
    pub limiter_waits: u64,
    pub limiter_refusals: u64,
    pub firewall_repairs: u64,
    pub audit_records: u64,
    pub audit_write_errors: u64,
    /// Identifications so far, by the path that found the caller.
    pub lookups: Vec<(String, u64)>,
}

const LOOKUP_PATHS: [&str; 6] = [
    "socket_only",
    "connect_record",
    "recent",
    "newest",
    "same_uid",
    "full_scan",
];

/// The label of an identification path.
pub fn lookup_path(strategy: gatehouse_sys::Strategy) -> &'static str {
    use gatehouse_sys::Strategy;
    match strategy {
        Strategy::SocketOnly => "socket_only",
        Strategy::ConnectRecord => "connect_record",
        Strategy::Recent => "recent",
        Strategy::Newest => "newest",
        Strategy::SameUid => "same_uid",
        Strategy::FullScan => "full_scan",
    }
}

/// The rule label for what decided: the first name (a grant's
/// `NAME (jit ID)` counts as `NAME`), else `fallback`.
pub fn rule_label(decided_by: &[String], fallback: &str) -> String {
    match decided_by.first() {
        Some(name) => name
            .split_once(" (jit ")
            .map_or(name.as_str(), |(base, _)| base)
            .to_owned(),
        None => fallback.to_owned(),
    }
}

/// OpenMetrics text → classic text format (see [`Metrics::encode_classic`]).
fn classic(open: &str) -> String {
    let counters: std::collections::HashSet<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open.len());
    for line in open.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match descriptor {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let suffix = if counters.contains(name) {
                    "_total"
                } else {
                    ""
                };
                out.push_str(&format!("{prefix}{name}{suffix} {tail}\n"));
            }
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// A status code as a bounded label: IMDS's own codes as they are, any
/// other by class.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        400 => "400",
        403 => "403",
        404 => "404",
        405 => "405",
        410 => "410",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        100..=199 => "1xx",
        201..=299 => "2xx",
        300..=399 => "3xx",
        401..=499 => "4xx",
        501..=599 => "5xx",
        _ => "other",
    }
}

// ---- one-line calls from the rest of the gate ----------------------------

/// A request was answered.
pub fn request(endpoint: &str, decision: &'static str, rule: String, took: Duration) {
    let m = global();
    m.requests
        .get_or_create(&RequestLabels {
            endpoint: endpoint.to_owned(),
            decision,
            rule,
        })
        .inc();
    m.request_seconds
        .get_or_create(&EndpointLabel {
            endpoint: endpoint.to_owned(),
        })
        .observe(secs(took));
}

/// A caller was identified by `strategy` in `took`.
pub fn caller_identified(strategy: gatehouse_sys::Strategy, took: Duration) {
    let m = global();
    let path = PathLabel {
        path: lookup_path(strategy),
    };
    m.caller_lookup_seconds
        .get_or_create(&path)
        .observe(secs(took));
    m.caller_lookups.get_or_create(&path).inc();
}

pub fn caller_unknown() {
    global().caller_lookup_failures.inc();
}

pub fn decided(took: Duration) {
    global().decision_seconds.observe(secs(took));
}

/// Token cache: `hit`, `miss`, `stale` or `refresh`.
pub fn cache(result: &'static str) {
    global().cache.get_or_create(&ResultLabel { result }).inc();
}

pub fn cache_entries(n: usize) {
    global()
        .cache_entries
        .set(i64::try_from(n).unwrap_or(i64::MAX));
}

/// One upstream attempt and how it ended.
pub fn upstream_attempt(
    result: &Result<crate::upstream::UpstreamAnswer, crate::upstream::UpstreamError>,
    took: Duration,
) {
    let m = global();
    let label = match result {
        Ok(a) => status_label(a.status),
        Err(crate::upstream::UpstreamError::Timeout) => "timeout",
        Err(_) => "error",
    };
    m.upstream_requests
        .get_or_create(&StatusLabel { status: label })
        .inc();
    m.upstream_seconds.observe(secs(took));
    let now = Instant::now();
    let mut h = m.health();
    match result {
        Ok(a) if a.status < 500 && a.status != 429 && a.status != 410 => {
            h.upstream.last_success = Some(now);
        }
        Ok(a) => h.upstream.last_error = Some((now, format!("IMDS answered {}", a.status))),
        Err(e) => h.upstream.last_error = Some((now, e.to_string())),
    }
}

/// The limiter made a call wait (when `waited`; `identity` or `other`).
pub fn limiter_waiting(waited: bool, identity: bool) {
    if !waited {
        return;
    }
    global()
        .limiter_waits
        .get_or_create(&ClassLabel {
            class: if identity { "identity" } else { "other" },
        })
        .inc();
}

/// The limiter refused a call within its budget; `None`, what the
/// limiter returns then.
pub fn limiter_refused<T>(identity: bool) -> Option<T> {
    global()
        .limiter_refusals
        .get_or_create(&ClassLabel {
            class: if identity { "identity" } else { "other" },
        })
        .inc();
    None
}

pub fn audit_written() {
    global().audit_records.inc();
}

pub fn export_delivered(sink: &str, records: u64) {
    global()
        .export_records
        .get_or_create(&SinkLabel {
            sink: sink.to_owned(),
        })
        .inc_by(records);
}

pub fn export_failed(sink: &str) {
    global()
        .export_failures
        .get_or_create(&SinkLabel {
            sink: sink.to_owned(),
        })
        .inc();
}

pub fn export_lag(sink: &str, records: u64, secs: u64) {
    let label = SinkLabel {
        sink: sink.to_owned(),
    };
    let m = global();
    m.export_lag_records
        .get_or_create(&label)
        .set(i64::try_from(records).unwrap_or(i64::MAX));
    m.export_lag_seconds
        .get_or_create(&label)
        .set(i64::try_from(secs).unwrap_or(i64::MAX));
}

pub fn audit_failed() {
    global().audit_write_errors.inc();
}

pub fn policy_reload(loaded: bool) {
    global()
        .policy_reloads
        .get_or_create(&ResultLabel {
            result: if loaded { "loaded" } else { "rejected" },
        })
        .inc();
}

pub fn connection_refused(reason: &'static str) {
    global()
        .connections_refused
        .get_or_create(&ReasonLabel { reason })
        .inc();
}

pub fn started_at(epoch_secs: f64) {
    global().start_time.set(epoch_secs);
}

pub fn jit_ports(open: usize) {
    global()
        .jit_ports_open
        .set(i64::try_from(open).unwrap_or(i64::MAX));
}

pub fn jit_role_grants(n: usize) {
    global()
        .jit_grants_active
        .set(i64::try_from(n).unwrap_or(i64::MAX));
}

const JIT_EVENTS: [&str; 7] = [
    "requested",
    "approved",
    "denied",
    "activated",
    "expired",
    "revoked",
    "lapsed",
];

/// Everything the gate audits passes here: firewall and just-in-time
/// events are counted (and the firewall's state kept) by their type.
pub fn event(event: &gatehouse_audit::Event) {
    global().note_event(event);
}

impl Metrics {
    fn note_event(&self, event: &gatehouse_audit::Event) {
        // Events outside the request path are rare: read them as JSON.
        let Ok(event) = serde_json::to_value(event) else {
            return;
        };
        let Some(kind) = event.get("type").and_then(serde_json::Value::as_str) else {
            return;
        };
        self.note_event_json(kind, &event);
    }

    fn note_event_json(&self, kind: &str, event: &serde_json::Value) {
        let m = self;
        if let Some(jit) = kind.strip_prefix("jit_") {
            if let Some(name) = JIT_EVENTS.iter().find(|e| **e == jit) {
                m.jit_events
                    .get_or_create(&EventLabel { event: name })
                    .inc();
            }
            return;
        }
        let now = Instant::now();
        match kind {
            "firewall_repaired" => {
                let trigger = match event.get("trigger").and_then(serde_json::Value::as_str) {
                    Some("start") => "start",
                    Some("nft-event") => "nft-event",
                    _ => "periodic",
                };
                m.firewall_repairs
                    .get_or_create(&TriggerLabel { trigger })
                    .inc();
                let clean = event
                    .get("remaining")
                    .and_then(serde_json::Value::as_array)
                    .is_none_or(Vec::is_empty);
                let mut h = m.health();
                h.firewall.state = if clean {
                    FirewallState::Verified
                } else {
                    FirewallState::Drifted
                };
                h.firewall.since = Some(now);
            }
            "firewall_verified" => {
                let mut h = m.health();
                h.firewall.state = FirewallState::Verified;
                h.firewall.since = Some(now);
            }
            "firewall_repair_failed" => m.firewall_failed(event, "error", now),
            "firewall_monitor_lost" => m.health().firewall.monitor_lost = true,
            // A start-up probe that found the gate not in the path: it
            // stops, but the status it leaves says why. (No route to IMDS's
            // IPv6 address holds: nothing gets past the gate that way.)
            "firewall_probed"
                if event.get("holds").and_then(serde_json::Value::as_bool) != Some(true) =>
            {
                m.firewall_failed(event, "message", now);
            }
            _ => {}
        }
    }

    /// The firewall failed at `now`; `event`'s `field` says why.
    fn firewall_failed(&self, event: &serde_json::Value, field: &str, now: Instant) {
        self.firewall_failures.inc();
        let mut h = self.health();
        h.firewall.state = FirewallState::Failed;
        h.firewall.since = Some(now);
        h.firewall.last_error = event
            .get(field)
            .and_then(serde_json::Value::as_str)
            .map(|e| e.chars().take(200).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_labels_are_bounded_names() {
        let cases: [(&[&str], &str); 4] = [
            (&[], "default"),
            (&["web-storage"], "web-storage"),
            (&["oncall (jit 01J9ZX)"], "oncall"),
            (&["a", "b"], "a"),
        ];
        for (names, want) in cases {
            let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
            assert_eq!(rule_label(&names, "default"), want);
        }
    }

    #[test]
    fn classic_text_names_counter_families_by_their_samples() {
        let open = "# HELP g_x Things.\n# TYPE g_x counter\ng_x_total 3\n# HELP g_y Level.\n# TYPE g_y gauge\ng_y 1\n# EOF\n";
        let want = "# HELP g_x_total Things.\n# TYPE g_x_total counter\ng_x_total 3\n# HELP g_y Level.\n# TYPE g_y gauge\ng_y 1\n";
        assert_eq!(classic(open), want);
    }

    /// A start-up probe marks the firewall failed only when it found the
    /// gate out of the path: no route to IMDS's IPv6 address holds (the
    /// deployed shape on a VM without IPv6 routes: the package's restart
    /// test caught a gate that called itself degraded there).
    #[test]
    fn only_a_probe_that_does_not_hold_fails_the_firewall() {
        use gatehouse_audit::Event;
        let probe = |target: &str, verdict: &str, holds: bool| Event::FirewallProbed {
            trigger: "start".into(),
            target: target.into(),
            uid: 65534,
            verdict: verdict.into(),
            message: format!("{verdict} at {target}"),
            holds,
        };
        let cases = [
            (
                probe("169.254.169.254:80", "reaches_gate", true),
                FirewallState::Verified,
            ),
            (
                probe("[fd00:ec2::254]:80", "no_route", true),
                FirewallState::Verified,
            ),
            (
                probe("169.254.169.254:80", "diverted", false),
                FirewallState::Failed,
            ),
            (
                probe("169.254.169.254:80", "no_route", false),
                FirewallState::Failed,
            ),
        ];
        for (event, want) in cases {
            let m = Metrics::new();
            m.note_event(&Event::FirewallVerified {
                trigger: "start".into(),
            });
            m.note_event(&event);
            assert_eq!(m.firewall_health().state, want, "{event:?}");
        }
    }

    /// The firewall's state as `gatehouse status` shows it, event by event:
    /// verified from the start check, drifted while a repair did not hold,
    /// failed with the error, verified again; repairs counted throughout.
    #[test]
    fn firewall_state_follows_the_watcher() {
        use gatehouse_audit::Event;
        use FirewallState::{Drifted, Failed, Unknown, Verified};
        let verified = |t: &str| Event::FirewallVerified { trigger: t.into() };
        let repaired = |remaining: &[&str]| Event::FirewallRepaired {
            trigger: "nft-event".into(),
            differences: vec!["table `inet gatehouse` missing".into()],
            remaining: remaining.iter().map(|r| (*r).to_owned()).collect(),
        };
        let failed = Event::FirewallRepairFailed {
            trigger: "periodic".into(),
            error: "nft: not found".into(),
        };
        let steps: [(Event, FirewallState, u64, Option<&str>); 5] = [
            (verified("start"), Verified, 0, None),
            (repaired(&[]), Verified, 1, None),
            (
                repaired(&["chain `output`: rule missing"]),
                Drifted,
                2,
                None,
            ),
            (failed, Failed, 2, Some("nft: not found")),
            (verified("periodic"), Verified, 2, Some("nft: not found")),
        ];
        let m = Metrics::new();
        assert_eq!(m.firewall_health().state, Unknown);
        assert!(m.firewall_health().since.is_none());
        for (event, state, repairs, error) in steps {
            let kind = event.kind();
            m.note_event(&event);
            let h = m.firewall_health();
            assert_eq!(h.state, state, "after {kind}");
            assert!(h.since.is_some(), "after {kind}: no time");
            assert_eq!(m.counts().firewall_repairs, repairs, "after {kind}");
            assert_eq!(h.last_error.as_deref(), error, "after {kind}");
        }
    }

    #[test]
    fn status_labels_stay_in_a_fixed_set() {
        let labels: std::collections::BTreeSet<&str> = (0..=u16::MAX).map(status_label).collect();
        assert!(labels.len() <= 20, "{labels:?}");
        assert_eq!(status_label(429), "429");
        assert_eq!(status_label(418), "4xx");
    }
}

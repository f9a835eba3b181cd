//! One task per sink: read the next records after its cursor, send them,
//! and only then move the cursor (on disk). A failing sink retries the
//! same records with backoff, forever; nothing else waits for it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::cursor::{self, Cursor};
use crate::reader::{Discontinuity, LogReader};
use crate::sink::Sink;

/// Records per batch at most (and about this many bytes).
const BATCH_LINES: usize = 500;
const BATCH_BYTES: usize = 1 << 20;
/// How often a caught-up sink looks for new records.
const POLL: Duration = Duration::from_millis(200);
/// Retry delays after a failure: doubling from the first to the last.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(15);
/// One send (connect, write, acknowledgement) must finish within this.
const SEND_LIMIT: Duration = Duration::from_secs(20);

/// What the exporter needs from the gate: the log's head, the time, and
/// somewhere to count.
pub trait Host: Send + Sync + 'static {
    /// Sequence number of the newest record in the log, if known.
    fn head_seq(&self) -> Option<u64>;
    fn now(&self) -> SystemTime;
    fn delivered(&self, sink: &str, records: u64);
    fn failed(&self, sink: &str);
    fn lag(&self, sink: &str, records: u64, secs: u64);
}

/// A sink as `gatehouse status` shows it. Names and counts only: a URL
/// never carries credentials (they are refused when parsed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkStatus {
    pub name: String,
    pub url: String,
    /// `seq` of the last record the collector has.
    pub delivered_seq: Option<u64>,
    /// Records in the log after `delivered_seq`.
    pub lag_records: u64,
    /// Age of the oldest record not yet delivered (0 when caught up).
    pub lag_secs: u64,
    /// Records delivered since the gate started (duplicates included).
    pub exported: u64,
    /// Failed sends since the gate started.
    pub failures: u64,
    pub last_error: Option<String>,
    pub last_error_secs_ago: Option<u64>,
    /// Gaps or breaks the reader found in the log (newest last, at most 8).
    pub log_problems: Vec<String>,
}

#[derive(Debug, Default)]
struct Progress {
    delivered_seq: Option<u64>,
    /// Time of the oldest record read and not yet delivered.
    pending_since: Option<SystemTime>,
    exported: u64,
    failures: u64,
    last_error: Option<(Instant, String)>,
    /// Whether the last send succeeded after `last_error`.
    recovered: bool,
    problems: Vec<String>,
}

/// The shared view of one running sink.
#[derive(Debug)]
pub struct SinkState {
    pub name: String,
    pub url: String,
    progress: Mutex<Progress>,
}

impl SinkState {
    fn with<R>(&self, f: impl FnOnce(&mut Progress) -> R) -> R {
        let mut p = self
            .progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut p)
    }

    pub fn status(&self, head: Option<u64>, now: SystemTime) -> SinkStatus {
        self.with(|p| {
            let delivered = p.delivered_seq.unwrap_or(0);
            SinkStatus {
                name: self.name.clone(),
                url: self.url.clone(),
                delivered_seq: p.delivered_seq,
                lag_records: head.map_or(0, |h| h.saturating_sub(delivered)),
                lag_secs: p
                    .pending_since
                    .and_then(|t| now.duration_since(t).ok())
                    .map_or(0, |d| d.as_secs()),
                exported: p.exported,
                failures: p.failures,
                last_error: p.last_error.as_ref().map(|(_, e)| e.clone()),
                last_error_secs_ago: p.last_error.as_ref().map(|(t, _)| t.elapsed().as_secs()),
                log_problems: p.problems.clone(),
            }
        })
    }

    /// Whether the sink's last send failed (nothing delivered since).
    pub fn failing(&self) -> bool {
        self.with(|p| p.last_error.is_some() && !p.recovered)
    }
}

/// Everything one sink's task needs.
pub struct Pump {
    pub state: Arc<SinkState>,
    pub sink: Sink,
    pub log: PathBuf,
    pub cursor_path: PathBuf,
    pub host: Arc<dyn Host>,
}

/// A batch the collector acknowledged on a connection that may still die
/// with it unprocessed: a stream collector acknowledges bytes, not records.
#[derive(Debug)]
struct Sent {
    /// The cursor before the batch (where to resend from).
    start: Option<Cursor>,
    end: Option<Cursor>,
    at: Instant,
}

/// Batches acknowledged on a stream connection count as delivered once the
/// connection has stayed up this long after them (or closed cleanly at a
/// stop); if it fails sooner, everything since is sent again.
const REPLAY: Duration = Duration::from_secs(5);

/// Runs until `stop` says to; a drain delivers what is in the log (the
/// gate's last record) first.
pub async fn run(pump: Pump, mut stop: watch::Receiver<Stop>) {
    let Pump {
        state,
        mut sink,
        log,
        cursor_path,
        host,
    } = pump;
    let start = match cursor::load(&cursor_path) {
        Ok(c) => c,
        Err(e) => {
            // An unreadable cursor: deliver everything again (duplicates,
            // never a gap) and say so.
            tracing::error!(sink = %state.name, error = %e, "audit export starts from the oldest record");
            None
        }
    };
    state.with(|p| p.delivered_seq = start.as_ref().map(|c| c.seq));
    let mut reader = Some(LogReader::new(&log, start.clone()));
    let mut last_end = start;
    let mut unconfirmed: VecDeque<Sent> = VecDeque::new();
    let mut backoff = BACKOFF_MIN;
    loop {
        let Some(mut r) = reader.take() else {
            return;
        };
        // A drain asked for before this read is done when it finds nothing.
        let asked = *stop.borrow();
        let read = tokio::task::spawn_blocking(move || {
            let b = r.next_batch(BATCH_LINES, BATCH_BYTES);
            (r, b)
        })
        .await;
        let Ok((r, batch)) = read else {
            tracing::error!(sink = %state.name, "audit export reader stopped");
            return;
        };
        reader = Some(r);
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                note_error(&state, &*host, format!("cannot read the audit log: {e}"));
                if pause(&mut stop, backoff).await {
                    return;
                }
                continue;
            }
        };
        for p in &batch.problems {
            note_problem(&state, p);
        }
        let Some(first) = batch.lines.first() else {
            state.with(|p| p.pending_since = None);
            report_lag(&state, &*host);
            if !unconfirmed.is_empty() {
                if sink.alive().await {
                    let all = asked != Stop::Run;
                    confirm(&mut unconfirmed, all, &cursor_path, &state, &*host).await;
                } else {
                    note_error(
                        &state,
                        &*host,
                        "the collector closed the connection".to_owned(),
                    );
                    sink.reset();
                    rewind(&mut unconfirmed, &mut reader, &mut last_end, &log);
                    continue;
                }
            }
            if asked != Stop::Run || pause(&mut stop, POLL).await {
                return;
            }
            continue;
        };
        let since = first
            .unix_nanos()
            .map(|n| SystemTime::UNIX_EPOCH + Duration::from_nanos(n));
        state.with(|p| p.pending_since = since);
        report_lag(&state, &*host);
        let mut rewound = false;
        loop {
            let sent = tokio::time::timeout(SEND_LIMIT, sink.send(&batch.lines)).await;
            let err = match sent {
                Ok(Ok(())) => break,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {} s", SEND_LIMIT.as_secs()),
            };
            sink.reset();
            note_error(&state, &*host, err);
            report_lag(&state, &*host);
            if pause(&mut stop, backoff).await {
                return;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            if !unconfirmed.is_empty() {
                // What the dead connection carried goes again, in order.
                rewind(&mut unconfirmed, &mut reader, &mut last_end, &log);
                rewound = true;
                break;
            }
        }
        if rewound {
            continue;
        }
        backoff = BACKOFF_MIN;
        let n = u64::try_from(batch.lines.len()).unwrap_or(u64::MAX);
        let last_seq = batch.lines.last().map(|l| l.seq);
        unconfirmed.push_back(Sent {
            start: last_end.clone(),
            end: batch.end.clone(),
            at: Instant::now(),
        });
        if batch.end.is_some() {
            last_end = batch.end;
        }
        confirm(
            &mut unconfirmed,
            !sink.replays(),
            &cursor_path,
            &state,
            &*host,
        )
        .await;
        state.with(|p| {
            p.delivered_seq = last_seq.or(p.delivered_seq);
            p.exported += n;
            p.recovered = true;
        });
        host.delivered(&state.name, n);
    }
}

/// Moves the durable cursor past the batches that are old enough (or all).
async fn confirm(
    unconfirmed: &mut VecDeque<Sent>,
    all: bool,
    cursor_path: &std::path::Path,
    state: &SinkState,
    host: &dyn Host,
) {
    let mut end = None;
    while let Some(s) = unconfirmed.front() {
        if !all && s.at.elapsed() < REPLAY {
            break;
        }
        if let Some(s) = unconfirmed.pop_front() {
            end = s.end.or(end);
        }
    }
    let Some(end) = end else {
        return;
    };
    let path = cursor_path.to_path_buf();
    match tokio::task::spawn_blocking(move || cursor::store(&path, &end)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => note_error(state, host, e.to_string()),
        Err(e) => note_error(state, host, e.to_string()),
    }
}

/// Starts reading again at the first unconfirmed batch.
fn rewind(
    unconfirmed: &mut VecDeque<Sent>,
    reader: &mut Option<LogReader>,
    last_end: &mut Option<Cursor>,
    log: &std::path::Path,
) {
    if let Some(first) = unconfirmed.pop_front() {
        *reader = Some(LogReader::new(log, first.start.clone()));
        *last_end = first.start;
    }
    unconfirmed.clear();
}

/// How a pump is told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Run,
    /// Deliver what is in the log, then stop.
    Drain,
    Now,
}

/// Sleeps `d` or until told to stop; `true` when the pump must end now
/// (a drain wakes it to read once more).
async fn pause(stop: &mut watch::Receiver<Stop>, d: Duration) -> bool {
    if *stop.borrow() == Stop::Now {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => *stop.borrow() == Stop::Now,
        changed = stop.changed() => changed.is_err() || *stop.borrow() == Stop::Now,
    }
}

fn report_lag(state: &SinkState, host: &dyn Host) {
    let s = state.status(host.head_seq(), host.now());
    host.lag(&state.name, s.lag_records, s.lag_secs);
}

fn note_error(state: &SinkState, host: &dyn Host, error: String) {
    tracing::warn!(sink = %state.name, error = %error, "audit export failed; retrying");
    state.with(|p| {
        p.failures += 1;
        p.last_error = Some((Instant::now(), error));
        p.recovered = false;
    });
    host.failed(&state.name);
}

fn note_problem(state: &SinkState, problem: &Discontinuity) {
    let text = match problem {
        Discontinuity::Missing { from, to } => {
            format!("records {from}..={to} were gone from the log before they were delivered")
        }
        Discontinuity::Broken {
            after_seq,
            found_seq,
        } => format!("record {found_seq} does not link to record {after_seq}: the chain is broken"),
        Discontinuity::Behind {
            cursor_seq,
            log_last_seq,
        } => format!(
            "the log ends at record {log_last_seq}, before the delivered {cursor_seq}: it was cut or replaced"
        ),
    };
    tracing::error!(sink = %state.name, problem = %text, "audit export found the log changed");
    state.with(|p| {
        if p.problems.len() >= 8 {
            p.problems.remove(0);
        }
        p.problems.push(text);
    });
}

impl SinkState {
    pub fn new(name: String, url: String) -> SinkState {
        SinkState {
            name,
            url,
            progress: Mutex::new(Progress::default()),
        }
    }
}

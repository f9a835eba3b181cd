//! One audit record as the exporter reads it: the bytes exactly as stored
//! (what a sink ships), and the chain fields a receiver uses to drop
//! duplicates and see gaps.

use serde::Deserialize;
use serde_json::Value;

/// A complete record line (without its newline) and its parsed fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub seq: u64,
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, as the gate wrote it.
    pub time: String,
    pub prev: String,
    pub hash: String,
    pub event: Value,
    /// The whole line as stored, without `\n`: shipped unchanged, so the
    /// receiver can recompute `hash` over the same bytes.
    pub raw: Vec<u8>,
}

#[derive(Deserialize)]
struct Fields {
    seq: u64,
    time: String,
    prev: String,
    event: Value,
    hash: String,
}

/// Why a line of the log could not be read as a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line is not an audit record: {0}")]
pub struct BadLine(pub String);

impl Line {
    pub fn parse(raw: &[u8]) -> Result<Line, BadLine> {
        let f: Fields = serde_json::from_slice(raw).map_err(|e| BadLine(e.to_string()))?;
        Ok(Line {
            seq: f.seq,
            time: f.time,
            prev: f.prev,
            hash: f.hash,
            event: f.event,
            raw: raw.to_vec(),
        })
    }

    /// The event's `type` (`request`, `gate_started`, …).
    pub fn kind(&self) -> &str {
        self.event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
    }

    /// `allow`, `deny`, `rejected` or `error` for request records.
    pub fn outcome(&self) -> Option<&str> {
        self.event.get("outcome").and_then(Value::as_str)
    }

    /// A string field of the event, by dotted path (`caller.exe`).
    pub fn field(&self, path: &str) -> Option<String> {
        let mut v = &self.event;
        for key in path.split('.') {
            v = v.get(key)?;
        }
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Seconds and nanoseconds since the epoch of `time`, if it parses.
    pub fn unix_nanos(&self) -> Option<u64> {
        let t: jiff::Timestamp = self.time.parse().ok()?;
        u64::try_from(t.as_nanosecond()).ok()
    }
}

/// How a record ranks for a collector: by decision for requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Notice,
    Warning,
    Error,
}

impl Line {
    pub fn level(&self) -> Level {
        match (self.kind(), self.outcome()) {
            ("request", Some("allow")) | ("forwarding", _) => Level::Info,
            ("request", Some("error")) => Level::Error,
            ("request", _) => Level::Warning,
            (
                "policy_rejected"
                | "torn_tail_repaired"
                | "firewall_repaired"
                | "firewall_monitor_lost"
                | "jit_signed_request_refused",
                _,
            ) => Level::Warning,
            ("firewall_repair_failed", _) => Level::Error,
            ("firewall_probed", _)
                if self.event.get("verdict").and_then(Value::as_str) != Some("reaches_gate") =>
            {
                Level::Error
            }
            _ => Level::Notice,
        }
    }
}

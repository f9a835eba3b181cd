//! Helpers shared by the integration tests: build logs, mutate their bytes,
//! and forge lines with the documented hash formula (computed here, not by
//! the crate, so the format doc is tested too).
#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a test failure"
)]

use std::path::{Path, PathBuf};

use gatehouse_audit::{AuditLog, Options};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub fn time(i: u64) -> String {
    format!("2025-03-04T05:06:{:02}.{:03}Z", i % 60, i % 1000)
}

pub fn event(i: u64) -> Value {
    json!({"type": "decision", "n": i, "caller": {"uid": 1000 + i, "exe": "/usr/bin/curl"}, "outcome": "allow"})
}

/// A fresh log at `dir/audit.log` with `n` records (seq 1..=n).
pub fn write_log(dir: &Path, n: u64) -> PathBuf {
    let path = dir.join("audit.log");
    let log = AuditLog::open(&path, Options::default()).unwrap();
    for i in 1..=n {
        log.append(&time(i), &event(i)).unwrap();
    }
    path
}

/// The file's lines, each with its `\n`.
pub fn lines(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

pub fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    std::fs::write(path, lines.concat()).unwrap();
}

/// The `hash` field of a line.
pub fn hash_of(line: &[u8]) -> String {
    let v: Value = serde_json::from_slice(line).unwrap();
    v["hash"].as_str().unwrap().to_owned()
}

/// The `event` of a file's first record.
pub fn first_event(path: &Path) -> Value {
    let first = lines(path).remove(0);
    serde_json::from_slice::<Value>(&first).unwrap()["event"].clone()
}

/// A self-consistent record line with any seq and prev.
pub fn forge(seq: u64, prev: &str, event: &Value) -> Vec<u8> {
    let prefix = format!(
        "{{\"seq\":{seq},\"time\":\"2025-03-04T05:06:07.000Z\",\"prev\":\"{prev}\",\"event\":{}",
        serde_json::to_string(event).unwrap()
    );
    let mut h = Sha256::new();
    h.update(format!("{prev}\n{prefix}"));
    format!("{prefix},\"hash\":\"{}\"}}\n", hex::encode(h.finalize())).into_bytes()
}

//! Many threads appending at once still produce one valid chain.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::*;
use gatehouse_audit::{rotation_set, verify_chain, AuditLog, Options};
use serde_json::json;

const THREADS: u64 = 8;
const PER_THREAD: u64 = 200;

#[allow(clippy::unwrap_used, reason = "test helper: a panic is a test failure")]
fn hammer(options: Options) -> (std::path::PathBuf, tempfile::TempDir, BTreeSet<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = Arc::new(AuditLog::open(&path, options).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                (0..PER_THREAD)
                    .map(|i| {
                        log.append(&time(i), &json!({"thread": t, "i": i}))
                            .unwrap()
                            .seq
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for handle in handles {
        for seq in handle.join().unwrap() {
            assert!(seqs.insert(seq), "seq {seq} handed out twice");
        }
    }
    (path, dir, seqs)
}

#[test]
fn eight_threads_one_chain() {
    let (path, _dir, seqs) = hammer(Options::default());
    assert_eq!(seqs.len() as u64, THREADS * PER_THREAD);
    let report = verify_chain(&[path]).unwrap();
    assert_eq!(report.records, THREADS * PER_THREAD);
    assert_eq!(report.last_seq, Some(THREADS * PER_THREAD));
}

#[test]
fn eight_threads_with_rotation() {
    let opts = Options {
        rotate_bytes: Some(16 * 1024),
        keep: 1000,
        ..Options::default()
    };
    let (path, _dir, seqs) = hammer(opts);
    let set = rotation_set(&path).unwrap();
    assert!(set.len() > 3, "{}", set.len());
    let report = verify_chain(&set).unwrap();
    assert!(report.starts_at_genesis());
    assert_eq!(report.records, seqs.len() as u64 + set.len() as u64 - 1);
}

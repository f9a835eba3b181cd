use super::*;
use gatehouse_audit::{AuditLog, Event, Options};

fn log(dir: &Path, rotate: Option<u64>, keep: usize) -> AuditLog {
    AuditLog::open(
        &dir.join("audit.log"),
        Options {
            rotate_bytes: rotate,
            keep,
            ..Options::default()
        },
    )
    .unwrap()
}

/// Appends `n` records; the seq of the last (rotation adds records of its own).
fn append(log: &AuditLog, n: u64) -> u64 {
    let mut seq = 0;
    for i in 0..n {
        seq = log
            .append(
                "2026-12-03T17:00:00.000Z",
                &Event::PolicyLoaded {
                    policy: format!("{i:064}"),
                },
            )
            .unwrap()
            .seq;
    }
    seq
}

/// Reads until the reader has nothing more, returning every seq seen.
fn drain(r: &mut LogReader, seen: &mut Vec<u64>, last: &mut Option<Cursor>) -> Vec<Discontinuity> {
    let mut problems = Vec::new();
    for _ in 0..10_000 {
        let b = r.next_batch(7, 4096).unwrap();
        problems.extend(b.problems);
        if b.lines.is_empty() {
            return problems;
        }
        seen.extend(b.lines.iter().map(|l| l.seq));
        *last = b.end;
    }
    panic!("the reader never reached the end");
}

#[test]
fn reads_everything_in_order_across_rotation_while_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = log(dir.path(), Some(2_000), 50);
    let mut r = LogReader::new(&dir.path().join("audit.log"), None);
    let mut seen = Vec::new();
    let mut last = None;
    let mut total = 0;
    for round in 0..20 {
        total = append(&log, round % 7 + 1);
        assert!(drain(&mut r, &mut seen, &mut last).is_empty());
    }
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
    assert!(
        gatehouse_audit::rotation_set(&dir.path().join("audit.log"))
            .unwrap()
            .len()
            > 3
    );
}

#[test]
fn resumes_from_a_cursor_after_rotations_without_loss_or_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = log(dir.path(), Some(1_500), 50);
    append(&log, 10);
    let mut seen = Vec::new();
    let mut last = None;
    let mut r = LogReader::new(&path, None);
    drain(&mut r, &mut seen, &mut last);
    // A new reader from the cursor, after more records and rotations.
    let total = append(&log, 25);
    for _ in 0..3 {
        let mut r = LogReader::new(&path, last.clone());
        let b = r.next_batch(4, 1 << 20).unwrap();
        assert!(b.problems.is_empty(), "{:?}", b.problems);
        seen.extend(b.lines.iter().map(|l| l.seq));
        last = b.end.or(last);
    }
    let mut r = LogReader::new(&path, last.clone());
    assert!(drain(&mut r, &mut seen, &mut last).is_empty());
    assert_eq!(seen, (1..=total).collect::<Vec<_>>());
}

#[test]
fn a_file_rotated_away_before_delivery_is_a_reported_gap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = log(dir.path(), Some(1_200), 1);
    append(&log, 2);
    let mut seen = Vec::new();
    let mut last = None;
    let mut r = LogReader::new(&path, None);
    drain(&mut r, &mut seen, &mut last);
    drop(r);
    // Many rotations with one file kept: records 3.. are partly gone.
    let total = append(&log, 40);
    let mut r = LogReader::new(&path, last.clone());
    let problems = drain(&mut r, &mut seen, &mut last);
    let Some(Discontinuity::Missing { from: 3, to }) = problems.first().cloned() else {
        panic!("no gap reported: {problems:?}");
    };
    assert_eq!(seen.get(2).copied(), Some(to + 1));
    assert_eq!(*seen.last().unwrap(), total);
    assert_eq!(seen.len() as u64, 2 + total - to);
}

#[test]
fn a_torn_last_line_waits_until_it_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = log(dir.path(), None, 0);
    append(&log, 3);
    let full = std::fs::read(&path).unwrap();
    drop(log);
    // Cut the last line in half, as a crash mid-write would.
    let cut = full.len() - 40;
    std::fs::write(&path, &full[..cut]).unwrap();
    let mut r = LogReader::new(&path, None);
    let (mut seen, mut last) = (Vec::new(), None);
    drain(&mut r, &mut seen, &mut last);
    assert_eq!(seen, vec![1, 2]);
    std::fs::write(&path, &full).unwrap();
    drain(&mut r, &mut seen, &mut last);
    assert_eq!(seen, vec![1, 2, 3]);
}

#[test]
fn a_log_cut_behind_the_cursor_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = log(dir.path(), None, 0);
    append(&log, 5);
    let (mut seen, mut last) = (Vec::new(), None);
    drain(&mut LogReader::new(&path, None), &mut seen, &mut last);
    drop(log);
    let text = std::fs::read_to_string(&path).unwrap();
    let two: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, two).unwrap();
    let mut r = LogReader::new(&path, last);
    let b = r.next_batch(10, 1 << 20).unwrap();
    assert_eq!(
        b.problems,
        vec![Discontinuity::Behind {
            cursor_seq: 5,
            log_last_seq: 2
        }]
    );
    assert!(b.lines.is_empty());
}

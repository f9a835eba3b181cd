//! Rotation: sets verify as a whole, newest files verify alone.

mod common;

use std::os::unix::fs::MetadataExt;

use common::*;
use gatehouse_audit::{rotation_set, verify_chain, AuditLog, Options};
use serde_json::{json, Value};

fn rotating(rotate_bytes: u64, keep: usize) -> Options {
    Options {
        rotate_bytes: Some(rotate_bytes),
        keep,
        ..Options::default()
    }
}

#[test]
fn three_files_verify_as_a_set_and_newest_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path, rotating(1500, 5)).unwrap();
    let mut appended = 0;
    while !dir.path().join("audit.log.2").exists() {
        appended += 1;
        assert!(appended < 1000, "never rotated twice");
        log.append(&time(appended), &event(appended)).unwrap();
    }
    let set = rotation_set(&path).unwrap();
    assert_eq!(
        set,
        vec![
            dir.path().join("audit.log.2"),
            dir.path().join("audit.log.1"),
            path.clone()
        ]
    );
    for file in &set {
        assert!(
            std::fs::metadata(file).unwrap().len() <= 1500,
            "{}",
            file.display()
        );
        assert_eq!(std::fs::metadata(file).unwrap().mode() & 0o7777, 0o640);
    }

    let report = verify_chain(&set).unwrap();
    assert!(report.starts_at_genesis());
    assert_eq!(report.records, appended + 2, "two rotation records");
    assert_eq!(report.files, 3);

    let previous_last_seq = verify_chain(&set[..2]).unwrap().last_seq.unwrap();
    assert_eq!(
        first_event(&path),
        json!({"type": "rotated", "previous_file": "audit.log.1", "previous_last_seq": previous_last_seq})
    );

    let alone = verify_chain(std::slice::from_ref(&path)).unwrap();
    assert!(!alone.starts_at_genesis());
    assert_eq!(alone.first_seq, Some(previous_last_seq + 1));
    assert!(
        alone.to_string().contains(
            &format!(
                "starts at seq {} , chained to an earlier file",
                previous_last_seq + 1
            )
            .replace(" ,", ",")
        ),
        "{alone}"
    );

    // Out of order, the set fails at the first line of the misplaced file.
    let failure = verify_chain(&[set[1].clone(), set[0].clone(), set[2].clone()]).unwrap_err();
    assert_eq!(
        (failure.file.clone(), failure.line),
        (set[0].clone(), 1),
        "{failure}"
    );

    // Reopening after rotation continues in the newest file.
    drop(log);
    let log = AuditLog::open(&path, rotating(1500, 5)).unwrap();
    let next = log.append(&time(0), &event(0)).unwrap();
    assert_eq!(Some(next.seq), report.last_seq.map(|s| s + 1));
    assert!(verify_chain(&rotation_set(&path).unwrap()).is_ok());
}

#[test]
fn dropped_oldest_files_still_verify() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path, rotating(600, 2)).unwrap();
    for i in 1..=60 {
        log.append(&time(i), &event(i)).unwrap();
    }
    let set = rotation_set(&path).unwrap();
    assert_eq!(set.len(), 3, "{set:?}");
    assert!(!dir.path().join("audit.log.3").exists());
    let report = verify_chain(&set).unwrap();
    assert!(!report.starts_at_genesis());
    assert!(report.first_seq.unwrap() > 1);
    assert!(
        report.to_string().contains("chained to an earlier file"),
        "{report}"
    );
}

#[test]
fn keep_zero_drops_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let log = AuditLog::open(&path, rotating(600, 0)).unwrap();
    for i in 1..=20 {
        log.append(&time(i), &event(i)).unwrap();
    }
    assert_eq!(rotation_set(&path).unwrap(), vec![path.clone()]);
    assert_eq!(first_event(&path)["previous_file"], Value::Null);
    assert!(verify_chain(&[path]).is_ok());
}

#[test]
fn empty_current_file_continues_from_the_rotated_one() {
    // What a crash between creating the new file and writing to it leaves.
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 3);
    std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let log = AuditLog::open(&path, Options::default()).unwrap();
    assert_eq!(log.append(&time(4), &event(4)).unwrap().seq, 4);
    assert_eq!(
        verify_chain(&rotation_set(&path).unwrap()).unwrap().records,
        4
    );
}

#[test]
fn missing_current_file_continues_from_the_rotated_one() {
    // What a crash between renaming `path` and creating the new file leaves.
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 3);
    std::fs::rename(&path, dir.path().join("audit.log.1")).unwrap();
    let log = AuditLog::open(&path, Options::default()).unwrap();
    assert_eq!(log.append(&time(4), &event(4)).unwrap().seq, 4);
    assert_eq!(
        verify_chain(&rotation_set(&path).unwrap()).unwrap().records,
        4
    );
}

#[test]
fn rotation_set_needs_a_log() {
    let dir = tempfile::tempdir().unwrap();
    assert!(rotation_set(&dir.path().join("none")).is_err());
}

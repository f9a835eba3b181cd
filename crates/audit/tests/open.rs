//! Opening, creating, continuing and refusing log files.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::*;
use gatehouse_audit::{verify_chain, AuditError, AuditLog, Options};
use serde_json::{json, Value};

#[test]
fn audit_log_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<AuditLog>();
}

#[test]
fn created_with_mode_0640() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 1);
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o640);
}

#[test]
fn created_with_a_requested_narrower_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    AuditLog::open(
        &path,
        Options {
            mode: 0o600,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
}

#[test]
fn existing_mode_is_never_widened() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 1);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    AuditLog::open(&path, Options::default())
        .unwrap()
        .append(&time(2), &event(2))
        .unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
}

#[test]
fn refuses_group_or_other_writable_files_and_modes() {
    for mode in [0o660, 0o646, 0o666] {
        let dir = tempfile::tempdir().unwrap();
        let path = write_log(dir.path(), 1);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = AuditLog::open(&path, Options::default()).unwrap_err();
        assert!(
            matches!(err, AuditError::Writable { mode: m, .. } if m == mode),
            "{mode:o}: {err}"
        );
        let err = AuditLog::open(
            &dir.path().join("new.log"),
            Options {
                mode,
                ..Options::default()
            },
        )
        .unwrap_err();
        assert!(matches!(err, AuditError::BadMode { .. }), "{mode:o}: {err}");
    }
}

#[test]
fn refuses_symlinks_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    let target = write_log(dir.path(), 1);
    let link = dir.path().join("link.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(matches!(
        AuditLog::open(&link, Options::default()),
        Err(AuditError::Io { .. })
    ));
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    assert!(AuditLog::open(&sub, Options::default()).is_err());
}

#[test]
fn reopening_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 3);
    let log = AuditLog::open(&path, Options::default()).unwrap();
    let appended = log.append(&time(4), &event(4)).unwrap();
    assert_eq!(appended.seq, 4);
    drop(log);
    let report = verify_chain(std::slice::from_ref(&path)).unwrap();
    assert_eq!((report.records, report.last_seq), (4, Some(4)));
    assert_eq!(report.last_hash.as_deref(), Some(appended.hash.as_str()));
}

#[test]
fn refuses_a_bad_last_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 3);
    let mut l = lines(&path);
    let edited = String::from_utf8(l[2].clone())
        .unwrap()
        .replace("allow", "deny!");
    l[2] = edited.into_bytes();
    write_lines(&path, &l);
    let err = AuditLog::open(&path, Options::default()).unwrap_err();
    assert!(matches!(err, AuditError::BadLastRecord { .. }), "{err}");
}

#[test]
fn refuses_events_that_are_not_objects_and_bad_times() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 1);
    let log = AuditLog::open(&path, Options::default()).unwrap();
    for event in [
        json!([1, 2]),
        json!("x"),
        json!(3),
        Value::Null,
        json!(true),
    ] {
        let err = log.append(&time(2), &event).unwrap_err();
        assert!(matches!(err, AuditError::EventNotObject), "{event}: {err}");
    }
    for bad in ["2025-03-04T05:06:07Z", "yesterday", ""] {
        let err = log.append(bad, &event(2)).unwrap_err();
        assert!(matches!(err, AuditError::BadTime { .. }), "{bad}: {err}");
    }
    assert_eq!(log.append(&time(2), &event(2)).unwrap().seq, 2);
    assert_eq!(verify_chain(&[path]).unwrap().records, 2);
}

#[test]
fn refuses_an_oversized_event() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 1);
    let log = AuditLog::open(&path, Options::default()).unwrap();
    let err = log
        .append(&time(2), &json!({"big": "x".repeat(2 << 20)}))
        .unwrap_err();
    assert!(matches!(err, AuditError::TooLarge), "{err}");
    assert_eq!(log.append(&time(2), &event(2)).unwrap().seq, 2);
}

#[test]
fn torn_tail_is_refused_then_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 4);
    let mut l = lines(&path);
    let last = l.last_mut().unwrap();
    last.truncate(30);
    write_lines(&path, &l);

    let err = AuditLog::open(&path, Options::default()).unwrap_err();
    assert!(
        matches!(err, AuditError::TornTail { bytes: 30, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("repair_torn_tail"), "{err}");

    let log = AuditLog::open(
        &path,
        Options {
            repair_torn_tail: true,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(log.append(&time(5), &event(5)).unwrap().seq, 5);
    drop(log);
    let report = verify_chain(std::slice::from_ref(&path)).unwrap();
    assert_eq!(report.records, 5);
    let l = lines(&path);
    let repaired: Value = serde_json::from_slice(&l[3]).unwrap();
    assert_eq!(repaired["seq"], 4);
    assert_eq!(
        repaired["event"],
        json!({"type": "torn_tail_repaired", "bytes": 30})
    );
}

#[test]
fn sync_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_log(dir.path(), 1);
    let log = AuditLog::open(&path, Options::default()).unwrap();
    log.append(&time(2), &event(2)).unwrap();
    log.sync().unwrap();
    assert_eq!(log.path(), path);
}

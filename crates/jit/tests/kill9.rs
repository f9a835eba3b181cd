//! kill -9 at random moments leaves every request whole.
//!
//! The parent re-runs this test binary with `GATEHOUSE_JIT_KILL9_WRITER` set
//! to a store path; the `writer` test then loops insert/approve/deny/revoke
//! as fast as it can until it is killed. Without the variable `writer` does
//! nothing, so plain `cargo test` runs only the parent.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step must fail the test loudly"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, UNIX_EPOCH};

use gatehouse_jit::store::{Common, NewRequest, Protocol, Requester, Store, Target};
use rand::Rng;

const WRITER_ENV: &str = "GATEHOUSE_JIT_KILL9_WRITER";
const ROUNDS: usize = 5;
/// What the writer prints once the store is open. The harness prints
/// `test writer ... ` without a newline first, so look for it inside a line.
const READY: &str = "GATEHOUSE_JIT_WRITER_READY";
/// A writer whose parent died (so nobody kills it) stops by itself.
const WRITER_LIFETIME: Duration = Duration::from_secs(30);

fn request(n: u64) -> NewRequest {
    let target = if n.is_multiple_of(2) {
        Target::Role {
            role: "Reader".into(),
            assignment: "a1".into(),
            identity: "storage-writer".into(),
            audience: None,
        }
    } else {
        Target::Port {
            name: "ssh".into(),
            port: 22,
            protocol: Protocol::Tcp,
            source: "192.0.2.7".parse().unwrap(),
        }
    };
    NewRequest {
        common: Common {
            requester: Requester {
                uid: Some(1000),
                name: "alice".into(),
            },
            duration_secs: 3600,
            requested_secs: 7200,
            reason: Some(format!("request {n}")),
            ticket: None,
            via: "admin-socket".into(),
        },
        target,
    }
}

/// The child: open, say it is ready, then write until killed.
#[test]
fn writer() {
    let Ok(path) = std::env::var(WRITER_ENV) else {
        return;
    };
    let deadline = Instant::now() + WRITER_LIFETIME;
    let store = Store::open(Path::new(&path)).unwrap();
    println!("\n{READY}");
    let root = Requester {
        uid: Some(0),
        name: "root".into(),
    };
    // Fixed times a second apart: nothing lapses or expires mid-test.
    let base = UNIX_EPOCH + Duration::from_secs(1_795_618_869);
    for n in 0u64.. {
        if Instant::now() > deadline {
            panic!("writer: not killed within {WRITER_LIFETIME:?}; stopping");
        }
        let now = base + Duration::from_millis(n);
        let rec = store.insert(request(n), now, n % 5 == 0).unwrap();
        match n % 4 {
            0 => {}
            1 => {
                store.approve(&rec.id, &root, Some("ok"), now).ok();
            }
            2 => {
                store.deny(&rec.id, &root, "no", now).ok();
            }
            _ => {
                store.approve(&rec.id, &root, None, now).ok();
                store.revoke(&rec.id, &root, Some("done"), now).unwrap();
            }
        }
        if n % 7 == 0 {
            store.mark_audited(i64::try_from(n).unwrap()).unwrap();
        }
    }
}

#[test]
fn kill9_leaves_every_request_whole() {
    if std::env::var(WRITER_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jit.db");
    let mut rng = rand::thread_rng();
    let mut total = 0;
    for round in 1..=ROUNDS {
        let before = count_events(&path);
        let mut child = KillOnDrop(
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "writer", "--nocapture", "--test-threads=1"])
                .env(WRITER_ENV, &path)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        );
        let child = &mut child.0;
        // Wait until the store is open, so the kill lands among writes.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.find(|l| l.as_ref().is_ok_and(|l| l.contains(READY)));
        assert!(
            ready.is_some(),
            "round {round}: the writer never opened the store"
        );
        let after_ms = rng.gen_range(5..=60);
        std::thread::sleep(Duration::from_millis(after_ms));
        // SIGKILL: Child::kill sends exactly that on Unix.
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "round {round}: the writer exited by itself: {status}"
        );

        let store = Store::open(&path).unwrap();
        let (requests, events) = check_consistent(&path, &store);
        let writes = events - before;
        total += writes;
        eprintln!(
            "round {round}: killed after {after_ms} ms; {writes} event rows committed this round \
             ({requests} requests, {events} events in all)"
        );
    }
    assert!(total > 0, "the writer committed nothing in {ROUNDS} rounds");
}

fn count_events(path: &Path) -> usize {
    if !path.exists() {
        return 0;
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap_or(0)
}

/// Every request is complete and agrees with its events; every event has
/// its request. Returns (requests, events).
fn check_consistent(path: &Path, store: &Store) -> (usize, usize) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let fk_problems: i64 = conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(fk_problems, 0, "events without their request");
    let orphans: i64 = conn
        .query_row(
            "SELECT count(*) FROM events WHERE request_id NOT IN (SELECT id FROM requests)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0, "events without their request");

    let mut by_request: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut stmt = conn
        .prepare("SELECT request_id, kind FROM events ORDER BY seq")
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut events = 0;
    while let Some(row) = rows.next().unwrap() {
        by_request
            .entry(row.get(0).unwrap())
            .or_default()
            .push(row.get(1).unwrap());
        events += 1;
    }
    let ids: Vec<String> = conn
        .prepare("SELECT id FROM requests")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ids.len(), by_request.len(), "requests without events");
    for id in &ids {
        let rec = store.get(id).unwrap().unwrap();
        let kinds: Vec<&str> = by_request[id].iter().map(String::as_str).collect();
        let decided: &[&str] = match rec.decided_by {
            Some(_) => &["requested", "approved", "activated"],
            None => &["requested", "auto_approved", "activated"],
        };
        let want: Vec<&str> = match rec.state {
            gatehouse_jit::store::State::Pending => vec!["requested"],
            gatehouse_jit::store::State::Active => decided.to_vec(),
            gatehouse_jit::store::State::Denied => vec!["requested", "denied"],
            gatehouse_jit::store::State::Revoked if rec.starts.is_some() => {
                [decided, &["revoked"]].concat()
            }
            gatehouse_jit::store::State::Revoked => vec!["requested", "revoked"],
            other => panic!("{id}: the writer never makes {other}"),
        };
        assert_eq!(kinds, want, "{id} is {:?}: {rec:?}", rec.state);
        match rec.state {
            gatehouse_jit::store::State::Active => {
                assert!(rec.starts.is_some() && rec.expires.is_some(), "{rec:?}");
                assert!(rec.decided_at.is_some(), "{rec:?}");
            }
            gatehouse_jit::store::State::Denied => {
                assert!(
                    rec.decided_by.is_some() && rec.decided_at.is_some(),
                    "{rec:?}"
                );
            }
            gatehouse_jit::store::State::Revoked => {
                assert!(
                    rec.revoked_by.is_some() && rec.revoked_at.is_some(),
                    "{rec:?}"
                );
            }
            _ => {}
        }
    }
    (ids.len(), events)
}

/// Kills the writer if the parent panics, so no writer outlives its test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

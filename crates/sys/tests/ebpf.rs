//! The eBPF path of caller identification (feature `ebpf`, root): connect-time records,
//! attached to the cgroup v2 root, against real clients on loopback.
#![cfg(feature = "ebpf")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration test helpers outside #[test] fns"
)]

mod common;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{accepted, connect_then, pass_socket, root_or_skip, spawn, wait_exe};
use gatehouse_sys::{
    ConnectRecords, HolderSearch, Identifier, IdentifyError, IdentifyOptions, Needs, Strategy,
};

const UID: u32 = 46_011;

fn attached(targets: &[SocketAddr]) -> Option<Arc<ConnectRecords>> {
    if !root_or_skip("eBPF connect records (loading BPF programs)") {
        return None;
    }
    Some(Arc::new(
        ConnectRecords::attach(targets).expect("attach the connect-time programs"),
    ))
}

fn identifier(records: &Arc<ConnectRecords>) -> Identifier {
    Identifier::new(IdentifyOptions {
        connect_records: Some(Arc::clone(records)),
        ..IdentifyOptions::default()
    })
}

fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A bash line running `body` in python3 (`os`, `socket` and `time`
/// imported), then waiting 30 s.
fn python(body: &str) -> String {
    format!("exec /usr/bin/python3 -c 'import os, socket, time\n{body}\ntime.sleep(30)'")
}

/// A client that connects by itself and then only waits: python3, no fork, no exec.
fn python_client(port: u16, ids: Option<(u32, u32)>, after: &str) -> common::Client {
    let script = python(&format!(
        "s = socket.create_connection((\"127.0.0.1\", {port}))\n{after}"
    ));
    spawn(&script, port, ids)
}

/// A listener on loopback and connect records for it, if they may be
/// attached here.
fn recorded_listener() -> Option<(TcpListener, u16, Arc<ConnectRecords>)> {
    let (l, port) = listener();
    let records = attached(&[l.local_addr().unwrap()])?;
    Some((l, port, records))
}

/// What the identifier using `records` finds of every kind for the
/// connection `src` → `dst`.
fn identify_all(
    records: &Arc<ConnectRecords>,
    src: SocketAddr,
    dst: SocketAddr,
) -> gatehouse_sys::CallerFacts {
    identifier(records)
        .identify(src, dst, Needs::all())
        .unwrap()
}

/// An identifier with the exhaustive holder search, on `records` if any.
fn exhaustive(records: Option<&Arc<ConnectRecords>>) -> Identifier {
    Identifier::new(IdentifyOptions {
        connect_records: records.map(Arc::clone),
        exhaustive_holders: true,
        ..IdentifyOptions::default()
    })
}

#[test]
fn the_record_names_the_process_that_connected_and_goes_with_its_socket() {
    let Some((l, port, records)) = recorded_listener() else {
        return;
    };
    let client = python_client(port, Some((UID, UID)), "pass");
    let (_conn, src, dst) = accepted(&l);

    let record = records
        .lookup(src, dst)
        .expect("the connection was recorded");
    assert_eq!(
        (record.pid, record.uid, record.gid),
        (client.pid(), UID, UID)
    );
    assert_ne!(record.cookie, 0);
    assert!(
        records.unchanged_since(record.pid, record.boot_ns),
        "python neither forked nor exec'd since"
    );
    // The listener's side of the connection is not the client's.
    assert_eq!(records.lookup(dst, src), None);

    let id = identifier(&records);
    let facts = id.identify(src, dst, Needs::all()).unwrap();
    assert_eq!(facts.lookup.strategy, Strategy::ConnectRecord, "{facts:?}");
    assert_eq!(facts.lookup.holder_search, HolderSearch::Connector);
    assert_eq!(facts.socket_uid, UID);
    assert_ne!(facts.socket_inode, 0);
    let h = &facts.holders[0];
    assert_eq!(
        (h.pid, h.ruid, h.euid, h.rgid),
        (client.pid(), UID, UID, UID)
    );
    assert!(
        h.exe_path.as_deref().is_some_and(|p| p.contains("python3")),
        "{h:?}"
    );
    assert!(h.exe_path_verified);
    assert_eq!(h.exe_sha256.as_ref().map(String::len), Some(64));
    assert!(h.cgroup.is_some());

    // A policy on uids alone needs only the socket's uid (sock_diag), no record.
    let uid_only = id.identify(src, dst, Needs::default()).unwrap();
    assert_eq!(uid_only.lookup.strategy, Strategy::SocketOnly);
    assert_eq!(uid_only.socket_uid, UID);
    assert!(uid_only.holders.is_empty());

    // The record goes when the socket closes; identification then finds no caller.
    drop(client);
    eventually("the record to go", || records.lookup(src, dst).is_none());
    match id.identify(src, dst, Needs::all()) {
        Err(IdentifyError::NoSocket { .. } | IdentifyError::NoProcess { .. }) => {}
        other => panic!("a closed client was identified: {other:?}"),
    }
}

/// The connector exec'd another image after connecting (bash → sleep): the record is
/// not taken, and the holder search reads the process as it is.
#[test]
fn a_connector_that_exec_d_after_connecting_is_searched_for() {
    let Some((l, port, records)) = recorded_listener() else {
        return;
    };
    let client = spawn(&connect_then("exec sleep 30"), port, Some((UID, UID)));
    let (_conn, src, dst) = accepted(&l);
    wait_exe(client.pid(), "/sleep");
    let record = records.lookup(src, dst).expect("recorded");
    assert_eq!(record.pid, client.pid());
    assert!(
        !records.unchanged_since(record.pid, record.boot_ns),
        "the exec was seen"
    );
    let facts = identify_all(&records, src, dst);
    assert_ne!(facts.lookup.strategy, Strategy::ConnectRecord, "{facts:?}");
    assert_eq!(facts.holders[0].pid, client.pid());
    assert_eq!(facts.holders[0].exe_path.as_deref(), Some("/usr/bin/sleep"));
}

/// The connector forked after connecting: the child may hold the socket (and may be
/// the one sending), so every holder is searched for.
#[test]
fn a_connector_that_forked_after_connecting_gives_way_to_the_holder_search() {
    let Some((l, port, records)) = recorded_listener() else {
        return;
    };
    let client = python_client(port, Some((UID, UID)), "os.fork()");
    let (_conn, src, dst) = accepted(&l);
    let record = records.lookup(src, dst).expect("recorded");
    eventually("the fork to be seen", || {
        !records.unchanged_since(record.pid, record.boot_ns)
    });
    eventually("both holders to be found", || {
        let facts = identify_all(&records, src, dst);
        assert_ne!(facts.lookup.strategy, Strategy::ConnectRecord, "{facts:?}");
        facts.holders.len() == 2
    });
    drop(client);
}

#[test]
fn destinations_not_listed_are_not_recorded_and_take_the_sock_diag_path() {
    let (listed, _) = listener();
    let (other, port) = listener();
    let Some(records) = attached(&[listed.local_addr().unwrap()]) else {
        return;
    };
    let client = spawn(&connect_then("exec sleep 30"), port, Some((UID, UID)));
    let (_conn, src, dst) = accepted(&other);
    wait_exe(client.pid(), "/sleep");
    assert_eq!(records.lookup(src, dst), None);
    let facts = identify_all(&records, src, dst);
    assert_ne!(facts.lookup.strategy, Strategy::ConnectRecord);
    assert_eq!(facts.holders[0].pid, client.pid());
    assert_eq!(facts.socket_uid, UID);
}

#[test]
fn a_connector_that_has_exited_gives_way_to_the_holders() {
    let Some((l, port, records)) = recorded_listener() else {
        return;
    };
    // bash connects, leaves the socket to a child and exits.
    let client = spawn(&connect_then("sleep 30 & exit 0"), port, Some((UID, UID)));
    let (_conn, src, dst) = accepted(&l);
    let connector = records.lookup(src, dst).expect("recorded").pid;
    assert_eq!(connector, client.pid());
    eventually("the connector to exit", || {
        std::fs::read_to_string(format!("/proc/{connector}/status"))
            .map_or(true, |s| s.contains("State:\tZ"))
    });
    let id = identifier(&records);
    // The child may still be bash for a moment before it becomes sleep.
    eventually("the child holding the socket to run sleep", || {
        let facts = id.identify(src, dst, Needs::all()).unwrap();
        assert_ne!(facts.lookup.strategy, Strategy::ConnectRecord, "{facts:?}");
        assert!(
            facts.holders.iter().all(|h| h.pid != connector),
            "{facts:?}"
        );
        facts.holders[0]
            .exe_path
            .as_deref()
            .is_some_and(|p| p.ends_with("/sleep"))
    });
}

#[test]
fn ipv6_connections_take_the_sock_diag_path() {
    let l = TcpListener::bind("[::1]:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let Some(records) = attached(&[l.local_addr().unwrap()]) else {
        return;
    };
    let client = spawn("exec 3<>/dev/tcp/::1/$PORT; exec sleep 30", port, None);
    let (_conn, src, dst) = accepted(&l);
    wait_exe(client.pid(), "/sleep");
    assert_eq!(records.lookup(src, dst), None);
    let facts = identify_all(&records, src, dst);
    assert_ne!(facts.lookup.strategy, Strategy::ConnectRecord);
    assert_eq!(facts.holders[0].pid, client.pid());
}

#[test]
fn two_attachments_see_the_same_connection() {
    // Two gates (or a gate and a test) on one machine: links are independent.
    let (l, port) = listener();
    let Some(first) = attached(&[l.local_addr().unwrap()]) else {
        return;
    };
    let Some(second) = attached(&[l.local_addr().unwrap()]) else {
        return;
    };
    let client = spawn(&connect_then("exec sleep 30"), port, None);
    let (conn, src, dst) = accepted(&l);
    let a = first.lookup(src, dst).expect("first");
    let b = second.lookup(src, dst).expect("second");
    assert_eq!((a.pid, a.cookie), (b.pid, b.cookie));
    assert_eq!(a.pid, client.pid());
    drop(second);
    // Detaching one leaves the other recording.
    drop(conn);
    let client2 = spawn(&connect_then("exec sleep 30"), port, None);
    let (_conn2, src2, dst2) = accepted(&l);
    assert_eq!(first.lookup(src2, dst2).map(|r| r.pid), Some(client2.pid()));
}

/// A fork between `socket()` and `connect()` shares the socket too: the record carries
/// the socket's creation time, and the fork after it is seen.
#[test]
fn a_fork_between_socket_and_connect_is_seen() {
    let Some((l, port, records)) = recorded_listener() else {
        return;
    };
    let script = python(&format!(
        "s = socket.socket()\nif os.fork() == 0:\n    time.sleep(30)\n    os._exit(0)\ntime.sleep(0.2)\ns.connect((\"127.0.0.1\", {port}))"
    ));
    let client = spawn(&script, port, Some((UID, UID)));
    let (_conn, src, dst) = accepted(&l);
    let record = records.lookup(src, dst).expect("recorded");
    assert_eq!(record.pid, client.pid());
    assert!(
        !records.unchanged_since(record.pid, record.boot_ns),
        "the fork after socket() counts"
    );
    let facts = identify_all(&records, src, dst);
    assert_ne!(facts.lookup.strategy, Strategy::ConnectRecord, "{facts:?}");
    assert_eq!(facts.holders.len(), 2, "{facts:?}");
}

/// A socket another process made (and passed over `SCM_RIGHTS`) gets no record: its
/// connector is not the only one who ever held it.
#[test]
fn a_socket_made_by_another_process_gets_no_record() {
    let Some((l, port, records)) = recorded_listener() else {
        return;
    };
    let script = python(&format!(
        "a, b = socket.socketpair()\nif os.fork() == 0:\n    s = socket.socket()\n    socket.send_fds(b, [b\"x\"], [s.fileno()])\n    os._exit(0)\nos.wait()\n_, fds, _, _ = socket.recv_fds(a, 1, 1)\ns = socket.socket(fileno=fds[0])\ns.connect((\"127.0.0.1\", {port}))"
    ));
    let _client = spawn(&script, port, Some((UID, UID)));
    let (_conn, src, dst) = accepted(&l);
    assert_eq!(records.lookup(src, dst), None);
    let facts = identify_all(&records, src, dst);
    assert_ne!(facts.lookup.strategy, Strategy::ConnectRecord, "{facts:?}");
    assert_eq!(facts.socket_uid, UID);
}

/// The exhaustive holder search is asked for to find what no record can rule out (an
/// fd passed over `SCM_RIGHTS`): records are not used with it.
#[test]
fn records_are_not_used_with_the_exhaustive_search() {
    let Some((l, port, records)) = recorded_listener() else {
        return;
    };
    let client = python_client(port, Some((UID, UID)), "pass");
    let (_conn, src, dst) = accepted(&l);
    assert!(records.lookup(src, dst).is_some());
    let facts = exhaustive(Some(&records))
        .identify(src, dst, Needs::all())
        .unwrap();
    assert_ne!(facts.lookup.strategy, Strategy::ConnectRecord, "{facts:?}");
    assert_eq!(facts.lookup.holder_search, HolderSearch::Exhaustive);
    assert_eq!(facts.holders[0].pid, client.pid());
}

/// What one lookup decides on, for comparing the two: the socket's uid and every
/// reported holder with its uid, in pid order (or that no caller was found).
fn verdict(
    facts: Result<gatehouse_sys::CallerFacts, IdentifyError>,
) -> Option<(u32, Vec<(u32, u32)>)> {
    let facts = match facts {
        Ok(f) => f,
        Err(IdentifyError::NoProcess { .. }) => return None,
        Err(e) => panic!("{e}"),
    };
    let mut holders: Vec<(u32, u32)> = facts.holders.iter().map(|h| (h.pid, h.ruid)).collect();
    holders.sort_unstable();
    Some((facts.socket_uid, holders))
}

const OTHER: u32 = 46_012;

/// A socket passed over `SCM_RIGHTS` from its connector to an unrelated process of
/// another uid, the sender then closing its copy: the record still stands (no program
/// sees the receive) but the connector no longer holds the socket, so the eBPF path does
/// not credit it, and both lookups decide on the receiver alone.
#[test]
fn a_passed_socket_whose_sender_closed_its_copy_is_not_credited_to_the_sender() {
    let Some((l, port, records)) = recorded_listener() else {
        return;
    };
    let (send, recv) = pass_socket(port, (UID, UID), (OTHER, OTHER), false);
    let (_conn, src, dst) = accepted(&l);
    let record = records.lookup(src, dst).expect("the connect was recorded");
    assert_eq!(record.pid, send.pid());
    assert!(records.unchanged_since(record.pid, record.boot_ns));
    let by_ebpf = identify_all(&records, src, dst);
    assert_ne!(
        by_ebpf.lookup.strategy,
        Strategy::ConnectRecord,
        "{by_ebpf:?}"
    );
    let want = Some((UID, vec![(recv.pid(), OTHER)]));
    assert_eq!(verdict(Ok(by_ebpf)), want);
    let sock_diag = Identifier::new(IdentifyOptions::default());
    assert_eq!(verdict(sock_diag.identify(src, dst, Needs::all())), want);
}

/// A socket shared with an unrelated process of another uid (passed over `SCM_RIGHTS`,
/// the sender keeping its copy, or not): with every holder asked for (`--all-holders`:
/// the exhaustive search) both lookups report the same holders, the receiver's other
/// uid among them; on uids alone both take the socket's uid.
#[test]
fn a_socket_shared_between_uids_is_decided_alike_by_both_lookups() {
    let Some((l, port, records)) = recorded_listener() else {
        return;
    };
    for keep in [true, false] {
        let (send, recv) = pass_socket(port, (UID, UID), (OTHER, OTHER), keep);
        let (_conn, src, dst) = accepted(&l);
        let all = verdict(exhaustive(Some(&records)).identify(src, dst, Needs::all()));
        assert_eq!(
            all,
            verdict(exhaustive(None).identify(src, dst, Needs::all()))
        );
        let mut want = vec![(recv.pid(), OTHER)];
        if keep {
            want.push((send.pid(), UID));
        }
        want.sort_unstable();
        assert_eq!(all, Some((UID, want)), "keep {keep}");
        for id in [
            &identifier(&records),
            &Identifier::new(IdentifyOptions::default()),
        ] {
            let uid_only = id.identify(src, dst, Needs::default()).unwrap();
            assert_eq!(
                (uid_only.socket_uid, uid_only.lookup.strategy),
                (UID, Strategy::SocketOnly)
            );
        }
    }
}

/// The connector sent its socket over `SCM_RIGHTS` and closed its copy before anyone
/// received it (in flight, no process holds it): the record still stands, but the
/// connector no longer holds the socket, so it is not the caller; on both lookups no
/// process is found.
#[test]
fn a_connector_that_no_longer_holds_its_socket_is_not_the_caller() {
    let Some((l, port, records)) = recorded_listener() else {
        return;
    };
    let client = python_client(
        port,
        Some((UID, UID)),
        "a, b = socket.socketpair()\nsocket.send_fds(a, [b\"x\"], [s.fileno()])\ns.close()\nprint(\"sent\", flush=True)",
    );
    let (_conn, src, dst) = accepted(&l);
    // The socket is in flight once the connector's fd table no longer has it.
    eventually("the connector to close its copy", || {
        let inode = gatehouse_sys::socket_owner(src, dst)
            .unwrap()
            .unwrap()
            .inode;
        let link = format!("socket:[{inode}]");
        std::fs::read_dir(format!("/proc/{}/fd", client.pid()))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.unwrap().path()).ok())
            .all(|l| l.to_string_lossy() != link)
    });
    let record = records
        .lookup(src, dst)
        .expect("no process received it: the record stands");
    assert_eq!(record.pid, client.pid());
    let by_ebpf = identifier(&records).identify(src, dst, Needs::all());
    assert!(
        matches!(by_ebpf, Err(IdentifyError::NoProcess { .. })),
        "{by_ebpf:?}"
    );
    assert_eq!(
        verdict(by_ebpf),
        verdict(Identifier::new(IdentifyOptions::default()).identify(src, dst, Needs::all()))
    );
}

/// One long-lived process connects three times; the same identifier (with its per-pid
/// fd hints) reads it afresh each time: after a `setuid` without exec the new uid, after
/// an exec the new image, each time at whatever fd holds the socket (the first
/// connection's fd, the hint for the second, is still open on another socket). Both
/// lookups decide alike each time.
#[test]
fn each_connection_of_a_long_lived_process_is_read_afresh() {
    let Some((l, port, records)) = recorded_listener() else {
        return;
    };
    let script = python(&format!(
        "s = socket.create_connection((\"127.0.0.1\", {port}))\n\
         s.recv(1)\n\
         os.setgroups([])\n\
         os.setresgid({UID}, {UID}, {UID})\n\
         os.setresuid({UID}, {UID}, {UID})\n\
         t = socket.create_connection((\"127.0.0.1\", {port}))\n\
         t.recv(1)\n\
         os.execv(\"/usr/bin/bash\", [\"bash\", \"-c\", \"exec 7<>/dev/tcp/127.0.0.1/{port}; exec 8</dev/null; read -r -t 30 -u 7 _\"])"
    ));
    let client = spawn(&script, port, None);
    let id = identifier(&records);
    let by_search = Identifier::new(IdentifyOptions::default());
    let check = |conn: &mut std::net::TcpStream, src, dst, uid: u32, exe: &str| {
        let facts = id.identify(src, dst, Needs::all()).unwrap();
        assert_eq!(facts.lookup.strategy, Strategy::ConnectRecord, "{facts:?}");
        let h = &facts.holders[0];
        assert_eq!((h.pid, h.ruid, h.euid), (client.pid(), uid, uid), "{h:?}");
        assert!(
            h.exe_path.as_deref().is_some_and(|p| p.contains(exe)),
            "{h:?}"
        );
        assert_eq!(facts.socket_uid, uid);
        let searched = by_search.identify(src, dst, Needs::all()).unwrap();
        assert_eq!(searched.holders[0].exe_path, h.exe_path);
        assert_eq!(verdict(Ok(facts)), verdict(Ok(searched)));
        std::io::Write::write_all(conn, b"x").unwrap();
    };
    let (mut first, src, dst) = accepted(&l);
    check(&mut first, src, dst, 0, "/python3");
    let (mut second, src, dst) = accepted(&l);
    check(&mut second, src, dst, UID, "/python3");
    let (mut third, src, dst) = accepted(&l);
    // bash opens its /dev/tcp socket once the exec is done: the record is of the new image.
    wait_exe(client.pid(), "/bash");
    check(&mut third, src, dst, UID, "/bash");
}

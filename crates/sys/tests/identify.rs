//! Real clients on loopback: socket owner, holder lookup, executable facts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration test helpers outside #[test] fns"
)]

mod common;

use std::fs::File;
use std::net::TcpListener;

use common::{
    accept, accepted, connect_then, pass_socket, root_or_skip, spawn, wait_child_exe, wait_exe,
};
use gatehouse_sys::{socket_owner, FileId, Identifier, IdentifyError, IdentifyOptions, Needs};

fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// Accept the client's connection once `pid` runs `exe`, and identify its
/// caller with `needs`. The connection comes back too: it must stay open.
fn identify_client(
    l: &TcpListener,
    pid: u32,
    exe: &str,
    needs: Needs,
) -> (std::net::TcpStream, gatehouse_sys::CallerFacts) {
    let (conn, src, dst) = accepted(l);
    wait_exe(pid, exe);
    let facts = Identifier::new(IdentifyOptions::default())
        .identify(src, dst, needs)
        .unwrap();
    (conn, facts)
}

fn sleep_id() -> FileId {
    FileId::of(File::open("/usr/bin/sleep").unwrap()).unwrap()
}

#[test]
fn root_client_is_identified() {
    let (l, port) = listener();
    let client = spawn(&connect_then("exec sleep 30"), port, None);
    let (_conn, src, dst) = accepted(&l);
    wait_exe(client.pid(), "/sleep");

    let owner = socket_owner(src, dst).unwrap().expect("socket found");
    assert_eq!(owner.uid, rustix::process::geteuid().as_raw());
    assert_ne!(owner.inode, 0);
    // The reverse tuple is the gate's own socket, not the client's.
    let ours = socket_owner(dst, src).unwrap().expect("our socket");
    assert_ne!(ours.inode, owner.inode);

    let id = Identifier::new(IdentifyOptions::default());
    let facts = id.identify(src, dst, Needs::all()).unwrap();
    assert_eq!(facts.socket_inode, owner.inode);
    let h = &facts.holders[0];
    assert_eq!(h.pid, client.pid());
    assert_eq!(h.ruid, owner.uid);
    assert_eq!(h.exe_path.as_deref(), Some("/usr/bin/sleep"));
    assert!(h.exe_path_verified);
    assert!(h.exe_file.unwrap().same_file(&sleep_id()));
    assert_eq!(h.comm.as_deref(), Some("sleep"));
    assert!(h.cgroup.is_some());
    let hash = h.exe_sha256.clone().unwrap();
    assert_eq!(hash.len(), 64);
    assert_eq!(facts.holders.len(), 1, "{:?}", facts.holders);
    eprintln!("lookup: {:?}", facts.lookup);

    // A second lookup hits the recent-pid cache.
    let again = id.identify(src, dst, Needs::one_process()).unwrap();
    assert_eq!(again.lookup.strategy, gatehouse_sys::Strategy::Recent);
    assert_eq!(again.holders[0].pid, client.pid());
    assert_eq!(again.holders[0].exe_path, None, "exe not asked for");
}

#[test]
fn ipv6_loopback_client_is_identified() {
    let l = TcpListener::bind("[::1]:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let client = spawn("exec 3<>/dev/tcp/::1/$PORT; exec sleep 30", port, None);
    let (_conn, facts) = identify_client(&l, client.pid(), "/sleep", Needs::one_process());
    assert_eq!(facts.holders[0].pid, client.pid());
}

#[test]
fn nobody_client_is_identified() {
    if !root_or_skip("client as uid 65534") {
        return;
    }
    let (l, port) = listener();
    let client = spawn(&connect_then("exec sleep 30"), port, Some((65534, 65534)));
    let (_conn, facts) = identify_client(&l, client.pid(), "/sleep", Needs::all());
    assert_eq!(facts.socket_uid, 65534);
    let h = &facts.holders[0];
    assert_eq!(
        (h.pid, h.ruid, h.euid, h.rgid, h.egid),
        (client.pid(), 65534, 65534, 65534, 65534)
    );
    assert!(h.groups.is_empty(), "{:?}", h.groups);
    assert_eq!(h.exe_path.as_deref(), Some("/usr/bin/sleep"));
    assert!(h.exe_path_verified);
}

#[test]
fn unknown_socket_and_closed_client() {
    let (l, port) = listener();
    let id = Identifier::new(IdentifyOptions::default());
    let bogus = "127.0.0.1:1".parse().unwrap();
    let err = id
        .identify(bogus, l.local_addr().unwrap(), Needs::default())
        .unwrap_err();
    assert!(matches!(err, IdentifyError::NoSocket { .. }), "{err:?}");

    // A client that has exited: its socket lingers without an owning process.
    let client = spawn(&connect_then("exit 0"), port, None);
    let (_conn, src, dst) = accepted(&l);
    drop(client);
    std::thread::sleep(std::time::Duration::from_millis(50));
    match id.identify(src, dst, Needs::default()) {
        Err(IdentifyError::NoProcess { .. } | IdentifyError::NoSocket { .. }) => {}
        other => panic!("expected no caller, got {other:?}"),
    }
}

#[test]
fn original_dst_none_without_redirect() {
    let (l, port) = listener();
    let _client = spawn(&connect_then("exec sleep 30"), port, None);
    let conn = accept(&l);
    let got = gatehouse_sys::original_dst(std::os::fd::AsFd::as_fd(&conn)).unwrap();
    assert_eq!(got, None);
}

#[test]
fn copied_binary_reports_the_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("sleep");
    std::fs::copy("/usr/bin/sleep", &copy).unwrap();
    let (l, port) = listener();
    let client = spawn(
        &connect_then(&format!("exec {} 30", copy.display())),
        port,
        None,
    );
    let (_conn, facts) =
        identify_client(&l, client.pid(), &copy.display().to_string(), Needs::all());
    let h = &facts.holders[0];
    assert_eq!(h.exe_path.as_deref(), Some(copy.to_str().unwrap()));
    assert!(!h.exe_file.unwrap().same_file(&sleep_id()));
    assert!(h.exe_path_verified, "the copy is really at that path");
}

#[test]
fn symlink_reports_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let link = tmp.path().join("allowed");
    std::os::unix::fs::symlink("/usr/bin/sleep", &link).unwrap();
    let (l, port) = listener();
    let client = spawn(
        &connect_then(&format!("exec {} 30", link.display())),
        port,
        None,
    );
    let (_conn, facts) = identify_client(&l, client.pid(), "/usr/bin/sleep", Needs::all());
    let h = &facts.holders[0];
    assert_eq!(h.exe_path.as_deref(), Some("/usr/bin/sleep"));
    assert!(h.exe_path_verified);
}

#[test]
fn bind_mount_in_other_namespace_is_not_verified() {
    if !root_or_skip("mount namespace with a bind mount") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("sleep");
    std::fs::copy("/usr/bin/sleep", &copy).unwrap();
    let (l, port) = listener();
    let script = connect_then(&format!(
        "exec unshare -m sh -c 'mount --bind {} /usr/bin/sleep && exec /usr/bin/sleep 30'",
        copy.display()
    ));
    let client = spawn(&script, port, None);
    let (_conn, facts) = identify_client(&l, client.pid(), "/usr/bin/sleep", Needs::all());
    let h = &facts.holders[0];
    assert_eq!(h.pid, client.pid());
    assert_eq!(
        h.exe_path.as_deref(),
        Some("/usr/bin/sleep"),
        "looks like sleep"
    );
    assert!(!h.exe_path_verified, "but is the copy");
    assert!(!h.exe_file.unwrap().same_file(&sleep_id()));
    // Our namespace is untouched.
    assert!(FileId::of(File::open("/usr/bin/sleep").unwrap())
        .unwrap()
        .same_file(&sleep_id()));
}

#[test]
fn connect_then_fork_reports_both_holders() {
    let (l, port) = listener();
    let client = spawn(&connect_then("sleep 30 & wait"), port, None);
    let (_conn, src, dst) = accepted(&l);
    let child = wait_child_exe(client.pid(), "/sleep");
    let id = Identifier::new(IdentifyOptions::default());

    let one = id.identify(src, dst, Needs::one_process()).unwrap();
    assert_eq!(one.holders.len(), 1);

    let all = id.identify(src, dst, all_holders()).unwrap();
    let mut want = vec![client.pid(), child];
    want.sort_unstable();
    assert_eq!(sorted_pids(&all), want);
    assert_eq!(
        all.lookup.holder_search,
        gatehouse_sys::HolderSearch::Related
    );

    let exhaustive = Identifier::new(IdentifyOptions {
        exhaustive_holders: true,
        ..IdentifyOptions::default()
    });
    let ex = exhaustive.identify(src, dst, all_holders()).unwrap();
    assert_eq!(sorted_pids(&ex), want);
}

/// Every holder of the socket, nothing else.
fn all_holders() -> Needs {
    Needs {
        all_holders: true,
        ..Needs::default()
    }
}

/// The pids of the holders found, in order.
fn sorted_pids(facts: &gatehouse_sys::CallerFacts) -> Vec<u32> {
    let mut pids: Vec<u32> = facts.holders.iter().map(|h| h.pid).collect();
    pids.sort_unstable();
    pids
}

/// (max_holders, exhaustive) → two holders (connect, then fork) are reported
/// or refused as too many; never a truncated list.
#[test]
fn more_holders_than_the_cap_is_an_error() {
    let (l, port) = listener();
    let client = spawn(&connect_then("sleep 30 & wait"), port, None);
    let (_conn, src, dst) = accepted(&l);
    wait_child_exe(client.pid(), "/sleep");
    let all = all_holders();
    for (max_holders, exhaustive, reported) in [
        (1, false, None),
        (1, true, None),
        (2, false, Some(2)),
        (2, true, Some(2)),
        (gatehouse_sys::MAX_HOLDERS, false, Some(2)),
    ] {
        let id = Identifier::new(IdentifyOptions {
            max_holders,
            exhaustive_holders: exhaustive,
            ..IdentifyOptions::default()
        });
        match (id.identify(src, dst, all), reported) {
            (Ok(facts), Some(n)) => {
                assert_eq!(facts.holders.len(), n, "{max_holders} {exhaustive}")
            }
            (Err(IdentifyError::TooManyHolders { limit, .. }), None) => {
                assert_eq!(limit, max_holders);
            }
            (other, _) => panic!("{max_holders} {exhaustive}: {other:?}"),
        }
        // One holder asked for: the cap is not reached.
        assert_eq!(
            id.identify(src, dst, Needs::one_process())
                .unwrap()
                .holders
                .len(),
            1
        );
    }
}

#[test]
fn holders_with_different_uids() {
    if !root_or_skip("setpriv to uid 65534") {
        return;
    }
    let (l, port) = listener();
    let script = connect_then("setpriv --reuid=65534 --regid=65534 --clear-groups sleep 30; wait");
    let client = spawn(&script, port, None);
    let (_conn, src, dst) = accepted(&l);
    let child = wait_child_exe(client.pid(), "/sleep");
    let facts = Identifier::new(IdentifyOptions::default())
        .identify(
            src,
            dst,
            Needs {
                all_holders: true,
                exe: true,
                ..Needs::default()
            },
        )
        .unwrap();
    assert_eq!(facts.socket_uid, 0);
    let mut seen: Vec<(u32, u32)> = facts.holders.iter().map(|h| (h.pid, h.ruid)).collect();
    seen.sort_unstable();
    let mut want = vec![(client.pid(), 0), (child, 65534)];
    want.sort_unstable();
    assert_eq!(seen, want);
}

/// A socket passed over `SCM_RIGHTS` from a process of one uid to an unrelated process
/// of another: the search of the found holder's relatives cannot see the other holder;
/// the exhaustive search (`--all-holders`) finds every holder, and after the sender
/// closed its copy only the receiver.
#[test]
fn a_socket_passed_to_another_uid_is_found_by_the_exhaustive_search() {
    if !root_or_skip("SCM_RIGHTS between uids 46021 and 46022") {
        return;
    }
    const SENDER: u32 = 46_021;
    const RECEIVER: u32 = 46_022;
    let all = all_holders();
    for keep in [true, false] {
        let (l, port) = listener();
        let (send, recv) = pass_socket(port, (SENDER, SENDER), (RECEIVER, RECEIVER), keep);
        let (_conn, src, dst) = accepted(&l);
        let exhaustive = Identifier::new(IdentifyOptions {
            exhaustive_holders: true,
            ..IdentifyOptions::default()
        });
        let ex = exhaustive.identify(src, dst, all).unwrap();
        assert_eq!(ex.socket_uid, SENDER, "the socket stays its creator's");
        assert_eq!(
            ex.lookup.holder_search,
            gatehouse_sys::HolderSearch::Exhaustive
        );
        let mut seen: Vec<(u32, u32)> = ex.holders.iter().map(|h| (h.pid, h.ruid)).collect();
        seen.sort_unstable();
        let mut want = vec![(recv.pid(), RECEIVER)];
        if keep {
            want.push((send.pid(), SENDER));
        }
        want.sort_unstable();
        assert_eq!(seen, want, "keep {keep}");
        if keep {
            let related = Identifier::new(IdentifyOptions::default())
                .identify(src, dst, all)
                .unwrap();
            assert_eq!(related.holders.len(), 1, "unrelated: {related:?}");
        }
    }
}

#[test]
fn identifier_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Identifier>();
    assert_send_sync::<std::sync::Arc<Identifier>>();
}

/// A process in a user namespace of its own may point its `/proc/PID/exe` at any file
/// (`prctl(PR_SET_MM_MAP)` needs only a capability it has there): its executable is
/// reported unverified, with no file identity and no hash.
#[test]
fn the_executable_of_a_process_in_another_user_namespace_is_not_taken() {
    if !root_or_skip("a client in a user namespace, as uid 65534") {
        return;
    }
    let (l, port) = listener();
    let client = spawn(
        &connect_then("exec /usr/bin/unshare --user --map-root-user /usr/bin/sleep 30"),
        port,
        Some((65534, 65534)),
    );
    let (_conn, facts) = identify_client(&l, client.pid(), "/sleep", Needs::all());
    let h = &facts.holders[0];
    assert_eq!(h.pid, client.pid());
    assert_eq!(
        h.exe_path.as_deref(),
        Some("/usr/bin/sleep"),
        "the path stays for the audit"
    );
    assert!(!h.exe_path_verified);
    assert_eq!(h.exe_file, None);
    assert_eq!(h.exe_sha256, None);
    // Control: the same without the namespace is verified.
    let plain = spawn(
        &connect_then("exec /usr/bin/sleep 30"),
        port,
        Some((65534, 65534)),
    );
    let (_conn, facts) = identify_client(&l, plain.pid(), "/sleep", Needs::all());
    assert!(facts.holders[0].exe_path_verified);
    assert!(facts.holders[0].exe_sha256.is_some());
}

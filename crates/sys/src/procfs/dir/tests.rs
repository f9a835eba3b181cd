use super::*;
use std::process::{Command, Stdio};

#[test]
fn reads_own_process() {
    let me = ProcDir::open(Path::new("/proc"), std::process::id(), true).unwrap();
    assert!(me.read_to_string("status").unwrap().contains("Pid:"));
    assert!(!me.readlink("exe").unwrap().is_empty());
}

#[test]
fn finds_own_socket_fd() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ino = std::fs::metadata(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&l)
    ))
    .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
    .unwrap();
    let me = ProcDir::open(Path::new("/proc"), std::process::id(), true).unwrap();
    let fd = me.find_socket_fd(ino).unwrap().unwrap();
    assert_eq!(
        fd,
        u32::try_from(std::os::fd::AsRawFd::as_raw_fd(&l)).unwrap()
    );
    assert!(me.fd_is_socket(fd, ino).unwrap());
    assert_eq!(me.find_socket_fd(ino + 1_000_000).unwrap(), None);
}

/// A likely fd is taken only when its link is the socket: one that is another socket, a
/// file, or not open sends the search on to the next, then to the whole table.
#[test]
fn a_likely_fd_is_taken_only_when_it_is_the_socket() {
    use std::os::fd::AsRawFd;
    let inode = |fd: i32| {
        std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap()
    };
    let wanted = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let file = std::fs::File::open("/proc/self/status").unwrap();
    let fd = |f: &dyn AsRawFd| u32::try_from(f.as_raw_fd()).unwrap();
    let ino = inode(wanted.as_raw_fd());
    let me = ProcDir::open(Path::new("/proc"), std::process::id(), true).unwrap();
    let not_open = 1_000_000;
    let rows: &[(&[u32], Option<u32>)] = &[
        (&[fd(&wanted)], Some(fd(&wanted))),
        (
            &[fd(&other), fd(&file), not_open, fd(&wanted)],
            Some(fd(&wanted)),
        ),
        // No likely fd is it: the table is scanned.
        (&[fd(&other)], Some(fd(&wanted))),
        (&[not_open, fd(&file)], Some(fd(&wanted))),
        (&[], Some(fd(&wanted))),
    ];
    for (likely, want) in rows {
        assert_eq!(
            me.find_socket_fd_trying(ino, likely).unwrap(),
            *want,
            "{likely:?}"
        );
    }
    // A socket no fd holds is not found through any of them.
    let gone = ino + 1_000_000;
    assert_eq!(
        me.find_socket_fd_trying(gone, &[fd(&wanted), fd(&other)])
            .unwrap(),
        None
    );
}

/// PID reuse safety: once the process is gone, reads through its directory fd fail
/// rather than returning another process's data.
#[test]
fn reads_fail_after_process_exits() {
    let mut child = Command::new("sleep")
        .arg("30")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let dir = ProcDir::open(Path::new("/proc"), child.id(), true).unwrap();
    assert!(dir.read_to_string("status").is_ok());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        dir.read_to_string("status").is_err(),
        "status read after exit"
    );
    assert!(dir.readlink("exe").is_err(), "exe readlink after exit");
    assert!(
        dir.read_to_string("cgroup").is_err(),
        "cgroup read after exit"
    );
    assert!(dir.find_socket_fd(1).is_err(), "fd scan after exit");
    assert!(
        dir.find_socket_fd_trying(1, &[0, 1, 2]).is_err(),
        "likely fds after exit"
    );
    assert!(ProcDir::open(Path::new("/proc"), child.id(), true).is_err());
}

#[test]
fn pidfd_refused_for_non_leader_thread() {
    let (tx, rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let link = std::fs::read_link("/proc/thread-self").unwrap();
        let tid: u32 = link.file_name().unwrap().to_str().unwrap().parse().unwrap();
        tx.send(tid).unwrap();
        let _ = done_rx.recv();
    });
    let tid = rx.recv().unwrap();
    assert!(ProcDir::open(Path::new("/proc"), tid, true).is_err());
    done_tx.send(()).unwrap();
    t.join().unwrap();
}

#[test]
fn stat_ppid_is_read_after_the_command_name() {
    let cases = [
        ("1234 (bash) S 77 1234 1234 0 -1", Some(77)),
        ("9 (a) b) (c) R 5 9 9", Some(5)),
        ("9 (with space) S 6 1", Some(6)),
        ("9 (x) S notanumber", None),
        ("9 (x)", None),
        ("garbage", None),
    ];
    for (stat, want) in cases {
        assert_eq!(parse_stat_ppid(stat), want, "{stat}");
    }
}

#[test]
fn fd_names() {
    let cases: [(&[u8], Option<u32>); 6] = [
        (b"0", Some(0)),
        (b"17", Some(17)),
        (b".", None),
        (b"..", None),
        (b"", None),
        (b"99999999999", None),
    ];
    for (name, want) in cases {
        assert_eq!(parse_fd(name), want, "{name:?}");
    }
}

#[test]
fn socket_link_renders_largest_inode() {
    assert_eq!(SocketLink::new(42).as_bytes(), b"socket:[42]");
    assert_eq!(
        SocketLink::new(u64::MAX).as_bytes(),
        format!("socket:[{}]", u64::MAX).as_bytes()
    );
}

#[test]
fn parent_of_own_process() {
    let me = ProcDir::open(Path::new("/proc"), std::process::id(), true).unwrap();
    let ppid = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32);
    assert_eq!(me.parent_pid().unwrap(), ppid);
    assert_eq!(me.socket_fd_or_parent(u64::MAX).unwrap(), Err(ppid));
}

#[test]
fn large_status_file_is_read_whole() {
    let me = ProcDir::open(Path::new("/proc"), std::process::id(), true).unwrap();
    // `smaps` is far larger than one 4 KiB read.
    let smaps = me.read_to_string("smaps").unwrap();
    let by_path = std::fs::read_to_string("/proc/self/smaps").unwrap();
    assert!(smaps.len() > 4096);
    assert_eq!(smaps.lines().next(), by_path.lines().next());
}

#[test]
fn start_time_is_field_22_whatever_the_name() {
    let rows: &[(&str, Option<u64>)] = &[
        (
            "1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 42 1000 10",
            Some(42),
        ),
        (
            "7 (a) b) (c) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 987654 1 1",
            Some(987_654),
        ),
        ("9 (x y) R 1 9 9 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0", None),
        ("garbage", None),
    ];
    for (stat, want) in rows {
        assert_eq!(parse_stat_start(stat), *want, "{stat}");
    }
    let me = ProcDir::open(Path::new("/proc"), std::process::id(), true).unwrap();
    let mine = me.start_ticks().unwrap();
    let init = ProcDir::open(Path::new("/proc"), 1, false)
        .unwrap()
        .start_ticks()
        .unwrap();
    assert!(init <= mine, "pid 1 started at {init}, we at {mine}");
}

#[test]
fn single_record_files_read_the_same_either_way() {
    let me = ProcDir::open(Path::new("/proc"), std::process::id(), true).unwrap();
    for name in ["stat", "status", "cgroup"] {
        let one = me.read_single_record(name).unwrap();
        let all = me.read_to_string(name).unwrap();
        // `stat` and `status` move (times, counters); their shape does not.
        assert_eq!(one.lines().count(), all.lines().count(), "{name}");
        assert!(one.ends_with('\n'), "{name}");
    }
}

//! sock_diag lookups reuse one netlink socket per thread: answers must never be mixed
//! up between lookups, including after a lookup that found nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration test"
)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

use gatehouse_sys::socket_owner;

fn inode_of(s: &TcpStream) -> u64 {
    std::fs::metadata(format!("/proc/self/fd/{}", s.as_raw_fd()))
        .unwrap()
        .ino()
}

#[test]
fn alternating_lookups_get_their_own_answers() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let clients: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(l.local_addr().unwrap()).unwrap())
        .collect();
    let _accepted: Vec<TcpStream> = (0..3).map(|_| l.accept().unwrap().0).collect();
    let bogus: SocketAddr = "127.0.0.1:1".parse().unwrap();
    for round in 0..50 {
        for c in &clients {
            let owner = socket_owner(c.local_addr().unwrap(), c.peer_addr().unwrap())
                .unwrap()
                .expect("client socket found");
            assert_eq!(owner.inode, inode_of(c), "round {round}");
        }
        assert_eq!(socket_owner(bogus, l.local_addr().unwrap()).unwrap(), None);
    }
}

#[test]
fn lookups_from_many_threads() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let clients: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let _accepted: Vec<TcpStream> = (0..4).map(|_| l.accept().unwrap().0).collect();
    let want: Vec<(SocketAddr, SocketAddr, u64)> = clients
        .iter()
        .map(|c| (c.local_addr().unwrap(), c.peer_addr().unwrap(), inode_of(c)))
        .collect();
    std::thread::scope(|s| {
        for t in 0..4 {
            let want = &want;
            s.spawn(move || {
                for i in 0..200 {
                    let (src, dst, inode) = want[(t + i) % want.len()];
                    let owner = socket_owner(src, dst).unwrap().expect("found");
                    assert_eq!(owner.inode, inode);
                }
            });
        }
    });
}

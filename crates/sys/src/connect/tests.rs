use super::*;

#[test]
fn a_started_connect_carries_the_mark_and_completes() {
    if !rustix::process::geteuid().is_root() {
        if std::env::var("GATEHOUSE_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
            panic!("needs root: SO_MARK needs CAP_NET_ADMIN");
        }
        eprintln!("SKIPPED (needs root): SO_MARK needs CAP_NET_ADMIN");
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let fd = start_marked_connect(&addr, 0x6761).unwrap();
    assert_eq!(socket_mark(&fd).unwrap(), 0x6761);
    assert!(is_tcp_stream(&fd).unwrap());
    let (_accepted, peer) = listener.accept().unwrap();
    let stream = std::net::TcpStream::from(fd);
    // Non-blocking: wait (bounded) until the connect is complete.
    let mut local = stream.local_addr().unwrap();
    for _ in 0..100 {
        if stream.peer_addr().is_ok() {
            local = stream.local_addr().unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(stream.peer_addr().unwrap(), addr);
    assert_eq!(local, peer);
}

#[test]
fn a_unix_socket_is_not_a_tcp_stream() {
    let (a, _b) = crate::seqpacket::seqpacket_pair().unwrap();
    assert!(!is_tcp_stream(&a).unwrap());
}

use super::*;
use std::io::{Read, Seek, Write};

#[test]
fn a_message_and_its_descriptors_arrive_together() {
    let (a, b) = seqpacket_pair().unwrap();
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(b"passed").unwrap();
    send_message(&a, b"one", &[file.as_fd()]).unwrap();
    send_message(&a, b"two", &[]).unwrap();
    let first = recv_message(&b, 64).unwrap().unwrap();
    assert_eq!(first.bytes, b"one");
    assert_eq!(first.fds.len(), 1);
    let mut got = std::fs::File::from(first.fds.into_iter().next().unwrap());
    got.rewind().unwrap();
    let mut text = String::new();
    got.read_to_string(&mut text).unwrap();
    assert_eq!(text, "passed");
    let second = recv_message(&b, 64).unwrap().unwrap();
    assert_eq!(
        (second.bytes.as_slice(), second.fds.len()),
        (&b"two"[..], 0)
    );
}

#[test]
fn limits_are_enforced_on_both_sides() {
    let (a, b) = seqpacket_pair().unwrap();
    assert!(
        send_message(&a, b"", &[]).is_err(),
        "empty messages read as end of stream"
    );
    let f = tempfile::tempfile().unwrap();
    let too_many = [f.as_fd(); MAX_FDS_PER_MESSAGE + 1];
    assert!(send_message(&a, b"x", &too_many).is_err());
    send_message(&a, &[7u8; 100], &[]).unwrap();
    let err = recv_message(&b, 10).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    // The oversized message is gone; the next one is intact.
    send_message(&a, b"ok", &[]).unwrap();
    assert_eq!(recv_message(&b, 10).unwrap().unwrap().bytes, b"ok");
}

#[test]
fn closing_one_end_reads_as_end_of_stream() {
    let (a, b) = seqpacket_pair().unwrap();
    drop(a);
    assert!(recv_message(&b, 10).unwrap().is_none());
}

#[test]
fn a_receive_timeout_fails_with_would_block() {
    let (_a, b) = seqpacket_pair().unwrap();
    set_receive_timeout(&b, Some(Duration::from_millis(50))).unwrap();
    let err = recv_message(&b, 10).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
}

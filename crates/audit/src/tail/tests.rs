use super::*;
use std::io::Write;

fn tail_of(bytes: &[u8]) -> io::Result<Tail> {
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(bytes).unwrap();
    read_tail(&file)
}

#[test]
fn table() {
    let t = |complete_len, torn_bytes, line: Option<&str>| Tail {
        complete_len,
        torn_bytes,
        last_line: line.map(|s| s.as_bytes().to_vec()),
    };
    let cases: [(&[u8], Tail); 6] = [
        (b"", t(0, 0, None)),
        (b"abc", t(0, 3, None)),
        (b"a\n", t(2, 0, Some("a"))),
        (b"a\nbc\n", t(5, 0, Some("bc"))),
        (b"a\nbc\nde", t(5, 2, Some("bc"))),
        (b"\n", t(1, 0, Some(""))),
    ];
    for (bytes, want) in cases {
        assert_eq!(
            tail_of(bytes).unwrap(),
            want,
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn long_lines_across_chunks() {
    let long = "x".repeat(200_000);
    let bytes = format!("first\n{long}\n{long}");
    let tail = tail_of(bytes.as_bytes()).unwrap();
    assert_eq!(tail.last_line.unwrap(), long.as_bytes());
    assert_eq!(tail.torn_bytes, 200_000);
}

#[test]
fn refuses_a_tail_longer_than_any_record() {
    let bytes = vec![b'x'; MAX_LINE + 10];
    assert!(tail_of(&bytes).is_err());
}

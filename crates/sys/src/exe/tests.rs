use super::*;
use std::io::Write;

#[test]
fn hash_matches_known_digest() {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(b"abc").unwrap();
    let mut f = {
        use std::io::Seek;
        f.rewind().unwrap();
        f
    };
    assert_eq!(
        hash_file(&mut f).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn file_id_differs_for_copy() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::write(&a, b"same").unwrap();
    std::fs::copy(&a, &b).unwrap();
    let ia = FileId::of(File::open(&a).unwrap()).unwrap();
    let ib = FileId::of(File::open(&b).unwrap()).unwrap();
    assert!(!ia.same_file(&ib));
    assert_eq!(ia, FileId::of(File::open(&a).unwrap()).unwrap());
}

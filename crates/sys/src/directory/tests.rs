use super::*;

#[test]
fn parse_table() {
    let text = "root:x:0:0:root:/root:/bin/bash\n\
                # comment:x:5:\n\
                daemon:x:1:1::/:/usr/sbin/nologin\n\
                dup:x:1:1::/:/bin/sh\n\
                bad:x:notanumber:0::/:\n\
                short:x\n\
                :x:7:7::/:\n\
                nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
                \n";
    let names = parse_id_names(text);
    let cases = [
        (0, Some("root")),
        (1, Some("daemon")),
        (5, None),
        (7, None),
        (65534, Some("nobody")),
        (2, None),
    ];
    for (id, want) in cases {
        assert_eq!(names.get(&id).map(String::as_str), want, "id {id}");
    }
    assert_eq!(names.len(), 3);
}

#[test]
fn group_lines_parse() {
    let names = parse_id_names("sudo:x:27:alice,bob\nusers:x:100:\n");
    assert_eq!(names.get(&27).map(String::as_str), Some("sudo"));
    assert_eq!(names.get(&100).map(String::as_str), Some("users"));
}

#[test]
fn directory_rereads_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    let group = dir.path().join("group");
    std::fs::write(&passwd, "alice:x:1000:1000::/:/bin/sh\n").unwrap();
    std::fs::write(&group, "staff:x:50:\n").unwrap();
    let d = Directory::new(&passwd, &group);
    assert_eq!(d.user_name(1000).as_deref(), Some("alice"));
    assert_eq!(d.group_name(50).as_deref(), Some("staff"));
    // Different size, so the change is seen even within one mtime tick.
    std::fs::write(
        &passwd,
        "bobby:x:1000:1000::/:/bin/sh\nc:x:1:1::/:/bin/sh\n",
    )
    .unwrap();
    assert_eq!(d.user_name(1000).as_deref(), Some("bobby"));
    assert_eq!(d.user_name(1).as_deref(), Some("c"));
}

#[test]
fn system_root_is_root() {
    assert_eq!(user_name(0).as_deref(), Some("root"));
    assert_eq!(group_name(0).as_deref(), Some("root"));
}

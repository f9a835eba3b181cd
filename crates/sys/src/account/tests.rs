use super::*;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
broken line\n\
gatehouse:x:998:997::/nonexistent:/usr/sbin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";

#[test]
fn names_and_numbers_resolve() {
    let cases = [
        ("gatehouse", Some((998, 997))),
        ("998", Some((998, 997))),
        ("nobody", Some((65534, 65534))),
        ("46099", Some((46099, 46099))),
        ("nosuchuser", None),
        ("broken line", None),
    ];
    for (name, want) in cases {
        let got = find_account(PASSWD, name).map(|a| (a.uid, a.gid));
        assert_eq!(got, want, "{name}");
    }
}

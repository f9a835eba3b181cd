use super::*;

const SAMPLE: &str = "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\nPid:\t4242\nPPid:\t1\nTracerPid:\t0\nUid:\t1000\t0\t0\t0\nGid:\t100\t100\t100\t100\nFDSize:\t64\nGroups:\t4 24 27 \n";

#[test]
fn parses_sample() {
    let st = parse_status(SAMPLE).unwrap();
    assert_eq!(
        st,
        Status {
            name: "sleep".into(),
            zombie: false,
            tgid: 4242,
            ppid: 1,
            ruid: 1000,
            euid: 0,
            rgid: 100,
            egid: 100,
            groups: vec![4, 24, 27],
        }
    );
}

#[test]
fn rejects_incomplete_or_malformed() {
    let cases = [
        ("", "empty"),
        ("Uid:\t0\t0\t0\t0\n", "no gid"),
        ("Gid:\t0\t0\t0\t0\n", "no uid"),
        ("Uid:\tx\t0\t0\t0\nGid:\t0\t0\t0\t0\n", "bad uid"),
        ("Uid:\t0\nGid:\t0\t0\t0\t0\n", "short uid"),
        (
            "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t1 x\n",
            "bad group",
        ),
    ];
    for (text, why) in cases {
        assert_eq!(parse_status(text), None, "{why}");
    }
}

#[test]
fn empty_groups_line() {
    let st = parse_status("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n").unwrap();
    assert!(st.groups.is_empty());
}

#[test]
fn a_zombie_is_marked() {
    let z = SAMPLE.replace("State:\tS (sleeping)", "State:\tZ (zombie)");
    assert!(parse_status(&z).unwrap().zombie);
    assert!(!parse_status(SAMPLE).unwrap().zombie);
}

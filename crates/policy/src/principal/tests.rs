use super::*;

#[test]
fn parse_valid() {
    let cases: &[(&str, Principal)] = &[
        ("uid:0", Principal::Uid(0)),
        ("uid:1001", Principal::Uid(1001)),
        ("user:www-data", Principal::User("www-data".into())),
        ("gid:33", Principal::Gid(33)),
        ("group:docker", Principal::Group("docker".into())),
        (
            "exe:/usr/bin/python3",
            Principal::ExePath("/usr/bin/python3".into()),
        ),
        (
            "exe:sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
            Principal::ExeHash(
                "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789".into(),
            ),
        ),
        (
            "unit:nginx.service",
            Principal::Unit("nginx.service".into()),
        ),
        (
            "unit:session-3.scope",
            Principal::Unit("session-3.scope".into()),
        ),
        (
            "cgroup:/system.slice/a.service",
            Principal::Cgroup("/system.slice/a.service".into()),
        ),
        (
            "cgroup:/system.slice/*",
            Principal::CgroupTree("/system.slice".into()),
        ),
        ("cgroup:/*", Principal::CgroupTree("/".into())),
        (
            "container:ABCDEF012345",
            Principal::Container("abcdef012345".into()),
        ),
        ("everyone", Principal::Everyone),
    ];
    for (s, want) in cases {
        assert_eq!(Principal::parse(s).as_ref(), Ok(want), "{s}");
        // Display round-trips to an equivalent principal.
        assert_eq!(
            Principal::parse(&want.to_string()).as_ref(),
            Ok(want),
            "{s}"
        );
    }
}

#[test]
fn parse_invalid() {
    let cases: &[(&str, &str)] = &[
        ("uid:-1", "invalid uid `-1`"),
        ("uid:+5", "invalid uid `+5`"),
        ("uid:4294967295", "invalid uid"),
        ("uid:99999999999", "invalid uid"),
        ("uid:", "invalid uid"),
        ("gid:x", "invalid gid `x`"),
        ("user:", "invalid user name"),
        ("user:a b", "invalid user name"),
        ("exe:bin/python", "is not absolute"),
        ("exe:/usr//bin/python", "not canonical"),
        ("exe:/usr/bin/../bin/python", "not canonical"),
        ("exe:/usr/bin/", "not canonical"),
        ("exe:sha256:abc", "invalid executable hash"),
        ("unit:nginx", "has no `.service` or `.scope` suffix"),
        ("unit:.service", "invalid unit name"),
        ("cgroup:system.slice", "invalid cgroup path"),
        ("cgroup:/a/../b", "invalid cgroup path"),
        ("container:abc", "invalid container id"),
        ("container:xyzxyzxyzxyz", "invalid container id"),
        ("nobody", "invalid principal `nobody`"),
        ("role:admin", "unknown principal kind `role`"),
        ("Everyone", "invalid principal"),
    ];
    for (s, want) in cases {
        let e = Principal::parse(s).expect_err(s);
        assert!(e.message.contains(want), "{s}: {}", e.message);
    }
}

#[test]
fn cgroup_tree() {
    assert!(in_tree("/a/b", "/a/b"));
    assert!(in_tree("/a/b", "/a/b/c"));
    assert!(!in_tree("/a/b", "/a/bc"));
    assert!(!in_tree("/a/b", "/a"));
    assert!(in_tree("/", "/anything"));
}

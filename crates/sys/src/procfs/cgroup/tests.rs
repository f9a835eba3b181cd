use super::*;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// (system unit, user unit, container id)
type Want = (Option<String>, Option<String>, Option<String>);

fn facts(path: &str) -> Want {
    let f = classify_cgroup(path);
    assert_eq!(f.path, path);
    (f.system_unit, f.user_unit, f.container_id)
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

#[test]
fn classify_table() {
    let cases: Vec<(String, Want)> = vec![
        ("/system.slice/x.service".into(), (s("x.service"), None, None)),
        ("/system.slice/system-getty.slice/getty@tty1.service".into(), (s("getty@tty1.service"), None, None)),
        // A user unit named like a system one is not a system unit.
        (
            "/user.slice/user-1000.slice/user@1000.service/app.slice/sshd.service".into(),
            (None, s("sshd.service"), None),
        ),
        ("/user.slice/user-1000.slice/session-3.scope".into(), (None, None, None)),
        ("/user.slice/user-1000.slice/user@1000.service/init.scope".into(), (None, s("init.scope"), None)),
        // Not under system.slice, even if it contains it later.
        ("/evil.slice/system.slice/sshd.service".into(), (None, None, None)),
        ("/".into(), (None, None, None)),
        ("".into(), (None, None, None)),
        ("/system.slice".into(), (None, None, None)),
        (format!("/system.slice/docker-{ID}.scope"), (s(&format!("docker-{ID}.scope")), None, s(ID))),
        (format!("/docker/{ID}"), (None, None, s(ID))),
        (format!("/system.slice/containerd.service/kubepods-burstable-pod1.slice:cri-containerd:{ID}"), (s("containerd.service"), None, None)),
        (
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podabc.slice/cri-containerd-{ID}.scope"),
            (None, None, s(ID)),
        ),
        (format!("/kubepods.slice/kubepods-pod1.slice/crio-{ID}.scope"), (None, None, s(ID))),
        (format!("/machine.slice/libpod-{ID}.scope/container"), (None, None, s(ID))),
        (format!("/kubepods/burstable/pod1234/{ID}"), (None, None, s(ID))),
        ("/docker/not-hex".into(), (None, None, None)),
        (format!("/system.slice/docker-{}.scope", &ID[..63]), (s(&format!("docker-{}.scope", &ID[..63])), None, None)),
        (format!("/system.slice/crio-conmon-{ID}.scope"), (s(&format!("crio-conmon-{ID}.scope")), None, None)),
    ];
    for (path, want) in cases {
        assert_eq!(facts(&path), want, "path `{path}`");
    }
}

#[test]
fn parse_file_table() {
    let cases = [
        (
            "0::/system.slice/x.service\n",
            Some("/system.slice/x.service"),
        ),
        ("12:memory:/foo\n0::/\n", Some("/")),
        ("12:memory:/foo\n", None),
        ("", None),
    ];
    for (text, want) in cases {
        assert_eq!(parse_cgroup_file(text).as_deref(), want, "text {text:?}");
    }
}

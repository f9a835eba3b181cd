use super::*;
use std::os::unix::fs::{chown, symlink, PermissionsExt};

const NOBODY: u32 = 65534;

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A layout under a fresh root-owned 0755 directory in /tmp (sticky, world-writable).
struct Layout {
    _tmp: tempfile::TempDir,
    base: PathBuf,
}

fn layout() -> Layout {
    let tmp = tempfile::tempdir_in("/tmp").unwrap();
    let base = tmp.path().to_owned();
    chmod(&base, 0o755);
    let good = base.join("good");
    std::fs::create_dir(&good).unwrap();
    chmod(&good, 0o755);
    std::fs::write(good.join("policy.toml"), "x").unwrap();
    chmod(&good.join("policy.toml"), 0o644);
    std::fs::write(good.join("gw.toml"), "x").unwrap();
    chmod(&good.join("gw.toml"), 0o664);
    std::fs::write(good.join("ww.toml"), "x").unwrap();
    chmod(&good.join("ww.toml"), 0o646);
    let ww = base.join("ww");
    std::fs::create_dir(&ww).unwrap();
    chmod(&ww, 0o777);
    std::fs::write(ww.join("policy.toml"), "x").unwrap();
    chmod(&ww.join("policy.toml"), 0o644);
    let sticky = base.join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    chmod(&sticky, 0o1777);
    std::fs::create_dir(sticky.join("own")).unwrap();
    chmod(&sticky.join("own"), 0o755);
    std::fs::write(sticky.join("own/policy.toml"), "x").unwrap();
    chmod(&sticky.join("own/policy.toml"), 0o644);
    symlink(good.join("policy.toml"), base.join("link-ok")).unwrap();
    symlink("good/../good/policy.toml", base.join("link-rel")).unwrap();
    if is_root() {
        let evil = base.join("evil");
        std::fs::create_dir(&evil).unwrap();
        chmod(&evil, 0o755);
        symlink(good.join("policy.toml"), evil.join("link")).unwrap();
        chown(&evil, Some(NOBODY), Some(NOBODY)).unwrap();
        symlink(evil.join("link"), base.join("via-evil")).unwrap();
        std::fs::write(good.join("theirs.toml"), "x").unwrap();
        chown(good.join("theirs.toml"), Some(NOBODY), None).unwrap();
        symlink(good.join("policy.toml"), good.join("their-link")).unwrap();
        std::os::unix::fs::lchown(good.join("their-link"), Some(NOBODY), None).unwrap();
    }
    Layout { _tmp: tmp, base }
}

#[test]
fn permission_table() {
    let l = layout();
    let b = &l.base;
    let ok = |rel: &str| (b.join(rel), None::<(PathBuf, UntrustedReason)>);
    let bad = |rel: &str, at: &str, why| (b.join(rel), Some((b.join(at), why)));
    let mut cases = vec![
        ok("good/policy.toml"),
        ok("sticky/own/policy.toml"),
        ok("link-ok"),
        ok("link-rel"),
        ok("good/./policy.toml"),
        bad(
            "good/gw.toml",
            "good/gw.toml",
            UntrustedReason::GroupWritable,
        ),
        bad(
            "good/ww.toml",
            "good/ww.toml",
            UntrustedReason::WorldWritable,
        ),
        bad("ww/policy.toml", "ww", UntrustedReason::WorldWritable),
        bad("sticky", "sticky", UntrustedReason::WorldWritable),
        bad(
            "good/missing",
            "good/missing",
            UntrustedReason::Io(io::ErrorKind::NotFound),
        ),
    ];
    if is_root() {
        cases.extend([
            bad("evil/link", "evil", UntrustedReason::Owner(NOBODY)),
            bad("via-evil", "evil", UntrustedReason::Owner(NOBODY)),
            bad(
                "good/theirs.toml",
                "good/theirs.toml",
                UntrustedReason::Owner(NOBODY),
            ),
            bad(
                "good/their-link",
                "good/their-link",
                UntrustedReason::Owner(NOBODY),
            ),
        ]);
    } else {
        eprintln!("SKIPPED (needs root): ownership cases of check_trusted_path");
    }
    let me = rustix::process::geteuid().as_raw();
    for (path, want) in cases {
        let got = check_trusted_path(&path, &[0, me]).map_err(|e| (e.path, e.reason));
        match want {
            None => assert!(
                got.is_ok(),
                "`{}` should be trusted: {got:?}",
                path.display()
            ),
            Some(w) => assert_eq!(got, Err(w), "`{}`", path.display()),
        }
    }
}

#[test]
fn relative_path_refused() {
    let err = check_trusted_path(Path::new("etc/passwd"), &[0]).unwrap_err();
    assert_eq!(err.reason, UntrustedReason::NotAbsolute);
}

#[test]
fn untrusted_uid_list_refuses_root_owned() {
    let err = check_trusted_path(Path::new("/etc/passwd"), &[12345]).unwrap_err();
    assert_eq!(err.path, PathBuf::from("/"));
    assert!(matches!(err.reason, UntrustedReason::Owner(_)));
    assert!(err.to_string().contains("`/`"), "{err}");
}

#[test]
fn symlink_loop_is_bounded() {
    let l = layout();
    symlink(l.base.join("loop-b"), l.base.join("loop-a")).unwrap();
    symlink(l.base.join("loop-a"), l.base.join("loop-b")).unwrap();
    let err = check_trusted_path(&l.base.join("loop-a"), &[0]).unwrap_err();
    assert_eq!(err.reason, UntrustedReason::TooManyLinks);
}

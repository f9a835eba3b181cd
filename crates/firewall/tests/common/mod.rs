//! What the namespace tests share: the privilege check and running a tool.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failed step must fail the test loudly"
)]

use std::process::Command;

/// Root and the tools, or a loud skip (a failure under
/// `GATEHOUSE_REQUIRE_PRIVILEGED=1`).
pub fn privileged(test: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    let tools = [("nft", "--version"), ("ip", "-V")].iter().all(|(t, v)| {
        Command::new(t)
            .arg(v)
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if root && tools {
        return true;
    }
    let why = if root {
        "needs `nft` and `ip` (apt-get install nftables iproute2)"
    } else {
        "needs root"
    };
    if std::env::var("GATEHOUSE_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!("{test}: {why}, and GATEHOUSE_REQUIRE_PRIVILEGED=1");
    }
    eprintln!("SKIPPED ({why}): {test}");
    false
}

/// Run a program; a failure fails the test with its stderr.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

//! What the namespace tests share: the privilege check, running a tool,
//! running code inside a namespace, and the gate's firewall options.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failed step must fail the test loudly"
)]

use gatehouse_firewall::{Containers, Ipv6, Options};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use std::process::Command;

/// The socket mark the tests' gate puts on its upstream connections.
pub const MARK: u32 = 0x6761;

/// The gate's defaults with its listener on loopback port `port`: the
/// WireServer guarded, containers dropped, IPv6 intercepted, no JIT ports.
pub fn options(port: u16) -> Options {
    Options {
        listen: SocketAddrV4::new(Ipv4Addr::LOCALHOST, port),
        mark: MARK,
        wireserver: true,
        containers: Containers::Drop,
        ipv6: Ipv6::Intercept,
        jit: None,
    }
}

/// Run `body` on a thread inside network namespace `ns` (sockets it makes
/// live there), and wait for what it returns.
pub fn in_ns<T: Send + 'static>(ns: &str, body: impl FnOnce() -> T + Send + 'static) -> T {
    let file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    std::thread::spawn(move || {
        rustix::thread::move_into_link_name_space(
            file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .unwrap();
        body()
    })
    .join()
    .unwrap()
}

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

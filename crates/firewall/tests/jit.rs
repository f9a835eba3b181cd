//! Just-in-time ports against real nftables and real TCP: a server namespace
//! (`ghjit-srv-PID`, where the table is applied) and a client namespace
//! (`ghjit-cli-PID`) joined by a veth pair, both deleted at the end even when
//! the test fails. The host's own ruleset is never touched.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step must fail the test loudly"
)]

mod common;
use common::{in_ns, privileged, run};

use gatehouse_firewall::jit::{self, Element, Protocol, SyncReport};
use gatehouse_firewall::JitPorts;
use gatehouse_firewall::{apply, verify, Nft, Options, Ruleset};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

const PORT: u16 = 2222;
const SERVER4: &str = "10.77.0.1";
const CLIENT4: &str = "10.77.0.2";
/// A second address of the client namespace, inside the break-glass range.
const BASTION4: &str = "10.77.0.3";
const SERVER6: &str = "fd77::1";
const CLIENT6: &str = "fd77::2";

/// The two namespaces; deleted on drop.
struct Lab {
    srv: String,
    cli: String,
}

impl Lab {
    fn new() -> Lab {
        let pid = std::process::id();
        let lab = Lab {
            srv: format!("ghjit-srv-{pid}"),
            cli: format!("ghjit-cli-{pid}"),
        };
        for ns in [&lab.srv, &lab.cli] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            run("ip", &["netns", "add", ns]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        let (srv, cli) = (lab.srv.as_str(), lab.cli.as_str());
        run(
            "ip",
            &[
                "-n", srv, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
                cli,
            ],
        );
        for (ns, addrs) in [
            (srv, vec![format!("{SERVER4}/24"), format!("{SERVER6}/64")]),
            (
                cli,
                vec![
                    format!("{CLIENT4}/24"),
                    format!("{BASTION4}/24"),
                    format!("{CLIENT6}/64"),
                ],
            ),
        ] {
            for a in &addrs {
                let mut args = vec!["-n", ns, "addr", "add", a.as_str(), "dev", "eth0"];
                if a.contains(':') {
                    args.push("nodad");
                }
                run("ip", &args);
            }
            run("ip", &["-n", ns, "link", "set", "eth0", "up"]);
        }
        lab
    }

    fn nft(&self) -> Nft {
        Nft::in_netns(&self.srv)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.srv, &self.cli] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// The server: greets each connection with `S`, echoes what it reads, and on
/// `T` starts sending `t` every 100 ms until the connection breaks. Bound to
/// `[::]`, so IPv4 clients are v4-mapped sockets (`destroy_sockets` must find
/// those too).
fn start_server(lab: &Lab) {
    let listener = in_ns(&lab.srv, || TcpListener::bind(("::", PORT)).unwrap());
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = s.write_all(b"S");
                let mut b = [0u8; 1];
                while matches!(s.read(&mut b), Ok(1)) {
                    if b[0] == b'T' {
                        let mut ticker = s.try_clone().unwrap();
                        std::thread::spawn(move || {
                            while ticker.write_all(b"t").is_ok() {
                                std::thread::sleep(Duration::from_millis(100));
                            }
                        });
                    } else if s.write_all(&b).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

/// A connection from the client namespace, from `from` (or the route's
/// source), to `to`:PORT, with a 1 s connect timeout; it has been greeted.
fn connect(lab: &Lab, from: Option<&str>, to: &str) -> Result<TcpStream, ErrorKind> {
    let from: Option<IpAddr> = from.map(|f| f.parse().unwrap());
    let to = SocketAddr::new(to.parse().unwrap(), PORT);
    in_ns(&lab.cli, move || {
        let domain = socket2::Domain::for_address(to);
        let s = socket2::Socket::new(domain, socket2::Type::STREAM, None).unwrap();
        if let Some(ip) = from {
            s.bind(&SocketAddr::new(ip, 0).into()).unwrap();
        }
        s.connect_timeout(&to.into(), Duration::from_secs(1))
            .map_err(|e| e.kind())?;
        let mut s: TcpStream = s.into();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(1) if b[0] == b'S' => Ok(s),
            Ok(_) => Err(ErrorKind::UnexpectedEof),
            Err(e) => Err(e.kind()),
        }
    })
}

fn echo(mut s: &TcpStream, byte: u8) -> Result<u8, ErrorKind> {
    s.write_all(&[byte]).map_err(|e| e.kind())?;
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(1) => Ok(b[0]),
        Ok(_) => Err(ErrorKind::UnexpectedEof),
        Err(e) => Err(e.kind()),
    }
}

/// Reads the server's ticks until the connection ends; how long that took,
/// or `None` when it still ran after `within`.
fn ticks_end_within(mut s: &TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    while start.elapsed() < within {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

/// Start the ticks on `s` and check they arrive.
fn start_ticks(mut s: &TcpStream) {
    s.write_all(b"T").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut b = [0u8; 1];
    for _ in 0..3 {
        s.read_exact(&mut b).unwrap();
        assert_eq!(b[0], b't');
    }
}

fn element(source: &str, secs: u64) -> Element {
    Element {
        source: source.parse().unwrap(),
        proto: Protocol::Tcp,
        port: PORT,
        expires_in: Duration::from_secs(secs),
    }
}

fn destroy_in(lab: &Lab, peer: &str) -> usize {
    let peer: IpAddr = peer.parse().unwrap();
    in_ns(&lab.srv, move || {
        gatehouse_sys::destroy_sockets(PORT, Protocol::Tcp.number(), peer).unwrap()
    })
}

fn options() -> Options {
    Options {
        jit: Some(JitPorts {
            ports: vec![(Protocol::Tcp, PORT)],
            break_glass: vec![format!("{BASTION4}/32").parse().unwrap()],
        }),
        ..common::options(16925)
    }
}

fn has_conntrack() -> bool {
    Command::new("conntrack")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn ports_open_just_in_time_sessions_outlive_expiry_and_are_cut_on_revoke() {
    if !privileged("ports_open_just_in_time_sessions_outlive_expiry_and_are_cut_on_revoke") {
        return;
    }
    let started = Instant::now();
    let lab = Lab::new();
    let nft = lab.nft();
    let ruleset = Ruleset::new(&options()).unwrap();
    start_server(&lab);
    assert!(
        connect(&lab, None, SERVER4).is_ok(),
        "the lab works before the table"
    );
    apply(&nft, &ruleset).unwrap();

    // (a) closed: dropped, so the client times out.
    assert_eq!(
        connect(&lab, None, SERVER4).map(|_| ()),
        Err(ErrorKind::TimedOut),
        "(a) no element yet"
    );

    // (b) opened for 3 s.
    jit::add(&nft, &element(CLIENT4, 3)).unwrap();
    let listed = jit::list(&nft).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].expires_in <= Duration::from_secs(3), "{listed:?}");
    let kept = connect(&lab, None, SERVER4).expect("(b) opened: connects");

    // (c) expired: the session goes on both ways, a new one is dropped.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        jit::list(&nft).unwrap(),
        vec![],
        "(c) the kernel expired it"
    );
    assert_eq!(echo(&kept, b'x'), Ok(b'x'), "(c) session survives expiry");
    assert_eq!(
        connect(&lab, None, SERVER4).map(|_| ()),
        Err(ErrorKind::TimedOut),
        "(c) new connection after expiry"
    );
    drop(kept);

    // (d) revoke a session while the server keeps sending.
    jit::add(&nft, &element(CLIENT4, 30)).unwrap();
    let session = connect(&lab, None, SERVER4).expect("(d) opened again");
    start_ticks(&session);
    jit::delete(&nft, &element(CLIENT4, 0)).unwrap();
    jit::delete(&nft, &element(CLIENT4, 0)).unwrap(); // absent: still Ok
    if has_conntrack() {
        // Deleting its conntrack entries does not cut it: the server's next
        // packet recreates the entry as established.
        let out = Command::new("ip")
            .args(["netns", "exec", &lab.srv, "conntrack", "-D", "-s", CLIENT4])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains("flow entries have been deleted") && !said.contains(" 0 flow"),
            "conntrack -D deleted nothing: {said}"
        );
        assert_eq!(
            ticks_end_within(&session, Duration::from_millis(1500)),
            None,
            "(d) conntrack -D alone does not cut the session"
        );
    } else {
        eprintln!("NOTE: `conntrack` not installed; the conntrack -D part of (d) did not run");
    }
    let destroyed = destroy_in(&lab, CLIENT4);
    assert!(destroyed >= 1, "(d) destroyed {destroyed}");
    let ended = ticks_end_within(&session, Duration::from_secs(2));
    assert!(
        ended.is_some(),
        "(d) the client still receives after destroy"
    );
    assert_eq!(
        connect(&lab, None, SERVER4).map(|_| ()),
        Err(ErrorKind::TimedOut),
        "(d) revoked: no new connection"
    );

    // (e) IPv6: closed, opened, revoked.
    assert_eq!(
        connect(&lab, None, SERVER6).map(|_| ()),
        Err(ErrorKind::TimedOut),
        "(e) ipv6 closed"
    );
    jit::add(&nft, &element(CLIENT6, 30)).unwrap();
    let session6 = connect(&lab, None, SERVER6).expect("(e) ipv6 opened");
    assert_eq!(echo(&session6, b'y'), Ok(b'y'));
    start_ticks(&session6);
    jit::delete(&nft, &element(CLIENT6, 0)).unwrap();
    assert_eq!(destroy_in(&lab, CLIENT6), 1, "(e) one ipv6 socket");
    assert!(
        ticks_end_within(&session6, Duration::from_secs(2)).is_some(),
        "(e) ipv6 session cut"
    );
    assert_eq!(destroy_in(&lab, CLIENT6), 0, "(e) nothing left to destroy");

    // (f) sync against the kernel; elements are not drift; break glass.
    let a = element(CLIENT4, 60);
    let b = element(CLIENT6, 60);
    jit::sync(&nft, &[]).unwrap();
    assert_eq!(jit::list(&nft).unwrap(), vec![]);
    let report = jit::sync(&nft, &[a.clone(), b.clone()]).unwrap();
    assert_eq!(
        report,
        SyncReport {
            added: vec![a.clone(), b.clone()],
            removed: vec![],
            kept: 0
        }
    );
    assert_eq!(
        jit::sync(&nft, &[b.clone(), a.clone()]).unwrap(),
        SyncReport {
            added: vec![],
            removed: vec![],
            kept: 2
        },
        "(f) nothing to do"
    );
    let listed = jit::list(&nft).unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    for e in &listed {
        assert!(
            e.expires_in > Duration::from_secs(50) && e.expires_in <= Duration::from_secs(60),
            "{e:?}"
        );
    }
    assert_eq!(
        verify(&nft, &ruleset).unwrap(),
        vec![],
        "(f) elements are not drift"
    );
    let longer = element(CLIENT4, 600);
    let udp = Element {
        proto: Protocol::Udp,
        ..element("10.77.0.9", 30)
    };
    let report = jit::sync(&nft, &[longer.clone(), udp.clone()]).unwrap();
    assert_eq!(report.added, vec![longer.clone(), udp.clone()]);
    assert_eq!(report.kept, 0);
    let mut removed: Vec<IpAddr> = report.removed.iter().map(|e| e.source).collect();
    removed.sort();
    assert_eq!(
        removed,
        vec![a.source, b.source],
        "(f) replaced and removed"
    );
    let mut listed: Vec<(IpAddr, Protocol, u64)> = jit::list(&nft)
        .unwrap()
        .iter()
        .map(|e| (e.source, e.proto, e.expires_in.as_secs().div_ceil(100)))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![
            (longer.source, Protocol::Tcp, 6),
            (udp.source, Protocol::Udp, 1)
        ]
    );
    assert!(
        connect(&lab, None, SERVER4).is_ok(),
        "(f) synced element opens"
    );
    assert!(
        connect(&lab, Some(BASTION4), SERVER4).is_ok(),
        "(f) break glass without an element"
    );
    assert_eq!(
        connect(&lab, None, SERVER6).map(|_| ()),
        Err(ErrorKind::TimedOut),
        "(f) the ipv6 element was synced away"
    );

    // A full apply (the watcher's repair) empties the sets: sync puts them back.
    apply(&nft, &ruleset).unwrap();
    assert_eq!(jit::list(&nft).unwrap(), vec![]);
    assert_eq!(
        jit::sync(&nft, std::slice::from_ref(&longer))
            .unwrap()
            .added,
        vec![longer]
    );
    assert_eq!(verify(&nft, &ruleset).unwrap(), vec![]);

    let listing = run(
        "ip",
        &[
            "netns",
            "exec",
            &lab.srv,
            "nft",
            "list",
            "table",
            "inet",
            "gatehouse",
        ],
    );
    assert!(listing.contains("chain jit_input"), "{listing}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

//! The firewall against real nftables, each test in a network namespace of
//! its own (`gh-fw-PID-TAG`), deleted at the end even when the test fails.
//! The host's own ruleset is never touched.

// Helpers outside `#[test]` functions are test code too: a failed step must
// fail the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step must fail the test loudly"
)]

mod common;
use common::{options, privileged, run, MARK};

use gatehouse_firewall::{
    apply, remove, verify, watch, Containers, Difference, Ipv6, Nft, Options, Ruleset, Trigger,
    WatchEvent, WatchOptions,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A network namespace of our own; deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("gh-fw-{}-{tag}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn nft(&self) -> Nft {
        Nft::in_netns(&self.name)
    }

    fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all);
    }

    /// `nft ARGS` in the namespace, its stdout.
    fn nft_cmd(&self, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", self.name.as_str(), "nft"];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// The handle of the rule in `chain` whose line contains `needle`.
    fn handle_of(&self, chain: &str, needle: &str) -> String {
        let listing = self.nft_cmd(&["-a", "list", "chain", "inet", "gatehouse", chain]);
        let line = listing
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {listing}"));
        line.rsplit("# handle ").next().unwrap().trim().to_owned()
    }

    /// Delete the rule in `chain` whose line contains `needle`.
    fn delete_rule(&self, chain: &str, needle: &str) {
        self.delete_handle(chain, &self.handle_of(chain, needle));
    }

    /// Delete the rule in `chain` with `handle`.
    fn delete_handle(&self, chain: &str, handle: &str) {
        self.nft_cmd(&[
            "delete",
            "rule",
            "inet",
            "gatehouse",
            chain,
            "handle",
            handle,
        ]);
    }

    /// Run `body` on a thread inside the namespace (sockets it makes live there).
    fn enter<T: Send + 'static>(&self, body: impl FnOnce() -> T + Send + 'static) -> T {
        common::in_ns(&self.name, body)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A VM (`vm`) and the platform it reaches IMDS in (`platform`), joined by a
/// veth pair (`eth0` at 10.77.0.4, `host0` at 10.77.0.1) as a VM reaches its
/// host, with the VM's route to 169.254.169.254 through it.
fn vm_and_platform(vm: &str, platform: &str) -> (Netns, Netns) {
    let (vm, platform) = (Netns::new(vm), Netns::new(platform));
    vm.ip(&[
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        "host0",
        "netns",
        &platform.name,
    ]);
    vm.ip(&["addr", "add", "10.77.0.4/24", "dev", "eth0"]);
    vm.ip(&["link", "set", "eth0", "up"]);
    vm.ip(&["route", "add", "169.254.169.254/32", "via", "10.77.0.1"]);
    platform.ip(&["addr", "add", "10.77.0.1/24", "dev", "host0"]);
    platform.ip(&["link", "set", "host0", "up"]);
    (vm, platform)
}

fn strings(d: &[Difference]) -> Vec<String> {
    d.iter().map(ToString::to_string).collect()
}

#[test]
fn apply_is_idempotent_verify_names_tampering_remove_spares_other_tables() {
    if !privileged("apply_is_idempotent_verify_names_tampering_remove_spares_other_tables") {
        return;
    }
    let ns = Netns::new("apply");
    let nft = ns.nft();
    let ruleset = Ruleset::new(&options(16925)).unwrap();

    assert_eq!(
        verify(&nft, &ruleset).unwrap(),
        vec![Difference::TableMissing]
    );
    apply(&nft, &ruleset).unwrap();
    apply(&nft, &ruleset).unwrap();
    assert_eq!(
        strings(&verify(&nft, &ruleset).unwrap()),
        Vec::<String>::new(),
        "after applying twice"
    );
    let listed = ns.nft_cmd(&["list", "table", "inet", "gatehouse"]);
    assert_eq!(
        listed.matches("comment").count(),
        ruleset.rule_count(),
        "no duplicates:\n{listed}"
    );

    ns.delete_rule("output", "anything else unmarked");
    ns.nft_cmd(&[
        "add",
        "rule",
        "inet",
        "gatehouse",
        "forward",
        "ip",
        "daddr",
        "169.254.169.254",
        "accept",
    ]);
    let got = strings(&verify(&nft, &ruleset).unwrap());
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with(
            "chain `output`: rule missing: `ip daddr 169.254.169.254 meta mark != 0x00006761 drop"
        ),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("chain `forward`: unexpected rule (handle "),
        "{got:?}"
    );
    assert!(
        got[1].ends_with("): `ip daddr 169.254.169.254 accept`"),
        "{got:?}"
    );

    apply(&nft, &ruleset).unwrap();
    assert!(verify(&nft, &ruleset).unwrap().is_empty(), "apply repairs");

    ns.nft_cmd(&["add", "table", "inet", "keepme"]);
    ns.nft_cmd(&[
        "add",
        "chain",
        "inet",
        "keepme",
        "c",
        "{ type filter hook output priority 0; }",
    ]);
    ns.nft_cmd(&[
        "add", "rule", "inet", "keepme", "c", "ip", "daddr", "10.9.9.9", "drop",
    ]);
    remove(&nft).unwrap();
    remove(&nft).unwrap();
    assert_eq!(
        verify(&nft, &ruleset).unwrap(),
        vec![Difference::TableMissing]
    );
    let rest = ns.nft_cmd(&["list", "ruleset"]);
    assert!(
        rest.contains("table inet keepme") && rest.contains("ip daddr 10.9.9.9 drop"),
        "{rest}"
    );
    assert!(!rest.contains("gatehouse"), "{rest}");
}

/// The JSON `expr` forms the variants use (dnat, ct original, prefixes,
/// iifname) are exactly what nft lists for the text we render.
#[test]
fn every_variant_verifies_clean_after_apply() {
    if !privileged("every_variant_verifies_clean_after_apply") {
        return;
    }
    let ns = Netns::new("variants");
    let nft = ns.nft();
    let variants = [
        options(16925),
        Options {
            containers: Containers::Redirect,
            ..options(16925)
        },
        Options {
            containers: Containers::Redirect,
            ipv6: Ipv6::Intercept,
            wireserver: false,
            listen: "10.1.2.3:8080".parse().unwrap(),
            mark: 1,
            jit: None,
        },
        Options {
            containers: Containers::Redirect,
            listen: "0.0.0.0:1".parse().unwrap(),
            ..options(1)
        },
        Options {
            ipv6: Ipv6::Refuse,
            ..options(16925)
        },
    ];
    for o in variants {
        let r = Ruleset::new(&o).unwrap();
        apply(&nft, &r).unwrap();
        assert_eq!(
            strings(&verify(&nft, &r).unwrap()),
            Vec::<String>::new(),
            "{o:?}"
        );
    }
}

/// A watcher of `ruleset` with `opts`, and the events it reports.
fn watch_events(
    nft: &Nft,
    ruleset: &Ruleset,
    opts: WatchOptions,
) -> (gatehouse_firewall::Watcher, mpsc::Receiver<WatchEvent>) {
    let (tx, rx) = mpsc::channel();
    let watcher = watch(nft.clone(), ruleset.clone(), opts, move |e| {
        let _ = tx.send(e.clone());
    })
    .unwrap();
    (watcher, rx)
}

fn next_event(rx: &mpsc::Receiver<WatchEvent>, within: Duration) -> WatchEvent {
    rx.recv_timeout(within)
        .unwrap_or_else(|_| panic!("no watcher event within {within:?}"))
}

#[test]
fn watcher_repairs_on_nft_events() {
    if !privileged("watcher_repairs_on_nft_events") {
        return;
    }
    let ns = Netns::new("watch");
    let nft = ns.nft();
    let ruleset = Ruleset::new(&options(16925)).unwrap();
    let opts = WatchOptions {
        every: Duration::from_secs(3600),
        monitor: true,
        checked_before: false,
    };
    let (watcher, rx) = watch_events(&nft, &ruleset, opts);

    let first = next_event(&rx, Duration::from_secs(5));
    assert_eq!(
        first,
        WatchEvent::Repaired {
            trigger: Trigger::Start,
            differences: vec![Difference::TableMissing],
            remaining: vec![]
        }
    );
    // Let the monitor settle on the events of that first repair.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        rx.try_recv().is_err(),
        "a clean table is not repaired again"
    );

    let handle = ns.handle_of("nat-output", "redirect");
    let started = Instant::now();
    ns.delete_handle("nat-output", &handle);
    let WatchEvent::Repaired {
        trigger,
        differences,
        remaining,
    } = next_event(&rx, Duration::from_secs(5))
    else {
        panic!("expected a repair");
    };
    assert_eq!(trigger, Trigger::Event);
    let differences = strings(&differences);
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert!(
        differences[0].starts_with(
            "chain `nat-output`: rule missing: `ip daddr 169.254.169.254 tcp dport 80"
        ),
        "{differences:?}"
    );
    assert!(remaining.is_empty(), "{remaining:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "repaired in {:?}",
        started.elapsed()
    );
    assert!(verify(&nft, &ruleset).unwrap().is_empty());

    // Someone adds a rule that lets everything through: removed again.
    ns.nft_cmd(&["insert", "rule", "inet", "gatehouse", "output", "accept"]);
    let WatchEvent::Repaired { differences, .. } = next_event(&rx, Duration::from_secs(5)) else {
        panic!("expected a repair");
    };
    assert_eq!(strings(&differences).len(), 1, "{differences:?}");
    assert!(
        strings(&differences)[0].contains("unexpected rule"),
        "{differences:?}"
    );
    watcher.stop();
    assert!(verify(&nft, &ruleset).unwrap().is_empty());
}

#[test]
fn watcher_repairs_periodically_without_events() {
    if !privileged("watcher_repairs_periodically_without_events") {
        return;
    }
    let ns = Netns::new("period");
    let nft = ns.nft();
    let ruleset = Ruleset::new(&options(16925)).unwrap();
    apply(&nft, &ruleset).unwrap();
    let opts = WatchOptions {
        every: Duration::from_millis(300),
        monitor: false,
        checked_before: false,
    };
    let (watcher, rx) = watch_events(&nft, &ruleset, opts);
    // A table already as rendered is reported verified once, at start…
    assert_eq!(
        next_event(&rx, Duration::from_secs(1)),
        WatchEvent::Verified {
            trigger: Trigger::Start
        }
    );
    // …and not again at each period while it stays so.
    std::thread::sleep(Duration::from_millis(700));
    assert!(rx.try_recv().is_err(), "nothing to repair yet");
    ns.nft_cmd(&["delete", "table", "inet", "gatehouse"]);
    let event = next_event(&rx, Duration::from_secs(3));
    assert_eq!(
        event,
        WatchEvent::Repaired {
            trigger: Trigger::Periodic,
            differences: vec![Difference::TableMissing],
            remaining: vec![]
        }
    );
    drop(watcher);
    assert!(verify(&nft, &ruleset).unwrap().is_empty());
}

/// Read one byte, or the error kind.
fn greeting(mut s: &TcpStream) -> Result<u8, ErrorKind> {
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(1) => Ok(b[0]),
        Ok(_) => Err(ErrorKind::UnexpectedEof),
        Err(e) => Err(e.kind()),
    }
}

/// Accept forever on `l`, greeting each connection with `tag`.
fn serve(l: TcpListener, tag: u8) {
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = s.write_all(&[tag]);
            std::thread::spawn(move || {
                let mut sink = [0u8; 64];
                while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
}

fn connect(addr: &str, mark: Option<u32>) -> Result<TcpStream, ErrorKind> {
    let addr: SocketAddr = addr.parse().unwrap();
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, None).unwrap();
    if let Some(m) = mark {
        s.set_mark(m).unwrap();
    }
    s.connect_timeout(&addr.into(), Duration::from_secs(2))
        .map_err(|e| e.kind())?;
    Ok(s.into())
}

/// The first byte a connection to `addr` (socket marked with `mark`)
/// reads; the connection must be made.
fn greets(addr: &str, mark: Option<u32>) -> Result<u8, ErrorKind> {
    greeting(&connect(addr, mark).unwrap())
}

/// What the table applied in this namespace does to connections to IMDS
/// at `host`: on port 80, unmarked (`unmarked`: what to say if not) or
/// marked by uid 65534 they meet the gate, marked by root IMDS; on port
/// 81 they are refused unless marked by root.
fn assert_imds_intercepted(host: &str, unmarked: &str) {
    let ip: std::net::IpAddr = host.parse().unwrap();
    let at = |port: u16| SocketAddr::from((ip, port)).to_string();
    assert_eq!(greets(&at(80), None), Ok(b'G'), "{unmarked}");
    assert_eq!(
        greets(&at(80), Some(MARK)),
        Ok(b'I'),
        "marked root socket → IMDS"
    );
    assert_eq!(
        marked_connect_as_nobody(host, 80),
        "G",
        "marked, uid 65534 → the gate"
    );
    assert_eq!(
        connect(&at(81), None).map(|_| ()),
        Err(ErrorKind::ConnectionRefused),
        "other port"
    );
    assert_eq!(greets(&at(81), Some(MARK)), Ok(b'I'), "other port, marked");
}

fn udp_send(to: &str, mark: Option<u32>, payload: &[u8]) {
    let to: SocketAddr = to.parse().unwrap();
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    if let Some(m) = mark {
        s.set_mark(m).unwrap();
    }
    // A dropped datagram may come back as EPERM: that is the point.
    let _ = s.send_to(payload, &to.into());
}

/// What a TCP connection to `host:port` from a socket of uid 65534 that has
/// set `SO_MARK` `MARK` (with CAP_NET_RAW, enough since Linux 5.17) met:
/// the first byte read (`G`, `I`) or the errno name. Panics unless the child
/// really ran as 65534 with the mark set, so the test cannot pass vacuously.
fn marked_connect_as_nobody(host: &str, port: u16) -> String {
    const SCRIPT: &str = r#"
import errno, os, socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, int(sys.argv[3]))
s.settimeout(2)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    b = s.recv(1)
    r = b.decode() if b else "eof"
except OSError as e:
    r = errno.errorcode.get(e.errno, "timeout") if e.errno else "timeout"
print(os.getuid(), s.getsockopt(socket.SOL_SOCKET, socket.SO_MARK), r)
"#;
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=+net_raw",
            "--ambient-caps=+net_raw",
            "/usr/bin/python3",
            "-c",
            SCRIPT,
            host,
            &port.to_string(),
            &MARK.to_string(),
        ])
        .output()
        .expect("setpriv (util-linux) and /usr/bin/python3 are needed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helper failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(
        words.get(..2),
        Some(&["65534", MARK.to_string().as_str()][..]),
        "the helper is not uid 65534 with the mark: {stdout}"
    );
    words[2].to_owned()
}

#[test]
fn traffic_is_redirected_marked_passes_old_connections_and_udp_are_cut() {
    if !privileged("traffic_is_redirected_marked_passes_old_connections_and_udp_are_cut") {
        return;
    }
    // The VM (`vm`, where the firewall is applied) reaches "IMDS" and the
    // "WireServer" over a veth pair in the `platform` namespace, as a VM
    // reaches the host: the client's source address is the VM's own.
    let (vm, platform) = vm_and_platform("vm", "platform");
    vm.ip(&["route", "add", "168.63.129.16/32", "via", "10.77.0.1"]);
    platform.ip(&["addr", "add", "169.254.169.254/32", "dev", "lo"]);
    platform.ip(&["addr", "add", "168.63.129.16/32", "dev", "lo"]);
    let nft = vm.nft();

    let (imds, wireserver, udp, old_server) = platform.enter(|| {
        let imds = [80, 81].map(|p| TcpListener::bind(("169.254.169.254", p)).unwrap());
        let wireserver = TcpListener::bind("168.63.129.16:80").unwrap();
        let udp = UdpSocket::bind("169.254.169.254:53").unwrap();
        let old_server = TcpListener::bind("169.254.169.254:82").unwrap();
        (imds, wireserver, udp, old_server)
    });
    for l in imds {
        serve(l, b'I');
    }
    serve(wireserver, b'W');
    udp.set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();

    vm.enter(move || {
        let gate = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = gate.local_addr().unwrap().port();
        serve(gate, b'G');

        // A connection opened before the firewall, whose server reads on.
        let old = connect("169.254.169.254:82", None).unwrap();
        let (mut accepted, _) = old_server.accept().unwrap();
        let (got_tx, got_rx) = mpsc::channel();
        std::thread::spawn(move || {
            accepted
                .set_read_timeout(Some(Duration::from_millis(1500)))
                .unwrap();
            let mut b = [0u8; 16];
            let _ = got_tx.send(
                accepted
                    .read(&mut b)
                    .map(|n| b[..n].to_vec())
                    .map_err(|e| e.kind()),
            );
        });
        // Without the firewall, everything reaches "IMDS" directly.
        assert_eq!(greets("169.254.169.254:80", None), Ok(b'I'), "before apply");

        let ruleset = Ruleset::new(&options(port)).unwrap();
        apply(&nft, &ruleset).unwrap();

        (&old).write_all(b"after").unwrap();
        let server_saw = got_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(
            server_saw.as_deref().map_or(true, |b| b.is_empty()),
            "the old connection went on: {server_saw:?}"
        );
        assert!(
            greeting(&old).is_err(),
            "the old connection is cut for the client too"
        );

        // CAP_NET_RAW is enough to set the mark: a marked socket that is not
        // root's is sent to the gate, and refused after nat on other ports.
        assert_imds_intercepted("169.254.169.254", "unmarked → the gate");
        assert_eq!(
            marked_connect_as_nobody("169.254.169.254", 81),
            "ECONNREFUSED",
            "other port, marked, uid 65534"
        );
        assert_eq!(
            greets("169.254.169.254:80", Some(MARK + 1)),
            Ok(b'G'),
            "another mark → the gate"
        );

        let mut buf = [0u8; 8];
        udp_send("169.254.169.254:53", None, b"plain");
        assert!(
            udp.recv_from(&mut buf).is_err(),
            "unmarked UDP reached IMDS"
        );
        udp_send("169.254.169.254:53", Some(MARK), b"marked");
        assert_eq!(
            udp.recv_from(&mut buf)
                .map(|(n, _)| buf[..n].to_vec())
                .unwrap(),
            b"marked"
        );

        // WireServer: root (this thread) may; nobody may not.
        assert_eq!(
            greets("168.63.129.16:80", None),
            Ok(b'W'),
            "root → WireServer"
        );
        let nobody = {
            use std::os::unix::process::CommandExt;
            Command::new("timeout")
                .args([
                    "2",
                    "bash",
                    "-c",
                    "exec 3<>/dev/tcp/168.63.129.16/80 && head -c1 <&3",
                ])
                .uid(65534)
                .gid(65534)
                .output()
                .unwrap()
        };
        assert!(
            !nobody.status.success(),
            "nobody reached the WireServer: {:?}",
            String::from_utf8_lossy(&nobody.stdout)
        );

        remove(&nft).unwrap();
        assert_eq!(greets("169.254.169.254:81", None), Ok(b'I'), "after remove");
    });
}

/// Connect from exactly `from` (SO_REUSEADDR, so a port in TIME_WAIT may be bound).
fn connect_from(from: SocketAddr, to: &str) -> Result<TcpStream, ErrorKind> {
    let to: SocketAddr = to.parse().unwrap();
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    s.bind(&from.into()).unwrap();
    s.connect_timeout(&to.into(), Duration::from_secs(2))
        .map_err(|e| e.kind())?;
    Ok(s.into())
}

/// The gate identifies a caller by the source address and port it sees. When a
/// redirected connection's reply tuple clashes with another connection's (here: a
/// direct connection from the same source port, left in TIME_WAIT), conntrack gives it
/// another source port, and the gate would look up whoever has that one. The table
/// refuses such a connection; and it refuses the direct connections from non-loopback
/// addresses that could make such clashes (any user could otherwise block everyone's
/// IMDS). Each rule is shown to matter by taking it out.
#[test]
fn a_connection_whose_source_port_nat_changed_is_refused() {
    if !privileged("a_connection_whose_source_port_nat_changed_is_refused") {
        return;
    }
    let (vm, _platform) = vm_and_platform("clash", "clashp");
    let nft = vm.nft();
    let port = {
        let nft = vm.nft();
        vm.enter(move || {
            let gate = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = gate.local_addr().unwrap().port();
            serve(gate, b'G');
            apply(&nft, &Ruleset::new(&options(port)).unwrap()).unwrap();
            port
        })
    };
    let direct_from = |from: &'static str| {
        vm.enter(move || {
            connect_from(from.parse().unwrap(), &format!("127.0.0.1:{port}")).map(|s| greeting(&s))
        })
    };
    // Direct connections to the gate: from loopback yes, from another address no.
    assert_eq!(direct_from("127.0.0.1:40120"), Ok(Ok(b'G')));
    assert_eq!(
        direct_from("10.77.0.4:40121"),
        Err(ErrorKind::ConnectionRefused)
    );
    // And a redirected one is served.
    assert_eq!(
        vm.enter(|| connect("169.254.169.254:80", None).map(|s| greeting(&s))),
        Ok(Ok(b'G'))
    );

    // Without that rule a direct connection can leave the reply tuple behind ...
    vm.delete_rule("output", "no direct connection to the gate");
    let clash = |from: &'static str| {
        vm.enter(move || {
            let from: SocketAddr = from.parse().unwrap();
            let direct = connect_from(from, &format!("127.0.0.1:{port}")).unwrap();
            assert_eq!(greeting(&direct), Ok(b'G'));
            drop(direct);
            std::thread::sleep(Duration::from_millis(300));
            // The same source port to IMDS: its reply tuple is the closed one's.
            connect_from(from, "169.254.169.254:80").map(|s| greeting(&s))
        })
    };
    // ... and the clashing redirected connection is refused,
    let refused = clash("10.77.0.4:40123");
    assert!(
        matches!(refused, Err(ErrorKind::ConnectionRefused) | Ok(Err(_))),
        "refused, not served: {refused:?}"
    );
    // where without the `ct status snat` rule it would be served under another port.
    vm.nft_cmd(&["flush", "chain", "inet", "gatehouse", "input-after-nat"]);
    assert_eq!(
        clash("10.77.0.4:40124"),
        Ok(Ok(b'G')),
        "without the rule the clashing connection is served"
    );
    remove(&nft).unwrap();
}

/// IMDS's IPv6 address, intercepted (the default): an unmarked connection
/// to [fd00:ec2::254]:80 reaches the gate's listener at [::1] on the
/// table's port, a marked root socket reaches the platform, a marked
/// socket of uid 65534 meets the gate, other ports are refused unless
/// marked and root's. With `Ipv6::Refuse` the same connection is refused.
#[test]
fn ipv6_traffic_goes_to_the_gate_at_loopback_unless_marked_and_roots() {
    if !privileged("ipv6_traffic_goes_to_the_gate_at_loopback_unless_marked_and_roots") {
        return;
    }
    let (vm, platform) = vm_and_platform("vm6", "platform6");
    vm.ip(&["-6", "addr", "add", "fd00:77::4/64", "dev", "eth0", "nodad"]);
    vm.ip(&[
        "-6",
        "route",
        "add",
        "fd00:ec2::254/128",
        "via",
        "fd00:77::1",
    ]);
    platform.ip(&[
        "-6",
        "addr",
        "add",
        "fd00:77::1/64",
        "dev",
        "host0",
        "nodad",
    ]);
    platform.ip(&[
        "-6",
        "addr",
        "add",
        "fd00:ec2::254/128",
        "dev",
        "lo",
        "nodad",
    ]);
    let nft = vm.nft();
    let imds =
        platform.enter(|| [80, 81].map(|p| TcpListener::bind(("fd00:ec2::254", p)).unwrap()));
    for l in imds {
        serve(l, b'I');
    }
    vm.enter(move || {
        let gate = TcpListener::bind("[::1]:0").unwrap();
        let port = gate.local_addr().unwrap().port();
        serve(gate, b'G');
        assert_eq!(greets("[fd00:ec2::254]:80", None), Ok(b'I'), "before apply");
        let intercept = Ruleset::new(&options(port)).unwrap();
        apply(&nft, &intercept).unwrap();
        assert_eq!(
            strings(&verify(&nft, &intercept).unwrap()),
            Vec::<String>::new()
        );
        assert_imds_intercepted("fd00:ec2::254", "unmarked → the gate at [::1]");
        let refuse = Ruleset::new(&Options {
            ipv6: Ipv6::Refuse,
            ..options(port)
        })
        .unwrap();
        apply(&nft, &refuse).unwrap();
        assert_eq!(
            connect("[fd00:ec2::254]:80", None).map(|_| ()),
            Err(ErrorKind::ConnectionRefused),
            "refused, not redirected"
        );
        assert_eq!(
            greets("[fd00:ec2::254]:80", Some(MARK)),
            Ok(b'I'),
            "refused: the gate's own sockets still pass"
        );
        remove(&nft).unwrap();
    });
}

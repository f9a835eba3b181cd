//! Is the gate really in the path? A table that is exactly as rendered still
//! proves nothing if something sees the connection first: an earlier
//! nft/iptables DNAT, a cgroup BPF `connect4` redirect (Azure's Guest Proxy
//! Agent), a prohibit route (systemd-imdsd's lockdown). So `gatehouse
//! firewall verify` makes the connection an ordinary process makes: from an
//! unprivileged uid (a child process of this binary, `firewall
//! probe-connect`, run as `nobody`) to 169.254.169.254:80, and asks the
//! kernel (sock_diag) whether the other end of that connection is a socket
//! on the gate's listener, by the probe's own source address and port (a
//! nonce the kernel chose). Nothing is sent: no request reaches the gate's
//! HTTP path or the metadata service.
//!
//! `gatehouse run` makes the same probe at start, once it listens and the
//! table is verified ([`start_probe`]), and refuses to serve when it fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

#[cfg(test)]
mod tests;

/// The uid (and gid) the probe connects as: `nobody` on Debian and most
/// systems. The kernel needs no passwd entry for it.
pub const PROBE_UID: u32 = 65534;
/// How long the probe waits for the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Where the probe connects: the metadata service's IPv4 address.
pub const IMDS_TARGET: SocketAddr =
    SocketAddr::new(IpAddr::V4(gatehouse_firewall::ruleset::IMDS), 80);
/// And its IPv6 address.
pub const IMDS6_TARGET: SocketAddr =
    SocketAddr::new(IpAddr::V6(gatehouse_firewall::ruleset::IMDS6), 80);

/// What to probe for a table rendered from `options`: (where the probe
/// connects, the gate's listener it must reach) — IPv4, and IPv6 when the
/// table intercepts it.
pub fn targets(options: &gatehouse_firewall::Options) -> Vec<(SocketAddr, SocketAddr)> {
    let mut out = vec![(IMDS_TARGET, SocketAddr::V4(options.listen))];
    if let Some(gate6) = options.listen6() {
        out.push((IMDS6_TARGET, SocketAddr::V6(gate6)));
    }
    out
}

/// What the probe's connection did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Connected; the probe's own (source) address.
    Connected(SocketAddr),
    /// Refused (a TCP reset).
    Refused,
    /// No answer within the timeout.
    TimedOut,
    /// Refused before any packet left: a route (`prohibit` gives EACCES,
    /// `unreachable` EHOSTUNREACH, `blackhole` EINVAL) or a policy.
    Blocked(String),
    /// No route at all (ENETUNREACH).
    NoRoute(String),
    /// Anything else.
    Failed(String),
}

/// The verdict on the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The probe's connection is a socket on the gate's listener.
    ReachesGate,
    /// Connected, but not to the gate: something redirected it elsewhere.
    Diverted,
    /// Refused: the redirect's target has no listener (no gate running), or
    /// something refuses it before the gate.
    Refused,
    /// No answer: a drop before the gate.
    TimedOut,
    /// The kernel would not even send it: a route blocks IMDS.
    Blocked(String),
    /// The kernel has no route to the address at all (`ENETUNREACH`), so
    /// nftables never sees the connection.
    NoRoute(String),
    /// The probe could not run.
    Failed(String),
}

/// `connected` and whether a socket of the gate's listener has the probe's
/// address as its peer.
pub fn judge(connection: &Connection, at_gate: bool) -> Verdict {
    match connection {
        Connection::Connected(_) if at_gate => Verdict::ReachesGate,
        Connection::Connected(_) => Verdict::Diverted,
        Connection::Refused => Verdict::Refused,
        Connection::TimedOut => Verdict::TimedOut,
        Connection::Blocked(e) => Verdict::Blocked(e.clone()),
        Connection::NoRoute(e) => Verdict::NoRoute(e.clone()),
        Connection::Failed(e) => Verdict::Failed(e.clone()),
    }
}

impl Verdict {
    pub fn holds(&self) -> bool {
        matches!(self, Verdict::ReachesGate)
    }

    /// The verdict as one word, for the audit record (`firewall_probed`).
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::ReachesGate => "reaches_gate",
            Verdict::Diverted => "diverted",
            Verdict::Refused => "refused",
            Verdict::TimedOut => "timed_out",
            Verdict::Blocked(_) => "blocked",
            Verdict::NoRoute(_) => "no_route",
            Verdict::Failed(_) => "failed",
        }
    }

    /// One line for the operator: what happened and its likely cause. `by`
    /// is the probe's uid, `target` where it connected, `gate` the gate's
    /// listener it should have reached.
    pub fn message(&self, by: u32, target: SocketAddr, gate: SocketAddr) -> String {
        let v6 = target.is_ipv6();
        match self {
            Verdict::ReachesGate => format!(
                "ok: a probe connection from uid {by} to {target} reached the gate's listener ({gate})"
            ),
            Verdict::Diverted => format!(
                "a probe connection from uid {by} to {target} was answered, but not by the gate's listener ({gate}): \
                 something redirects metadata traffic before gatehouse's table does — likely an earlier nft or iptables DNAT \
                 (a chain at a lower priority, or registered before ours), or a cgroup BPF {} program \
                 (Azure's Guest Proxy Agent); run `gatehouse doctor` to name it",
                if v6 { "connect6" } else { "connect4" }
            ),
            Verdict::Refused => format!(
                "a probe connection from uid {by} to {target} was refused: no gate listens on {gate} \
                 (start gatehouse.service), or something refuses metadata connections before the gate (`gatehouse doctor`)"
            ),
            Verdict::TimedOut => format!(
                "a probe connection from uid {by} to {target} got no answer within {} s: \
                 something drops metadata traffic before the gate's table sends it to {gate} — an earlier nft/iptables \
                 rule or a route (`gatehouse doctor`)",
                CONNECT_TIMEOUT.as_secs()
            ),
            Verdict::Blocked(e) => format!(
                "a probe connection from uid {by} to {target} was stopped by the kernel before any packet left ({e}): \
                 a prohibit, unreachable or blackhole route for {} — systemd-imdsd's lockdown adds one with a \
                 firewall-mark exception — so nftables never sees the connection and the gate is not in the path (`gatehouse doctor`)",
                target.ip()
            ),
            Verdict::NoRoute(e) if v6 => format!(
                "note: a probe connection from uid {by} to {target} found no route ({e}): IPv6 has no route to the metadata \
                 service's IPv6 address here, so nothing reaches it over IPv6 (and the gate's [::1] listener waits for \
                 the day a route appears; `ip -6 route get {}`)",
                target.ip()
            ),
            Verdict::NoRoute(e) => format!(
                "a probe connection from uid {by} to {target} found no route ({e}): the kernel has nowhere to send \
                 metadata traffic, so nftables never sees it and no client reaches the gate by that address \
                 (`ip route get {}`; on a VM DHCP adds the route)",
                target.ip()
            ),
            Verdict::Failed(e) => {
                format!("the probe connection to {target} could not be made: {e}")
            }
        }
    }
}

/// The child's side (`gatehouse firewall probe-connect ADDR`, run as
/// [`PROBE_UID`]): connect, print `connected LOCAL` or `error KIND TEXT`,
/// then hold the connection until stdin closes (the parent looks it up
/// meanwhile).
pub fn child(addr: SocketAddr) -> std::process::ExitCode {
    let mut out = std::io::stdout();
    match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
        Ok(stream) => {
            let local = match stream.local_addr() {
                Ok(l) => l,
                Err(e) => {
                    let _ = writeln!(out, "error failed {e}");
                    return std::process::ExitCode::from(1);
                }
            };
            let _ = writeln!(out, "connected {local}");
            let _ = out.flush();
            // Bounded by the parent, which closes stdin after one lookup.
            let mut sink = [0u8; 1];
            let _ = std::io::stdin().read(&mut sink);
            drop(stream);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            use std::io::ErrorKind as K;
            let kind = match e.kind() {
                K::ConnectionRefused => "refused",
                K::TimedOut => "timeout",
                K::NetworkUnreachable => "noroute",
                K::PermissionDenied | K::HostUnreachable | K::InvalidInput => "blocked",
                _ => "failed",
            };
            let _ = writeln!(out, "error {kind} {e}");
            std::process::ExitCode::from(1)
        }
    }
}

/// Parse the child's one line.
pub fn parse_line(line: &str) -> Connection {
    let line = line.trim();
    if let Some(addr) = line.strip_prefix("connected ") {
        return match addr.parse() {
            Ok(a) => Connection::Connected(a),
            Err(_) => Connection::Failed(format!("the probe printed `{line}`")),
        };
    }
    let mut words = line.splitn(3, ' ');
    match (words.next(), words.next(), words.next().unwrap_or("")) {
        (Some("error"), Some("refused"), _) => Connection::Refused,
        (Some("error"), Some("timeout"), _) => Connection::TimedOut,
        (Some("error"), Some("blocked"), e) => Connection::Blocked(e.to_owned()),
        (Some("error"), Some("noroute"), e) => Connection::NoRoute(e.to_owned()),
        (Some("error"), Some(_), e) => Connection::Failed(e.to_owned()),
        _ => Connection::Failed(format!("the probe printed `{line}`")),
    }
}

/// The uid the probe runs as: [`PROBE_UID`] when this process is root
/// (it can switch), else this process's own, already unprivileged, uid.
pub fn probe_uid() -> u32 {
    match gatehouse_sys::effective_uid() {
        0 => PROBE_UID,
        me => me,
    }
}

/// Where a gate listening on `gate` is reached by the table's redirect: a
/// loopback or wildcard listener at the loopback address of its family.
fn reached_at(gate: SocketAddr) -> SocketAddr {
    match gate.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), gate.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), gate.port())
        }
        _ => gate,
    }
}

/// Run the probe: a connection from [`probe_uid`] to `target`, which must
/// end on a socket of the gate listening on `gate`.
pub fn run(target: SocketAddr, gate: SocketAddr) -> Verdict {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return Verdict::Failed(format!("cannot find this program: {e}")),
    };
    let uid = probe_uid();
    let mut command = Command::new(exe);
    command
        .args(["firewall", "probe-connect", &target.to_string()])
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if uid == PROBE_UID {
        command.uid(PROBE_UID).gid(PROBE_UID);
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Verdict::Failed(format!(
                "cannot start the probe as uid {uid}: {e} (needs root, and this program readable and executable by uid {uid})"
            ))
        }
    };
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let connection = parse_line(&line);
    let at_gate = match &connection {
        // (src = the gate's address, dst = the probe's) finds the gate's
        // end of the connection, accepted or still queued.
        Connection::Connected(local) => matches!(
            gatehouse_sys::socket_owner(reached_at(gate), *local),
            Ok(Some(_))
        ),
        _ => false,
    };
    drop(child.stdin.take());
    let _ = child.wait();
    judge(&connection, at_gate)
}

/// One probe (`gatehouse run` at start, `firewall verify`): where to, and
/// what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartProbe {
    pub target: SocketAddr,
    pub gate: SocketAddr,
    pub uid: u32,
    pub verdict: Verdict,
    /// `start` or `verify`.
    pub trigger: &'static str,
}

impl StartProbe {
    pub fn message(&self) -> String {
        self.verdict.message(self.uid, self.target, self.gate)
    }

    /// Whether the gate is in this path: the probe reached it, or — for
    /// IMDS's IPv6 address only — there is no route there at all, so nothing
    /// reaches it over IPv6 (IPv6 without a route, as on most clouds). No
    /// route to the IPv4 address is a failure: nobody reaches the gate.
    pub fn holds(&self) -> bool {
        self.verdict.holds()
            || (self.target.is_ipv6() && matches!(self.verdict, Verdict::NoRoute(_)))
    }

    /// The audit record of this probe.
    pub fn audit_record(&self) -> gatehouse_audit::Event {
        gatehouse_audit::Event::FirewallProbed {
            trigger: self.trigger.to_owned(),
            target: self.target.to_string(),
            uid: self.uid,
            verdict: self.verdict.label().to_owned(),
            message: self.message(),
            holds: self.holds(),
        }
    }
}

/// The probes of a gate whose table is in place: the connection `firewall
/// verify` makes, to each (target, gate listener) of `targets`. Every
/// result is returned, to be audited; the gate serves only when all hold
/// (fail closed: a gate that believes it is in the path when it is not
/// would let every caller past it unrecorded).
pub fn start_probe(targets: &[(SocketAddr, SocketAddr)], trigger: &'static str) -> Vec<StartProbe> {
    let uid = probe_uid();
    targets
        .iter()
        .map(|&(target, gate)| StartProbe {
            target,
            gate,
            uid,
            verdict: run(target, gate),
            trigger,
        })
        .collect()
}

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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
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
        Connection::Failed(e) => Verdict::Failed(e.clone()),
    }
}

impl Verdict {
    pub fn holds(&self) -> bool {
        matches!(self, Verdict::ReachesGate)
    }

    /// One line for the operator: what happened and its likely cause.
    pub fn message(&self, gate: SocketAddrV4) -> String {
        match self {
            Verdict::ReachesGate => format!(
                "ok: a probe connection from uid {PROBE_UID} to 169.254.169.254:80 reached the gate's listener ({gate})"
            ),
            Verdict::Diverted => format!(
                "a probe connection from uid {PROBE_UID} to 169.254.169.254:80 was answered, but not by the gate's listener ({gate}): \
                 something redirects metadata traffic before gatehouse's table does — likely an earlier nft or iptables DNAT \
                 (a chain at a lower priority, or registered before ours), or a cgroup BPF connect4 program \
                 (Azure's Guest Proxy Agent); run `gatehouse doctor` to name it"
            ),
            Verdict::Refused => format!(
                "a probe connection from uid {PROBE_UID} to 169.254.169.254:80 was refused: no gate listens on {gate} \
                 (start gatehouse.service), or something refuses metadata connections before the gate (`gatehouse doctor`)"
            ),
            Verdict::TimedOut => format!(
                "a probe connection from uid {PROBE_UID} to 169.254.169.254:80 got no answer within {} s: \
                 something drops metadata traffic before the gate's table sends it to {gate} — an earlier nft/iptables \
                 rule or a route (`gatehouse doctor`)",
                CONNECT_TIMEOUT.as_secs()
            ),
            Verdict::Blocked(e) => format!(
                "a probe connection from uid {PROBE_UID} to 169.254.169.254:80 was stopped by the kernel before any packet left ({e}): \
                 a prohibit, unreachable or blackhole route for 169.254.169.254 — systemd-imdsd's lockdown adds one with a \
                 firewall-mark exception — so nftables never sees the connection and the gate is not in the path (`gatehouse doctor`)"
            ),
            Verdict::Failed(e) => format!("the probe connection could not be made: {e}"),
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
                K::PermissionDenied
                | K::HostUnreachable
                | K::NetworkUnreachable
                | K::InvalidInput => "blocked",
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
        (Some("error"), Some(_), e) => Connection::Failed(e.to_owned()),
        _ => Connection::Failed(format!("the probe printed `{line}`")),
    }
}

/// Run the probe against the gate listening on `gate` (a loopback or
/// wildcard listener is reached at 127.0.0.1, as the table's redirect sends it).
pub fn run(gate: SocketAddrV4) -> Verdict {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return Verdict::Failed(format!("cannot find this program: {e}")),
    };
    let mut child = match Command::new(exe)
        .args(["firewall", "probe-connect", "169.254.169.254:80"])
        .env_clear()
        .uid(PROBE_UID)
        .gid(PROBE_UID)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Verdict::Failed(format!(
                "cannot start the probe as uid {PROBE_UID}: {e} (needs root)"
            ))
        }
    };
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let connection = parse_line(&line);
    let at_gate = match &connection {
        Connection::Connected(local) => {
            let ip = if gate.ip().is_unspecified() {
                std::net::Ipv4Addr::LOCALHOST
            } else {
                *gate.ip()
            };
            let listener = SocketAddr::V4(SocketAddrV4::new(ip, gate.port()));
            // (src = the gate's address, dst = the probe's) finds the gate's
            // end of the connection, accepted or still queued.
            matches!(gatehouse_sys::socket_owner(listener, *local), Ok(Some(_)))
        }
        _ => false,
    };
    drop(child.stdin.take());
    let _ = child.wait();
    judge(&connection, at_gate)
}

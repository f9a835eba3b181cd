//! `gatehouse jit`: ask for, approve and revoke just-in-time access through
//! a running gate's admin socket (it knows who you are from the socket, so
//! there is nothing to log in with), and send signed port requests from
//! another machine (`knock`).

use gatehouse_gate::jit::admin;
use gatehouse_gate::jit::api::{AdminRequest, AdminResponse, ListWhich};
use gatehouse_jit::store::{Record, Target};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

pub const DEFAULT_SOCKET: &str = "/run/gatehouse/admin.sock";

#[derive(clap::Args)]
#[command(after_help = "Examples:
  gatehouse jit request --role 'Token Reader' --identity storage-writer --duration 1h --reason 'restore backup' --ticket INC-4411
  gatehouse jit list --pending
  gatehouse jit approve jit-3f2a9c1d04be
  gatehouse jit open-port 22 --from 203.0.113.7 --duration 30m --reason 'debug login'
  gatehouse jit revoke jit-3f2a9c1d04be --reason 'done'
  gatehouse jit knock vm.example.net --port 22 --from 203.0.113.7 --duration 30m --reason 'on call' --key ~/.ssh/id_ed25519")]
pub struct Args {
    /// The gate's admin socket.
    #[arg(long, global = true, env = "GATEHOUSE_ADMIN_SOCKET", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,

    /// Print the gate's answer as JSON.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Activate an eligible role assignment for a while (it may need approval).
    Request {
        /// The role, as the policy names it.
        #[arg(long)]
        role: String,
        /// The identity (its name in the policy).
        #[arg(long)]
        identity: String,
        /// Narrow the grant to one token audience (default: every audience the assignment covers).
        #[arg(long)]
        audience: Option<String>,
        /// How long, e.g. `30m`, `1h`, `1h30m` (capped at the assignment's maximum).
        #[arg(long, value_parser = parse_duration)]
        duration: Duration,
        /// Why you need it (recorded in the audit log).
        #[arg(long)]
        reason: Option<String>,
        /// A change or incident ticket.
        #[arg(long)]
        ticket: Option<String>,
    },
    /// Requests and grants: yours; approvers also see those they may decide; root sees all.
    List {
        #[arg(long, group = "which")]
        mine: bool,
        #[arg(long, group = "which")]
        pending: bool,
        #[arg(long, group = "which")]
        active: bool,
    },
    /// Approve a pending request (never your own).
    Approve {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny a pending request.
    Deny {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// End a grant now (or withdraw a pending request). For a port, the
    /// source's established sessions are cut too.
    Revoke {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Open a protected inbound port for one source address for a while.
    OpenPort {
        port: u16,
        #[arg(long, default_value = "tcp")]
        protocol: String,
        /// The address the connection will come from.
        #[arg(long)]
        from: IpAddr,
        #[arg(long, value_parser = parse_duration, default_value = "3h")]
        duration: Duration,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        ticket: Option<String>,
    },
    /// Who the gate takes you for (uid and groups from the socket).
    Whoami,
    /// From another machine: ask a gate to open a port with one UDP packet
    /// signed with your SSH key (`ssh-keygen -Y sign`). The gate must list
    /// your key in its allowed-signers file; it answers only a packet that
    /// verifies.
    Knock {
        /// The gate's host, optionally with the port of its signed-request
        /// listener (default 62201).
        host: String,
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "tcp")]
        protocol: String,
        /// The address your connection will come from, as the gate sees it
        /// (the packet must come from it too).
        #[arg(long)]
        from: IpAddr,
        #[arg(long, value_parser = parse_duration, default_value = "3h")]
        duration: Duration,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        ticket: Option<String>,
        /// Your SSH private key (or its public key, with the private key in ssh-agent).
        #[arg(long)]
        key: PathBuf,
        /// How long to wait for the gate's answer (seconds).
        #[arg(long, default_value_t = 3)]
        wait: u64,
    },
}

fn parse_duration(s: &str) -> Result<Duration, gatehouse_policy::DurationError> {
    gatehouse_policy::parse_duration(s)
}

pub fn main(args: Args) -> ExitCode {
    let request = match args.command {
        Command::Request {
            role,
            identity,
            audience,
            duration,
            reason,
            ticket,
        } => AdminRequest::Request {
            role,
            identity,
            audience,
            duration_secs: duration.as_secs(),
            reason,
            ticket,
        },
        Command::List {
            mine,
            pending,
            active,
        } => AdminRequest::List {
            filter: if mine {
                ListWhich::Mine
            } else if pending {
                ListWhich::Pending
            } else if active {
                ListWhich::Active
            } else {
                ListWhich::All
            },
        },
        Command::Approve { id, reason } => AdminRequest::Approve { id, reason },
        Command::Deny { id, reason } => AdminRequest::Deny { id, reason },
        Command::Revoke { id, reason } => AdminRequest::Revoke { id, reason },
        Command::OpenPort {
            port,
            protocol,
            from,
            duration,
            reason,
            ticket,
        } => AdminRequest::OpenPort {
            port,
            protocol,
            source: from,
            duration_secs: duration.as_secs(),
            reason,
            ticket,
        },
        Command::Whoami => AdminRequest::Whoami,
        Command::Knock {
            host,
            port,
            protocol,
            from,
            duration,
            reason,
            ticket,
            key,
            wait,
        } => {
            return knock(
                &host, port, &protocol, from, duration, &reason, ticket, &key, wait, args.json,
            );
        }
    };
    let response = match admin::call(&args.socket, &request) {
        Ok(r) => r,
        Err(e) => {
            return crate::fail(
                &format!("cannot reach the gate's admin socket `{}`: {e}", args.socket.display()),
                Some("is `gatehouse run` running? name its socket with `--socket` or GATEHOUSE_ADMIN_SOCKET"),
            )
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&response).unwrap_or_default()
        );
        return if response.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    show(&response)
}

fn show(response: &AdminResponse) -> ExitCode {
    if let Some(e) = &response.error {
        eprintln!("gatehouse: refused ({}): {}", e.kind, e.message);
        return ExitCode::from(1);
    }
    if let Some(w) = &response.whoami {
        println!(
            "uid {} ({}), groups {} ({}), pid {}",
            w.uid,
            w.user.as_deref().unwrap_or("?"),
            w.gids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(","),
            w.groups.join(","),
            w.pid
        );
    }
    if let Some(r) = &response.record {
        println!("{}", line(r));
    }
    if let Some(rs) = &response.records {
        if rs.is_empty() {
            println!("no requests");
        }
        for r in rs {
            println!("{}", line(r));
        }
    }
    for n in &response.notices {
        println!("note: {n}");
    }
    ExitCode::SUCCESS
}

fn when(t: Option<SystemTime>) -> String {
    t.map(gatehouse_gate::clock::rfc3339)
        .unwrap_or_else(|| "-".into())
}

/// One request on one line: id, state, what, who, until when, why.
pub fn line(r: &Record) -> String {
    let q = &r.request.common;
    let what = match &r.request.target {
        Target::Role {
            role,
            identity,
            audience,
            ..
        } => format!(
            "role `{role}` for identity `{identity}`{}",
            audience
                .as_deref()
                .map(|a| format!(" audience {a}"))
                .unwrap_or_default()
        ),
        Target::Port {
            port,
            protocol,
            source,
            ..
        } => format!("port {port}/{protocol} from {source}"),
    };
    let until = match r.state {
        gatehouse_jit::store::State::Active => format!(" until {}", when(r.expires)),
        gatehouse_jit::store::State::Pending => format!(" (lapses {})", when(Some(r.lapses))),
        _ => String::new(),
    };
    format!(
        "{}  {}  {what}  by {}  for {}{until}{}",
        r.id,
        r.state.as_str(),
        q.requester.name,
        gatehouse_policy::format_duration(Duration::from_secs(q.duration_secs)),
        q.reason
            .as_deref()
            .map(|s| format!("  reason: {s}"))
            .unwrap_or_default()
    )
}

#[expect(
    clippy::too_many_arguments,
    reason = "one argument per flag of `jit knock`"
)]
fn knock(
    host: &str,
    port: u16,
    protocol: &str,
    from: IpAddr,
    duration: Duration,
    reason: &str,
    ticket: Option<String>,
    key: &std::path::Path,
    wait: u64,
    json: bool,
) -> ExitCode {
    use gatehouse_jit::knock::{encode_packet, sign_with_ssh_keygen, PortRequest, DEFAULT_PORT};
    let target = if host.parse::<SocketAddr>().is_ok()
        || host
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.contains(':') && p.parse::<u16>().is_ok())
    {
        host.to_owned()
    } else if host.contains(':') {
        format!("[{host}]:{DEFAULT_PORT}")
    } else {
        format!("{host}:{DEFAULT_PORT}")
    };
    let addr = match target.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => a,
        Ok(None) | Err(_) => return crate::fail(&format!("cannot resolve `{target}`"), None),
    };
    // The host as named, without a port or brackets: what the gate's
    // `--knock-host` compares.
    let bare = match host.parse::<SocketAddr>() {
        Ok(sa) => sa.ip().to_string(),
        Err(_) => match host.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => h.to_owned(),
            _ => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
        },
    };
    let request = PortRequest::new(
        port,
        protocol.to_owned(),
        from,
        duration.as_secs(),
        reason.to_owned(),
        ticket,
        Some(bare),
        gatehouse_gate::clock::Clock::now(&gatehouse_gate::clock::SystemClock),
    );
    // The gate answers nothing to a request it cannot read: say why here.
    if let Err(e) = request.validate() {
        return crate::fail(
            &format!("this request cannot be sent: {e}"),
            Some("shorten the reason (512 characters) and leave out line breaks"),
        );
    }
    let message = request.message();
    let signature = match sign_with_ssh_keygen(key, &message) {
        Ok(s) => s,
        Err(e) => {
            return crate::fail(
                &format!("cannot sign the request: {e}"),
                Some("check `--key` (ssh-keygen must be installed)"),
            )
        }
    };
    let packet = encode_packet(&message, &signature);
    let bind: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .unwrap_or(addr);
    let socket = match std::net::UdpSocket::bind(bind) {
        Ok(s) => s,
        Err(e) => return crate::fail(&format!("cannot open a UDP socket: {e}"), None),
    };
    if let Err(e) = socket.send_to(&packet, addr) {
        return crate::fail(&format!("cannot send to {addr}: {e}"), None);
    }
    let _ = socket.set_read_timeout(Some(Duration::from_secs(wait.max(1))));
    let mut buf = [0u8; 4096];
    match socket.recv_from(&mut buf) {
        Ok((n, _)) => {
            let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned();
            if json {
                println!("{text}");
            } else {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                let field = |p: &str| v.pointer(p).and_then(serde_json::Value::as_str).unwrap_or("?").to_owned();
                if v.pointer("/ok").and_then(serde_json::Value::as_bool) == Some(true) {
                    println!("{}  {}", field("/id"), field("/state"));
                    for n in v.pointer("/notices").and_then(serde_json::Value::as_array).into_iter().flatten() {
                        println!("note: {}", n.as_str().unwrap_or(""));
                    }
                } else {
                    eprintln!("gatehouse: refused ({}): {}", field("/error/kind"), field("/error/message"));
                    return ExitCode::from(1);
                }
            }
            ExitCode::SUCCESS
        }
        Err(_) => crate::fail(
            &format!("no answer from {addr} within {} s", wait.max(1)),
            Some("the gate answers only a request that verifies: is your key in its allowed-signers file, is `--from` the address the packet comes from, and are the clocks within 2 minutes?"),
        ),
    }
}

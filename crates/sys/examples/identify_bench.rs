//! Caller-identification time alone, for `bench/run.sh` (not a test: it prints figures).
//!
//! `identify_bench --path uid|exe|hash --clients reconnect|fresh [--lookup sock-diag|ebpf]
//! [--connections N] [--client-fds N]`
//!
//! What the gate asks for (`sys_needs` in crates/gate), through `Identifier::identify`:
//! - `uid`: a policy on uids alone: the socket's uid, no process.
//! - `exe`: a policy on executable paths: holder, executable path, cgroup, groups, other
//!   holders.
//! - `hash`: the same plus the executable's SHA-256 (a policy on `exe:sha256:`).
//!
//! `--lookup ebpf` attaches the connect-time programs first (root, a build with
//! `--features ebpf`); the default is the sock_diag path.
//!
//! `reconnect`: one long-lived client process opens a new connection per request (what a
//! service with a connection per token request does); `fresh`: a new process per
//! connection (cron jobs, CLI tools). `--client-fds N`: each client holds N more open
//! files (fds 3 to N+2, below its socket), as a service with open files and connections
//! does. Prints one line:
//! `path=… clients=… n=… p50_us=… p99_us=… procs=… strategies=…`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse_sys::{ConnectRecords, Identifier, IdentifyOptions, Needs};

#[derive(Clone, Copy, PartialEq)]
enum Path {
    Uid,
    Exe,
    Hash,
}

#[derive(Clone, Copy, PartialEq)]
enum Clients {
    Reconnect,
    Fresh,
}

struct Args {
    ebpf: bool,
    path: Path,
    clients: Clients,
    connections: usize,
    client_fds: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        ebpf: false,
        path: Path::Exe,
        clients: Clients::Reconnect,
        connections: 400,
        client_fds: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("`{flag}` needs a value"))?;
        match (flag.as_str(), value.as_str()) {
            ("--path", "uid") => args.path = Path::Uid,
            ("--path", "exe") => args.path = Path::Exe,
            ("--path", "hash") => args.path = Path::Hash,
            ("--lookup", "ebpf") => args.ebpf = true,
            ("--lookup", "sock-diag") => args.ebpf = false,
            ("--clients", "reconnect") => args.clients = Clients::Reconnect,
            ("--clients", "fresh") => args.clients = Clients::Fresh,
            ("--connections", n) => {
                args.connections = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=100_000).contains(n))
                    .ok_or(format!("`{n}` is not a connection count"))?;
            }
            ("--client-fds", n) => {
                args.client_fds = n
                    .parse()
                    .ok()
                    .filter(|n| *n <= 10_000)
                    .ok_or(format!("`{n}` is not an fd count"))?;
            }
            _ => return Err(format!("unknown argument `{flag} {value}`")),
        }
    }
    Ok(args)
}

/// A bash client connecting to `port`: `count` times from one process, or once; holding
/// `fds` other open files below its socket.
fn spawn_client(port: u16, count: usize, fds: usize) -> std::io::Result<Child> {
    let script = "for ((j=3; j<3+FDS; j++)); do eval \"exec $j</dev/null\"; done; \
                  s=$((3+FDS)); for ((i=0; i<COUNT; i++)); do \
                  eval \"exec $s<>/dev/tcp/127.0.0.1/$PORT\" || exit 1; \
                  read -r -u $s _; eval \"exec $s>&-\"; done";
    Command::new("/usr/bin/bash")
        .arg("-c")
        .arg(
            script
                .replace("COUNT", &count.to_string())
                .replace("FDS", &fds.to_string()),
        )
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
}

fn accept(listener: &TcpListener) -> std::io::Result<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match listener.accept() {
            Ok((s, _)) => return Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_micros(50));
            }
            Err(e) => return Err(e),
        }
    }
}

fn measure(
    id: &Identifier,
    path: Path,
    src: SocketAddr,
    dst: SocketAddr,
) -> Result<(u128, String), String> {
    let gate_needs = match path {
        Path::Uid => Needs::default(),
        Path::Exe | Path::Hash => Needs {
            exe: true,
            exe_hash: path == Path::Hash,
            cgroup: true,
            groups: true,
            all_holders: true,
            process: true,
        },
    };
    let started = Instant::now();
    let facts = id
        .identify(src, dst, gate_needs)
        .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed().as_micros();
    if path != Path::Uid && facts.holders.is_empty() {
        return Err("no holder found".into());
    }
    Ok((elapsed, format!("{:?}", facts.lookup.strategy)))
}

fn percentile(sorted: &[u128], pct: usize) -> u128 {
    let idx = (sorted.len() * pct / 100).min(sorted.len().saturating_sub(1));
    sorted.get(idx).copied().unwrap_or(0)
}

fn run(args: &Args) -> Result<(), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let mut opts = IdentifyOptions::default();
    if args.ebpf {
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let records = ConnectRecords::attach(&[addr]).map_err(|e| format!("--lookup ebpf: {e}"))?;
        opts.connect_records = Some(std::sync::Arc::new(records));
    }
    let id = Identifier::new(opts);
    let mut micros = Vec::with_capacity(args.connections);
    let mut strategies: BTreeMap<String, usize> = BTreeMap::new();
    let mut children = Vec::new();
    if args.clients == Clients::Reconnect {
        children.push(
            spawn_client(port, args.connections, args.client_fds).map_err(|e| e.to_string())?,
        );
    }
    for _ in 0..args.connections {
        if args.clients == Clients::Fresh {
            children.push(spawn_client(port, 1, args.client_fds).map_err(|e| e.to_string())?);
        }
        let mut conn = accept(&listener).map_err(|e| format!("accept: {e}"))?;
        let src = conn.peer_addr().map_err(|e| e.to_string())?;
        let dst = conn.local_addr().map_err(|e| e.to_string())?;
        let (us, strategy) = measure(&id, args.path, src, dst)?;
        micros.push(us);
        *strategies.entry(strategy).or_default() += 1;
        conn.write_all(b"ok\n").map_err(|e| e.to_string())?;
        if args.clients == Clients::Fresh {
            for mut c in children.drain(..) {
                let _ = c.wait();
            }
        }
    }
    for mut c in children {
        let _ = c.wait();
    }
    micros.sort_unstable();
    let procs = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            })
            .count()
        })
        .unwrap_or(0);
    let path = match args.path {
        Path::Uid => "uid",
        Path::Exe => "exe",
        Path::Hash => "hash",
    };
    let clients = match args.clients {
        Clients::Reconnect => "reconnect",
        Clients::Fresh => "fresh",
    };
    let lookup = if args.ebpf { "ebpf" } else { "sock-diag" };
    println!(
        "path={path} lookup={lookup} clients={clients} n={} p50_us={} p99_us={} procs={procs} strategies={strategies:?}",
        micros.len(),
        percentile(&micros, 50),
        percentile(&micros, 99),
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    match parse_args().and_then(|a| run(&a)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("identify_bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

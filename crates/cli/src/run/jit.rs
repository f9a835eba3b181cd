//! `gatehouse run`'s just-in-time part: the database, the admin socket, the
//! signed-request listener, the once-a-second tick (expiry, lapse, grants,
//! audit), and — where this process or its broker holds CAP_NET_ADMIN —
//! the kernel's port sets.

use super::plan::{JitPlan, Plan};
use super::StartError;
use gatehouse_gate::jit::ports::PortControl;
use gatehouse_gate::jit::JitService;
use gatehouse_gate::Gate;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Running JIT tasks; dropped at shutdown.
pub(crate) struct Running {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Does this policy use just-in-time access at all?
pub(crate) fn wanted(policy: &gatehouse_policy::Policy, jit: &JitPlan) -> bool {
    jit.admin_socket.is_some()
        || policy.assignments().any(|a| a.eligible.is_some())
        || !policy.jit_ports().is_empty()
}

/// Start JIT, when the policy (or `--admin-socket`) asks for it.
pub(crate) async fn start(
    plan: &Plan,
    state_dir: Option<&Path>,
    gate: &Arc<Gate>,
    ports: Option<Arc<dyn PortControl>>,
) -> Result<Option<Running>, StartError> {
    let args = &plan.jit;
    let policy = gate.policy();
    if !wanted(&policy, args) {
        return Ok(status_only(args, state_dir, gate));
    }
    let db = args
        .db
        .clone()
        .or_else(|| state_dir.map(|d| d.join("jit.db")))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
    let socket = args
        .admin_socket
        .clone()
        .or_else(|| state_dir.map(|d| d.join("admin.sock")))
        .unwrap_or_else(|| PathBuf::from(crate::jit::DEFAULT_SOCKET));
    if !policy.jit_ports().is_empty() && ports.is_none() {
        eprintln!(
            "gatehouse: warning: the policy protects ports just in time, but this gate does not keep the firewall \
             (`--firewall watch`, as root): port requests will be refused"
        );
    }
    // Before touching the database or the firewall: never two gates on one socket.
    if UnixStream::connect(&socket).is_ok() {
        return Err(StartError::step(
            format!("another gate answers on `{}`", socket.display()),
            Some("stop it, or name another socket with `--admin-socket`"),
        ));
    }
    let store = match gatehouse_jit::store::Store::open(&db) {
        Ok(s) => s,
        Err(e) => {
            return Err(StartError::step(
                format!("cannot open the just-in-time database `{}`: {e}", db.display()),
                Some("name another with `--jit-db`; its directory must exist and belong to the gate's user"),
            ))
        }
    };
    let service =
        Arc::new(JitService::new(Arc::clone(gate), store, ports).with_retention(args.retention));
    {
        let service = Arc::clone(&service);
        let started = tokio::task::spawn_blocking(move || service.start()).await;
        match started {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(StartError::step(e.to_string(), None)),
            Err(e) => {
                return Err(StartError::step(
                    format!("just-in-time start failed: {e}"),
                    None,
                ))
            }
        }
    }
    let listener = gatehouse_gate::jit::admin::bind(&socket).map_err(|e| {
        StartError::step(
            format!("cannot create the admin socket `{}`: {e}", socket.display()),
            Some("its directory must exist and be the gate user's (packaging/gatehouse.tmpfiles makes /run/gatehouse); or pass `--admin-socket`"),
        )
    })?;
    let mut tasks = vec![tokio::spawn(gatehouse_gate::jit::admin::serve(
        listener,
        socket.clone(),
        Arc::clone(&service),
    ))];
    if let Some(addr) = args.knock_listen {
        let signers = gatehouse_jit::signers::AllowedSigners::load(&args.allowed_signers).map_err(|e| {
            StartError::step(
                format!("cannot load the allowed-signers file `{}`: {e}", args.allowed_signers.display()),
                Some("one line per key: `alice@example.com ssh-ed25519 AAAA...` (see `man ssh-keygen`, ALLOWED SIGNERS); or drop `--knock-listen`"),
            )
        })?;
        let socket = tokio::net::UdpSocket::bind(addr).await.map_err(|e| {
            StartError::step(
                format!("cannot listen for signed requests on {addr}: {e}"),
                None,
            )
        })?;
        eprintln!(
            "  signed port requests: udp {addr} ({} allowed signer key(s))",
            signers.len()
        );
        tasks.push(tokio::spawn(gatehouse_gate::jit::knock::serve(
            socket,
            Arc::new(signers),
            Arc::clone(&service),
            args.knock_host.clone(),
        )));
    }
    {
        let service = Arc::clone(&service);
        tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let service = Arc::clone(&service);
                let _ = tokio::task::spawn_blocking(move || service.tick()).await;
            }
        }));
    }
    eprintln!(
        "  just-in-time: {} (database {})",
        socket.display(),
        db.display()
    );
    Ok(Some(Running { tasks }))
}

/// Without just-in-time access the admin socket still answers
/// `gatehouse status`; a gate that cannot bind it runs on without it.
fn status_only(args: &JitPlan, state_dir: Option<&Path>, gate: &Arc<Gate>) -> Option<Running> {
    let socket = args
        .admin_socket
        .clone()
        .or_else(|| state_dir.map(|d| d.join("admin.sock")))
        .unwrap_or_else(|| PathBuf::from(crate::jit::DEFAULT_SOCKET));
    if UnixStream::connect(&socket).is_ok() {
        eprintln!(
            "  status:    not served: another gate answers on `{}`",
            socket.display()
        );
        return None;
    }
    match gatehouse_gate::jit::admin::bind(&socket) {
        Ok(listener) => {
            eprintln!(
                "  status:    `gatehouse status` (admin socket {})",
                socket.display()
            );
            let answerer = gatehouse_gate::jit::admin::Answerer::StatusOnly(Arc::clone(gate));
            Some(Running {
                tasks: vec![tokio::spawn(gatehouse_gate::jit::admin::serve_with(
                    listener, socket, answerer,
                ))],
            })
        }
        Err(e) => {
            eprintln!(
                "  status:    not served: cannot create `{}`: {e} (name a socket with `--admin-socket`)",
                socket.display()
            );
            None
        }
    }
}

pub(crate) const DEFAULT_DB: &str = "/var/lib/gatehouse/jit.db";

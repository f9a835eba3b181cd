//! Privilege separation (`gatehouse run --user NAME`; docs/architecture.md,
//! "Privilege separation").
//!
//! Two processes from one binary. The **worker** parses HTTP from local
//! callers and runs the whole request path as an unprivileged user with no
//! capabilities. The **broker** stays root with CAP_NET_ADMIN,
//! CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH only and answers two narrow
//! questions over a `SOCK_SEQPACKET` socketpair: "who holds the socket of
//! this connection" ([`wire::Ask::Identify`]) and "give me a marked socket
//! connecting to the upstream" ([`wire::Ask::Connect`]). It also runs the
//! firewall watcher and sends its events to the worker, the one writer of the
//! audit log, over a second socketpair. That second socket also carries
//! what signals mean: the broker, which gets them, sends the worker "reload"
//! and "stop" (it may not signal it), and the worker answers with the reload's
//! outcome and a heartbeat from its request loop, which the broker relays to
//! systemd. Either process exits when the other is gone: the worker is
//! started with `PR_SET_PDEATHSIG` and stops when a socket closes, and the
//! broker stops when the worker exits or its sockets close.

mod broker;
mod client;
mod events;
mod spawn;
pub mod wire;

pub use broker::{Broker, ConnectTargets};
pub use client::{BrokerClient, BrokerError};
pub use events::{
    recv_event, recv_from_broker, recv_from_worker, send_event, send_to_broker, send_to_worker,
};
pub use spawn::{spawn_worker, worker_start, Worker, WorkerStart};

#[cfg(test)]
mod tests;

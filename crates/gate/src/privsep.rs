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
//! audit log, over a second socketpair. Either process exits when the other
//! is gone.

mod broker;
mod client;
mod events;
mod spawn;
pub mod wire;

pub use broker::{Broker, ConnectTargets};
pub use client::{BrokerClient, BrokerError};
pub use events::{recv_event, send_event};
pub use spawn::{spawn_worker, worker_start, Worker, WorkerStart};

#[cfg(test)]
mod tests;

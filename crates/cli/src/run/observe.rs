//! `gatehouse run --metrics-listen`: the metrics listener, and what
//! `gatehouse status` should say about how this gate was started.

use super::plan::{Plan, Role};
use super::StartError;
use gatehouse_gate::metrics_listener::{self, MetricsAddr};
use gatehouse_gate::Gate;
use std::sync::Arc;

/// `--metrics-listen` (boxed: `run`'s flags stay small).
pub(crate) fn parse_addr(
    s: &str,
) -> Result<Box<MetricsAddr>, gatehouse_gate::metrics_listener::ParseError> {
    s.parse().map(Box::new)
}

/// Stops the listener when dropped.
pub(crate) struct Serving(tokio::task::JoinHandle<()>);

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Tell the gate how it was started (for `gatehouse status`) and start the
/// metrics listener if asked for. With `--user` this runs in the worker,
/// after privileges dropped: the worker, who has the figures, serves them
/// (a port above 1023, or a socket in a directory of the gate's user).
pub(crate) async fn start(
    plan: &Plan,
    gate: &Arc<Gate>,
    ebpf: bool,
    firewall_kept: bool,
) -> Result<Option<Serving>, StartError> {
    let worker = plan.role == Role::Worker;
    gate.set_caller_lookup(match (worker, ebpf) {
        (true, _) => "broker",
        (false, true) => "ebpf",
        (false, false) => "sock-diag",
    });
    if firewall_kept {
        gate.set_firewall_watched();
    }
    // Not the IMDS path: the plan made sure.
    let Some(addr) = &plan.metrics else {
        return Ok(None);
    };
    let bound = metrics_listener::bind(addr).await.map_err(|e| {
        StartError::step(
            format!("cannot serve metrics on `{addr}`: {e}"),
            Some(if worker {
                "with `--user` the unprivileged worker binds it: use a port above 1023, or a socket in a directory of the gate's user (e.g. `unix:/run/gatehouse/metrics.sock`)"
            } else {
                "pick another address with `--metrics-listen`"
            }),
        )
    })?;
    let shown = match bound.local_addr() {
        Some(a) => MetricsAddr::Tcp(a).to_string(),
        None => addr.to_string(),
    };
    eprintln!("  metrics:   {shown}");
    Ok(Some(Serving(tokio::spawn(metrics_listener::serve(bound)))))
}

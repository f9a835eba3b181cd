//! `gatehouse run`'s audit checkpoints: the key (created at first start,
//! refused when its mode or owner is wrong), the periodic signing, and the
//! last one on stop. With `--user` the broker holds the key and signs on
//! the worker's behalf (docs/threats.md, "Audit checkpoints").

use super::plan::{Plan, StartError};
use gatehouse_gate::checkpoint::{CheckpointSigner, LocalSigner};
use gatehouse_gate::Gate;
use std::path::PathBuf;
use std::sync::Arc;

/// The key file named by the flags (try-it: the private directory).
pub(super) fn key_path(plan: &Plan, uid: u32) -> Result<PathBuf, StartError> {
    match &plan.audit_key {
        Some(p) => Ok(p.clone()),
        None if plan.try_it() => Ok(super::demo_dir(uid)?.join("audit.key")),
        None => Ok(PathBuf::from(DEFAULT_KEY)),
    }
}

/// Where the checkpoint key lives unless `--audit-key` says otherwise.
/// A directory of root's (packaging/gatehouse.tmpfiles), not one below
/// /var/lib/gatehouse: the worker owns that, the broker (without
/// CAP_DAC_OVERRIDE) could not create a file in it, and systemd-tmpfiles
/// refuses a root-owned directory below a user's.
pub(crate) const DEFAULT_KEY: &str = "/var/lib/gatehouse-keys/audit.key";

/// Loads (or at first start creates) the key; a refusal stops the start.
pub(super) fn load_key(
    plan: &Plan,
    uid: u32,
) -> Result<gatehouse_audit::CheckpointKey, StartError> {
    let path = key_path(plan, uid)?;
    match gatehouse_audit::CheckpointKey::load_or_create(&path) {
        Ok((key, created)) => {
            if created {
                eprintln!(
                    "gatehouse: created the audit checkpoint key `{}` ({})",
                    path.display(),
                    key.public().key_id()
                );
            }
            Ok(key)
        }
        Err(e) => Err(StartError::step(
            e.to_string(),
            Some("the gate signs audit checkpoints with this key and does not start without it (`--audit-key` names another)"),
        )),
    }
}

/// The signer of this process: the broker's, or a key of our own.
pub(super) fn signer(
    plan: &Plan,
    uid: u32,
    broker: Option<Arc<gatehouse_gate::privsep::BrokerClient>>,
) -> Result<Arc<dyn CheckpointSigner>, StartError> {
    match broker {
        Some(client) => Ok(client),
        None => Ok(Arc::new(LocalSigner::new(load_key(plan, uid)?))),
    }
}

/// Signs a checkpoint every `--checkpoint-every` seconds (0: only on stop).
pub(super) fn start_periodic(
    plan: &Plan,
    gate: &Arc<Gate>,
    signer: &Arc<dyn CheckpointSigner>,
) -> Option<tokio::task::JoinHandle<()>> {
    if plan.checkpoint_every.is_zero() {
        return None;
    }
    let every = plan.checkpoint_every;
    let gate = Arc::clone(gate);
    let signer = Arc::clone(signer);
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let gate = Arc::clone(&gate);
            let signer = Arc::clone(&signer);
            let done = tokio::task::spawn_blocking(move || gate.checkpoint(&*signer, false)).await;
            match done {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!("audit checkpoint: {e}"),
                Err(e) => tracing::warn!("audit checkpoint task failed: {e}"),
            }
        }
    }))
}

/// The last checkpoint, after the `gate_stopped` record.
pub(super) fn on_stop(gate: &Gate, signer: &dyn CheckpointSigner) {
    if let Err(e) = gate.checkpoint(signer, true) {
        eprintln!("gatehouse: cannot write the last audit checkpoint: {e}");
    }
}

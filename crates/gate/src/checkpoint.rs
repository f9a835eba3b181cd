//! Signed checkpoints of the audit chain head: at an interval and on stop,
//! so that copies exported off the machine pin the log
//! (`gatehouse audit verify --against`). Who holds the key is the signer:
//! the gate itself, or with `--user` the root broker (docs/threats.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use gatehouse_audit::{Checkpoint, CheckpointKey, Event};

/// Signs a statement of the chain head. Never sees anything but the head.
pub trait CheckpointSigner: Send + Sync {
    fn sign(
        &self,
        head_seq: u64,
        head_hash: &str,
        signed_at: &str,
        rotated_kept: Option<u64>,
    ) -> Result<Checkpoint, String>;
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot sign a checkpoint: {0}")]
    Sign(String),
    #[error("cannot read the audit chain head: {0}")]
    Head(gatehouse_audit::AuditError),
    #[error("cannot write the checkpoint: {0}")]
    Write(gatehouse_audit::AuditError),
}

/// A key held in this process, signing what it is asked, but never a head
/// older than one it signed already or a second hash for the same record:
/// a compromised asker can get no signature that contradicts an earlier one.
#[derive(Debug)]
pub struct LocalSigner {
    key: CheckpointKey,
    signed: Mutex<Option<(u64, String)>>,
}

impl LocalSigner {
    pub fn new(key: CheckpointKey) -> LocalSigner {
        LocalSigner {
            key,
            signed: Mutex::new(None),
        }
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl CheckpointSigner for LocalSigner {
    fn sign(
        &self,
        head_seq: u64,
        head_hash: &str,
        signed_at: &str,
        rotated_kept: Option<u64>,
    ) -> Result<Checkpoint, String> {
        if !is_hex64(head_hash) || !gatehouse_audit::is_valid_time(signed_at) {
            return Err("malformed checkpoint statement".to_owned());
        }
        let mut signed = self
            .signed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((seq, hash)) = &*signed {
            if head_seq < *seq || (head_seq == *seq && head_hash != hash) {
                return Err(format!(
                    "refusing to sign record {head_seq}: record {seq} was signed already with another chain"
                ));
            }
        }
        *signed = Some((head_seq, head_hash.to_owned()));
        Ok(self.key.sign(head_seq, head_hash, signed_at, rotated_kept))
    }
}

/// The gate's side: the last checkpoint it wrote, so an idle gate does not
/// sign the same head again and again.
#[derive(Debug, Default)]
pub(crate) struct Checkpoints {
    /// `seq` of the last checkpoint record this gate wrote (0: none).
    last_written: AtomicU64,
}

impl crate::Gate {
    /// Signs the chain head and appends it as a `checkpoint` record. Unless
    /// `force` (on stop), nothing is written when the head is this gate's
    /// previous checkpoint. Returns the checkpoint record's own `seq`.
    pub fn checkpoint(
        &self,
        signer: &dyn CheckpointSigner,
        force: bool,
    ) -> Result<Option<u64>, CheckpointError> {
        let Some(head) = self.audit.chain_head().map_err(CheckpointError::Head)? else {
            return Ok(None);
        };
        if !force && head.seq == self.checkpoints.last_written.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let time = crate::clock::rfc3339(self.clock.now());
        let checkpoint = signer
            .sign(head.seq, &head.hash, &time, self.audit.rotated_kept())
            .map_err(CheckpointError::Sign)?;
        let written = self
            .audit
            .append_record(&time, &Event::Checkpoint(Box::new(checkpoint)))
            .map_err(CheckpointError::Write)?;
        self.checkpoints
            .last_written
            .store(written.seq, Ordering::Relaxed);
        Ok(Some(written.seq))
    }
}

#[cfg(test)]
mod tests;

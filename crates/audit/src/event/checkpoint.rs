//! The signed checkpoint record: what it attests and the bytes it signs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A signed statement of the chain head: "the record `head_seq` of this log
/// had hash `head_hash` at `signed_at`". Once a copy has left the machine,
/// a log rewritten, cut or thinned before `head_seq` no longer matches it
/// (`gatehouse audit verify --against`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The `seq` of the record attested: the chain head when this was
    /// signed (an earlier record than this checkpoint's own).
    pub head_seq: u64,
    /// That record's `hash` (64 lowercase hex digits).
    pub head_hash: String,
    /// When it was signed (`YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC).
    pub signed_at: String,
    /// Rotated files the gate keeps, `null` when it never rotates: how many
    /// older files a verifier should find on the box.
    pub rotated_kept: Option<u64>,
    /// The signing key's fingerprint (`gatehouse audit key` prints it).
    pub key_id: String,
    /// Ed25519 signature of the signed message (docs/audit.md,
    /// "Checkpoints"), 128 lowercase hex digits. A public value: it proves
    /// who signed, it grants nothing.
    pub signature: String,
}

/// The domain separator that starts every signed checkpoint message.
pub const CHECKPOINT_DOMAIN: &str = "gatehouse-audit-checkpoint-v1";

impl Checkpoint {
    /// The exact bytes the signature covers: one `key=value` per line, in
    /// this order, each line ending in `\n`, after the domain separator:
    ///
    /// ```text
    /// gatehouse-audit-checkpoint-v1
    /// head_seq=<decimal>
    /// head_hash=<64 hex>
    /// signed_at=<time>
    /// rotated_kept=<decimal or "none">
    /// key_id=<fingerprint>
    /// ```
    ///
    /// No value can contain a newline once the record is valid (checked by
    /// [`crate::verify_against`]), so the encoding is unambiguous.
    pub fn signed_bytes(&self) -> Vec<u8> {
        statement(
            self.head_seq,
            &self.head_hash,
            &self.signed_at,
            self.rotated_kept,
            &self.key_id,
        )
    }
}

pub(crate) fn statement(
    head_seq: u64,
    head_hash: &str,
    signed_at: &str,
    rotated_kept: Option<u64>,
    key_id: &str,
) -> Vec<u8> {
    let kept = rotated_kept.map_or_else(|| "none".to_owned(), |k| k.to_string());
    format!(
        "{CHECKPOINT_DOMAIN}\nhead_seq={head_seq}\nhead_hash={head_hash}\nsigned_at={signed_at}\nrotated_kept={kept}\nkey_id={key_id}\n"
    )
    .into_bytes()
}

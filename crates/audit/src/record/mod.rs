//! One audit record: how its line is built and how a line is checked on its own.
//!
//! Both directions work on bytes. The writer emits the prefix itself and the
//! checker hashes the bytes it read, so serde_json's formatting choices (key
//! order inside `event`, number spelling) can never make a good line fail.

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

#[cfg(test)]
mod tests;

/// `prev` of the very first record of a log.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest line (without its newline) the writer emits and the readers accept.
/// Bounds memory when reading a hostile or corrupt file.
pub const MAX_LINE: usize = 1 << 20;

/// Every line starts with this, so a verifier can reject anything else cheaply.
const HEAD: &[u8] = b"{\"seq\":";
/// Every line ends with `HASH_KEY`, 64 lowercase hex digits and `"}`.
const HASH_KEY: &[u8] = b",\"hash\":\"";
const TAIL: &[u8] = b"\"}";
const HEX_LEN: usize = 64;
const SUFFIX_LEN: usize = HASH_KEY.len() + HEX_LEN + TAIL.len();

/// A record line ready to write, newline included.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    pub line: Vec<u8>,
    pub hash: String,
}

/// The chain fields of a line that passed [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub seq: u64,
    pub prev: String,
    pub hash: String,
    /// The `event` object, for a reader that checks it against the schema.
    pub event: Value,
}

/// Why a single line is not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("malformed record: {0}")]
    Malformed(String),
    #[error("hash does not match the line's bytes (line edited)")]
    HashMismatch,
}

/// The exact field set of a line; `deny_unknown_fields` plus serde's
/// duplicate-field check mean nothing can hide beside the hashed fields.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fields {
    seq: u64,
    time: String,
    prev: String,
    event: Value,
    hash: String,
}

/// `sha256(prev_hex_ascii || "\n" || prefix)`, lowercase hex.
pub(crate) fn chain_hash(prev: &str, prefix: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(b"\n");
    hasher.update(prefix);
    hex::encode(hasher.finalize())
}

/// Builds the line for one record. `prev` must be 64 lowercase hex digits
/// (the caller only ever passes [`GENESIS`] or a hash this module produced).
pub(crate) fn encode(
    seq: u64,
    time: &str,
    prev: &str,
    event: &[u8],
) -> Result<Encoded, serde_json::Error> {
    let mut line = Vec::with_capacity(256);
    line.extend_from_slice(HEAD);
    line.extend_from_slice(seq.to_string().as_bytes());
    line.extend_from_slice(b",\"time\":");
    serde_json::to_writer(&mut line, time)?;
    line.extend_from_slice(b",\"prev\":\"");
    line.extend_from_slice(prev.as_bytes());
    line.extend_from_slice(b"\",\"event\":");
    line.extend_from_slice(event);
    let hash = chain_hash(prev, &line);
    line.extend_from_slice(HASH_KEY);
    line.extend_from_slice(hash.as_bytes());
    line.extend_from_slice(TAIL);
    line.push(b'\n');
    Ok(Encoded { line, hash })
}

/// Checks one line (without its newline) against itself: shape, field set,
/// and that `hash` covers the bytes before it. Chain links are the caller's job.
pub(crate) fn check(line: &[u8]) -> Result<Record, RecordError> {
    let malformed = |why: &str| RecordError::Malformed(why.to_owned());
    if line.len() > MAX_LINE {
        return Err(malformed("line longer than 1 MiB"));
    }
    if !line.starts_with(HEAD) {
        return Err(malformed("line does not start with `{\"seq\":`"));
    }
    let split = line
        .len()
        .checked_sub(SUFFIX_LEN)
        .ok_or_else(|| malformed("line too short"))?;
    let (prefix, suffix) = line.split_at(split);
    let hex_part = suffix
        .strip_prefix(HASH_KEY)
        .and_then(|rest| rest.strip_suffix(TAIL))
        .ok_or_else(|| malformed("line does not end with `,\"hash\":\"<64 hex>\"}`"))?;
    if !is_lower_hex64(hex_part) {
        return Err(malformed("`hash` is not 64 lowercase hex digits"));
    }
    let fields: Fields =
        serde_json::from_slice(line).map_err(|e| RecordError::Malformed(e.to_string()))?;
    if !is_lower_hex64(fields.prev.as_bytes()) {
        return Err(malformed("`prev` is not 64 lowercase hex digits"));
    }
    if chain_hash(&fields.prev, prefix) != fields.hash || fields.hash.as_bytes() != hex_part {
        return Err(RecordError::HashMismatch);
    }
    if !is_valid_time(&fields.time) {
        return Err(malformed("`time` is not `YYYY-MM-DDTHH:MM:SS.mmmZ`"));
    }
    if !fields.event.is_object() {
        return Err(malformed("`event` is not a JSON object"));
    }
    Ok(Record {
        seq: fields.seq,
        prev: fields.prev,
        hash: fields.hash,
        event: fields.event,
    })
}

fn is_lower_hex64(bytes: &[u8]) -> bool {
    bytes.len() == HEX_LEN && bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// RFC 3339 in the one spelling the gate's clock produces:
/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds). One spelling keeps the log
/// greppable and sortable as text.
pub fn is_valid_time(time: &str) -> bool {
    const PATTERN: &[u8; 24] = b"dddd-dd-ddTdd:dd:dd.dddZ";
    let bytes = time.as_bytes();
    if bytes.len() != PATTERN.len() {
        return false;
    }
    let shape_ok = bytes.iter().zip(PATTERN).all(|(b, p)| match p {
        b'd' => b.is_ascii_digit(),
        other => b == other,
    });
    if !shape_ok {
        return false;
    }
    let num = |from: usize, to: usize| -> u32 {
        time.get(from..to)
            .and_then(|s| s.parse().ok())
            .unwrap_or(u32::MAX)
    };
    (1..=12).contains(&num(5, 7))
        && (1..=31).contains(&num(8, 10))
        && num(11, 13) <= 23
        && num(14, 16) <= 59
        && num(17, 19) <= 60
}

//! gatehouse's tamper-evident audit log: hash-chained JSON lines.
//!
//! The gate appends one record per decision ([`AuditLog::append`]); an
//! operator runs `gatehouse audit verify` ([`verify`]) to find an edited,
//! removed or reordered record. Events carry fingerprints, never secrets:
//! nothing in this API needs a token, key or signature.
//!
//! # File format
//!
//! A log file is UTF-8 text: zero or more records, each exactly one line
//! ending in `\n` (0x0A). A record line is a JSON object written as
//!
//! ```text
//! {"seq":<S>,"time":<T>,"prev":"<P>","event":<E>,"hash":"<H>"}
//! ```
//!
//! with no whitespace outside `<E>` and `<T>`, and exactly these five keys in
//! this order:
//!
//! * `seq`: unsigned 64-bit integer, decimal. The first record ever written
//!   has seq 1; each record is its predecessor's seq + 1, across rotation.
//! * `time`: string `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC, milliseconds),
//!   supplied by the caller; this crate never reads the clock.
//! * `prev`: 64 lowercase hex digits: the `hash` of the previous record, or
//!   64 `0`s for the first record ever written (seq 1).
//! * `event`: a JSON object, as serde_json serialises it compactly (no newline
//!   can occur: JSON escapes control characters in strings). gatehouse writes
//!   only [`Event`]s (one type per record kind, [`SCHEMA_VERSION`]); [`verify`]
//!   reads every one back and refuses a type or field the schema does not
//!   know, [`verify_chain`] checks the chain alone.
//! * `hash`: 64 lowercase hex digits, defined below.
//!
//! The last 75 bytes of every line (before `\n`) are therefore
//! `,"hash":"` + 64 hex digits + `"}`. Call everything before them — from the
//! opening `{` up to, not including, `,"hash":` — the line's *prefix*. Then
//!
//! ```text
//! hash = lowercase_hex( SHA-256( prev_as_ascii_hex || "\n" || prefix ) )
//! ```
//!
//! where `prev_as_ascii_hex` is the 64 characters of this record's `prev`
//! field. The hash is computed over the bytes as stored, never over a
//! re-serialisation, so a verifier in another language needs no canonical
//! JSON. A Python verifier of one file or a rotation set (oldest first):
//!
//! ```text
//! last = None                                  # (seq, hash) of previous record
//! for each file, for each line split on b"\n" (the file must end with b"\n"):
//!     assert line.startswith(b'{"seq":') and re.fullmatch(rb',"hash":"[0-9a-f]{64}"\}', line[-75:])
//!     rec = json.loads(line)                   # keys exactly seq,time,prev,event,hash; no duplicates
//!     assert rec["hash"] == sha256(rec["prev"].encode() + b"\n" + line[:-75]).hexdigest()
//!     if last: assert rec["seq"] == last[0] + 1 and rec["prev"] == last[1]
//!     else:    assert (rec["prev"] == "0" * 64) == (rec["seq"] == 1)
//!     last = (rec["seq"], rec["hash"])
//! ```
//!
//! Lines (without `\n`) longer than 1 MiB are rejected by both sides.
//!
//! # Rotation
//!
//! With [`Options::rotate_bytes`], a record that would take the file past the
//! limit first causes rotation: `path.N` → `path.N+1` (files past
//! [`Options::keep`] are deleted), `path` → `path.1`, and a new `path` whose
//! first record is `{"type":"rotated","previous_file":"<name>.1","previous_last_seq":N}`
//! (keys as serde_json orders them; `previous_file` is `null` when `keep` is
//! 0), continuing `seq` and `prev`.
//! [`rotation_set`] lists the files oldest first; verifying the set, or any
//! contiguous run of newest files, passes. When the oldest file is not the
//! start of the log the report says where the chain starts
//! ([`VerifyReport::starts_at_genesis`]).
//!
//! # Crashes
//!
//! A record is written with one `write(2)` of the whole line (no fsync per
//! record; [`AuditLog::sync`] is there for callers who want it). A crash can
//! leave a torn last line without `\n`: [`verify`] reports it and
//! [`AuditLog::open`] refuses the file unless [`Options::repair_torn_tail`]
//! is set; then the next append cuts the torn bytes off and first writes
//! `{"type":"torn_tail_repaired","bytes":N}`.
//!
//! # What this does not detect
//!
//! The chain has no secret key. It detects an edited, removed, inserted or
//! reordered record in the middle of the log, and a forged record that does
//! not link to its predecessor. It cannot detect, from the files alone:
//!
//! * records cut from the **end** (the shorter log is a valid chain: a
//!   deleted last line verifies), nor whole files dropped from the start;
//! * a writer with access to the file (e.g. root) rewriting the chain from
//!   some record onwards with freshly computed hashes.
//!
//! Both need evidence kept off the machine: signed [`Checkpoint`]s of the
//! chain head, written into the log as records and so exported with it,
//! checked by [`verify_against`] with the [`PublicKey`] of the gate's
//! [`CheckpointKey`].
//!
//! # Files
//!
//! New files are created with [`Options::mode`] exactly (default `0640`,
//! umask ignored), never through a symlink. An existing file's mode is never
//! changed; one writable by group or others is refused. One `AuditLog` (in
//! one process) writes a given file; [`AuditLog::open`] checks only the last
//! record's own hash before continuing the chain.

#![forbid(unsafe_code)]

mod against;
mod checkpoint;
mod error;
mod event;
mod files;
mod log;
mod read;
mod record;
mod rotate;
mod schema;
mod tail;
mod verify;

pub use against::{
    verify_against, AgainstFailure, AgainstReport, EvidenceError, Location, Tampering,
};
pub use checkpoint::{CheckpointKey, KeyError, PublicKey, PublicKeyError};
pub use error::AuditError;
pub use event::*;
pub use log::{Appended, AuditLog, Options};
pub use read::{
    for_each_raw, raw, read_all, Entry, Lines, Needle, Next, Raw, ReadError, ReadProblem,
};
pub use record::{is_valid_time, RecordError, GENESIS};
pub use rotate::rotation_set;
pub use schema::{json_schema, markdown_reference};
pub use verify::{verify, verify_chain, Problem, VerifyFailure, VerifyReport};

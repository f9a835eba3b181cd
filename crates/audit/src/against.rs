//! `verify --against`: the log on the box checked against what left it.
//!
//! The evidence is a file collected off the machine: exported record lines
//! (as syslog or OTLP carried them, or as the SIEM keeps them) and among
//! them signed [`Checkpoint`]s. Only checkpoints whose signature verifies
//! with the given public key are trusted; an exported record counts only
//! when its exact bytes chain back from such a checkpoint (anyone on the
//! machine may write to syslog, nobody without the key can sign). From
//! those *attested* hashes the local log must not differ, must not end
//! before the last attested record, and must not have lost files.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::checkpoint::PublicKey;
use crate::event::{Checkpoint, Event};
use crate::record::{self, GENESIS};
use crate::rotate;
use crate::verify::{walk, Events, VerifyFailure, VerifyReport};

/// Longest evidence line read (a record is at most 1 MiB, syslog adds a head).
const MAX_EVIDENCE_LINE: usize = (1 << 20) + 4096;

/// Why the evidence cannot be used: nothing was checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("line {line}: a checkpoint signed by key `{key_id}`, not by the key given (`{expected}`): refused; give the key of the gate that wrote this log, or collect its checkpoints alone")]
    OtherKey {
        line: u64,
        key_id: String,
        expected: String,
    },
    #[error("line {line}: a checkpoint whose signature does not verify: refused (forged or altered in transit)")]
    BadSignature { line: u64 },
    #[error("line {line}: a malformed checkpoint: {why}")]
    Malformed { line: u64, why: String },
    #[error("lines {first} and {second}: two signed checkpoints give record {seq} different hashes (the key was used on a rewritten log: treat it as compromised)")]
    Conflict { seq: u64, first: u64, second: u64 },
    #[error("no signed checkpoint in the evidence ({ignored} lines were not checkpoints): nothing to verify against; collect the `checkpoint` records the gate exports")]
    NoCheckpoints { ignored: u64 },
}

/// Where a record is in the local files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub seq: u64,
    pub file: PathBuf,
    pub line: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seq {} (`{}` line {})",
            self.seq,
            self.file.display(),
            self.line
        )
    }
}

/// What the local log does wrong against the evidence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Tampering {
    #[error("gap: `{}` is missing but `{}` exists: a rotated file was deleted", missing.display(), older.display())]
    MissingFile { missing: PathBuf, older: PathBuf },
    #[error("the local chain is broken: {0}")]
    Chain(VerifyFailure),
    #[error("rewrite: record {at} differs from the record attested by evidence line {evidence_line}; {}", first_changed_words(.at, .first_changed))]
    Rewritten {
        /// The local record whose hash differs from an attested one.
        at: Location,
        /// The first record that may differ: the first after the last one
        /// that matched (equal to `at` when the evidence names every record
        /// in between, i.e. `at` is exactly the first that differs).
        first_changed: Location,
        evidence_line: u64,
    },
    #[error("truncation: the log ends at {}, but evidence line {evidence_line} attests record {attested}: records {} to {attested} were removed", last_words(.last), .last.as_ref().map_or(1, |l| l.seq + 1))]
    Truncated {
        last: Option<Location>,
        attested: u64,
        evidence_line: u64,
    },
    #[error("gap: the oldest file on the box starts at seq {first_seq} and only {found} rotated file(s) are left, but the gate keeps {kept} (checkpoint at evidence line {evidence_line}): older files were deleted; the first record missing is seq {first_missing}")]
    OlderFilesMissing {
        first_seq: u64,
        found: u64,
        kept: u64,
        first_missing: u64,
        evidence_line: u64,
    },
    #[error("gap: the log starts at seq {first_seq}, but the gate never rotates it (checkpoint at evidence line {evidence_line}): records 1 to {} were deleted", .first_seq - 1)]
    StartsLate { first_seq: u64, evidence_line: u64 },
}

fn first_changed_words(at: &Location, first: &Location) -> String {
    if at == first {
        "it is the first record that differs".to_owned()
    } else {
        format!(
            "the first record that differs is one of seq {} to {}, the first of them at {first}",
            first.seq, at.seq
        )
    }
}

fn last_words(last: &Option<Location>) -> String {
    last.as_ref()
        .map_or_else(|| "no record".to_owned(), ToString::to_string)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgainstFailure {
    #[error("the evidence is refused: {0}")]
    Evidence(#[from] EvidenceError),
    #[error("{0}")]
    Tampered(Box<Tampering>),
    #[error("cannot list the log's files: {0}")]
    Io(String),
}

/// What a successful check covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgainstReport {
    /// The local files' own chain.
    pub local: VerifyReport,
    /// Signed checkpoints in the evidence.
    pub checkpoints: u64,
    /// Records whose hash the evidence attests (checkpoints' heads and the
    /// exported records chained back from them).
    pub attested: u64,
    /// Attested records found, and equal, on the box.
    pub matched: u64,
    /// Attested records no longer on the box (rotated away within
    /// the gate's retention).
    pub rotated_away: u64,
    /// The highest attested seq: everything up to it is verified.
    pub last_attested: u64,
    /// Evidence lines that were neither a checkpoint nor an exported record.
    pub ignored_lines: u64,
}

impl fmt::Display for AgainstReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ok: the log matches {} signed checkpoint(s): {} attested record(s), {} compared and equal, {} rotated away; verified up to seq {}",
            self.checkpoints, self.attested, self.matched, self.rotated_away, self.last_attested
        )?;
        if let Some(last) = self.local.last_seq.filter(|l| *l > self.last_attested) {
            write!(
                f,
                "; seq {} to {last} came after the last checkpoint and are not yet attested",
                self.last_attested + 1
            )?;
        }
        Ok(())
    }
}

/// One attested hash and the evidence line it came from.
#[derive(Debug, Clone)]
struct Attested {
    hash: String,
    line: u64,
}

/// An exported record whose exact bytes were kept.
#[derive(Debug, Clone)]
struct Exported {
    hash: String,
    prev: String,
    line: u64,
}

/// The trusted part of the evidence.
#[derive(Debug, Default)]
struct Evidence {
    /// Signed checkpoints, by evidence line.
    checkpoints: Vec<(u64, Checkpoint)>,
    attested: BTreeMap<u64, Attested>,
    ignored: u64,
}

/// Checks the log at `path` (with its rotated files `path.N`, all that
/// exist) against `evidence` (the text of the collected file) and `key`.
pub fn verify_against(
    path: &Path,
    evidence: &str,
    key: &PublicKey,
) -> Result<AgainstReport, AgainstFailure> {
    let evidence = read_evidence(evidence, key)?;
    let scan = rotate::scan(path).map_err(|e| AgainstFailure::Io(e.to_string()))?;
    if let Some((missing, older)) = scan.missing.first() {
        return Err(tampered(Tampering::MissingFile {
            missing: missing.clone(),
            older: older.clone(),
        }));
    }
    compare(&scan.files, &evidence)
}

fn tampered(t: Tampering) -> AgainstFailure {
    AgainstFailure::Tampered(Box::new(t))
}

fn compare(files: &[PathBuf], evidence: &Evidence) -> Result<AgainstReport, AgainstFailure> {
    let mut matched = 0u64;
    let mut first_after_match: Option<Location> = None;
    let mut last: Option<Location> = None;
    let mut finding = None;
    let local = walk(files, Events::Typed, &mut |file, line, rec| {
        let here = Location {
            seq: rec.seq,
            file: file.to_path_buf(),
            line,
        };
        let first = first_after_match
            .get_or_insert_with(|| here.clone())
            .clone();
        last = Some(here.clone());
        match evidence.attested.get(&rec.seq) {
            Some(a) if a.hash == rec.hash => {
                matched += 1;
                first_after_match = None;
                true
            }
            Some(a) => {
                finding = Some(Tampering::Rewritten {
                    at: here,
                    first_changed: first,
                    evidence_line: a.line,
                });
                false
            }
            None => true,
        }
    })
    .map_err(|failure| tampered(Tampering::Chain(failure)))?;
    if let Some(t) = finding {
        return Err(tampered(t));
    }
    let Some((&last_attested, newest)) = evidence.attested.last_key_value() else {
        return Err(EvidenceError::NoCheckpoints {
            ignored: evidence.ignored,
        }
        .into());
    };
    if local.last_seq.is_none_or(|l| l < last_attested) {
        return Err(tampered(Tampering::Truncated {
            last,
            attested: last_attested,
            evidence_line: newest.line,
        }));
    }
    let first_seq = local.first_seq.unwrap_or(1);
    if local.first_prev.as_deref() != Some(GENESIS) {
        if let Some((line, cp)) = evidence.checkpoints.iter().max_by_key(|(_, c)| c.head_seq) {
            let found = u64::try_from(files.len().saturating_sub(1)).unwrap_or(u64::MAX);
            match cp.rotated_kept {
                None => {
                    return Err(tampered(Tampering::StartsLate {
                        first_seq,
                        evidence_line: *line,
                    }))
                }
                Some(kept) if found < kept => {
                    return Err(tampered(Tampering::OlderFilesMissing {
                        first_seq,
                        found,
                        kept,
                        first_missing: first_seq.saturating_sub(1),
                        evidence_line: *line,
                    }))
                }
                Some(_) => {}
            }
        }
    }
    let rotated_away = u64::try_from(evidence.attested.range(..first_seq).count()).unwrap_or(0);
    Ok(AgainstReport {
        local,
        checkpoints: u64::try_from(evidence.checkpoints.len()).unwrap_or(u64::MAX),
        attested: u64::try_from(evidence.attested.len()).unwrap_or(u64::MAX),
        matched,
        rotated_away,
        last_attested,
        ignored_lines: evidence.ignored,
    })
}

/// Reads the collected file: signed checkpoints (refusing any that another
/// key signed or that do not verify) and the exported records that chain
/// back from them.
fn read_evidence(text: &str, key: &PublicKey) -> Result<Evidence, EvidenceError> {
    let mut evidence = Evidence::default();
    let mut exported: BTreeMap<u64, Vec<Exported>> = BTreeMap::new();
    for (number, raw) in (1u64..).zip(text.split('\n')) {
        let line = raw.trim_end_matches('\r').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Some(Found::Record { exact, event }) => {
                if let Some(rec) = exact {
                    exported.entry(rec.seq).or_default().push(Exported {
                        hash: rec.hash,
                        prev: rec.prev,
                        line: number,
                    });
                }
                match event {
                    Some(v) if is_checkpoint(&v) => {
                        let cp = checkpoint(&v, number, key)?;
                        evidence.checkpoints.push((number, cp));
                    }
                    _ => {}
                }
            }
            Some(Found::Event(v)) => {
                let cp = checkpoint(&v, number, key)?;
                evidence.checkpoints.push((number, cp));
            }
            None => evidence.ignored += 1,
        }
    }
    if evidence.checkpoints.is_empty() {
        return Err(EvidenceError::NoCheckpoints {
            ignored: evidence.ignored,
        });
    }
    for (line, cp) in &evidence.checkpoints {
        attest(&mut evidence.attested, cp.head_seq, &cp.head_hash, *line)?;
    }
    // Each checkpoint authenticates the exported records it chains back to.
    let heads: Vec<(u64, String)> = evidence
        .checkpoints
        .iter()
        .map(|(_, c)| (c.head_seq, c.head_hash.clone()))
        .collect();
    for (mut seq, mut hash) in heads {
        while let Some(rec) = exported
            .get(&seq)
            .and_then(|c| c.iter().find(|r| r.hash == hash))
        {
            attest(&mut evidence.attested, seq, &rec.hash, rec.line)?;
            if seq <= 1 || rec.prev == GENESIS {
                break;
            }
            seq -= 1;
            hash.clone_from(&rec.prev);
            if let Some(known) = evidence.attested.get(&seq) {
                if known.hash == hash {
                    break;
                }
                return Err(EvidenceError::Conflict {
                    seq,
                    first: known.line,
                    second: rec.line,
                });
            }
            attest(&mut evidence.attested, seq, &hash, rec.line)?;
        }
    }
    Ok(evidence)
}

fn attest(
    map: &mut BTreeMap<u64, Attested>,
    seq: u64,
    hash: &str,
    line: u64,
) -> Result<(), EvidenceError> {
    match map.get(&seq) {
        Some(known) if known.hash != hash => Err(EvidenceError::Conflict {
            seq,
            first: known.line,
            second: line,
        }),
        Some(_) => Ok(()),
        None => {
            map.insert(
                seq,
                Attested {
                    hash: hash.to_owned(),
                    line,
                },
            );
            Ok(())
        }
    }
}

enum Found {
    /// A record line: its chain fields when its bytes are exact, its event.
    Record {
        exact: Option<record::Record>,
        event: Option<Value>,
    },
    /// A bare event object (a checkpoint collected alone).
    Event(Value),
}

/// The gatehouse JSON in one evidence line: the whole line, or the message
/// part of a syslog line (from `{"seq":`, or failing that the first `{`).
fn parse_line(line: &str) -> Option<Found> {
    if line.len() > MAX_EVIDENCE_LINE {
        return None;
    }
    let start = line
        .find("{\"seq\":")
        .or_else(|| line.find("{\"type\":\"checkpoint\""))
        .or_else(|| line.find('{'))?;
    let json = line.get(start..)?;
    let mut stream = serde_json::Deserializer::from_str(json).into_iter::<Value>();
    let value = stream.next()?.ok()?;
    let end = stream.byte_offset();
    let object = value.as_object()?;
    if object.contains_key("seq") && object.contains_key("hash") {
        let exact = json
            .get(..end)
            .and_then(|bytes| record::check(bytes.as_bytes()).ok());
        return Some(Found::Record {
            exact,
            event: object.get("event").cloned(),
        });
    }
    is_checkpoint(&value).then_some(Found::Event(value))
}

fn is_checkpoint(event: &Value) -> bool {
    event.get("type").and_then(Value::as_str) == Some("checkpoint")
}

/// A checkpoint event, trusted only if `key` signed it.
fn checkpoint(event: &Value, line: u64, key: &PublicKey) -> Result<Checkpoint, EvidenceError> {
    let malformed = |why: String| EvidenceError::Malformed { line, why };
    let cp = match Event::deserialize(event) {
        Ok(Event::Checkpoint(cp)) => *cp,
        Ok(_) => return Err(malformed("not a checkpoint".to_owned())),
        Err(e) => return Err(malformed(e.to_string())),
    };
    let hex64 = cp.head_hash.len() == 64
        && cp
            .head_hash
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !hex64 {
        return Err(malformed(
            "`head_hash` is not 64 lowercase hex digits".to_owned(),
        ));
    }
    if !record::is_valid_time(&cp.signed_at) {
        return Err(malformed(
            "`signed_at` is not `YYYY-MM-DDTHH:MM:SS.mmmZ`".to_owned(),
        ));
    }
    let expected = key.key_id();
    if cp.key_id != expected {
        return Err(EvidenceError::OtherKey {
            line,
            key_id: cp.key_id.chars().take(80).collect(),
            expected,
        });
    }
    if !key.verifies(&cp) {
        return Err(EvidenceError::BadSignature { line });
    }
    Ok(cp)
}

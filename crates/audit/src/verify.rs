//! Checks a log file or rotation set, line by line, on the bytes as stored.

use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::event::Event;
use crate::record::{self, Record, RecordError, GENESIS, MAX_LINE};

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub files: usize,
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Chain head: compare it with a copy kept off the machine to detect
    /// records cut from the end.
    pub last_hash: Option<String>,
    /// `prev` of the first record: [`GENESIS`] for a log verified from its
    /// start, otherwise the hash of a record in an earlier (dropped or
    /// unlisted) file.
    pub first_prev: Option<String>,
}

impl VerifyReport {
    /// True when the first record is the first record ever written.
    pub fn starts_at_genesis(&self) -> bool {
        self.first_prev.as_deref() == Some(GENESIS)
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Some(first), Some(last), Some(hash)) =
            (self.first_seq, self.last_seq, &self.last_hash)
        else {
            return write!(f, "ok: no records in {} file(s)", self.files);
        };
        write!(
            f,
            "ok: {} records in {} file(s), seq {first}..={last}, last hash {hash}; ",
            self.records, self.files
        )?;
        if self.starts_at_genesis() {
            write!(f, "starts at the first record ever written")
        } else {
            write!(f, "starts at seq {first}, chained to an earlier file")
        }
    }
}

/// The first thing wrong in a log: which file, which line (1-based; 0 when
/// the file could not be read at all) and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{}` line {line}: {problem}", file.display())]
pub struct VerifyFailure {
    pub file: PathBuf,
    pub line: u64,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("cannot read: {0}")]
    Io(String),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("seq {found} where {expected} was expected (records removed or moved)")]
    SeqGap { expected: u64, found: u64 },
    #[error("seq {found} where {expected} was expected (records reordered or duplicated)")]
    SeqBackwards { expected: u64, found: u64 },
    #[error("`prev` is not the previous record's hash (record replaced, reordered or forged)")]
    PrevMismatch,
    #[error("seq {seq} with `prev` {} the genesis value (forged start)", if *.genesis_prev { "equal to" } else { "not equal to" })]
    BadGenesis { seq: u64, genesis_prev: bool },
    #[error("the event is not a gatehouse audit record ({0}): written by a newer gatehouse, or edited with the chain recomputed")]
    Event(String),
    #[error("torn last record: {bytes} bytes without a newline (crash while writing, or the file was cut)")]
    TornTail { bytes: u64 },
}

/// Verifies one file or a rotation set given oldest first (as
/// [`crate::rotation_set`] returns it), stopping at the first failure: the
/// chain, and that every record's event is an [`Event`] (a type or a field
/// the schema does not know is a failure). Records removed from the very
/// end, or whole files dropped from the start, are not detectable here: see
/// the crate documentation.
pub fn verify(paths: &[PathBuf]) -> Result<VerifyReport, VerifyFailure> {
    verify_with(paths, Events::Typed)
}

/// Like [`verify`], but checks only the hash chain: the `event` of a record
/// may be any JSON object (for logs of other writers of this format).
pub fn verify_chain(paths: &[PathBuf]) -> Result<VerifyReport, VerifyFailure> {
    verify_with(paths, Events::Any)
}

/// What an event must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Events {
    Typed,
    Any,
}

fn verify_with(paths: &[PathBuf], events: Events) -> Result<VerifyReport, VerifyFailure> {
    walk(paths, events, &mut |_, _, _| true)
}

/// Called with each record that linked onto the chain (file, 1-based line,
/// record); returning `false` stops the walk there (with `Ok`).
pub(crate) type Visit<'a> = dyn FnMut(&Path, u64, &Record) -> bool + 'a;

/// [`verify`]'s walk, showing each good record to `visit`.
pub(crate) fn walk(
    paths: &[PathBuf],
    events: Events,
    visit: &mut Visit<'_>,
) -> Result<VerifyReport, VerifyFailure> {
    let mut chain = Chain::default();
    for path in paths {
        if verify_file(path, &mut chain, events, visit)? == Walk::Stopped {
            break;
        }
    }
    Ok(VerifyReport {
        files: paths.len(),
        records: chain.records,
        first_seq: chain.first_seq,
        last_seq: chain.last.as_ref().map(|(seq, _)| *seq),
        last_hash: chain.last.map(|(_, hash)| hash),
        first_prev: chain.first_prev,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    Done,
    Stopped,
}

#[derive(Debug, Default)]
struct Chain {
    records: u64,
    first_seq: Option<u64>,
    first_prev: Option<String>,
    last: Option<(u64, String)>,
}

fn verify_file(
    path: &Path,
    chain: &mut Chain,
    events: Events,
    visit: &mut Visit<'_>,
) -> Result<Walk, VerifyFailure> {
    let fail = |line: u64, problem: Problem| VerifyFailure {
        file: path.to_path_buf(),
        line,
        problem,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(0, Problem::Io(e.to_string())))?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1;
    for number in 1.. {
        buf.clear();
        let read = (&mut reader).take(limit).read_until(b'\n', &mut buf);
        match read {
            Ok(0) => return Ok(Walk::Done),
            Ok(_) => {}
            Err(e) => return Err(fail(number, Problem::Io(e.to_string()))),
        }
        let Some(line) = buf.strip_suffix(b"\n") else {
            let bytes = u64::try_from(buf.len()).unwrap_or(u64::MAX);
            return Err(fail(number, torn_or_long(&mut reader, bytes)));
        };
        let rec = link(chain, line, events).map_err(|problem| fail(number, problem))?;
        if !visit(path, number, &rec) {
            return Ok(Walk::Stopped);
        }
    }
    Ok(Walk::Done)
}

/// A chunk without a newline is a torn tail at end of file, else an overlong line.
fn torn_or_long(reader: &mut impl BufRead, bytes: u64) -> Problem {
    match reader.fill_buf() {
        Ok([]) => Problem::TornTail { bytes },
        Ok(_) => Problem::Record(RecordError::Malformed("line longer than 1 MiB".to_owned())),
        Err(e) => Problem::Io(e.to_string()),
    }
}

/// Checks one line and links it onto the chain.
fn link(chain: &mut Chain, line: &[u8], events: Events) -> Result<Record, Problem> {
    let rec = record::check(line)?;
    if events == Events::Typed {
        Event::deserialize(&rec.event).map_err(|e| Problem::Event(e.to_string()))?;
    }
    match &chain.last {
        Some((last_seq, last_hash)) => {
            let expected = last_seq.saturating_add(1);
            if rec.seq > expected {
                return Err(Problem::SeqGap {
                    expected,
                    found: rec.seq,
                });
            }
            if rec.seq < expected {
                return Err(Problem::SeqBackwards {
                    expected,
                    found: rec.seq,
                });
            }
            if &rec.prev != last_hash {
                return Err(Problem::PrevMismatch);
            }
        }
        None => {
            let genesis_prev = rec.prev == GENESIS;
            if genesis_prev != (rec.seq == 1) {
                return Err(Problem::BadGenesis {
                    seq: rec.seq,
                    genesis_prev,
                });
            }
            chain.first_seq = Some(rec.seq);
            chain.first_prev = Some(rec.prev.clone());
        }
    }
    chain.records += 1;
    chain.last = Some((rec.seq, rec.hash.clone()));
    Ok(rec)
}

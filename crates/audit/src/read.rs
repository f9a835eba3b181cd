//! Reading records for queries (`gatehouse audit show`, `report`, `policy
//! suggest`, `check --replay`): fast, typed, and precise about bad input.
//!
//! Unlike [`crate::verify`] this does not recompute hashes: it is for asking
//! questions of a log, not for judging it. Each line is first looked at
//! cheaply ([`Raw`]: its seq, time and record type, by position, since the
//! writer emits them in one fixed shape) so a query can drop most lines
//! before paying for a full deserialisation into an [`Event`].

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::event::{Event, RequestRecord};
use crate::record::MAX_LINE;

#[cfg(test)]
mod tests;

/// Why a line cannot be read, with its file and line (1-based; 0 when the
/// file could not be opened).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{}` line {line}: {problem}", file.display())]
pub struct ReadError {
    pub file: PathBuf,
    pub line: u64,
    pub problem: ReadProblem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadProblem {
    #[error("cannot read: {0}")]
    Io(String),
    #[error("not a gatehouse audit log: {0}")]
    NotALog(&'static str),
    #[error("truncated record ({bytes} bytes without a newline): the file was cut or a write was torn; `gatehouse audit verify` says more")]
    Truncated { bytes: u64 },
    #[error("malformed record: {0}; `gatehouse audit verify` says more")]
    Malformed(String),
    #[error("record of a newer schema than this gatehouse reads ({0}): read it with the gatehouse that wrote it")]
    Newer(String),
    #[error("line longer than 1 MiB: not a gatehouse audit log")]
    TooLong,
}

/// A line looked at without parsing its event.
#[derive(Debug, Clone, Copy)]
pub struct Raw<'a> {
    pub seq: u64,
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`: compares as text in time order.
    pub time: &'a str,
    /// The record's `type`.
    pub kind: &'a str,
    /// The whole line, without its newline (for substring pre-filters).
    pub line: &'a [u8],
    event: &'a [u8],
}

/// One record read in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub time: String,
    pub event: Event,
    /// Where it was read.
    pub file: PathBuf,
    pub line: u64,
}

const HEAD: &[u8] = b"{\"seq\":";
const TIME_KEY: &[u8] = b",\"time\":\"";
const PREV_KEY: &[u8] = b"\",\"prev\":\"";
const EVENT_KEY: &[u8] = b"\",\"event\":";
const TYPE_KEY: &[u8] = b"{\"type\":\"";
const HASH_KEY: &[u8] = b",\"hash\":\"";
const SUFFIX_LEN: usize = 9 + 64 + 2;

/// Splits a line into its parts by position; `Err` says what is wrong.
pub fn raw(line: &[u8]) -> Result<Raw<'_>, ReadProblem> {
    let not_log = ReadProblem::NotALog;
    let rest = line
        .strip_prefix(HEAD)
        .ok_or(not_log("a line does not start with `{\"seq\":`"))?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let (seq_text, rest) = rest.split_at(digits);
    let seq = std::str::from_utf8(seq_text)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(not_log("`seq` is not a number"))?;
    let malformed = |why: &str| ReadProblem::Malformed(why.to_owned());
    let rest = rest
        .strip_prefix(TIME_KEY)
        .ok_or_else(|| malformed("no `time` after `seq`"))?;
    let (time, rest) = rest
        .split_at_checked(24)
        .ok_or_else(|| malformed("line too short"))?;
    let time = std::str::from_utf8(time)
        .ok()
        .filter(|t| crate::record::is_valid_time(t))
        .ok_or_else(|| malformed("`time` is not `YYYY-MM-DDTHH:MM:SS.mmmZ`"))?;
    let rest = rest
        .strip_prefix(PREV_KEY)
        .ok_or_else(|| malformed("no `prev` after `time`"))?;
    let rest = rest
        .get(64..)
        .and_then(|r| r.strip_prefix(EVENT_KEY))
        .ok_or_else(|| malformed("no `event` after `prev`"))?;
    let event_len = rest
        .len()
        .checked_sub(SUFFIX_LEN)
        .ok_or_else(|| malformed("the line ends before its `hash` (cut short?)"))?;
    let (event, suffix) = rest.split_at(event_len);
    let hash_ok = suffix
        .strip_prefix(HASH_KEY)
        .and_then(|h| h.strip_suffix(b"\"}"))
        .is_some_and(|h| h.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    if !hash_ok {
        return Err(malformed(
            "the line does not end with `,\"hash\":\"<64 hex>\"}` (cut short?)",
        ));
    }
    let kind = event
        .strip_prefix(TYPE_KEY)
        .and_then(|e| {
            let end = e.iter().position(|b| *b == b'"')?;
            std::str::from_utf8(e.get(..end)?).ok()
        })
        .ok_or_else(|| malformed("`event` does not start with its `type`"))?;
    Ok(Raw {
        seq,
        time,
        kind,
        line,
        event,
    })
}

impl Raw<'_> {
    /// The event, deserialised: a type or field this version does not know
    /// is [`ReadProblem::Newer`].
    pub fn event(&self) -> Result<Event, ReadProblem> {
        // Most records are requests. serde reads an internally tagged enum
        // by buffering the whole object first; knowing the type already,
        // read the record's own struct from the object minus its tag.
        if self.kind == "request" {
            let tag = TYPE_KEY.len() + self.kind.len() + 1;
            if let Some(rest) = self.event.get(tag..).and_then(|r| r.strip_prefix(b",")) {
                let mut object = Vec::with_capacity(rest.len() + 1);
                object.push(b'{');
                object.extend_from_slice(rest);
                return serde_json::from_slice::<RequestRecord>(&object)
                    .map(|r| Event::Request(Box::new(r)))
                    .map_err(classify);
            }
        }
        serde_json::from_slice::<Event>(self.event).map_err(classify)
    }

    /// Whether `needle` occurs in the line: a cheap necessary condition
    /// before an exact test on the event.
    pub fn contains(&self, needle: &Needle) -> bool {
        needle.0.find(self.line).is_some()
    }
}

/// A substring to look for in many lines, prepared once.
#[derive(Debug, Clone)]
pub struct Needle(memchr::memmem::Finder<'static>);

impl Needle {
    pub fn new(bytes: &[u8]) -> Needle {
        Needle(memchr::memmem::Finder::new(bytes).into_owned())
    }
}

fn classify(e: serde_json::Error) -> ReadProblem {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => ReadProblem::Newer(e.to_string()),
        Category::Io | Category::Syntax | Category::Eof => ReadProblem::Malformed(e.to_string()),
    }
}

/// Reads lines of one file from `reader`, starting at line `first_line`.
pub struct Lines<R> {
    reader: BufReader<R>,
    file: PathBuf,
    line: u64,
    buf: Vec<u8>,
}

impl Lines<File> {
    /// Opens `path` for reading from its start.
    pub fn open(path: &Path) -> Result<Lines<File>, ReadError> {
        let file = crate::files::open_read(path).map_err(|e| ReadError {
            file: path.to_path_buf(),
            line: 0,
            problem: ReadProblem::Io(e.to_string()),
        })?;
        Ok(Lines::new(file, path))
    }
}

/// What the next line was.
#[derive(Debug)]
pub enum Next<'a> {
    /// A complete line.
    Line(Raw<'a>),
    /// The end of what is there now; `torn` bytes follow without a newline
    /// (they are not consumed: a writer may still be finishing them).
    End { torn: u64 },
}

impl<R: Read> Lines<R> {
    pub fn new(reader: R, path: &Path) -> Lines<R> {
        Lines {
            reader: BufReader::with_capacity(256 * 1024, reader),
            file: path.to_path_buf(),
            line: 0,
            buf: Vec::with_capacity(4096),
        }
    }

    /// The line number of the last line returned.
    pub fn line(&self) -> u64 {
        self.line
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// An error at the current line.
    pub fn error(&self, problem: ReadProblem) -> ReadError {
        ReadError {
            file: self.file.clone(),
            line: self.line,
            problem,
        }
    }

    /// The next line, or the end. Bytes after the last newline stay
    /// buffered and are returned with the rest of their line once it is
    /// complete (for `--follow`).
    pub fn next_raw(&mut self) -> Result<Next<'_>, ReadError> {
        let have = self.buf.last() == Some(&b'\n');
        if have {
            self.buf.clear();
        }
        let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 2;
        let room = limit.saturating_sub(u64::try_from(self.buf.len()).unwrap_or(u64::MAX));
        let read = (&mut self.reader)
            .take(room)
            .read_until(b'\n', &mut self.buf);
        if let Err(e) = read {
            return Err(ReadError {
                file: self.file.clone(),
                line: self.line + 1,
                problem: ReadProblem::Io(e.to_string()),
            });
        }
        match self.buf.strip_suffix(b"\n") {
            Some(_) => {
                self.line += 1;
                let line = self.buf.get(..self.buf.len() - 1).unwrap_or_default();
                raw(line).map(Next::Line).map_err(|problem| ReadError {
                    file: self.file.clone(),
                    line: self.line,
                    problem,
                })
            }
            None if self.buf.len() > MAX_LINE => Err(ReadError {
                file: self.file.clone(),
                line: self.line + 1,
                problem: ReadProblem::TooLong,
            }),
            None => Ok(Next::End {
                torn: u64::try_from(self.buf.len()).unwrap_or(u64::MAX),
            }),
        }
    }
}

/// Reads every record of `paths` in order, handing each line to `visit`,
/// which returns whether to stop. A torn last line is an error
/// ([`ReadProblem::Truncated`]), as is anything that is not a record.
pub fn for_each_raw(
    paths: &[PathBuf],
    mut visit: impl FnMut(&Raw<'_>, &Path, u64) -> Result<(), ReadProblem>,
) -> Result<(), ReadError> {
    for path in paths {
        let mut lines = Lines::open(path)?;
        loop {
            let line_no = lines.line() + 1;
            match lines.next_raw()? {
                Next::Line(raw) => {
                    visit(&raw, path, line_no).map_err(|problem| ReadError {
                        file: path.clone(),
                        line: line_no,
                        problem,
                    })?;
                }
                Next::End { torn: 0 } => break,
                Next::End { torn } => {
                    return Err(ReadError {
                        file: path.clone(),
                        line: line_no,
                        problem: ReadProblem::Truncated { bytes: torn },
                    })
                }
            }
        }
    }
    Ok(())
}

/// Every record of `paths`, in order, fully read.
pub fn read_all(paths: &[PathBuf]) -> Result<Vec<Entry>, ReadError> {
    let mut out = Vec::new();
    for_each_raw(paths, |raw, file, line| {
        out.push(Entry {
            seq: raw.seq,
            time: raw.time.to_owned(),
            event: raw.event()?,
            file: file.to_path_buf(),
            line,
        });
        Ok(())
    })?;
    Ok(out)
}

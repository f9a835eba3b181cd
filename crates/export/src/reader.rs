//! Reads the audit log from a cursor on, across rotation.
//!
//! The log's files are `path.N` … `path.1`, `path`; the writer renames
//! `path` to `path.1` when it rotates and starts a new `path`. The reader
//! holds the file it reads open, so a rename (or a delete) does not lose
//! it: it drains that file to its end, then moves to the next newer file.
//! A file is finished only once `path` no longer names it — checked
//! *before* the last read, and the writer renames only after its last write
//! to the old file, so no record is skipped. Only complete lines are
//! consumed: a line being written (or torn by a crash) waits.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::cursor::Cursor;
use crate::line::Line;

/// Longest record line the writer emits (`gatehouse-audit`'s limit).
const MAX_LINE: usize = 1 << 20;

/// What the reader found between the cursor and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discontinuity {
    /// Records `from..=to` are no longer in the log (rotated away, or the
    /// log was cut); reading continues after them.
    Missing { from: u64, to: u64 },
    /// The record after `seq` does not link to it: `prev` differs from the
    /// hash the reader last saw, or `seq` does not follow.
    Broken { after_seq: u64, found_seq: u64 },
    /// The cursor's record is not in the log any more and the log ends
    /// before it: the log was replaced or cut. Reading starts at its end.
    Behind { cursor_seq: u64, log_last_seq: u64 },
}

/// Records read in one go, and the cursor after the last of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub lines: Vec<Line>,
    pub end: Option<Cursor>,
    pub problems: Vec<Discontinuity>,
}

#[derive(Debug)]
struct Open {
    file: File,
    name: String,
    dev: u64,
    ino: u64,
    offset: u64,
}

/// A reader of one log (`path` and its rotated files).
#[derive(Debug)]
pub struct LogReader {
    path: PathBuf,
    open: Option<Open>,
    /// `(seq, hash)` of the last record handed out (or the cursor's).
    last: Option<(u64, String)>,
    start: Option<Cursor>,
    pending: Vec<Discontinuity>,
}

fn id_of(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// The rotation set, oldest first, or nothing when the log does not exist yet.
fn files(path: &Path) -> io::Result<Vec<PathBuf>> {
    match gatehouse_audit::rotation_set(path) {
        Ok(set) => Ok(set),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn open_file(path: &Path, offset: u64) -> io::Result<Open> {
    let file = File::open(path)?;
    let (dev, ino) = id_of(&file.metadata()?);
    Ok(Open {
        file,
        name: name_of(path),
        dev,
        ino,
        offset,
    })
}

impl LogReader {
    /// A reader of the log at `path` that hands out the records after
    /// `cursor` (all of them when `None`).
    pub fn new(path: &Path, cursor: Option<Cursor>) -> LogReader {
        LogReader {
            path: path.to_path_buf(),
            open: None,
            last: cursor.as_ref().map(|c| (c.seq, c.hash.clone())),
            start: cursor,
            pending: Vec::new(),
        }
    }

    /// Up to `max_lines` records (and about `max_bytes`), possibly none
    /// when the reader is at the end of the log.
    pub fn next_batch(&mut self, max_lines: usize, max_bytes: usize) -> io::Result<Batch> {
        let mut lines = Vec::new();
        let mut bytes = 0usize;
        let mut end = None;
        if self.open.is_none() && !self.position()? {
            return Ok(self.batch(lines, end));
        }
        while lines.len() < max_lines && bytes < max_bytes {
            let Some(open) = self.open.as_mut() else {
                break;
            };
            // Whether `path` still names this file, looked at before reading.
            let live = match std::fs::metadata(&self.path) {
                Ok(m) => id_of(&m) == (open.dev, open.ino),
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
            let got = read_lines(open, max_lines - lines.len(), max_bytes - bytes)?;
            let (name, dev, ino) = (open.name.clone(), open.dev, open.ino);
            if got.is_empty() {
                if live || !self.advance()? {
                    break;
                }
                continue;
            }
            for (line, after) in got {
                self.check_link(&line);
                bytes += line.raw.len() + 1;
                self.last = Some((line.seq, line.hash.clone()));
                end = Some(Cursor::new(
                    name.clone(),
                    dev,
                    ino,
                    after,
                    line.seq,
                    line.hash.clone(),
                ));
                lines.push(line);
            }
        }
        Ok(self.batch(lines, end))
    }

    fn batch(&mut self, lines: Vec<Line>, end: Option<Cursor>) -> Batch {
        Batch {
            lines,
            end,
            problems: std::mem::take(&mut self.pending),
        }
    }

    fn check_link(&mut self, line: &Line) {
        if let Some((seq, hash)) = &self.last {
            let follows = seq.checked_add(1) == Some(line.seq);
            if follows && *hash != line.prev {
                self.pending.push(Discontinuity::Broken {
                    after_seq: *seq,
                    found_seq: line.seq,
                });
            } else if !follows && line.seq > *seq {
                self.pending.push(Discontinuity::Missing {
                    from: seq + 1,
                    to: line.seq - 1,
                });
            } else if !follows {
                self.pending.push(Discontinuity::Broken {
                    after_seq: *seq,
                    found_seq: line.seq,
                });
            }
        }
    }

    /// Opens the file to start from. `false`: there is no log yet.
    fn position(&mut self) -> io::Result<bool> {
        let set = files(&self.path)?;
        if set.is_empty() {
            return Ok(false);
        }
        let Some(cursor) = self.start.take() else {
            if let Some(oldest) = set.first() {
                self.open = Some(open_file(oldest, 0)?);
            }
            return Ok(true);
        };
        // The cursor's file, found by identity, with the cursor's record
        // ending right at the offset.
        for path in &set {
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            if id_of(&meta) == (cursor.dev, cursor.ino) && meta.len() >= cursor.offset {
                let open = open_file(path, cursor.offset)?;
                if line_before(&open.file, cursor.offset)?
                    .is_some_and(|l| l.seq == cursor.seq && l.hash == cursor.hash)
                {
                    self.open = Some(open);
                    return Ok(true);
                }
            }
        }
        // Else by sequence number: the first record after the cursor's.
        self.seek_after(&set, cursor.seq)
    }

    /// Opens the set at the first record with a seq above `seq`.
    fn seek_after(&mut self, set: &[PathBuf], seq: u64) -> io::Result<bool> {
        let mut log_last = None;
        for path in set {
            let mut open = open_file(path, 0)?;
            loop {
                let got = read_lines(&mut open, 1024, 4 << 20)?;
                if got.is_empty() {
                    break;
                }
                for (line, after) in got {
                    log_last = Some(line.seq);
                    if line.seq > seq {
                        open.offset = after - u64::try_from(line.raw.len() + 1).unwrap_or(0);
                        if line.seq > seq + 1 {
                            self.pending.push(Discontinuity::Missing {
                                from: seq + 1,
                                to: line.seq - 1,
                            });
                        }
                        self.last = None;
                        self.open = Some(open);
                        return Ok(true);
                    }
                }
            }
        }
        // Every record is at or before the cursor's.
        if let Some(last) = log_last.filter(|l| *l < seq) {
            self.pending.push(Discontinuity::Behind {
                cursor_seq: seq,
                log_last_seq: last,
            });
        }
        self.last = None;
        if let Some(newest) = set.last() {
            let len = std::fs::metadata(newest)?.len();
            let mut open = open_file(newest, 0)?;
            // Start after the last complete line.
            open.offset = complete_len(&open.file, len)?;
            self.open = Some(open);
        }
        Ok(true)
    }

    /// The file after the one just drained; `false` if there is none yet.
    fn advance(&mut self) -> io::Result<bool> {
        let Some(current) = self.open.as_ref() else {
            return Ok(false);
        };
        let set = files(&self.path)?;
        let mut next = None;
        let mut found = false;
        for path in &set {
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            if found {
                next = Some(path.clone());
                break;
            }
            found = id_of(&meta) == (current.dev, current.ino);
        }
        if !found {
            // The drained file was deleted (rotation with keep 0): the next
            // records are in the oldest file that has newer ones.
            let after = self.last.as_ref().map_or(0, |(s, _)| *s);
            let last = self.last.clone();
            self.open = None;
            let ok = self.seek_after(&set, after)?;
            if last.is_some() {
                self.last = last;
            }
            return Ok(ok);
        }
        match next {
            Some(path) => {
                self.open = Some(open_file(&path, 0)?);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// Complete lines from `open.offset` on, each with the offset after it;
/// advances `open.offset`. A line that does not parse is skipped with a
/// warning (it is still in the file, for `audit verify` to report).
fn read_lines(open: &mut Open, max_lines: usize, max_bytes: usize) -> io::Result<Vec<(Line, u64)>> {
    let want = max_bytes.clamp(64 * 1024, MAX_LINE + 1);
    let mut buf = vec![0; want];
    let n = open.file.read_at(&mut buf, open.offset)?;
    buf.truncate(n);
    let mut out = Vec::new();
    let mut used = 0usize;
    while out.len() < max_lines {
        let rest = buf.get(used..).unwrap_or_default();
        let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
            break;
        };
        let raw = rest.get(..nl).unwrap_or_default();
        used += nl + 1;
        let after = open.offset + u64::try_from(used).unwrap_or(u64::MAX);
        match Line::parse(raw) {
            Ok(line) => out.push((line, after)),
            Err(e) => {
                tracing::warn!(file = %open.name, offset = after, error = %e, "audit export skips a line")
            }
        }
    }
    if out.is_empty() && used == 0 && n > MAX_LINE {
        return Err(io::Error::other(
            "a line longer than 1 MiB: not an audit log",
        ));
    }
    open.offset += u64::try_from(used).unwrap_or(u64::MAX);
    Ok(out)
}

/// The complete line that ends just before `offset`, parsed.
fn line_before(file: &File, offset: u64) -> io::Result<Option<Line>> {
    if offset == 0 {
        return Ok(None);
    }
    let from = offset.saturating_sub(u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1);
    let mut buf = vec![0; usize::try_from(offset - from).map_err(io::Error::other)?];
    file.read_exact_at(&mut buf, from)?;
    if buf.last() != Some(&b'\n') {
        return Ok(None);
    }
    buf.pop();
    let start = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    Ok(buf.get(start..).and_then(|l| Line::parse(l).ok()))
}

/// Length of the file up to its last newline.
fn complete_len(file: &File, len: u64) -> io::Result<u64> {
    let from = len.saturating_sub(u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1);
    let mut buf = vec![0; usize::try_from(len - from).map_err(io::Error::other)?];
    file.read_exact_at(&mut buf, from)?;
    Ok(buf
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(from, |i| from + u64::try_from(i).unwrap_or(0) + 1))
}

#[cfg(test)]
mod tests;

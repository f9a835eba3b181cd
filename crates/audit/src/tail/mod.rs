//! Finds the last complete line of a log without reading the whole file, so
//! opening a large log to continue its chain stays cheap.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use crate::record::MAX_LINE;

#[cfg(test)]
mod tests;

const CHUNK: u64 = 64 * 1024;

/// The end of a log file as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Length of the file up to and including its last newline.
    pub complete_len: u64,
    /// Bytes after the last newline: a record torn by a crash or a truncation.
    pub torn_bytes: u64,
    /// The last complete line, without its newline; `None` if there is none.
    pub last_line: Option<Vec<u8>>,
}

/// Reads the tail of `file`. Fails if a line or the torn part is longer
/// than any record the writer emits: that file is not a log we wrote.
pub(crate) fn read_tail(file: &File) -> io::Result<Tail> {
    let size = file.metadata()?.len();
    let Some(last_nl) = rfind_newline(file, size)? else {
        return Ok(Tail {
            complete_len: 0,
            torn_bytes: size,
            last_line: None,
        });
    };
    let complete_len = last_nl + 1;
    let start = rfind_newline(file, last_nl)?.map_or(0, |nl| nl + 1);
    let mut line = vec![0; usize::try_from(last_nl - start).map_err(io::Error::other)?];
    file.read_exact_at(&mut line, start)?;
    Ok(Tail {
        complete_len,
        torn_bytes: size - complete_len,
        last_line: Some(line),
    })
}

/// Offset of the last `\n` before `end`, searching at most `MAX_LINE + 1` bytes back.
fn rfind_newline(file: &File, end: u64) -> io::Result<Option<u64>> {
    let limit = u64::try_from(MAX_LINE).map_err(io::Error::other)? + 1;
    let floor = end.saturating_sub(limit);
    let mut pos = end;
    let mut buf = Vec::new();
    while pos > floor {
        let from = pos.saturating_sub(CHUNK).max(floor);
        buf.resize(usize::try_from(pos - from).map_err(io::Error::other)?, 0);
        file.read_exact_at(&mut buf, from)?;
        if let Some(i) = buf.iter().rposition(|b| *b == b'\n') {
            return Ok(Some(from + u64::try_from(i).map_err(io::Error::other)?));
        }
        pos = from;
    }
    if floor == 0 {
        Ok(None)
    } else {
        Err(io::Error::other(
            "no newline in the last 1 MiB: not an audit log",
        ))
    }
}

//! The writer: one [`AuditLog`] per file, shared by every request task.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

use crate::error::{io_err, AuditError};
use crate::event::Event;
use crate::files::{self, Unsafe, UNSAFE_BITS};
use crate::record::{self, GENESIS, MAX_LINE};
use crate::rotate;
use crate::tail::{self, Tail};

/// How a log is opened and rotated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Rotate before a record would make the file larger than this. `None`: never.
    pub rotate_bytes: Option<u64>,
    /// Rotated files kept (`path.1` … `path.keep`); older ones are deleted.
    pub keep: usize,
    /// Mode of files this crate creates. Must not be group- or other-writable.
    pub mode: u32,
    /// Cut off a torn last record (from a crash mid-write) instead of refusing
    /// the file; the next append first records `torn_tail_repaired`.
    pub repair_torn_tail: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rotate_bytes: None,
            keep: 10,
            mode: 0o640,
            repair_torn_tail: false,
        }
    }
}

/// What [`AuditLog::append`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    /// Hex SHA-256 of the record; the chain head after this append.
    pub hash: String,
}

/// An open, append-only, hash-chained log. `Send + Sync`: appends are
/// serialised by an internal lock, so the chain is linear. Only one
/// `AuditLog` (in one process) may write a given file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    opts: Options,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: File,
    /// Bytes in `file` that belong to complete records we know of.
    size: u64,
    next_seq: u64,
    prev: String,
    /// Torn bytes found at open, cut off (and recorded) on the first append.
    torn: Option<Torn>,
    /// Set when the file on disk may no longer match `size`/`prev`.
    poisoned: bool,
}

#[derive(Debug, Clone, Copy)]
struct Torn {
    keep_len: u64,
    bytes: u64,
}

impl AuditLog {
    /// Opens or creates the log at `path` and positions the chain after its
    /// last record (only that record's own hash is checked here; run
    /// [`crate::verify`] for the whole file). A missing or empty file continues
    /// from the last record of `path.1` if there is one: that is what a crash
    /// during rotation leaves behind.
    pub fn open(path: &Path, opts: Options) -> Result<AuditLog, AuditError> {
        if opts.mode & UNSAFE_BITS != 0 || opts.mode & !0o777 != 0 {
            return Err(AuditError::BadMode { mode: opts.mode });
        }
        let file = files::open_or_create(path, opts.mode).map_err(io_err(path, "open"))?;
        match files::check_safe(&file).map_err(io_err(path, "stat"))? {
            Some(Unsafe::NotRegular) => {
                return Err(AuditError::NotRegular {
                    path: path.to_path_buf(),
                })
            }
            Some(Unsafe::Writable { mode }) => {
                return Err(AuditError::Writable {
                    path: path.to_path_buf(),
                    mode,
                })
            }
            None => {}
        }
        let found = tail::read_tail(&file).map_err(io_err(path, "read the last record of"))?;
        let torn = match found.torn_bytes {
            0 => None,
            bytes if opts.repair_torn_tail => Some(Torn {
                keep_len: found.complete_len,
                bytes,
            }),
            bytes => {
                return Err(AuditError::TornTail {
                    path: path.to_path_buf(),
                    bytes,
                })
            }
        };
        let (next_seq, prev) = match &found.last_line {
            Some(line) => continue_after(path, line)?,
            None => continue_from_rotated(path)?,
        };
        let inner = Inner {
            file,
            size: found.complete_len + found.torn_bytes,
            next_seq,
            prev,
            torn,
            poisoned: false,
        };
        Ok(AuditLog {
            path: path.to_path_buf(),
            opts,
            inner: Mutex::new(inner),
        })
    }

    /// Appends one record with the caller's `time` (`YYYY-MM-DDTHH:MM:SS.mmmZ`)
    /// and `event` (anything serde serialises as a JSON object: the gate
    /// writes [`Event`]s; written as serde_json serialises it). The
    /// line goes out in one `write_all`; on error nothing is half-written
    /// (a partial line is cut off again) and the caller must treat the
    /// decision as unrecorded.
    pub fn append<E: Serialize + ?Sized>(
        &self,
        time: &str,
        event: &E,
    ) -> Result<Appended, AuditError> {
        let event = object_json(event)?;
        if !record::is_valid_time(time) {
            return Err(AuditError::BadTime {
                time: time.to_owned(),
            });
        }
        let mut inner = self.lock()?;
        if let Some(torn) = inner.torn {
            inner
                .file
                .set_len(torn.keep_len)
                .map_err(io_err(&self.path, "cut the torn tail of"))?;
            inner.size = torn.keep_len;
            let repaired = object_json(&Event::TornTailRepaired { bytes: torn.bytes })?;
            self.write_record(&mut inner, time, &repaired)?;
            inner.torn = None;
        }
        self.write_record(&mut inner, time, &event)
    }

    /// Flushes written records to stable storage (`fdatasync`).
    pub fn sync(&self) -> Result<(), AuditError> {
        let inner = self.lock()?;
        inner.file.sync_data().map_err(io_err(&self.path, "sync"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The chain head: the last record's `seq` and `hash`, `None` before
    /// the first record ever written (what a checkpoint signs).
    pub fn head(&self) -> Result<Option<Appended>, AuditError> {
        let inner = self.lock()?;
        Ok(inner
            .next_seq
            .checked_sub(1)
            .filter(|s| *s > 0)
            .map(|seq| Appended {
                seq,
                hash: inner.prev.clone(),
            }))
    }

    /// Rotated files this log keeps, `None` when it never rotates.
    pub fn rotated_kept(&self) -> Option<u64> {
        self.opts
            .rotate_bytes
            .map(|_| u64::try_from(self.opts.keep).unwrap_or(u64::MAX))
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, AuditError> {
        let poisoned = || AuditError::Poisoned {
            path: self.path.clone(),
        };
        let inner = self.inner.lock().map_err(|_| poisoned())?;
        if inner.poisoned {
            return Err(poisoned());
        }
        Ok(inner)
    }

    fn write_record(
        &self,
        inner: &mut Inner,
        time: &str,
        event: &[u8],
    ) -> Result<Appended, AuditError> {
        let mut encoded = record::encode(inner.next_seq, time, &inner.prev, event)?;
        if encoded.line.len() > MAX_LINE {
            return Err(AuditError::TooLarge);
        }
        if self.should_rotate(inner.size, encoded.line.len()) {
            self.rotate(inner, time)?;
            encoded = record::encode(inner.next_seq, time, &inner.prev, event)?;
        }
        self.write_line(inner, encoded)
    }

    fn should_rotate(&self, size: u64, line_len: usize) -> bool {
        let Some(limit) = self.opts.rotate_bytes else {
            return false;
        };
        let len = u64::try_from(line_len).unwrap_or(u64::MAX);
        size > 0 && size.saturating_add(len) > limit
    }

    fn write_line(
        &self,
        inner: &mut Inner,
        encoded: record::Encoded,
    ) -> Result<Appended, AuditError> {
        if encoded.line.len() > MAX_LINE {
            return Err(AuditError::TooLarge);
        }
        let seq = inner.next_seq;
        let next_seq = seq.checked_add(1).ok_or(AuditError::SeqExhausted)?;
        if let Err(source) = inner.file.write_all(&encoded.line) {
            // A partial line would tear the chain for every later record.
            if inner.file.set_len(inner.size).is_err() {
                inner.poisoned = true;
            }
            return Err(AuditError::Io {
                path: self.path.clone(),
                op: "append to",
                source,
            });
        }
        inner.size += u64::try_from(encoded.line.len()).unwrap_or(u64::MAX);
        inner.next_seq = next_seq;
        inner.prev.clone_from(&encoded.hash);
        Ok(Appended {
            seq,
            hash: encoded.hash,
        })
    }

    /// Moves the full file aside and starts a new one whose first record
    /// links back to the old file's last record.
    fn rotate(&self, inner: &mut Inner, time: &str) -> Result<(), AuditError> {
        rotate::shift_rotated(&self.path, self.opts.keep)
            .map_err(io_err(&self.path, "shift rotated files of"))?;
        let previous_file = if self.opts.keep > 0 {
            let target = rotate::numbered(&self.path, 1);
            std::fs::rename(&self.path, &target).map_err(io_err(&self.path, "rotate"))?;
            target.file_name().map(|n| n.to_string_lossy().into_owned())
        } else {
            std::fs::remove_file(&self.path).map_err(io_err(&self.path, "rotate"))?;
            None
        };
        // From here our descriptor no longer names `path`.
        let file = match files::create_new(&self.path, self.opts.mode) {
            Ok(file) => file,
            Err(source) => {
                inner.poisoned = true;
                return Err(AuditError::Io {
                    path: self.path.clone(),
                    op: "create",
                    source,
                });
            }
        };
        inner.file = file;
        inner.size = 0;
        let rotated = object_json(&Event::Rotated {
            previous_file,
            previous_last_seq: inner.next_seq.saturating_sub(1),
        })?;
        let encoded = record::encode(inner.next_seq, time, &inner.prev, &rotated)?;
        self.write_line(inner, encoded).map(|_| ())
    }
}

/// `event` as compact JSON, which must be an object (serde_json writes no
/// newline, so the record stays one line).
fn object_json<E: Serialize + ?Sized>(event: &E) -> Result<Vec<u8>, AuditError> {
    let bytes = serde_json::to_vec(event)?;
    if bytes.first() != Some(&b'{') {
        return Err(AuditError::EventNotObject);
    }
    Ok(bytes)
}

/// Chain position after `line`, the last complete line of `path`.
fn continue_after(path: &Path, line: &[u8]) -> Result<(u64, String), AuditError> {
    let rec = record::check(line).map_err(|reason| AuditError::BadLastRecord {
        path: path.to_path_buf(),
        reason,
    })?;
    let next = rec.seq.checked_add(1).ok_or(AuditError::SeqExhausted)?;
    Ok((next, rec.hash))
}

/// Chain position for an existing but empty `path`: after `path.1` if it
/// exists, else a fresh chain.
fn continue_from_rotated(path: &Path) -> Result<(u64, String), AuditError> {
    let older = rotate::numbered(path, 1);
    let file = match files::open_read(&older) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((1, GENESIS.to_owned())),
        Err(e) => {
            return Err(AuditError::Io {
                path: older,
                op: "open",
                source: e,
            })
        }
    };
    match tail::read_tail(&file).map_err(io_err(&older, "read the last record of"))? {
        Tail {
            last_line: Some(line),
            ..
        } => continue_after(&older, &line),
        Tail {
            last_line: None, ..
        } => Ok((1, GENESIS.to_owned())),
    }
}

//! Errors from opening and writing a log. None of them carries event contents.

use std::io;
use std::path::PathBuf;

use crate::record::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log `{path}`: cannot {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("audit log `{path}` is writable by group or others (mode {mode:04o}); fix it with `chmod go-w`")]
    Writable { path: PathBuf, mode: u32 },
    #[error("audit log `{path}` is not a regular file")]
    NotRegular { path: PathBuf },
    #[error(
        "audit log mode `{mode:04o}` would let group or others write, or has bits beyond 0777"
    )]
    BadMode { mode: u32 },
    #[error("audit log `{path}` ends with a torn record ({bytes} bytes without a newline); open it with `repair_torn_tail` to cut them off and record that")]
    TornTail { path: PathBuf, bytes: u64 },
    #[error("audit log `{path}`: last record is bad, refusing to continue its chain: {reason}")]
    BadLastRecord { path: PathBuf, reason: RecordError },
    #[error("audit event must be a JSON object")]
    EventNotObject,
    #[error(
        "audit time `{time}` is not RFC 3339 UTC with milliseconds (`YYYY-MM-DDTHH:MM:SS.mmmZ`)"
    )]
    BadTime { time: String },
    #[error("audit record would be longer than 1 MiB")]
    TooLarge,
    #[error("audit event cannot be serialised: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("audit sequence number exhausted")]
    SeqExhausted,
    #[error("audit log `{path}` is unusable after a failed write or rotation; reopen it")]
    Poisoned { path: PathBuf },
}

/// Adapter for `map_err`: an I/O failure during `op` on `path`.
pub(crate) fn io_err<'a>(
    path: &'a std::path::Path,
    op: &'static str,
) -> impl FnOnce(io::Error) -> AuditError + 'a {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

//! A sink's durable position in the audit log: after which record its
//! collector has everything. Written atomically (a new file, fsynced, then
//! renamed over the old one, then the directory fsynced), mode 0600; a
//! kill -9 at any moment leaves either the old cursor or the new one, so
//! delivery restarts at or before the first record not yet delivered.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Version of the cursor file's shape.
const VERSION: u32 = 1;

/// Where a sink stands: the record it delivered last and where that
/// record's line ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    pub version: u32,
    /// Name of the file, for people (`audit.log`, `audit.log.2`): rotation
    /// renames files, so the file is found again by `dev` and `ino`.
    pub file: String,
    pub dev: u64,
    pub ino: u64,
    /// Byte offset just past the delivered record's newline.
    pub offset: u64,
    /// `seq` and `hash` of the delivered record.
    pub seq: u64,
    pub hash: String,
}

impl Cursor {
    pub fn new(file: String, dev: u64, ino: u64, offset: u64, seq: u64, hash: String) -> Cursor {
        Cursor {
            version: VERSION,
            file,
            dev,
            ino,
            offset,
            seq,
            hash,
        }
    }
}

/// Why a cursor file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    #[error("cannot {op} the export cursor `{path}`: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("the export cursor `{path}` is not one this gatehouse writes: {reason}")]
    Malformed { path: PathBuf, reason: String },
}

/// The cursor file of one sink in `state_dir`.
pub fn path_for(state_dir: &Path, sink: &str) -> PathBuf {
    state_dir.join(format!("export-{sink}.cursor"))
}

/// Reads a cursor; `None` if the sink has never delivered anything.
pub fn load(path: &Path) -> Result<Option<Cursor>, CursorError> {
    let io = |op| {
        move |source| CursorError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("read")(e)),
    };
    let cursor: Cursor = serde_json::from_slice(&text).map_err(|e| CursorError::Malformed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if cursor.version != VERSION {
        return Err(CursorError::Malformed {
            path: path.to_path_buf(),
            reason: format!(
                "version {} (this gatehouse writes {VERSION})",
                cursor.version
            ),
        });
    }
    Ok(Some(cursor))
}

/// Replaces the cursor file atomically.
pub fn store(path: &Path, cursor: &Cursor) -> Result<(), CursorError> {
    let io = |op| {
        move |source| CursorError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".new");
    let tmp = PathBuf::from(tmp_name);
    let bytes = serde_json::to_vec(cursor).map_err(|e| CursorError::Malformed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    // A leftover from a crash between create and rename.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove the leftover of")(e)),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&tmp)
        .map_err(io("create"))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io("set the mode of"))?;
    file.write_all(&bytes).map_err(io("write"))?;
    file.write_all(b"\n").map_err(io("write"))?;
    file.sync_all().map_err(io("sync"))?;
    std::fs::rename(&tmp, path).map_err(io("replace"))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync the directory of"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn round_trip_mode_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "siem");
        assert_eq!(load(&path).unwrap(), None);
        let a = Cursor::new("audit.log".into(), 1, 2, 300, 7, "ab".repeat(32));
        store(&path, &a).unwrap();
        assert_eq!(load(&path).unwrap(), Some(a.clone()));
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let b = Cursor {
            seq: 8,
            offset: 400,
            ..a
        };
        // A leftover temporary file from a crash does not stop the next store.
        std::fs::write(dir.path().join("export-siem.cursor.new"), b"junk").unwrap();
        store(&path, &b).unwrap();
        assert_eq!(load(&path).unwrap(), Some(b));
    }

    #[test]
    fn refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "x");
        std::fs::write(&path, b"{\"version\":1}").unwrap();
        assert!(matches!(load(&path), Err(CursorError::Malformed { .. })));
    }
}

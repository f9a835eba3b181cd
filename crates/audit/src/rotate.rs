//! Rotation file names and the rename shuffle: `log` → `log.1` → `log.2` …

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

/// Far more rotated files than any configuration keeps; bounds directory scans.
const MAX_FILES: usize = 10_000;

/// `path.n`, e.g. `audit.log.2`.
pub(crate) fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn exists(path: &Path) -> io::Result<bool> {
    path.try_exists()
}

/// The files of a rotation set, oldest first: `path.N`, …, `path.1`, `path`.
/// Numbering must be contiguous from 1; a file past a gap is not part of the set.
pub fn rotation_set(path: &Path) -> io::Result<Vec<PathBuf>> {
    let mut set = Vec::new();
    for n in 1..=MAX_FILES {
        let candidate = numbered(path, n);
        if !exists(&candidate)? {
            break;
        }
        set.push(candidate);
    }
    set.reverse();
    if exists(path)? {
        set.push(path.to_path_buf());
    } else if set.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no audit log at this path",
        ));
    }
    Ok(set)
}

/// Makes room for `path.1`: drops `path.keep` and anything older, then moves
/// `path.k` to `path.k+1` from the oldest down. `path` itself is not touched.
pub(crate) fn shift_rotated(path: &Path, keep: usize) -> io::Result<()> {
    let mut n = keep.max(1);
    while n <= MAX_FILES && exists(&numbered(path, n))? {
        std::fs::remove_file(numbered(path, n))?;
        n += 1;
    }
    for n in (1..keep).rev() {
        let from = numbered(path, n);
        if exists(&from)? {
            std::fs::rename(&from, numbered(path, n + 1))?;
        }
    }
    Ok(())
}

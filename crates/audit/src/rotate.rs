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

/// Every file of a rotation set on disk, including any past a hole in the
/// numbering, and the holes: what `verify --against` needs to tell a
/// deleted rotated file from the end of the retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Oldest first: `path.N` … `path.1`, `path`.
    pub files: Vec<PathBuf>,
    /// Each missing `path.k` with the older `path.m` (m > k) that exists.
    pub missing: Vec<(PathBuf, PathBuf)>,
}

pub(crate) fn scan(path: &Path) -> io::Result<Scan> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = format!("{name}.");
    let mut numbers = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(digits) = file.strip_prefix(&prefix) else {
            continue;
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        match digits.parse::<usize>() {
            Ok(n) if (1..=MAX_FILES).contains(&n) && !digits.starts_with('0') => numbers.push(n),
            _ => {}
        }
    }
    numbers.sort_unstable();
    let oldest = numbers.last().copied().unwrap_or(0);
    let mut missing = Vec::new();
    for k in 1..oldest {
        if numbers.binary_search(&k).is_err() {
            let older = numbers
                .iter()
                .find(|n| **n > k)
                .map_or_else(|| numbered(path, oldest), |n| numbered(path, *n));
            missing.push((numbered(path, k), older));
        }
    }
    let mut files: Vec<PathBuf> = numbers.iter().rev().map(|n| numbered(path, *n)).collect();
    if exists(path)? {
        files.push(path.to_path_buf());
    } else if files.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no audit log at this path",
        ));
    }
    Ok(Scan { files, missing })
}

//! Executable identity: which file is actually mapped, and its content hash.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;

use sha2::{Digest, Sha256};

/// Identity of a file's content as the kernel sees it; a changed binary (rewrite, replace,
/// copy) gets a different `FileId`, so hashes can be cached by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    /// The file's owner (for `@Principal[exe owner uid]`).
    pub uid: u32,
}

impl FileId {
    /// `fstat` of an open file.
    pub fn of(fd: impl AsFd) -> io::Result<Self> {
        Ok(Self::from_stat(&rustix::fs::fstat(fd)?))
    }

    pub(crate) fn from_stat(st: &rustix::fs::Stat) -> Self {
        let ns = |s: i64, n: u64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Self {
            dev: st.st_dev,
            ino: st.st_ino,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime_ns: ns(st.st_mtime, st.st_mtime_nsec),
            ctime_ns: ns(st.st_ctime, st.st_ctime_nsec),
            uid: st.st_uid,
        }
    }

    /// Same file (device and inode), whatever its timestamps.
    pub fn same_file(&self, other: &FileId) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// Lowercase hex SHA-256 of everything readable from `file` (from its current offset).
pub fn hash_file(file: &mut File) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests;

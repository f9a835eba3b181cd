//! Opening log files: never through a symlink, created with an exact mode,
//! and refused if anyone but the owner (and root) could rewrite them.

use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// Permission bits that would let group or others edit the log.
pub(crate) const UNSAFE_BITS: u32 = 0o022;

/// Creates `path` with exactly `mode` (umask does not apply), failing if it exists.
pub(crate) fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let flags = OFlags::RDWR
        | OFlags::APPEND
        | OFlags::CREATE
        | OFlags::EXCL
        | OFlags::NOFOLLOW
        | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::from_raw_mode(mode))?;
    let file = File::from(fd);
    // The umask may have narrowed the mode; the operator asked for this one.
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(file)
}

/// Opens `path` for appending, creating it with `mode` if it does not exist.
/// An existing file keeps its mode: it is never widened here.
pub(crate) fn open_or_create(path: &Path, mode: u32) -> io::Result<File> {
    match create_new(path, mode) {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let flags = OFlags::RDWR | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = rustix::fs::open(path, flags, Mode::empty())?;
            Ok(File::from(fd))
        }
        Err(e) => Err(e),
    }
}

/// Opens a file read-only without following a symlink.
pub(crate) fn open_read(path: &Path) -> io::Result<File> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// What is wrong with an opened log file, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsafe {
    NotRegular,
    Writable { mode: u32 },
}

/// Checks the file behind the descriptor (not the path, which could change).
pub(crate) fn check_safe(file: &File) -> io::Result<Option<Unsafe>> {
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Ok(Some(Unsafe::NotRegular));
    }
    let mode = meta.mode() & 0o7777;
    if mode & UNSAFE_BITS != 0 {
        return Ok(Some(Unsafe::Writable { mode }));
    }
    Ok(None)
}

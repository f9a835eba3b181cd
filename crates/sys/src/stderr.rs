//! Which file stderr is: systemd names the journal stream it connected a
//! service's stderr to in `JOURNAL_STREAM` (`DEVICE:INODE`), and a process
//! logs natively to the journal only when its stderr still is that stream
//! (not redirected by a wrapper or a shell).

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

/// The (device, inode) of the file open on fd 2, or `None` if fd 2 is closed.
#[must_use]
pub fn stderr_identity() -> Option<(u64, u64)> {
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

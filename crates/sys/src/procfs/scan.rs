//! Listing `/proc`: candidate pids for the socket → process search.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Every process id under `proc_root` (thread ids are not listed by procfs).
pub fn list_pids(proc_root: &Path) -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        if let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// Processes whose `/proc/PID` directory is owned by `uid` (their effective uid; a
/// non-dumpable process shows as root and is left to the full scan).
pub fn pids_of_uid(proc_root: &Path, uid: u32) -> io::Result<Vec<u32>> {
    let mut pids = Vec::new();
    for entry in fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if entry.metadata().is_ok_and(|m| m.uid() == uid) {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// The newest pids: `window` ids at and below `/proc/sys/kernel/ns_last_pid`, newest first.
/// (Wrap-around at `pid_max` is ignored: the later strategies still find those.)
pub fn newest_pids(proc_root: &Path, window: u32) -> io::Result<Vec<u32>> {
    let text = fs::read_to_string(proc_root.join("sys/kernel/ns_last_pid"))?;
    let last: u32 = text
        .trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "ns_last_pid is not a number"))?;
    let first = last.saturating_sub(window).saturating_add(1).max(1);
    Ok((first..=last).rev().collect())
}

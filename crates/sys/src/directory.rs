//! Account names from `/etc/passwd` and `/etc/group`, re-read when a file changes.
//!
//! Only local files are consulted (no NSS): the daemon must not block on a directory
//! service on the request path, and policy names local accounts.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

/// Parses `name:password:ID:...` lines (passwd and group share the first three fields)
/// into id → name; the first entry for an id wins, malformed lines are skipped.
pub fn parse_id_names(text: &str) -> HashMap<u32, String> {
    let mut names = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let Ok(id) = id.parse::<u32>() else { continue };
        if name.is_empty() {
            continue;
        }
        names.entry(id).or_insert_with(|| name.to_owned());
    }
    names
}

/// A parsed file and the (mtime, size) it was parsed at.
#[derive(Debug)]
struct Snapshot {
    stamp: (SystemTime, u64),
    names: HashMap<u32, String>,
}

/// One id → name file, re-parsed when its modification time or size changes.
#[derive(Debug)]
struct CachedFile {
    path: PathBuf,
    state: Mutex<Option<Snapshot>>,
}

impl CachedFile {
    fn new(path: PathBuf) -> Self {
        Self {
            path,
            state: Mutex::new(None),
        }
    }

    fn name(&self, id: u32) -> Option<String> {
        let meta = std::fs::metadata(&self.path).ok()?;
        let stamp = (meta.modified().ok()?, meta.len());
        let mut state = self.state.lock().ok()?;
        let fresh = state.as_ref().is_some_and(|snap| snap.stamp == stamp);
        if !fresh {
            let text = std::fs::read_to_string(&self.path).ok()?;
            *state = Some(Snapshot {
                stamp,
                names: parse_id_names(&text),
            });
        }
        state.as_ref().and_then(|snap| snap.names.get(&id).cloned())
    }
}

/// User and group names from a passwd/group pair.
#[derive(Debug)]
pub struct Directory {
    passwd: CachedFile,
    group: CachedFile,
}

impl Directory {
    pub fn new(passwd: &Path, group: &Path) -> Self {
        Self {
            passwd: CachedFile::new(passwd.to_owned()),
            group: CachedFile::new(group.to_owned()),
        }
    }

    /// The system's `/etc/passwd` and `/etc/group`.
    pub fn system() -> &'static Directory {
        static SYSTEM: OnceLock<Directory> = OnceLock::new();
        SYSTEM.get_or_init(|| Directory::new(Path::new("/etc/passwd"), Path::new("/etc/group")))
    }

    pub fn user_name(&self, uid: u32) -> Option<String> {
        self.passwd.name(uid)
    }

    pub fn group_name(&self, gid: u32) -> Option<String> {
        self.group.name(gid)
    }
}

/// Name of `uid` in `/etc/passwd`.
pub fn user_name(uid: u32) -> Option<String> {
    Directory::system().user_name(uid)
}

/// Name of `gid` in `/etc/group`.
pub fn group_name(gid: u32) -> Option<String> {
    Directory::system().group_name(gid)
}

#[cfg(test)]
mod tests;

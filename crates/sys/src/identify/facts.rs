//! Reading one holder's facts through its `/proc/PID` directory fd.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

use super::{Needs, ProcessFacts};
use crate::cache::Bounded;
use crate::exe::{hash_file, FileId};
use crate::procfs::cgroup::{classify_cgroup, parse_cgroup_file};
use crate::procfs::status::parse_status;
use crate::procfs::ProcDir;

/// A holder's facts plus its parent, for the holder search.
#[derive(Debug)]
pub(super) struct Holder {
    pub facts: ProcessFacts,
    pub ppid: u32,
    /// The fd through which it held the socket when last confirmed (the next lookup of
    /// this pid tries it first).
    pub fd: u32,
}

/// Reads the facts `needs` asks for, then confirms fd `fd` still is the socket.
/// `Ok(None)` when the fd no longer is the socket or the directory is a thread's.
pub(super) fn read_holder(
    dir: &ProcDir,
    fd: u32,
    inode: u64,
    needs: Needs,
    hashes: &Mutex<Bounded<FileId, String>>,
) -> io::Result<Option<Holder>> {
    let Some(mut holder) = read_process(dir, needs, hashes)? else {
        return Ok(None);
    };
    // The reads went through the directory fd; this proves the process behind it
    // still holds the socket, so the facts belong to a holder. The fd found may have been
    // a moment's copy (a shell's `<&3` redirection dups the socket onto fd 0 and restores
    // it after), so another fd that still is the socket counts too.
    holder.fd = if dir.fd_is_socket(fd, inode)? {
        fd
    } else {
        match dir.find_socket_fd(inode)? {
            Some(other) => other,
            None => return Ok(None),
        }
    };
    Ok(Some(holder))
}

/// Reads the facts `needs` asks for through `dir`. `Ok(None)` when the directory is a
/// thread's rather than a process's, or the process has exited (a zombie holds nothing).
pub(super) fn read_process(
    dir: &ProcDir,
    needs: Needs,
    hashes: &Mutex<Bounded<FileId, String>>,
) -> io::Result<Option<Holder>> {
    let status = parse_status(&dir.read_single_record("status")?)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unparsable status"))?;
    if status.tgid != dir.pid() || status.zombie {
        return Ok(None);
    }
    let mut facts = ProcessFacts {
        // `Name:` of `status` is `comm` (escaped): no read of its own.
        comm: Some(status.name).filter(|n| !n.is_empty()),
        ..ProcessFacts::with_ids(
            dir.pid(),
            status.ruid,
            status.euid,
            status.rgid,
            status.egid,
            status.groups,
        )
    };
    if needs.exe || needs.exe_hash {
        read_exe(dir, needs.exe_hash, hashes, &mut facts);
    }
    if needs.cgroup {
        if let Some(path) = dir
            .read_single_record("cgroup")
            .ok()
            .as_deref()
            .and_then(parse_cgroup_file)
        {
            let cg = classify_cgroup(&path);
            facts.cgroup = Some(cg.path);
            facts.system_unit = cg.system_unit;
            facts.user_unit = cg.user_unit;
            facts.container_id = cg.container_id;
        }
    }
    Ok(Some(Holder {
        facts,
        ppid: status.ppid,
        // Not known here: `read_holder` sets the fd it confirmed.
        fd: 0,
    }))
}

/// The gate's own user namespace (`user:[INODE]`), read once.
fn own_user_namespace() -> Option<&'static str> {
    static OWN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    OWN.get_or_init(|| {
        std::fs::read_link("/proc/self/ns/user")
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    })
    .as_deref()
}

/// Kernel threads and processes we may not inspect have no readable `exe`; the facts then
/// stay `None` and unverified, which a policy on executables denies.
///
/// Nor is the executable of a process in another user namespace taken: holding
/// `CAP_SYS_ADMIN` or `CAP_CHECKPOINT_RESTORE` there (which any user gets by making one),
/// it can point its own `/proc/PID/exe` at any file with `prctl(PR_SET_MM_MAP)` without
/// running it. Its path is kept for the audit line, unverified, with no file identity
/// and no hash.
fn read_exe(
    dir: &ProcDir,
    want_hash: bool,
    hashes: &Mutex<Bounded<FileId, String>>,
    facts: &mut ProcessFacts,
) {
    facts.exe_path = dir.readlink("exe").ok();
    let same_user_namespace = own_user_namespace()
        .is_some_and(|own| dir.readlink("ns/user").is_ok_and(|theirs| theirs == own));
    if !same_user_namespace {
        return;
    }
    let Ok(id) = dir.file_id("exe") else { return };
    facts.exe_file = Some(id);
    facts.exe_path_verified = facts
        .exe_path
        .as_deref()
        .is_some_and(|p| path_is_file(p, &id));
    if !want_hash {
        return;
    }
    let cached = hashes.lock().ok().and_then(|c| c.get(&id));
    if let Some(hash) = cached {
        facts.exe_sha256 = Some(hash);
        return;
    }
    // Opened only to hash, and only if it still is the file identified above (an
    // `execve` in between would make it another).
    let Ok(mut file) = dir.open_file("exe") else {
        return;
    };
    if FileId::of(&file).ok() != Some(id) {
        return;
    }
    let Ok(hash) = hash_file(&mut file) else {
        return;
    };
    // Cache only if the file did not change while being hashed.
    if FileId::of(&file).is_ok_and(|after| after == id) {
        if let Ok(mut cache) = hashes.lock() {
            cache.insert(id, hash.clone());
        }
    }
    facts.exe_sha256 = Some(hash);
}

/// `path`, resolved in our own mount namespace, is the very file `id` names.
fn path_is_file(path: &str, id: &FileId) -> bool {
    if path.ends_with(" (deleted)") || !path.starts_with('/') {
        return false;
    }
    std::fs::metadata(path).is_ok_and(|m| m.dev() == id.dev && m.ino() == id.ino)
}

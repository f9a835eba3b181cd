//! Is a file safe to trust (the policy file)? Only if nobody untrusted could have written
//! it or swapped anything on the way to it.

use std::ffi::OsString;
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Linux's own limit on symlinks followed in one lookup.
const MAX_LINKS: usize = 40;

/// Why a path cannot be trusted, naming the offending path.
#[derive(Debug, thiserror::Error)]
#[error("untrusted path `{}`: {reason}", path.display())]
pub struct UntrustedPath {
    pub path: PathBuf,
    pub reason: UntrustedReason,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UntrustedReason {
    #[error("owned by uid {0}, which is not trusted")]
    Owner(u32),
    #[error("writable by its group")]
    GroupWritable,
    #[error("writable by everyone")]
    WorldWritable,
    #[error("not an absolute path")]
    NotAbsolute,
    #[error("more than {MAX_LINKS} symbolic links")]
    TooManyLinks,
    #[error("cannot be examined ({0})")]
    Io(io::ErrorKind),
}

/// Checks `path`, every directory above it and every symlink on the way (resolved
/// component by component, as the kernel would): each must be owned by a uid in
/// `trusted_uids` and not group- or world-writable. A writable directory with the sticky
/// bit (like `/tmp`) is accepted on the way, because the next component — itself required
/// to be trusted-owned — cannot be replaced by others; it is never accepted as the target.
pub fn check_trusted_path(path: &Path, trusted_uids: &[u32]) -> Result<(), UntrustedPath> {
    let fail = |p: &Path, reason| UntrustedPath {
        path: p.to_owned(),
        reason,
    };
    if !path.is_absolute() {
        return Err(fail(path, UntrustedReason::NotAbsolute));
    }
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, path);
    let mut current = PathBuf::from("/");
    let root = std::fs::symlink_metadata(&current)
        .map_err(|e| fail(&current, UntrustedReason::Io(e.kind())))?;
    check_entry(&root, trusted_uids, !pending.is_empty()).map_err(|r| fail(&current, r))?;

    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            current.pop();
            continue;
        }
        let candidate = current.join(&name);
        let meta = std::fs::symlink_metadata(&candidate)
            .map_err(|e| fail(&candidate, UntrustedReason::Io(e.kind())))?;
        if meta.file_type().is_symlink() {
            if !trusted_uids.contains(&meta.uid()) {
                return Err(fail(&candidate, UntrustedReason::Owner(meta.uid())));
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(fail(&candidate, UntrustedReason::TooManyLinks));
            }
            let target = std::fs::read_link(&candidate)
                .map_err(|e| fail(&candidate, UntrustedReason::Io(e.kind())))?;
            if target.is_absolute() {
                current = PathBuf::from("/");
            }
            push_components(&mut pending, &target);
            continue;
        }
        check_entry(&meta, trusted_uids, !pending.is_empty()).map_err(|r| fail(&candidate, r))?;
        current = candidate;
    }
    Ok(())
}

/// Pushes the components of `path` so that popping yields them in order; `.` and the root
/// are dropped, `..` is kept for the walk to apply after resolving what precedes it.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(parts.into_iter().rev());
}

fn check_entry(
    meta: &Metadata,
    trusted_uids: &[u32],
    has_next: bool,
) -> Result<(), UntrustedReason> {
    if !trusted_uids.contains(&meta.uid()) {
        return Err(UntrustedReason::Owner(meta.uid()));
    }
    let mode = meta.permissions().mode();
    let sticky_passage = meta.is_dir() && mode & 0o1000 != 0 && has_next;
    if mode & 0o002 != 0 && !sticky_passage {
        return Err(UntrustedReason::WorldWritable);
    }
    if mode & 0o020 != 0 && !sticky_passage {
        return Err(UntrustedReason::GroupWritable);
    }
    Ok(())
}

#[cfg(test)]
mod tests;

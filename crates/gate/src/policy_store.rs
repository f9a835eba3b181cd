//! The policy in force, and how a new one replaces it.
//!
//! A reload parses the whole file first and swaps the result in one step;
//! a file that is invalid or untrusted changes nothing.

use gatehouse_policy::{Diagnostics, Policy};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

#[derive(Debug)]
pub enum LoadError {
    /// The file, a directory above it or a link on the way could be changed
    /// by someone other than the trusted owners.
    Untrusted(String),
    Read(PathBuf, std::io::Error),
    Invalid(Diagnostics),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Untrusted(why) => write!(f, "refusing the policy: {why}"),
            LoadError::Read(p, e) => write!(f, "cannot read policy `{}`: {e}", p.display()),
            LoadError::Invalid(d) => write!(f, "{d}"),
        }
    }
}

impl std::error::Error for LoadError {}

impl LoadError {
    /// One line for audit records and logs.
    pub fn summary(&self) -> String {
        match self {
            LoadError::Invalid(d) => format!("policy has {} error(s)", d.error_count()),
            other => other.to_string(),
        }
    }
}

pub struct PolicyStore {
    path: PathBuf,
    trusted_uids: Vec<u32>,
    current: RwLock<Arc<Policy>>,
}

impl fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Check, read and parse a policy file.
pub fn load_file(path: &Path, trusted_uids: &[u32]) -> Result<Policy, LoadError> {
    gatehouse_sys::check_trusted_path(path, trusted_uids)
        .map_err(|e| LoadError::Untrusted(e.to_string()))?;
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::Read(path.to_path_buf(), e))?;
    gatehouse_policy::parse(&path.display().to_string(), &text).map_err(LoadError::Invalid)
}

impl PolicyStore {
    /// A relative path is taken from the current directory once, here, so
    /// every later reload reads (and trust-checks) the same file.
    pub fn load(path: &Path, trusted_uids: Vec<u32>) -> Result<Self, LoadError> {
        let path = std::path::absolute(path).map_err(|e| LoadError::Read(path.to_path_buf(), e))?;
        let policy = load_file(&path, &trusted_uids)?;
        Ok(PolicyStore {
            path,
            trusted_uids,
            current: RwLock::new(Arc::new(policy)),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn current(&self) -> Arc<Policy> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            // A writer never panics while holding the lock, but if it did the
            // value inside is still a whole policy.
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Parse the file again; on success swap it in, on failure keep the old.
    pub fn reload(&self) -> Result<Arc<Policy>, LoadError> {
        let policy = Arc::new(load_file(&self.path, &self.trusted_uids)?);
        match self.current.write() {
            Ok(mut guard) => *guard = Arc::clone(&policy),
            Err(poisoned) => *poisoned.into_inner() = Arc::clone(&policy),
        }
        Ok(policy)
    }
}

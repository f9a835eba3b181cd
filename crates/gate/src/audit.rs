//! The gate's handle on its audit log: appends, and after a failed append
//! (a full disk, an I/O error) one reopen, so the log recovers by itself
//! once the cause is gone. Until then every request is refused.

use gatehouse_audit::{AuditError, AuditLog, Options};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

pub(crate) struct Audit {
    path: PathBuf,
    options: Options,
    log: RwLock<AuditLog>,
}

impl Audit {
    pub(crate) fn open(path: &Path, options: Options) -> Result<Audit, AuditError> {
        let log = AuditLog::open(path, options.clone())?;
        Ok(Audit {
            path: path.to_path_buf(),
            options,
            log: RwLock::new(log),
        })
    }

    pub(crate) fn append(
        &self,
        time: &str,
        event: &gatehouse_audit::Event,
    ) -> Result<(), AuditError> {
        let first = match self.log.read() {
            Ok(log) => log.append(time, event).map(|_| ()),
            Err(poisoned) => poisoned.into_inner().append(time, event).map(|_| ()),
        };
        if first.is_ok() {
            return first;
        }
        // Reopen under the write lock, so no other append runs meanwhile; a
        // torn last line left by the failed write is cut and recorded.
        let mut guard = match self.log.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let options = Options {
            repair_torn_tail: true,
            ..self.options.clone()
        };
        let reopened = AuditLog::open(&self.path, options)?;
        let result = reopened.append(time, event).map(|_| ());
        *guard = reopened;
        result
    }
}

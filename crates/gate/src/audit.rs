//! The gate's handle on its audit log: appends, and after a failed append
//! (a full disk, an I/O error) one reopen, so the log recovers by itself
//! once the cause is gone. Until then every request is refused.

use gatehouse_audit::{Appended, AuditError, AuditLog, Options};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

pub(crate) struct Audit {
    path: PathBuf,
    options: Options,
    log: RwLock<AuditLog>,
    /// The last record written by this gate (`gatehouse status`).
    head: Mutex<Option<Appended>>,
    failing: AtomicBool,
}

impl Audit {
    pub(crate) fn open(path: &Path, options: Options) -> Result<Audit, AuditError> {
        let log = AuditLog::open(path, options.clone())?;
        Ok(Audit {
            path: path.to_path_buf(),
            options,
            log: RwLock::new(log),
            head: Mutex::new(None),
            failing: AtomicBool::new(false),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Sequence number and hash of the last record this gate wrote.
    pub(crate) fn head(&self) -> Option<Appended> {
        self.head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn append(
        &self,
        time: &str,
        event: &gatehouse_audit::Event,
    ) -> Result<(), AuditError> {
        self.append_record(time, event).map(|_| ())
    }

    /// The exact chain head of the log (not [`Audit::head`], which racing
    /// appends may leave a record behind).
    pub(crate) fn chain_head(&self) -> Result<Option<Appended>, AuditError> {
        match self.log.read() {
            Ok(log) => log.head(),
            Err(poisoned) => poisoned.into_inner().head(),
        }
    }

    /// Rotated files kept, `None` when the log never rotates.
    pub(crate) fn rotated_kept(&self) -> Option<u64> {
        self.options
            .rotate_bytes
            .map(|_| u64::try_from(self.options.keep).unwrap_or(u64::MAX))
    }

    /// Like [`Audit::append`], saying where the record went.
    pub(crate) fn append_record(
        &self,
        time: &str,
        event: &gatehouse_audit::Event,
    ) -> Result<Appended, AuditError> {
        let result = self.append_or_reopen(time, event);
        match result {
            Ok(appended) => {
                crate::metrics::audit_written();
                self.failing.store(false, Ordering::Relaxed);
                let mut head = self
                    .head
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // Racing appends may land here out of order; a status
                // shows a recent head, `audit verify` the exact chain.
                *head = Some(appended.clone());
                Ok(appended)
            }
            Err(e) => {
                crate::metrics::audit_failed();
                self.failing.store(true, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    fn append_or_reopen(
        &self,
        time: &str,
        event: &gatehouse_audit::Event,
    ) -> Result<Appended, AuditError> {
        let first = match self.log.read() {
            Ok(log) => log.append(time, event),
            Err(poisoned) => poisoned.into_inner().append(time, event),
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
        let result = reopened.append(time, event);
        *guard = reopened;
        result
    }
}

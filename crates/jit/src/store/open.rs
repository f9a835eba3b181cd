//! Opening the store file: who may read it, SQLite's settings, the schema.
//!
//! The file holds who asked for which access and why, so it is created 0600
//! by us, not by SQLite (which would apply the umask to 0644), and an
//! existing file anyone else could read or write is refused rather than
//! silently fixed: someone made it that way, and an operator should know.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::{StoreError, SCHEMA_VERSION};

/// The schema, version 1. Requests carry CHECKs for the state machine's
/// invariants, so even a bug here cannot store an active grant without its
/// times. Events are the audit outbox; `outbox.audited_seq` is how far the
/// audit log has copied them (AUTOINCREMENT: a seq is never reused).
const SCHEMA_V1: &str = "
CREATE TABLE requests (
    id              TEXT PRIMARY KEY NOT NULL CHECK (id GLOB 'jit-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'),
    kind            TEXT NOT NULL CHECK (kind IN ('role', 'port')),
    requester_uid   INTEGER,
    requester_name  TEXT NOT NULL,
    role            TEXT,
    assignment      TEXT,
    identity        TEXT,
    audience        TEXT,
    port            INTEGER CHECK (port BETWEEN 0 AND 65535),
    protocol        TEXT,
    source          TEXT,
    duration_secs   INTEGER NOT NULL CHECK (duration_secs >= 0),
    requested_secs  INTEGER NOT NULL CHECK (requested_secs >= 0),
    reason          TEXT,
    ticket          TEXT,
    via             TEXT NOT NULL,
    state           TEXT NOT NULL
        CHECK (state IN ('pending', 'active', 'denied', 'revoked', 'expired', 'lapsed')),
    created_ms      INTEGER NOT NULL,
    lapses_ms       INTEGER NOT NULL,
    decided_by_uid  INTEGER,
    decided_by_name TEXT,
    decided_at_ms   INTEGER,
    decision_reason TEXT,
    starts_ms       INTEGER,
    expires_ms      INTEGER,
    revoked_by_uid  INTEGER,
    revoked_by_name TEXT,
    revoked_at_ms   INTEGER,
    CHECK (state NOT IN ('active', 'expired')
           OR (starts_ms IS NOT NULL AND expires_ms IS NOT NULL AND decided_at_ms IS NOT NULL)),
    CHECK (state <> 'denied' OR (decided_at_ms IS NOT NULL AND decided_by_name IS NOT NULL)),
    CHECK (state <> 'revoked' OR (revoked_at_ms IS NOT NULL AND revoked_by_name IS NOT NULL)),
    CHECK ((decided_by_uid IS NULL OR decided_by_name IS NOT NULL)
           AND (revoked_by_uid IS NULL OR revoked_by_name IS NOT NULL))
) STRICT;
CREATE INDEX requests_by_state ON requests (state, kind);
CREATE INDEX requests_by_created ON requests (created_ms);

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL REFERENCES requests (id),
    kind       TEXT NOT NULL CHECK (kind IN ('requested', 'approved', 'auto_approved', 'denied',
                                             'activated', 'revoked', 'expired', 'lapsed')),
    actor_uid  INTEGER,
    actor_name TEXT,
    at_ms      INTEGER NOT NULL,
    detail     TEXT NOT NULL CHECK (json_valid(detail)),
    CHECK (actor_uid IS NULL OR actor_name IS NOT NULL)
) STRICT;
CREATE INDEX events_by_request ON events (request_id, seq);

CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    audited_seq INTEGER NOT NULL
) STRICT;
INSERT INTO outbox (id, audited_seq) VALUES (1, 0);

CREATE TABLE nonces (
    signer        TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    keep_until_ms INTEGER NOT NULL,
    PRIMARY KEY (signer, nonce)
) STRICT, WITHOUT ROWID;
CREATE INDEX nonces_by_keep_until ON nonces (keep_until_ms);
";

pub(super) fn open(path: &Path) -> Result<Connection, StoreError> {
    let file = create_or_check(path)?;
    check_sidecars(path)?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    check_integrity(&conn, path)?;
    // The file SQLite opened must be the one we checked, not one swapped in
    // at that path since.
    same_file(path, &file)?;
    drop(file);

    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| corrupt_or(e, path))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "JIT store `{}`: SQLite kept journal mode `{mode}` instead of WAL; put the store on a local file system",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "trusted_schema", "OFF")?;
    migrate(&conn)?;
    check_sidecars(path)?;
    Ok(conn)
}

/// SQLite creates -wal and -shm with the database's mode, but a leftover
/// from an earlier, looser run keeps its own: check before SQLite reads them
/// and again once they certainly exist.
fn check_sidecars(path: &Path) -> Result<(), StoreError> {
    for suffix in ["-wal", "-shm"] {
        let side = sidecar(path, suffix);
        match fs::symlink_metadata(&side) {
            Ok(meta) => check_meta(&side, &meta)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(io_err(&side, "inspect", source)),
        }
    }
    Ok(())
}

/// Create `path` 0600 if absent (never following a symlink), and refuse an
/// existing file that is not ours alone.
fn create_or_check(path: &Path) -> Result<File, StoreError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(StoreError::Io {
            path: path.to_path_buf(),
            op: "open (its directory does not exist; create it first, e.g. `install -d -m700`)",
            source: io::Error::from(io::ErrorKind::NotFound),
        });
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|source| {
            if source.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                StoreError::Permissions {
                    path: path.to_path_buf(),
                    why: "is a symbolic link; point gatehouse at the real file".into(),
                }
            } else {
                io_err(path, "open", source)
            }
        })?;
    let meta = file.metadata().map_err(|e| io_err(path, "inspect", e))?;
    check_meta(path, &meta)?;
    Ok(file)
}

/// A store file (or its -wal/-shm) must be a regular file owned by us that
/// nobody else can read or write.
fn check_meta(path: &Path, meta: &Metadata) -> Result<(), StoreError> {
    let refuse = |why: String| StoreError::Permissions {
        path: path.to_path_buf(),
        why,
    };
    if !meta.file_type().is_file() {
        return Err(refuse("is not a regular file; move it aside".into()));
    }
    let euid = rustix::process::geteuid().as_raw();
    if meta.uid() != euid {
        return Err(refuse(format!(
            "is owned by uid {}, not by uid {euid} that gatehouse runs as; `chown {euid}` it if it is ours, else move it aside",
            meta.uid()
        )));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(refuse(format!(
            "is accessible by group or others (mode {mode:04o}); it names who asked for which access, so fix it with `chmod 600`"
        )));
    }
    Ok(())
}

fn same_file(path: &Path, file: &File) -> Result<(), StoreError> {
    let ours = file.metadata().map_err(|e| io_err(path, "inspect", e))?;
    let now = fs::symlink_metadata(path).map_err(|e| io_err(path, "inspect", e))?;
    if (ours.dev(), ours.ino()) != (now.dev(), now.ino()) {
        return Err(StoreError::Permissions {
            path: path.to_path_buf(),
            why: "was replaced while it was being opened; check who else writes to its directory"
                .into(),
        });
    }
    Ok(())
}

fn check_integrity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare("PRAGMA integrity_check")
        .map_err(|e| corrupt_or(e, path))?;
    let problems: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| corrupt_or(e, path))?;
    if problems.len() == 1 && problems.first().is_some_and(|p| p == "ok") {
        return Ok(());
    }
    let first: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
    Err(corrupt(path, &first.join("; ")))
}

/// A "not a database" or "malformed" error means the file is damaged, which
/// needs a person; anything else is passed on as it is.
fn corrupt_or(e: rusqlite::Error, path: &Path) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => corrupt(path, &e.to_string()),
        _ => StoreError::Sqlite(e),
    }
}

fn corrupt(path: &Path, what: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "JIT store `{}` is corrupt ({what}); move it (and its -wal and -shm files) aside and restart to begin an empty store — its pending and active requests are then lost",
        path.display()
    ))
}

/// Bring the schema to [`SCHEMA_VERSION`], refusing a newer one.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::Newer {
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found == 0 {
        // A new file. DDL and the version bump commit together, so a crash
        // here leaves an empty file that the next open initialises again.
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {SCHEMA_V1} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))?;
    }
    Ok(())
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn io_err(path: &Path, op: &'static str, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

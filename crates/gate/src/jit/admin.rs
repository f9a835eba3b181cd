//! The admin socket (`/run/gatehouse/admin.sock`): anyone on the machine may
//! connect; what they may do follows from who the kernel says they are
//! (`SO_PEERCRED` and the peer's groups), never from what they send.
//! One JSON request line in, one JSON response line out.
//!
//! The socket also answers `gatehouse status` (root, the gate's own user and
//! the `gatehouse` group), and does so when just-in-time access is off.

use super::api::{AdminRequest, AdminResponse, ApiError, ErrorKind, MAX_REQUEST};
use super::{AdminCaller, JitService};
use crate::Gate;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// A client has this long to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// ... and this long to read the answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Admin connections served at once.
const MAX_CONNECTIONS: usize = 32;
/// ... and per uid, so one user cannot keep the others (and the approvers)
/// out. Root is not limited.
const MAX_PER_UID: usize = 4;

/// Bind the socket at `path`, replacing a stale socket (never another kind
/// of file), readable and writable by everyone: the peer's credentials are
/// the access check.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "`{}` exists and is not a socket; remove it or pick another `--admin-socket`",
                    path.display()
                ),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

/// The group whose members may read `gatehouse status` besides root.
pub const STATUS_GROUP: &str = "gatehouse";

/// May `who` read the gate's status? Root, the gate's own user, members of
/// [`STATUS_GROUP`] (as the kernel and /etc/group say, never the request).
pub fn may_read_status(who: &AdminCaller) -> bool {
    who.cred.uid == 0
        || who.cred.uid == gatehouse_sys::effective_uid()
        || who.caller.group_names.iter().any(|g| g == STATUS_GROUP)
}

/// The answer to a status request.
pub fn status_response(gate: &Gate, jit: Option<&JitService>, who: &AdminCaller) -> AdminResponse {
    if !may_read_status(who) {
        return AdminResponse::error(ApiError::new(
            ErrorKind::Forbidden,
            format!("the gate's status is for root and the `{STATUS_GROUP}` group; ask an administrator to add you to it"),
        ));
    }
    AdminResponse {
        ok: true,
        status: Some(Box::new(gate.status(jit.map(JitService::status)))),
        ..AdminResponse::default()
    }
}

/// Who answers on the socket: the just-in-time service, or (when it is off)
/// the gate alone, for status requests.
#[derive(Clone)]
pub enum Answerer {
    Jit(Arc<JitService>),
    StatusOnly(Arc<Gate>),
}

impl Answerer {
    fn handle(&self, who: &AdminCaller, request: AdminRequest) -> AdminResponse {
        match (self, request) {
            (Answerer::Jit(s), request) => s.handle(who, request),
            (Answerer::StatusOnly(g), AdminRequest::Status) => status_response(g, None, who),
            (Answerer::StatusOnly(_), _) => AdminResponse::error(ApiError::new(
                ErrorKind::JitOff,
                "just-in-time access is not enabled on this gate: the policy has no eligible assignments or `[[jit_port]]`s",
            )),
        }
    }
}

/// Serve until the task is dropped; removes the socket file then.
pub async fn serve(listener: UnixListener, path: PathBuf, service: Arc<JitService>) {
    serve_with(listener, path, Answerer::Jit(service)).await;
}

/// As [`serve`], for either answerer.
pub async fn serve_with(listener: UnixListener, path: PathBuf, service: Answerer) {
    let _cleanup = RemoveOnDrop(path);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let per_uid: Arc<std::sync::Mutex<std::collections::HashMap<u32, usize>>> = Arc::default();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "admin socket: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(cred) = gatehouse_sys::peer_credentials(&stream) else {
            continue;
        };
        let Some(uid_slot) = UidSlot::take(&per_uid, cred.uid) else {
            drop(stream);
            continue;
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let service = service.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _uid_slot = uid_slot;
            if let Err(e) = one(stream, cred, service).await {
                tracing::debug!(error = %e, "admin connection ended");
            }
        });
    }
}

/// One of a uid's connection slots, given back on drop.
struct UidSlot {
    uid: u32,
    counts: Arc<std::sync::Mutex<std::collections::HashMap<u32, usize>>>,
}

impl UidSlot {
    fn take(
        counts: &Arc<std::sync::Mutex<std::collections::HashMap<u32, usize>>>,
        uid: u32,
    ) -> Option<UidSlot> {
        let mut map = counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(uid).or_insert(0);
        if uid != 0 && *n >= MAX_PER_UID {
            return None;
        }
        *n += 1;
        Some(UidSlot {
            uid,
            counts: Arc::clone(counts),
        })
    }
}

impl Drop for UidSlot {
    fn drop(&mut self) {
        let mut map = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.uid);
            }
        }
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn one(
    stream: UnixStream,
    cred: gatehouse_sys::PeerCredentials,
    service: Answerer,
) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    let mut reader = BufReader::new(read).take(MAX_REQUEST as u64 + 1);
    let got = tokio::time::timeout(READ_TIMEOUT, reader.read_until(b'\n', &mut line)).await;
    let response = match got {
        Err(_) => AdminResponse::error(ApiError::new(
            ErrorKind::Timeout,
            "no request line within 5 s",
        )),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(_)) if line.len() > MAX_REQUEST => AdminResponse::error(ApiError::new(
            ErrorKind::TooLarge,
            format!("a request is at most {MAX_REQUEST} bytes"),
        )),
        Ok(Ok(_)) => match serde_json::from_slice::<AdminRequest>(&line) {
            Err(e) => AdminResponse::error(ApiError::new(
                ErrorKind::Malformed,
                format!("not a request: {e}"),
            )),
            Ok(request) => {
                let who = AdminCaller::from_credentials(cred);
                // SQLite and nft are blocking work.
                tokio::task::spawn_blocking(move || service.handle(&who, request))
                    .await
                    .unwrap_or_else(|e| {
                        AdminResponse::error(ApiError::new(
                            ErrorKind::Internal,
                            format!("the request failed: {e}"),
                        ))
                    })
            }
        },
    };
    let mut out = serde_json::to_vec(&response).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    out.push(b'\n');
    // A client that never reads must not hold a connection slot forever.
    match tokio::time::timeout(WRITE_TIMEOUT, async {
        write.write_all(&out).await?;
        write.shutdown().await
    })
    .await
    {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not read the answer",
        )),
    }
}

/// The client side (`gatehouse jit ...`): send one request, read the answer.
pub fn call(path: &Path, request: &AdminRequest) -> io::Result<AdminResponse> {
    use std::io::{BufRead, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(path)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_vec(request).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reader = std::io::BufReader::new(stream);
    let mut answer = String::new();
    reader.read_line(&mut answer)?;
    serde_json::from_str(&answer).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the gate's answer is not understood: {e}"),
        )
    })
}

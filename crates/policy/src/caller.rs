//! What the daemon knows about a caller and what it asks for: the inputs of a
//! decision. Plain data; the `sys` crate fills it in.

use std::time::SystemTime;

use crate::action::Action;
use crate::identity::SelectorKind;

/// Facts the daemon gathered about the caller behind one connection.
/// Anything it could not find is `None` or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The socket's uid. `None` means the caller is unknown: always denied.
    pub uid: Option<u32>,
    /// The socket uid's user name.
    pub user: Option<String>,
    /// Primary and supplementary group ids.
    pub gids: Vec<u32>,
    /// Names of `gids`.
    pub group_names: Vec<String>,
    /// Every process found holding the socket (several after fork or fd passing).
    pub processes: Vec<Process>,
}

/// One process holding the caller's socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub uid: u32,
    /// `/proc/PID/exe` as a path.
    pub exe_path: Option<String>,
    /// True only if the daemon checked that the running file is the file now
    /// at `exe_path` (same device and inode): `exe:/path` needs it.
    pub exe_path_verified: bool,
    /// Lower- or upper-case hex SHA-256 of the running executable.
    pub exe_sha256: Option<String>,
    /// systemd system unit, e.g. `nginx.service`.
    pub unit: Option<String>,
    /// cgroup v2 path, e.g. `/system.slice/nginx.service`.
    pub cgroup: Option<String>,
    /// Full container id (hex).
    pub container: Option<String>,
    /// uid owning the executable file (from the fstat of the running file).
    pub exe_owner_uid: Option<u32>,
}

/// What the caller asks for. Build it with [`Request::new`] and the
/// builder methods; anything not given is absent, and a condition that needs
/// an absent attribute is false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub action: Action,
    /// The identity's policy NAME, after [`crate::Policy::resolve_identity`].
    pub identity: Option<&'a str>,
    /// The audience, already passed through [`crate::normalise_audience`].
    pub audience: Option<&'a str>,
    /// The `api-version` query parameter.
    pub api_version: Option<&'a str>,
    /// Which identity selector a token request used.
    pub selector: Option<SelectorKind>,
    /// The canonical request path, e.g. `/metadata/instance/compute`.
    pub path: Option<&'a str>,
    /// The daemon's clock at the time of the request: the policy crate
    /// never reads the clock itself.
    pub now: Option<SystemTime>,
}

impl<'a> Request<'a> {
    /// A request for `action` with nothing else known.
    pub fn new(action: Action) -> Request<'a> {
        Request {
            action,
            identity: None,
            audience: None,
            api_version: None,
            selector: None,
            path: None,
            now: None,
        }
    }

    pub fn identity(mut self, name: Option<&'a str>) -> Self {
        self.identity = name;
        self
    }

    pub fn audience(mut self, normalised: Option<&'a str>) -> Self {
        self.audience = normalised;
        self
    }

    pub fn api_version(mut self, v: Option<&'a str>) -> Self {
        self.api_version = v;
        self
    }

    pub fn selector(mut self, kind: SelectorKind) -> Self {
        self.selector = Some(kind);
        self
    }

    pub fn path(mut self, path: &'a str) -> Self {
        self.path = Some(path);
        self
    }

    pub fn at(mut self, now: SystemTime) -> Self {
        self.now = Some(now);
        self
    }
}

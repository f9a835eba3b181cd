//! Everything in gatehouse that talks to the kernel: socket options, sock_diag netlink,
//! `/proc` reads and caller identification, account names, and the trusted-path check for
//! the policy file. The rest of the code base stays free of syscalls.
//!
//! Linux only. Reads of `/proc/PID/...` go through a directory fd opened once per
//! candidate, so a reused PID fails with `ESRCH` instead of being misread.

mod cache;
mod directory;
mod exe;
mod identify;
mod mark;
mod net;
mod process;
mod procfs;
mod trusted_path;

pub use directory::{group_name, user_name, Directory};
pub use exe::{hash_file, FileId};
pub use identify::{
    CallerFacts, HolderSearch, Identifier, IdentifyError, IdentifyOptions, LookupStats, Needs,
    ProcessFacts, Strategy,
};
pub use mark::marked_tcp_socket;
pub use net::orig_dst::original_dst;
pub use net::sock_diag::{socket_owner, SocketOwner, SysError};
pub use process::{effective_uid, send_reload_signal};
pub use procfs::cgroup::{classify_cgroup, CgroupFacts};
pub use procfs::ProcDir;
pub use trusted_path::{check_trusted_path, UntrustedPath, UntrustedReason};

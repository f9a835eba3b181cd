//! Everything in gatehouse that talks to the kernel: socket options, sock_diag netlink,
//! `/proc` reads and caller identification, account names, and the trusted-path check for
//! the policy file. The rest of the code base stays free of syscalls.
//!
//! Linux only. Reads of `/proc/PID/...` go through a directory fd opened once per
//! candidate, so a reused PID fails with `ESRCH` instead of being misread.

mod account;
mod cache;
mod caps;
mod connect;
mod destroy;
mod directory;
mod ebpf;
mod exe;
mod identify;
mod mark;
mod net;
mod notify;
mod outq;
mod peer;
mod process;
mod procfs;
mod seqpacket;
mod stderr;
mod trusted_path;

pub use account::{find_account, lookup_account, Account};
pub use caps::{
    capability_mask, effective_capabilities, forbid_new_privileges, keep_only_capabilities,
    Capability, BROKER_CAPABILITIES,
};
pub use connect::{is_tcp_stream, socket_mark, start_marked_connect};
pub use destroy::destroy_sockets;
pub use directory::{group_name, user_name, Directory};
pub use ebpf::{ConnectRecord, ConnectRecords, EbpfError, BUILT as EBPF_BUILT};
pub use exe::{hash_file, FileId};
pub use identify::{
    CallerFacts, HolderSearch, Identifier, IdentifyError, IdentifyOptions, LookupStats, Needs,
    ProcessFacts, Strategy, MAX_HOLDERS,
};
pub use mark::marked_tcp_socket;
pub use net::orig_dst::original_dst;
pub use net::sock_diag::{socket_owner, SocketOwner, SysError};
pub use notify::{notify_service_manager, watchdog_timeout, Notice, NOTIFY_ENVIRONMENT};
pub use outq::unacked_bytes;
pub use peer::{peer_credentials, PeerCredentials};
pub use process::{die_with_parent, effective_uid, is_live_gatehouse};
pub use procfs::cgroup::{classify_cgroup, CgroupFacts};
pub use procfs::ProcDir;
pub use seqpacket::{
    recv_message, send_message, seqpacket_pair, set_receive_timeout, shutdown_socket, Message,
    MAX_FDS_PER_MESSAGE,
};
pub use stderr::stderr_identity;
pub use trusted_path::{check_trusted_path, UntrustedPath, UntrustedReason};

//! From what the kernel says about a connection to the policy's `Caller`,
//! and to the caller part of an audit line.

use gatehouse_policy::{Caller, Needs, Process};
use gatehouse_sys::{CallerFacts, ProcessFacts};
use serde_json::{json, Value};
use std::net::SocketAddr;

/// Who is behind a client connection: found here (`gatehouse_sys::Identifier`,
/// when the gate runs privileged) or by the broker (`privsep::BrokerClient`,
/// when it runs as `--user`). The request path does not care which.
pub trait CallerSource: Send + Sync {
    fn identify(&self, src: SocketAddr, dst: SocketAddr, needs: gatehouse_sys::Needs)
        -> Result<CallerFacts, CallerError>;
}

/// Why a caller is unknown (the gate answers 403 "caller unknown").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerError(String);

impl CallerError {
    pub fn new(why: String) -> Self {
        CallerError(why)
    }
}

impl std::fmt::Display for CallerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CallerError {}

impl CallerSource for gatehouse_sys::Identifier {
    fn identify(&self, src: SocketAddr, dst: SocketAddr, needs: gatehouse_sys::Needs)
        -> Result<CallerFacts, CallerError> {
        gatehouse_sys::Identifier::identify(self, src, dst, needs).map_err(|e| CallerError(e.to_string()))
    }
}

/// What identification needs to find, given what the policy matches on.
/// The audit line always names a pid and an executable, so one holder and
/// its executable path are always looked up. Other holders of the socket
/// (connect-then-fork, a socket handed to another uid) are always searched
/// for: a uid-only policy must also see a socket shared across users.
pub fn sys_needs(needs: &Needs) -> gatehouse_sys::Needs {
    gatehouse_sys::Needs {
        exe: true,
        exe_hash: needs.exe_hash,
        cgroup: true,
        groups: true,
        all_holders: true,
    }
}

pub fn to_policy_caller(facts: &CallerFacts) -> Caller {
    let uid = facts.socket_uid;
    let mut gids: Vec<u32> = Vec::new();
    // Groups come from the holder whose uid is the socket's: a holder of
    // another uid makes the caller ambiguous anyway, and the policy denies it.
    if let Some(p) = facts.holders.iter().find(|p| p.ruid == uid) {
        gids.push(p.rgid);
        gids.extend(p.groups.iter().copied());
    }
    gids.sort_unstable();
    gids.dedup();
    let group_names = gids.iter().filter_map(|g| gatehouse_sys::group_name(*g)).collect();
    Caller {
        uid: Some(uid),
        user: gatehouse_sys::user_name(uid),
        gids,
        group_names,
        processes: facts.holders.iter().map(to_policy_process).collect(),
    }
}

fn to_policy_process(p: &ProcessFacts) -> Process {
    Process {
        pid: p.pid,
        uid: p.ruid,
        exe_path: p.exe_path.clone(),
        exe_path_verified: p.exe_path_verified,
        exe_owner_uid: p.exe_file.as_ref().map(|f| f.uid),
        exe_sha256: p.exe_sha256.clone(),
        unit: p.system_unit.clone(),
        cgroup: p.cgroup.clone(),
        container: p.container_id.clone(),
    }
}

/// The caller as the audit line shows it: the first holder in full, and
/// how many holders there were.
pub fn audit_caller(facts: &CallerFacts, caller: &Caller) -> Value {
    let first = facts.holders.first();
    json!({
        "uid": facts.socket_uid,
        "user": caller.user,
        "pid": first.map(|p| p.pid),
        "exe": first.and_then(|p| p.exe_path.clone()),
        "exe_verified": first.map(|p| p.exe_path_verified),
        "exe_sha256": first.and_then(|p| p.exe_sha256.clone()),
        "unit": first.and_then(|p| p.system_unit.clone()),
        "cgroup": first.and_then(|p| p.cgroup.clone()),
        "container": first.and_then(|p| p.container_id.clone()),
        "holders": facts.holders.iter().map(|p| json!({"pid": p.pid, "uid": p.ruid})).collect::<Vec<_>>(),
    })
}

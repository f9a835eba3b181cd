//! From what the kernel says about a connection to the policy's `Caller`,
//! and to the caller part of an audit line.

use gatehouse_policy::{Caller, Needs, Process};
use gatehouse_sys::{CallerFacts, ProcessFacts};
use serde_json::{json, Value};

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

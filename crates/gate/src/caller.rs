//! From what the kernel says about a connection to the policy's `Caller`,
//! and to the caller part of an audit line.

use gatehouse_policy::{Caller, Needs, Process};
use gatehouse_sys::{CallerFacts, ProcessFacts};

use std::net::SocketAddr;

/// Who is behind a client connection: found here (`gatehouse_sys::Identifier`,
/// when the gate runs privileged) or by the broker (`privsep::BrokerClient`,
/// when it runs as `--user`). The request path does not care which.
pub trait CallerSource: Send + Sync {
    fn identify(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        needs: gatehouse_sys::Needs,
    ) -> Result<CallerFacts, CallerError>;

    /// The kernel's record of the socket (its creator's uid and its inode),
    /// asked once when the connection is accepted. Both are fixed for the
    /// socket's life, so a request whose decision reads only the uid is
    /// answered from this without asking [`identify`](Self::identify) again
    /// (the same `socket_only` facts it would find). `None`: unknown, and
    /// every request asks.
    fn at_accept(&self, src: SocketAddr, dst: SocketAddr) -> Option<gatehouse_sys::SocketOwner> {
        gatehouse_sys::socket_owner(src, dst).ok().flatten()
    }
}

/// What [`CallerSource::identify`] finds for a decision on uids alone, from
/// the socket's record taken at accept; `None` when that record names no
/// socket a process holds (inode 0), which identification refuses.
pub fn socket_only(owner: gatehouse_sys::SocketOwner) -> Option<CallerFacts> {
    (owner.inode != 0).then(|| CallerFacts::socket_only(owner, 0))
}

/// Why a caller is unknown (the gate answers 403 "caller unknown").
#[derive(Debug, thiserror::Error)]
pub enum CallerError {
    /// The kernel or `/proc` did not say (identified in this process).
    #[error(transparent)]
    Lookup(#[from] gatehouse_sys::IdentifyError),
    /// The broker did not say (`run --user`).
    #[error(transparent)]
    Broker(#[from] crate::privsep::BrokerError),
    /// The blocking task that identifies the caller did not finish.
    #[error("identification failed: {0}")]
    Task(String),
    /// Another source (a test's, or a future one) could not say.
    #[error("{0}")]
    Other(String),
}

impl CallerSource for gatehouse_sys::Identifier {
    fn identify(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        needs: gatehouse_sys::Needs,
    ) -> Result<CallerFacts, CallerError> {
        Ok(gatehouse_sys::Identifier::identify(self, src, dst, needs)?)
    }
}

/// What identification needs to find, given what deciding the request needs.
///
/// A decision on uids alone needs only the socket's uid: the kernel's record
/// of who created the socket (sock_diag, or who connected, with the eBPF
/// path), and no process is looked for; the audit line then names no pid.
/// Anything more (groups, executable, unit, cgroup, container, a condition,
/// a trusted service) needs the processes: one holder with its executable,
/// cgroup and groups, and every other holder of the socket (connect-then-fork,
/// a socket handed to another uid), so the verdict never depends on which
/// holder was found first and a socket shared across uids is denied.
/// `all_holders` (`--all-holders`) asks for the processes always.
pub fn sys_needs(needs: &Needs, all_holders: bool) -> gatehouse_sys::Needs {
    let process = all_holders
        || needs.exe_hash
        || needs.exe_path
        || needs.unit
        || needs.cgroup
        || needs.container
        || needs.groups;
    gatehouse_sys::Needs {
        exe: process,
        exe_hash: needs.exe_hash,
        cgroup: process,
        groups: process,
        all_holders: process,
        process,
    }
}

pub fn to_policy_caller(facts: &CallerFacts) -> Caller {
    let uid = facts.socket_uid;
    // Groups are the ones every holder of the socket has (of the socket's
    // uid; a holder of another uid makes the caller ambiguous anyway, and the
    // policy denies it), so the verdict never depends on which holder the
    // lookup happened to find first.
    let mut sets = facts.holders.iter().filter(|p| p.ruid == uid).map(|p| {
        let mut g: Vec<u32> = p.groups.clone();
        g.push(p.rgid);
        g.sort_unstable();
        g.dedup();
        g
    });
    let mut gids: Vec<u32> = sets.next().unwrap_or_default();
    for other in sets {
        gids.retain(|g| other.binary_search(g).is_ok());
    }
    let group_names = gids
        .iter()
        .filter_map(|g| gatehouse_sys::group_name(*g))
        .collect();
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
pub fn audit_caller(facts: &CallerFacts, caller: &Caller) -> gatehouse_audit::Caller {
    let first = facts.holders.first();
    gatehouse_audit::Caller {
        uid: facts.socket_uid,
        user: caller.user.clone(),
        pid: first.map(|p| p.pid),
        exe: first.and_then(|p| p.exe_path.clone()),
        exe_verified: first.map(|p| p.exe_path_verified),
        exe_sha256: first.and_then(|p| p.exe_sha256.clone()),
        unit: first.and_then(|p| p.system_unit.clone()),
        cgroup: first.and_then(|p| p.cgroup.clone()),
        container: first.and_then(|p| p.container_id.clone()),
        holders: facts
            .holders
            .iter()
            .map(|p| gatehouse_audit::Holder {
                pid: p.pid,
                uid: p.ruid,
            })
            .collect(),
        lookup: audit_lookup(facts.lookup.strategy),
    }
}

fn audit_lookup(strategy: gatehouse_sys::Strategy) -> gatehouse_audit::Lookup {
    use gatehouse_audit::Lookup;
    use gatehouse_sys::Strategy;
    match strategy {
        Strategy::Recent => Lookup::Recent,
        Strategy::Newest => Lookup::Newest,
        Strategy::SameUid => Lookup::SameUid,
        Strategy::FullScan => Lookup::FullScan,
        Strategy::SocketOnly => Lookup::SocketOnly,
        Strategy::ConnectRecord => Lookup::ConnectRecord,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(pid: u32, uid: u32, rgid: u32, groups: &[u32]) -> ProcessFacts {
        ProcessFacts::with_ids(pid, uid, uid, rgid, rgid, groups.to_vec())
    }

    fn facts(uid: u32, holders: Vec<ProcessFacts>) -> CallerFacts {
        CallerFacts {
            socket_uid: uid,
            socket_inode: 1,
            holders,
            lookup: gatehouse_sys::LookupStats {
                strategy: gatehouse_sys::Strategy::Recent,
                holder_search: gatehouse_sys::HolderSearch::Related,
                candidates: 1,
                micros: 1,
            },
        }
    }

    #[test]
    fn processes_are_looked_for_only_when_the_decision_reads_them() {
        let none = Needs::default();
        let rows: &[(Needs, bool, bool)] = &[
            (none, false, false),
            (none, true, true),
            (
                Needs {
                    user_name: true,
                    ..none
                },
                false,
                false,
            ),
            (
                Needs {
                    groups: true,
                    ..none
                },
                false,
                true,
            ),
            (
                Needs {
                    exe_path: true,
                    ..none
                },
                false,
                true,
            ),
            (
                Needs {
                    exe_hash: true,
                    ..none
                },
                false,
                true,
            ),
            (Needs { unit: true, ..none }, false, true),
            (
                Needs {
                    cgroup: true,
                    ..none
                },
                false,
                true,
            ),
            (
                Needs {
                    container: true,
                    ..none
                },
                false,
                true,
            ),
        ];
        for (needs, all, want) in rows {
            let got = sys_needs(needs, *all);
            assert_eq!(got.wants_process(), *want, "{needs:?} all={all}");
            assert_eq!(
                (got.all_holders, got.exe, got.cgroup, got.groups),
                (*want, *want, *want, *want),
                "{needs:?}"
            );
            assert_eq!(got.exe_hash, needs.exe_hash);
        }
    }

    /// What accept keeps is what identification finds for a decision on
    /// uids alone, for real sockets of both families (the lookup's time
    /// aside).
    #[test]
    fn the_socket_record_from_accept_is_what_identify_finds_without_processes() {
        let identifier = gatehouse_sys::Identifier::new(gatehouse_sys::IdentifyOptions::default());
        let uid_only = sys_needs(&Needs::default(), false);
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(listener) = std::net::TcpListener::bind(addr) else {
                eprintln!("skipped {addr}: this machine cannot bind it");
                continue;
            };
            let server = listener.local_addr().unwrap();
            let client = std::net::TcpStream::connect(server).unwrap();
            let (_accepted, peer) = listener.accept().unwrap();
            let owner = CallerSource::at_accept(&identifier, peer, server).unwrap();
            assert_eq!(owner.uid, gatehouse_sys::effective_uid(), "{addr}");
            let mut kept = socket_only(owner).unwrap();
            let mut found = CallerSource::identify(&identifier, peer, server, uid_only).unwrap();
            kept.lookup.micros = 0;
            found.lookup.micros = 0;
            assert_eq!(kept, found, "{addr}");
            drop(client);
        }
        let gone = gatehouse_sys::SocketOwner {
            uid: 0,
            inode: 0,
            cookie: 1,
        };
        assert!(socket_only(gone).is_none(), "no process holds it: refused");
    }

    #[test]
    fn groups_are_those_every_holder_has() {
        let rows: &[(Vec<ProcessFacts>, &[u32])] = &[
            (vec![holder(1, 1000, 1000, &[4, 27])], &[4, 27, 1000]),
            (
                vec![
                    holder(1, 1000, 1000, &[4, 27]),
                    holder(2, 1000, 1000, &[27]),
                ],
                &[27, 1000],
            ),
            (
                vec![
                    holder(1, 1000, 1000, &[27]),
                    holder(2, 1000, 1000, &[4, 27]),
                ],
                &[27, 1000],
            ),
            (
                vec![holder(1, 1000, 1000, &[]), holder(2, 1000, 50, &[1000])],
                &[1000],
            ),
            // A holder of another uid does not lend its groups (the policy
            // denies such a caller as ambiguous anyway).
            (
                vec![holder(1, 1000, 1000, &[]), holder(2, 0, 0, &[4])],
                &[1000],
            ),
            (vec![], &[]),
        ];
        for (holders, want) in rows {
            let caller = to_policy_caller(&facts(1000, holders.clone()));
            assert_eq!(&caller.gids, want, "{holders:?}");
        }
    }
}

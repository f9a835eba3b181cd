//! The socket inode → holder search, cheapest candidates first.

use std::collections::HashSet;

use super::facts::{read_holder, Holder};
use super::{Identifier, IdentifyError, Needs, ProcessFacts, Strategy};
use crate::procfs::scan::{list_pids, newest_pids, pids_of_uid};
use crate::procfs::ProcDir;

/// The first holder found.
#[derive(Debug)]
pub(super) struct Found {
    pub pid: u32,
    pub ppid: u32,
    /// The fd through which it holds the socket.
    pub fd: u32,
    pub facts: ProcessFacts,
    pub strategy: Strategy,
}

/// Parent chains are short; the cap only bounds a pathological or racing /proc.
const MAX_ANCESTORS: usize = 64;
/// Bound on processes visited below the topmost holding ancestor.
const MAX_DESCENDANTS: usize = 1024;

/// One search for the holders of one socket; remembers which pids were examined.
pub(super) struct Search<'a> {
    id: &'a Identifier,
    inode: u64,
    needs: Needs,
    tried: HashSet<u32>,
    /// Pids whose `/proc` directory no longer exists.
    gone: Vec<u32>,
}

impl<'a> Search<'a> {
    pub fn new(id: &'a Identifier, inode: u64, needs: Needs) -> Self {
        Self {
            id,
            inode,
            needs,
            tried: HashSet::new(),
            gone: Vec::new(),
        }
    }

    /// Processes examined so far.
    pub fn tried(&self) -> u32 {
        u32::try_from(self.tried.len()).unwrap_or(u32::MAX)
    }

    /// Pids found to have exited, for pruning the recent-pid cache.
    pub fn gone(&self) -> &[u32] {
        &self.gone
    }

    /// Tries, in order: recent holders, the newest pids, processes of the socket's uid,
    /// every process. Each pid is examined once.
    pub fn first_holder(&mut self, socket_uid: u32) -> Result<Option<Found>, IdentifyError> {
        let root = self.id.opts.proc_root.clone();
        let recent = self
            .id
            .recent
            .lock()
            .map(|r| r.snapshot())
            .unwrap_or_default();
        if let Some(found) = self.first_of(recent, Strategy::Recent) {
            return Ok(Some(found));
        }
        // ns_last_pid may be unreadable (another pid namespace): skip, not fail.
        let newest = newest_pids(&root, self.id.opts.newest_window).unwrap_or_default();
        if let Some(found) = self.first_of(newest, Strategy::Newest) {
            return Ok(Some(found));
        }
        let same_uid = pids_of_uid(&root, socket_uid).map_err(IdentifyError::Proc)?;
        if let Some(found) = self.first_of(same_uid, Strategy::SameUid) {
            return Ok(Some(found));
        }
        let all = list_pids(&root).map_err(IdentifyError::Proc)?;
        Ok(self.first_of(all, Strategy::FullScan))
    }

    /// Every other holder, by scanning all processes; stops after `limit + 1`
    /// (enough for the caller to see there are too many).
    pub fn all_holders(&mut self, limit: usize) -> Result<Vec<ProcessFacts>, IdentifyError> {
        let all = list_pids(&self.id.opts.proc_root).map_err(IdentifyError::Proc)?;
        Ok(all
            .into_iter()
            .filter_map(|pid| self.check(pid))
            .map(|h| h.facts)
            .take(limit.saturating_add(1))
            .collect())
    }

    /// Other holders among the parent chain of `pid` and every descendant of the topmost
    /// ancestor that holds the socket (covers connect-then-fork and inherited fds).
    /// Stops after `limit + 1` (enough for the caller to see there are too many).
    pub fn related_holders(&mut self, pid: u32, ppid: u32, limit: usize) -> Vec<ProcessFacts> {
        let mut out = Vec::new();
        let mut top = pid;
        let mut next = ppid;
        for _ in 0..MAX_ANCESTORS {
            if next == 0 {
                break;
            }
            let current = next;
            next = match self.examine(current, true) {
                Examined::Holder(holder) => {
                    top = current;
                    let up = holder.ppid;
                    out.push(holder.facts);
                    if out.len() > limit {
                        return out;
                    }
                    up
                }
                Examined::NotHolder { ppid: Some(up) } => up,
                Examined::NotHolder { ppid: None } => break,
            };
        }
        let mut queue = std::collections::VecDeque::from([top]);
        let mut visited = HashSet::from([top]);
        while let Some(parent) = queue.pop_front() {
            let Ok(dir) = ProcDir::open(&self.id.opts.proc_root, parent, false) else {
                continue;
            };
            for child in dir.children().unwrap_or_default() {
                if visited.len() >= MAX_DESCENDANTS || !visited.insert(child) {
                    continue;
                }
                if let Some(holder) = self.check(child) {
                    out.push(holder.facts);
                    if out.len() > limit {
                        return out;
                    }
                }
                queue.push_back(child);
            }
        }
        out
    }

    fn first_of(&mut self, pids: Vec<u32>, strategy: Strategy) -> Option<Found> {
        pids.into_iter().find_map(|pid| {
            self.check(pid).map(|h| Found {
                pid,
                ppid: h.ppid,
                fd: h.fd,
                facts: h.facts,
                strategy,
            })
        })
    }

    /// Examines `pid` once: `Some` when it holds the socket and its facts could be read.
    /// A process that vanishes mid-way is simply not a holder.
    fn check(&mut self, pid: u32) -> Option<Holder> {
        match self.examine(pid, false) {
            Examined::Holder(holder) => Some(*holder),
            Examined::NotHolder { .. } => None,
        }
    }

    /// Like [`Self::check`]; with `want_parent`, also the parent of a process that does not
    /// hold the socket, read through the same directory fd (the ancestor walk needs it). A
    /// pid examined before is re-read for its parent only.
    fn examine(&mut self, pid: u32, want_parent: bool) -> Examined {
        let root = &self.id.opts.proc_root;
        if !self.tried.insert(pid) {
            let ppid = want_parent
                .then(|| {
                    ProcDir::open(root, pid, false)
                        .and_then(|d| d.parent_pid())
                        .ok()
                })
                .flatten();
            return Examined::NotHolder { ppid };
        }
        // An ancestor is always a process (a parent pid is a thread-group leader), so the
        // pidfd, whose only job here is to refuse thread ids, is not needed for it.
        let dir = match ProcDir::open(root, pid, self.id.want_pidfd && !want_parent) {
            Ok(dir) => dir,
            Err(e) => {
                if e.kind() == std::io::ErrorKind::NotFound {
                    self.gone.push(pid);
                }
                return Examined::NotHolder { ppid: None };
            }
        };
        let found = if want_parent {
            dir.socket_fd_or_parent(self.inode)
        } else {
            // A pid seen holding a socket before (a reconnecting client) is tried at that
            // fd first; any other is scanned whole, as a hint for it would mostly miss.
            match self.id.fd_hint(pid) {
                Some(hint) => dir.find_socket_fd_trying(self.inode, &[hint]),
                None => dir.find_socket_fd(self.inode),
            }
            .map(|fd| fd.ok_or(0))
        };
        match found {
            Ok(Ok(fd)) => match read_holder(&dir, fd, self.inode, self.needs, &self.id.hashes) {
                Ok(Some(h)) => Examined::Holder(Box::new(h)),
                _ => Examined::NotHolder {
                    ppid: want_parent.then(|| dir.parent_pid().ok()).flatten(),
                },
            },
            Ok(Err(ppid)) => Examined::NotHolder {
                ppid: want_parent.then_some(ppid),
            },
            Err(_) => Examined::NotHolder { ppid: None },
        }
    }
}

/// What examining one pid found.
enum Examined {
    Holder(Box<Holder>),
    /// Not a holder (or unreadable, or gone); its parent when that could be read.
    NotHolder {
        ppid: Option<u32>,
    },
}

//! Load-time index so a decision looks only at assignments that can apply:
//! first by action, then by the principal's key.

use std::collections::HashMap;

use crate::action::Action;
use crate::caller::Caller;
use crate::model::Assignment;
use crate::principal::Principal;
use crate::role::Role;

/// Shortest container-id prefix a principal may use; the index key length.
const CONTAINER_KEY: usize = 12;

/// Assignment indices by principal key, for one action.
#[derive(Debug, Default)]
struct ByPrincipal {
    uid: HashMap<u32, Vec<usize>>,
    user: HashMap<String, Vec<usize>>,
    gid: HashMap<u32, Vec<usize>>,
    group: HashMap<String, Vec<usize>>,
    exe_path: HashMap<String, Vec<usize>>,
    exe_hash: HashMap<String, Vec<usize>>,
    unit: HashMap<String, Vec<usize>>,
    cgroup: HashMap<String, Vec<usize>>,
    cgroup_tree: HashMap<String, Vec<usize>>,
    container: HashMap<String, Vec<usize>>,
    everyone: Vec<usize>,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    by_action: Vec<(Action, ByPrincipal)>,
}

impl Index {
    pub(crate) fn build(roles: &[Role], assignments: &[Assignment]) -> Index {
        let mut by_action = Vec::new();
        for action in Action::ALL {
            let mut idx = ByPrincipal::default();
            // Eligible assignments are never standing access.
            for (i, a) in assignments
                .iter()
                .enumerate()
                .filter(|(_, a)| a.eligible.is_none())
            {
                let allows = roles
                    .get(a.role_index)
                    .is_some_and(|r| r.effective().contains(action));
                if allows {
                    idx.insert(&a.principal, i);
                }
            }
            by_action.push((action, idx));
        }
        Index { by_action }
    }

    /// Indices of assignments whose role allows `action` and whose principal
    /// might match `caller`; the caller still checks each one in full.
    pub(crate) fn candidates(&self, action: Action, caller: &Caller) -> Vec<usize> {
        let Some((_, idx)) = self.by_action.iter().find(|(a, _)| *a == action) else {
            return Vec::new();
        };
        let mut out: Vec<usize> = idx.everyone.clone();
        let mut take = |v: Option<&Vec<usize>>| out.extend(v.into_iter().flatten());
        if let Some(uid) = caller.uid {
            take(idx.uid.get(&uid));
        }
        if let Some(user) = &caller.user {
            take(idx.user.get(user));
        }
        for gid in &caller.gids {
            take(idx.gid.get(gid));
        }
        for g in &caller.group_names {
            take(idx.group.get(g));
        }
        // Process principals need every holder to match, so any one
        // holder's attributes find all the candidates.
        if let Some(p) = caller.processes.first() {
            if let Some(path) = &p.exe_path {
                take(idx.exe_path.get(path));
            }
            if let Some(h) = &p.exe_sha256 {
                take(idx.exe_hash.get(&h.to_ascii_lowercase()));
            }
            if let Some(u) = &p.unit {
                take(idx.unit.get(u));
            }
            if let Some(c) = &p.cgroup {
                take(idx.cgroup.get(c));
                for ancestor in ancestors(c) {
                    take(idx.cgroup_tree.get(ancestor));
                }
            }
            if let Some(c) = &p.container {
                let lower = c.to_ascii_lowercase();
                if let Some(key) = lower.get(..CONTAINER_KEY) {
                    take(idx.container.get(key));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl ByPrincipal {
    fn insert(&mut self, p: &Principal, i: usize) {
        let slot = match p {
            Principal::Everyone => {
                self.everyone.push(i);
                return;
            }
            Principal::Uid(u) => self.uid.entry(*u).or_default(),
            Principal::Gid(g) => self.gid.entry(*g).or_default(),
            Principal::User(n) => self.user.entry(n.clone()).or_default(),
            Principal::Group(n) => self.group.entry(n.clone()).or_default(),
            Principal::ExePath(s) => self.exe_path.entry(s.clone()).or_default(),
            Principal::ExeHash(s) => self.exe_hash.entry(s.clone()).or_default(),
            Principal::Unit(s) => self.unit.entry(s.clone()).or_default(),
            Principal::Cgroup(s) => self.cgroup.entry(s.clone()).or_default(),
            Principal::CgroupTree(s) => self.cgroup_tree.entry(s.clone()).or_default(),
            Principal::Container(s) => {
                let key = s.get(..CONTAINER_KEY).unwrap_or(s).to_owned();
                self.container.entry(key).or_default()
            }
        };
        slot.push(i);
    }
}

/// `/a/b/c` → `/a/b/c`, `/a/b`, `/a`, `/`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let cur = next?;
        next = match cur.rfind('/') {
            Some(0) if cur != "/" => Some("/"),
            Some(0) | None => None,
            Some(i) => cur.get(..i),
        };
        Some(cur)
    })
}

#[cfg(test)]
mod tests;

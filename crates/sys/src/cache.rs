//! A small bounded map with first-in-first-out eviction, for caches on the request path.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// Bounded map: inserting beyond `capacity` evicts the oldest entry.
#[derive(Debug)]
pub struct Bounded<K, V> {
    capacity: usize,
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        self.map.get(key).cloned()
    }

    pub fn insert(&mut self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

/// Most-recently-used list of pids that held sockets: long-lived clients reconnect.
#[derive(Debug)]
pub struct RecentPids {
    capacity: usize,
    pids: VecDeque<u32>,
}

impl RecentPids {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            pids: VecDeque::new(),
        }
    }

    /// Moves `pid` to the front, evicting the least recently seen beyond capacity.
    pub fn touch(&mut self, pid: u32) {
        self.pids.retain(|p| *p != pid);
        self.pids.push_front(pid);
        self.pids.truncate(self.capacity);
    }

    /// Drops pids that no longer exist, so they are not tried again.
    pub fn forget(&mut self, gone: &[u32]) {
        self.pids.retain(|p| !gone.contains(p));
    }

    pub fn snapshot(&self) -> Vec<u32> {
        self.pids.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests;

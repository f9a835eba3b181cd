//! Keeps gatehouse inside IMDS's own limits whatever the local load, exactly:
//! in no sliding window of `window` (a second, plus slack for the time a
//! request takes to leave) does the gate start more than 20 identity
//! requests, nor hold more than 5 in flight; other endpoints 5 per window.
//!
//! A sliding log, not a token bucket: the times of the last grants are kept,
//! and a request may start only while fewer than the limit started within
//! the window (a bucket that starts full lets capacity + rate through in
//! its first window). Waiters queue per caller uid and are served round
//! robin, one grant per uid per turn, so a flood of cold keys from one uid
//! delays another uid's first token by at most one grant, not by the whole
//! flood. A waiter gives up at its deadline (the caller's budget) and is
//! then answered 429, like IMDS would, without IMDS being asked.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

#[cfg(test)]
mod tests;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Identity (token) requests started per window.
    pub identity_per_second: u32,
    /// Identity requests in flight at once.
    pub identity_concurrent: usize,
    /// Requests to other endpoints started per window.
    pub other_per_second: u32,
    /// The sliding window: one second, plus slack so that requests granted
    /// just over a second apart cannot arrive within one second of each
    /// other at IMDS when the first was slow to leave.
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            identity_per_second: 20,
            identity_concurrent: 5,
            other_per_second: 5,
            window: Duration::from_millis(1_100),
        }
    }
}

/// Which of IMDS's limits a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Identity,
    Other,
}

#[derive(Debug)]
struct Lane {
    per_window: usize,
    max_in_flight: Option<usize>,
    /// Start times of the grants still inside the window, oldest first.
    log: VecDeque<Instant>,
    in_flight: usize,
    /// Waiters by uid, and the uids whose turn it is, in order.
    queues: HashMap<u32, VecDeque<(Instant, oneshot::Sender<Slot>)>>,
    turn: VecDeque<u32>,
}

impl Lane {
    fn new(per_window: u32, max_in_flight: Option<usize>) -> Self {
        Lane {
            per_window: usize::try_from(per_window.max(1)).unwrap_or(usize::MAX),
            max_in_flight: max_in_flight.map(|m| m.max(1)),
            log: VecDeque::new(),
            in_flight: 0,
            queues: HashMap::new(),
            turn: VecDeque::new(),
        }
    }

    fn prune(&mut self, now: Instant, window: Duration) {
        while self.log.front().is_some_and(|t| *t + window <= now) {
            self.log.pop_front();
        }
    }

    fn room(&mut self, now: Instant, window: Duration) -> bool {
        self.prune(now, window);
        self.log.len() < self.per_window && self.max_in_flight.is_none_or(|m| self.in_flight < m)
    }

    /// When the window next opens, if that is what a waiter waits for.
    fn next_opening(&self, window: Duration) -> Option<Instant> {
        if self.log.len() >= self.per_window {
            self.log.front().map(|t| *t + window)
        } else {
            None
        }
    }

    fn grant(&mut self, now: Instant) {
        self.log.push_back(now);
        self.in_flight += 1;
    }

    /// Undo the latest grant (its waiter had gone).
    fn ungrant(&mut self) {
        self.log.pop_back();
        self.in_flight = self.in_flight.saturating_sub(1);
    }
}

#[derive(Debug)]
struct State {
    identity: Lane,
    other: Lane,
}

impl State {
    fn lane(&mut self, kind: Kind) -> &mut Lane {
        match kind {
            Kind::Identity => &mut self.identity,
            Kind::Other => &mut self.other,
        }
    }
}

#[derive(Debug)]
struct Inner {
    window: Duration,
    state: Mutex<State>,
    /// Told when a lane stops granting because its window is full, so the
    /// waiters re-read when it opens (one of them wakes then and grants).
    window_full: Notify,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// Grant slots to waiters, round robin by uid, while the lane has room.
fn dispatch(inner: &Arc<Inner>, state: &mut State, kind: Kind, now: Instant) {
    let window = inner.window;
    let lane = state.lane(kind);
    while let Some(uid) = lane.turn.pop_front() {
        if !lane.room(now, window) {
            lane.turn.push_front(uid);
            return;
        }
        let Some(queue) = lane.queues.get_mut(&uid) else {
            continue;
        };
        let waiter = queue.pop_front();
        if queue.is_empty() {
            lane.queues.remove(&uid);
        } else {
            lane.turn.push_back(uid);
        }
        // A waiter that gave up, or whose deadline passed, is dropped.
        let Some((deadline, tx)) = waiter else {
            continue;
        };
        if tx.is_closed() || deadline < now {
            continue;
        }
        lane.grant(now);
        let slot = Slot {
            inner: Some(Arc::clone(inner)),
            kind,
        };
        if let Err(mut slot) = tx.send(slot) {
            // Its waiter gave up a moment ago: take the grant back (without
            // running the slot's drop, which would lock again).
            slot.inner = None;
            lane.ungrant();
        } else if lane.next_opening(window).is_some() {
            // This grant filled the window.
            inner.window_full.notify_waiters();
        }
    }
}

#[derive(Debug, Clone)]
pub struct Limiter {
    inner: Arc<Inner>,
}

/// Held while an upstream request is in flight.
#[derive(Debug)]
pub struct Slot {
    inner: Option<Arc<Inner>>,
    kind: Kind,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            let mut state = inner.lock();
            let lane = state.lane(self.kind);
            lane.in_flight = lane.in_flight.saturating_sub(1);
            dispatch(&inner, &mut state, self.kind, Instant::now());
        }
    }
}

impl Limiter {
    pub fn new(limits: Limits) -> Self {
        Limiter {
            inner: Arc::new(Inner {
                window: limits.window.max(Duration::from_millis(1)),
                window_full: Notify::new(),
                state: Mutex::new(State {
                    identity: Lane::new(
                        limits.identity_per_second,
                        Some(limits.identity_concurrent),
                    ),
                    other: Lane::new(limits.other_per_second, None),
                }),
            }),
        }
    }

    /// Wait for a slot for `uid` until `deadline`; `None` when the budget ran out.
    pub async fn acquire(&self, kind: Kind, uid: u32, deadline: Instant) -> Option<Slot> {
        let (tx, mut rx) = oneshot::channel();
        {
            let mut state = self.inner.lock();
            let now = Instant::now();
            let window = self.inner.window;
            let lane = state.lane(kind);
            if lane.turn.is_empty() && lane.room(now, window) {
                lane.grant(now);
                if lane.next_opening(window).is_some() {
                    self.inner.window_full.notify_waiters();
                }
                return Some(Slot {
                    inner: Some(Arc::clone(&self.inner)),
                    kind,
                });
            }
            crate::metrics::limiter_waiting(true, kind == Kind::Identity);
            let queue = lane.queues.entry(uid).or_default();
            if queue.is_empty() && !lane.turn.contains(&uid) {
                lane.turn.push_back(uid);
            }
            queue.push_back((deadline, tx));
        }
        loop {
            // Whoever waits for the window to open wakes up then and grants
            // (a slot coming back grants from its drop): no timer task.
            let full = self.inner.window_full.notified();
            tokio::pin!(full);
            full.as_mut().enable();
            let wake = {
                let mut state = self.inner.lock();
                dispatch(&self.inner, &mut state, kind, Instant::now());
                state.lane(kind).next_opening(self.inner.window)
            };
            let until = wake.map_or(deadline, |w| w.min(deadline));
            tokio::select! {
                got = &mut rx => return got.ok(),
                () = &mut full => {}
                () = tokio::time::sleep_until(until) => {
                    if Instant::now() >= deadline {
                        // The lane may have room at this very instant (a
                        // window opening, a slot back): one last dispatch
                        // before giving up.
                        {
                            let mut state = self.inner.lock();
                            dispatch(&self.inner, &mut state, kind, Instant::now());
                        }
                        if let Ok(slot) = rx.try_recv() {
                            return Some(slot);
                        }
                        // A grant that landed at the last moment goes back.
                        rx.close();
                        drop(rx.try_recv());
                        return crate::metrics::limiter_refused(kind == Kind::Identity);
                    }
                }
            }
        }
    }
}

/// What `gatehouse status` shows of the limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub identity_in_flight: usize,
    pub identity_concurrent: usize,
}

impl Limiter {
    pub fn state(&self, limits: &Limits) -> Snapshot {
        let in_flight = self.inner.lock().lane(Kind::Identity).in_flight;
        Snapshot {
            identity_in_flight: in_flight,
            identity_concurrent: limits.identity_concurrent.max(1),
        }
    }
}

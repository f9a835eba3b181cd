//! The token cache.
//!
//! Keyed by (identity name *and its ids*, audience exactly as the client
//! sent it, selector kind, api-version): the token's `aud` and the answer's
//! `resource` echo the client's spelling, the answer echoes the selector,
//! and a reload that points a name at another identity must not serve the
//! old identity's token under the new name. A token is served while more than `margin` of its validity is
//! left, with `expires_in` recomputed for the moment it is served. One
//! upstream call per key is in flight at a time; concurrent callers wait
//! for it and share its result. The cache never skips a policy decision:
//! it is consulted only after the request was allowed.

use bytes::Bytes;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub identity: String,
    /// The identity's client, object and resource ids, as the policy names them.
    pub ids: String,
    pub resource: String,
    pub selector: &'static str,
    pub api_version: String,
}

/// A token answer as IMDS gave it, minus the figures that change with time.
#[derive(Debug, Clone)]
pub struct Cached {
    fields: Map<String, Value>,
    /// Epoch seconds.
    pub expires_on: u64,
    pub fingerprint: String,
}

impl Cached {
    /// Parse a 200 body; `None` when it has no usable `expires_on`.
    pub fn from_body(body: &[u8], fingerprint: String) -> Option<Cached> {
        let fields: Map<String, Value> = serde_json::from_slice(body).ok()?;
        let expires_on = fields.get("expires_on")?.as_str()?.parse().ok()?;
        Some(Cached {
            fields,
            expires_on,
            fingerprint,
        })
    }

    pub fn remaining(&self, now: u64) -> u64 {
        self.expires_on.saturating_sub(now)
    }

    /// The body to send at `now`: every value a string, as IMDS sends them,
    /// with `expires_in` (and `ext_expires_in`) counted from now.
    pub fn body_at(&self, now: u64) -> Bytes {
        let mut fields = self.fields.clone();
        let left = Value::String(self.remaining(now).to_string());
        fields.insert("expires_in".into(), left.clone());
        if fields.contains_key("ext_expires_in") {
            fields.insert("ext_expires_in".into(), left);
        }
        Bytes::from(serde_json::to_vec(&fields).unwrap_or_default())
    }
}

/// One key's state. `flight` is held by whoever is asking upstream.
#[derive(Debug, Default)]
pub struct Slot {
    pub flight: tokio::sync::Mutex<()>,
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    token: Option<Cached>,
    /// Bumped by every completed upstream call, so callers that waited for
    /// a flight can tell that it finished while they waited.
    generation: u64,
    /// The last failed answer and until when (epoch s) it stands in for
    /// IMDS: only as long as IMDS's own `Retry-After` said.
    error: Option<(u64, crate::upstream::UpstreamAnswer)>,
    last_error_generation: u64,
}

impl Slot {
    pub fn token(&self) -> Option<Cached> {
        self.lock().token.clone()
    }

    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    pub fn store(&self, token: Cached) {
        let mut s = self.lock();
        s.token = Some(token);
        s.error = None;
        s.generation += 1;
    }

    /// Record a failed call; `until` is when its Retry-After ends (if any).
    pub fn fail(&self, answer: Option<crate::upstream::UpstreamAnswer>, until: Option<u64>) {
        let mut s = self.lock();
        s.generation += 1;
        s.last_error_generation = s.generation;
        s.error = match (answer, until) {
            (Some(a), Some(u)) => Some((u, a)),
            _ => None,
        };
    }

    /// An error answer that still stands at `now` (within its Retry-After).
    pub fn standing_error(&self, now: u64) -> Option<crate::upstream::UpstreamAnswer> {
        let s = self.lock();
        match &s.error {
            Some((until, a)) if *until > now => Some(a.clone()),
            _ => None,
        }
    }

    /// Did a call that started after `since` fail?
    pub fn failed_since(&self, since: u64) -> bool {
        let s = self.lock();
        s.last_error_generation > since
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

#[derive(Debug)]
pub struct TokenCache {
    pub margin: Duration,
    /// Refresh in the background when less than this is left (> margin).
    pub refresh_below: Duration,
    slots: Mutex<HashMap<Key, Arc<Slot>>>,
    max_keys: usize,
}

/// What the cache says about a key right now.
#[derive(Debug)]
pub enum Lookup {
    /// Serve it; `refresh` asks for a background refresh.
    Fresh { token: Cached, refresh: bool },
    /// Must ask upstream; a token may still be valid (below the margin) as
    /// a fallback if upstream fails.
    Miss { fallback: Option<Cached> },
}

impl TokenCache {
    pub fn new(margin: Duration) -> Self {
        TokenCache {
            margin,
            refresh_below: margin * 2,
            slots: Mutex::new(HashMap::new()),
            max_keys: 4096,
        }
    }

    pub fn slot(&self, key: &Key) -> Arc<Slot> {
        let mut slots = match self.slots.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(s) = slots.get(key) {
            return Arc::clone(s);
        }
        if slots.len() >= self.max_keys {
            // Bounded: drop keys nobody is using right now.
            slots.retain(|_, s| Arc::strong_count(s) > 1);
        }
        let s = Arc::new(Slot::default());
        slots.insert(key.clone(), Arc::clone(&s));
        crate::metrics::cache_entries(slots.len());
        s
    }

    pub fn lookup(&self, slot: &Slot, now: u64) -> Lookup {
        match slot.token() {
            Some(t) if t.remaining(now) > self.margin.as_secs() => {
                let refresh = t.remaining(now) <= self.refresh_below.as_secs();
                Lookup::Fresh { token: t, refresh }
            }
            Some(t) if t.remaining(now) > 0 => Lookup::Miss { fallback: Some(t) },
            _ => Lookup::Miss { fallback: None },
        }
    }
}

/// What `gatehouse status` shows of the cache: counts and times, never a token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub entries: usize,
    /// Keys holding a token still valid at `now`.
    pub valid: usize,
    /// Seconds until the soonest background refresh is due.
    pub next_refresh_in: Option<u64>,
}

impl TokenCache {
    pub fn summary(&self, now: u64) -> Summary {
        let slots: Vec<Arc<Slot>> = match self.slots.lock() {
            Ok(g) => g.values().cloned().collect(),
            Err(p) => p.into_inner().values().cloned().collect(),
        };
        let mut out = Summary {
            entries: slots.len(),
            ..Summary::default()
        };
        for token in slots.iter().filter_map(|s| s.token()) {
            let left = token.remaining(now);
            if left == 0 {
                continue;
            }
            out.valid += 1;
            let due = left.saturating_sub(self.refresh_below.as_secs());
            out.next_refresh_in = Some(out.next_refresh_in.map_or(due, |n| n.min(due)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(expires_on: u64) -> Vec<u8> {
        format!(
            r#"{{"access_token":"t","client_id":"c","expires_in":"86399","expires_on":"{expires_on}","ext_expires_in":"86399","not_before":"1","resource":"r","token_type":"Bearer"}}"#
        )
        .into_bytes()
    }

    #[test]
    fn expires_in_is_counted_from_the_moment_served() {
        let c = Cached::from_body(&body(10_000), "fp".into()).unwrap();
        for (now, want) in [(1_000u64, "9000"), (9_999, "1"), (20_000, "0")] {
            let v: Value = serde_json::from_slice(&c.body_at(now)).unwrap();
            assert_eq!(v["expires_in"], want);
            assert_eq!(v["ext_expires_in"], want);
            assert_eq!(v["expires_on"], "10000");
            assert!(v.as_object().unwrap().values().all(Value::is_string));
        }
    }

    #[test]
    fn freshness_margin_and_refresh() {
        let cache = TokenCache::new(Duration::from_secs(300));
        let slot = cache.slot(&Key {
            identity: "i".into(),
            ids: "c||".into(),
            resource: "r".into(),
            selector: "none",
            api_version: "2018-02-01".into(),
        });
        assert!(matches!(
            cache.lookup(&slot, 0),
            Lookup::Miss { fallback: None }
        ));
        slot.store(Cached::from_body(&body(10_000), "fp".into()).unwrap());
        let rows = [
            (1_000, "fresh"),
            (9_399, "fresh"),
            (9_401, "fresh+refresh"),
            (9_701, "fallback"),
            (10_000, "miss"),
        ];
        for (now, want) in rows {
            let got = match cache.lookup(&slot, now) {
                Lookup::Fresh { refresh: false, .. } => "fresh",
                Lookup::Fresh { refresh: true, .. } => "fresh+refresh",
                Lookup::Miss { fallback: Some(_) } => "fallback",
                Lookup::Miss { fallback: None } => "miss",
            };
            assert_eq!(got, want, "at {now}");
        }
    }

    #[test]
    fn bodies_without_expiry_are_not_cached() {
        assert!(Cached::from_body(b"{\"access_token\":\"t\"}", "fp".into()).is_none());
        assert!(Cached::from_body(b"not json", "fp".into()).is_none());
    }

    #[test]
    fn errors_stand_only_until_retry_after() {
        let slot = Slot::default();
        let answer = crate::upstream::UpstreamAnswer {
            status: 429,
            content_type: None,
            retry_after: Some("5".into()),
            body: Bytes::new(),
        };
        slot.fail(Some(answer), Some(105));
        assert!(slot.standing_error(104).is_some());
        assert!(slot.standing_error(105).is_none());
        slot.fail(None, None);
        assert!(slot.standing_error(0).is_none());
    }
}

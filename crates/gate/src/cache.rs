//! The token cache.
//!
//! Keyed by (identity name *and its ids*, audience exactly as the client
//! sent it, selector kind, api-version): the token's `aud` and the answer's
//! `resource` echo the client's spelling, the answer echoes the selector,
//! and a reload that points a name at another identity must not serve the
//! old identity's token under the new name. A token is served while more than `margin` of its validity is
//! left, with `expires_in` recomputed for the moment it is served. One
//! upstream exchange per key (a flight, retries included) runs at a time;
//! concurrent callers wait for it, each no longer than its own budget, and
//! share its outcome. A failed outcome stands in for IMDS for a short time
//! ([`NEGATIVE_TTL`], or IMDS's `Retry-After`). The cache never skips a policy decision:
//! it is consulted only after the request was allowed.

use crate::upstream::UpstreamAnswer;
use bytes::Bytes;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// What kind of answer a key's token is: how it is checked, how long it
/// lives, how it is served again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Shape {
    /// Azure IMDS's token JSON (`expires_on`, string values).
    #[default]
    Azure,
    /// AWS role credentials (`Expiration`, served unchanged).
    AwsCredentials,
    /// GCE's access-token JSON (`expires_in`, a number, counted down).
    GcpAccess,
    /// A GCE ID token: the JWT as text (its `exp`, served unchanged).
    GcpIdentity,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub shape: Shape,
    pub identity: String,
    /// The identity's client, object and resource ids, as the policy names them.
    pub ids: String,
    pub resource: String,
    pub selector: &'static str,
    pub api_version: String,
}

impl Key {
    /// SHA-256 over every field, each length-prefixed: two keys share a
    /// digest only if they are the same key (or SHA-256 collides).
    pub fn digest(&self) -> [u8; 32] {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        let shape: u8 = match self.shape {
            Shape::Azure => 0,
            Shape::AwsCredentials => 1,
            Shape::GcpAccess => 2,
            Shape::GcpIdentity => 3,
        };
        h.update([shape]);
        for field in [
            self.identity.as_str(),
            &self.ids,
            &self.resource,
            self.selector,
            &self.api_version,
        ] {
            h.update(u64::try_from(field.len()).unwrap_or(u64::MAX).to_le_bytes());
            h.update(field.as_bytes());
        }
        h.finalize().into()
    }
}

/// A token answer as IMDS gave it, minus the figures that change with time.
///
/// Rendered once when it is stored: serving it copies the bytes around the
/// countdown (`expires_in`, `ext_expires_in`) and writes the seconds left
/// there, and a clone shares the bytes (no parse, no map, no allocation per
/// field on a cache hit, and about the answer's own size per key).
#[derive(Debug, Clone)]
pub struct Cached {
    body: Body,
    /// Epoch seconds.
    pub expires_on: u64,
    pub fingerprint: String,
}

#[derive(Debug, Clone)]
enum Body {
    /// Served byte for byte as it came (AWS role credentials: their
    /// `Expiration` is the credential's own; a GCE ID token), with its
    /// content type.
    Raw(Bytes, Option<String>),
    /// The JSON object, rendered as `serde_json` writes it, with the
    /// countdown's values left out at `holes` (ascending offsets).
    Countdown {
        text: Bytes,
        holes: Vec<usize>,
        /// The seconds are a JSON number (GCE), not a string (Azure).
        numeric: bool,
    },
}

/// `fields` as `serde_json::to_vec` writes them, every value of a key in
/// `countdown` left out; the offsets where they go.
fn render(fields: &Map<String, Value>, countdown: &[&str]) -> Option<(Bytes, Vec<usize>)> {
    let mut text = Vec::with_capacity(1024);
    let mut holes = Vec::new();
    text.push(b'{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            text.push(b',');
        }
        serde_json::to_writer(&mut text, key).ok()?;
        text.push(b':');
        if countdown.contains(&key.as_str()) {
            holes.push(text.len());
        } else {
            serde_json::to_writer(&mut text, value).ok()?;
        }
    }
    text.push(b'}');
    Some((Bytes::from(text), holes))
}

impl Cached {
    /// Parse a 200 body; `None` when it has no usable `expires_on`.
    pub fn from_body(body: &[u8], fingerprint: String) -> Option<Cached> {
        let mut fields: Map<String, Value> = serde_json::from_slice(body).ok()?;
        let expires_on = fields.get("expires_on")?.as_str()?.parse().ok()?;
        // Served with every value a string, as IMDS sends them, and
        // `expires_in` always (`ext_expires_in` where IMDS sent it).
        fields.insert("expires_in".into(), Value::Null);
        let (text, holes) = render(&fields, &["expires_in", "ext_expires_in"])?;
        Some(Cached {
            body: Body::Countdown {
                text,
                holes,
                numeric: false,
            },
            expires_on,
            fingerprint,
        })
    }

    /// GCE's access-token answer fetched at `now` (epoch seconds): valid
    /// for its `expires_in`; served with `expires_in` counted from the
    /// moment it is served, as GCE's own cache does.
    pub fn from_gcp_access(body: &[u8], now: u64, fingerprint: String) -> Option<Cached> {
        let fields: Map<String, Value> = serde_json::from_slice(body).ok()?;
        let left = fields.get("expires_in")?.as_u64()?;
        let (text, holes) = render(&fields, &["expires_in"])?;
        Some(Cached {
            body: Body::Countdown {
                text,
                holes,
                numeric: true,
            },
            expires_on: now.checked_add(left)?,
            fingerprint,
        })
    }

    /// A GCE ID token (a JWT as text): valid until its `exp`, served unchanged.
    pub fn from_gcp_identity(
        body: &Bytes,
        content_type: Option<String>,
        exp: u64,
        fingerprint: String,
    ) -> Cached {
        Cached {
            body: Body::Raw(body.clone(), content_type),
            expires_on: exp,
            fingerprint,
        }
    }

    /// AWS role credentials: valid until their `Expiration` (RFC 3339),
    /// served unchanged.
    pub fn from_aws_body(
        body: &Bytes,
        content_type: Option<String>,
        fingerprint: String,
    ) -> Option<Cached> {
        let fields: Map<String, Value> = serde_json::from_slice(body).ok()?;
        let expiration: jiff::Timestamp = fields.get("Expiration")?.as_str()?.parse().ok()?;
        let expires_on = u64::try_from(expiration.as_second()).ok()?;
        Some(Cached {
            body: Body::Raw(body.clone(), content_type),
            expires_on,
            fingerprint,
        })
    }

    /// The content type to serve the body with.
    pub fn content_type(&self) -> &str {
        match &self.body {
            Body::Raw(_, Some(ct)) => ct,
            _ => "application/json; charset=utf-8",
        }
    }

    pub fn remaining(&self, now: u64) -> u64 {
        self.expires_on.saturating_sub(now)
    }

    /// The body to send at `now`: every value a string, as IMDS sends them,
    /// with `expires_in` (and `ext_expires_in`) counted from now.
    pub fn body_at(&self, now: u64) -> Bytes {
        let (text, holes, numeric) = match &self.body {
            Body::Raw(body, _) => return body.clone(),
            Body::Countdown {
                text,
                holes,
                numeric,
            } => (text, holes, *numeric),
        };
        let left = self.remaining(now);
        let value = if numeric {
            left.to_string()
        } else {
            format!("\"{left}\"")
        };
        let mut out = Vec::with_capacity(text.len() + holes.len() * value.len());
        let mut at = 0;
        for &hole in holes {
            out.extend_from_slice(text.get(at..hole).unwrap_or_default());
            out.extend_from_slice(value.as_bytes());
            at = hole;
        }
        out.extend_from_slice(text.get(at..).unwrap_or_default());
        Bytes::from(out)
    }
}

/// A failed key is remembered this long even when IMDS said nothing about
/// retrying (longer when its `Retry-After` says so): a stampede on a
/// failing key costs one upstream exchange per interval, not one per caller.
pub const NEGATIVE_TTL: Duration = Duration::from_secs(2);

/// Why a shared upstream exchange gave no answer at all.
#[derive(Debug, Clone)]
pub enum Failure {
    /// No slot under IMDS's limits within the budget.
    Limited,
    Timeout,
    Unreachable(crate::upstream::UpstreamError),
    /// IMDS answered for another identity than the one decided on.
    WrongIdentity(crate::token_path::WrongIdentity),
}

/// How a shared upstream exchange (a flight) ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// IMDS answered (any status); a 200 carries its checked fingerprint.
    Answer {
        answer: UpstreamAnswer,
        attempts: u32,
        fingerprint: Option<String>,
    },
    Failed(Failure),
}

type FlightRx = watch::Receiver<Option<Outcome>>;
/// Held by the task that asks upstream for everyone waiting on a key.
#[derive(Debug)]
pub struct FlightTx(watch::Sender<Option<Outcome>>);

/// One key's state, behind one lock so that "is there a token, a standing
/// failure or a flight?" and "then I lead a flight" are one step: every
/// caller of a key either finds an answer or waits for the one flight.
#[derive(Debug, Default)]
pub struct Slot {
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    token: Option<Cached>,
    /// The last failed outcome and until when it stands in for IMDS.
    failure: Option<(Instant, Outcome)>,
    flight: Option<FlightRx>,
}

/// What a caller of a key does now.
#[derive(Debug)]
pub enum Step {
    /// Serve it; `lead` is set when it asks for a background refresh (this
    /// caller starts the flight and does not wait for it).
    Fresh {
        token: Cached,
        lead: Option<FlightTx>,
    },
    /// A failure stands for this key (`left`: for how much longer).
    Standing {
        outcome: Outcome,
        left: Duration,
        fallback: Option<Cached>,
    },
    /// Wait for the flight in progress (`lead`: this caller must start it).
    Wait {
        flight: FlightRx,
        lead: Option<FlightTx>,
        fallback: Option<Cached>,
    },
}

impl Slot {
    pub fn token(&self) -> Option<Cached> {
        self.lock().token.clone()
    }

    /// Cache `token` (and forget any failure).
    #[cfg(test)]
    pub fn store(&self, token: Cached) {
        let mut s = self.lock();
        s.token = Some(token);
        s.failure = None;
    }

    /// Does a flight run for this key right now?
    #[cfg(test)]
    pub fn in_flight(&self) -> bool {
        self.lock()
            .flight
            .as_ref()
            .is_some_and(|rx| rx.has_changed().is_ok())
    }

    /// A flight ends: record its outcome (a token to cache, or a failure to
    /// remember until `fail_until`) and wake every waiter, in one step.
    pub fn land(
        &self,
        tx: FlightTx,
        outcome: Outcome,
        token: Option<Cached>,
        fail_until: Option<Instant>,
    ) {
        let mut s = self.lock();
        if let Some(t) = token {
            s.token = Some(t);
            s.failure = None;
        } else if let Some(until) = fail_until {
            s.failure = Some((until, outcome.clone()));
        }
        s.flight = None;
        tx.0.send_replace(Some(outcome));
    }

    fn start(s: &mut SlotState) -> (FlightRx, Option<FlightTx>) {
        // A flight whose task is gone (its sender dropped) is no flight.
        if let Some(rx) = s.flight.as_ref().filter(|rx| rx.has_changed().is_ok()) {
            return (rx.clone(), None);
        }
        let (tx, rx) = watch::channel(None);
        s.flight = Some(rx.clone());
        (rx, Some(FlightTx(tx)))
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
    /// By the SHA-256 of the key ([`Key::digest`]): 32 bytes a key rather
    /// than its text (the identity's ids alone are ~200 bytes).
    slots: Mutex<HashMap<[u8; 32], Arc<Slot>>>,
    max_keys: usize,
}

/// What the cache says about a key right now (the tests' view of a slot).
#[cfg(test)]
#[derive(Debug)]
#[allow(
    dead_code,
    reason = "the tests compare variants by their shape and read only some fields"
)]
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
        let digest = key.digest();
        if let Some(s) = slots.get(&digest) {
            return Arc::clone(s);
        }
        if slots.len() >= self.max_keys {
            // Bounded: drop keys nobody is using right now.
            slots.retain(|_, s| Arc::strong_count(s) > 1);
        }
        let s = Arc::new(Slot::default());
        slots.insert(digest, Arc::clone(&s));
        crate::metrics::cache_entries(slots.len());
        s
    }

    #[cfg(test)]
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

    /// What a caller of `slot` does at `now` (epoch s) / `at` (monotonic).
    pub fn step(&self, slot: &Slot, now: u64, at: Instant) -> Step {
        let mut s = slot.lock();
        let token = s.token.clone();
        let fallback = match token {
            Some(t) if t.remaining(now) > self.margin.as_secs() => {
                let refresh = t.remaining(now) <= self.refresh_below.as_secs();
                let lead = if refresh { Slot::start(&mut s).1 } else { None };
                return Step::Fresh { token: t, lead };
            }
            Some(t) if t.remaining(now) > 0 => Some(t),
            _ => None,
        };
        if let Some((until, outcome)) = &s.failure {
            if *until > at {
                return Step::Standing {
                    outcome: outcome.clone(),
                    left: *until - at,
                    fallback,
                };
            }
        }
        let (flight, lead) = Slot::start(&mut s);
        Step::Wait {
            flight,
            lead,
            fallback,
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

    use proptest::strategy::Strategy as _;

    /// The naive model: the whole map, the countdown put in, written again.
    fn model_body_at(body: &[u8], numeric: bool, expires_on: u64, now: u64) -> Vec<u8> {
        let mut fields: Map<String, Value> = serde_json::from_slice(body).unwrap();
        let left = expires_on.saturating_sub(now);
        if numeric {
            fields.insert("expires_in".into(), Value::from(left));
        } else {
            fields.insert("expires_in".into(), Value::String(left.to_string()));
            if fields.contains_key("ext_expires_in") {
                fields.insert("ext_expires_in".into(), Value::String(left.to_string()));
            }
        }
        serde_json::to_vec(&fields).unwrap()
    }

    proptest::proptest! {
        /// Served bytes are the model's, for any fields (escapes, nesting,
        /// numbers, keys before and after the countdown's) and any time.
        #[test]
        fn a_rendered_answer_is_served_as_the_model_writes_it(
            extra in proptest::collection::btree_map(
                "[a-z_\"\\\\\u{e9}\n]{0,12}",
                proptest::prop_oneof![
                    "[ -~\u{e9}\u{2028}]{0,40}".prop_map(Value::String),
                    proptest::num::i64::ANY.prop_map(Value::from),
                    proptest::bool::ANY.prop_map(Value::from),
                    proptest::collection::vec("[a-z]{0,4}", 0..3).prop_map(Value::from),
                ],
                0..8,
            ),
            ext in proptest::bool::ANY,
            gcp in proptest::bool::ANY,
            expires_on in 0u64..5_000_000_000,
            now in 0u64..5_000_000_000,
        ) {
            let mut fields: Map<String, Value> = extra.into_iter().collect();
            if gcp {
                fields.insert("expires_in".into(), Value::from(3599u64));
            } else {
                fields.insert("expires_on".into(), Value::String(expires_on.to_string()));
                if ext {
                    fields.insert("ext_expires_in".into(), Value::String("1".into()));
                }
            }
            let body = serde_json::to_vec(&fields).unwrap();
            let (cached, expires) = if gcp {
                let c = Cached::from_gcp_access(&body, 1_000, "fp".into()).unwrap();
                let e = c.expires_on;
                (c, e)
            } else {
                (Cached::from_body(&body, "fp".into()).unwrap(), expires_on)
            };
            proptest::prop_assert_eq!(
                String::from_utf8(cached.body_at(now).to_vec()).unwrap(),
                String::from_utf8(model_body_at(&body, gcp, expires, now)).unwrap()
            );
        }
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
        let slot = cache.slot(&key());
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
    fn gcp_access_tokens_count_expires_in_down_as_a_number() {
        let body = br#"{"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"}"#;
        let c = Cached::from_gcp_access(body, 1_000, "fp".into()).unwrap();
        assert_eq!(c.expires_on, 4_599);
        for (now, want) in [(1_000, 3_599), (2_000, 2_599), (9_999, 0)] {
            let v: Value = serde_json::from_slice(&c.body_at(now)).unwrap();
            assert_eq!(v["expires_in"], want, "at {now}");
            assert_eq!(v["access_token"], "ya29.x");
            assert_eq!(v["token_type"], "Bearer");
        }
        assert!(Cached::from_gcp_access(br#"{"expires_in":"3599"}"#, 0, "fp".into()).is_none());
        assert!(Cached::from_gcp_access(br#"{"expires_in":-1}"#, 0, "fp".into()).is_none());
    }

    #[test]
    fn bodies_without_expiry_are_not_cached() {
        assert!(Cached::from_body(b"{\"access_token\":\"t\"}", "fp".into()).is_none());
        assert!(Cached::from_body(b"not json", "fp".into()).is_none());
    }

    fn key() -> Key {
        Key {
            shape: Shape::Azure,
            identity: "i".into(),
            ids: "c||".into(),
            resource: "r".into(),
            selector: "none",
            api_version: "2018-02-01".into(),
        }
    }

    /// Keys that differ in any field, or only in where one field ends and
    /// the next begins, are different slots; the same key is one slot.
    #[test]
    fn every_field_of_a_key_tells_slots_apart() {
        let cache = TokenCache::new(Duration::from_secs(300));
        let base = key();
        let variants: Vec<Key> = vec![
            Key {
                shape: Shape::GcpAccess,
                ..key()
            },
            Key {
                identity: "j".into(),
                ..key()
            },
            Key {
                ids: "c|o|".into(),
                ..key()
            },
            Key {
                resource: "r2".into(),
                ..key()
            },
            Key {
                selector: "client_id",
                ..key()
            },
            Key {
                api_version: "2019-08-01".into(),
                ..key()
            },
            // The same bytes in all, split differently between two fields.
            Key {
                identity: "ic".into(),
                ids: "||".into(),
                ..key()
            },
        ];
        let first = cache.slot(&base);
        assert!(
            Arc::ptr_eq(&first, &cache.slot(&key())),
            "same key, one slot"
        );
        let mut digests = vec![base.digest()];
        for v in &variants {
            assert!(!Arc::ptr_eq(&first, &cache.slot(v)), "{v:?}");
            assert!(!digests.contains(&v.digest()), "{v:?}");
            digests.push(v.digest());
        }
    }

    fn step_name(step: &Step) -> &'static str {
        match step {
            Step::Fresh { lead: None, .. } => "fresh",
            Step::Fresh { lead: Some(_), .. } => "fresh+lead",
            Step::Standing { .. } => "standing",
            Step::Wait { lead: Some(_), .. } => "lead",
            Step::Wait { lead: None, .. } => "join",
        }
    }

    #[tokio::test]
    async fn one_flight_per_key_then_a_standing_failure() {
        let cache = TokenCache::new(Duration::from_secs(300));
        let slot = cache.slot(&key());
        let t0 = Instant::now();
        let first = cache.step(&slot, 0, t0);
        assert_eq!(step_name(&first), "lead");
        // Everyone after the leader joins its flight.
        for _ in 0..3 {
            assert_eq!(step_name(&cache.step(&slot, 0, t0)), "join");
        }
        let Step::Wait {
            flight,
            lead: Some(tx),
            ..
        } = first
        else {
            unreachable!()
        };
        let failed = Outcome::Failed(Failure::Timeout);
        slot.land(tx, failed, None, Some(t0 + NEGATIVE_TTL));
        assert!(matches!(*flight.borrow(), Some(Outcome::Failed(_))));
        let rows = [
            (Duration::ZERO, "standing"),
            (NEGATIVE_TTL - Duration::from_millis(1), "standing"),
            (NEGATIVE_TTL, "lead"),
        ];
        for (after, want) in rows {
            assert_eq!(
                step_name(&cache.step(&slot, 0, t0 + after)),
                want,
                "{after:?}"
            );
        }
    }

    /// A cache, the slot of [`key`], the time of its first step, and the
    /// sender of the flight that step made its caller lead.
    fn leading_first_flight() -> (TokenCache, Arc<Slot>, Instant, FlightTx) {
        let cache = TokenCache::new(Duration::from_secs(300));
        let slot = cache.slot(&key());
        let t0 = Instant::now();
        let Step::Wait { lead: Some(tx), .. } = cache.step(&slot, 0, t0) else {
            unreachable!()
        };
        (cache, slot, t0, tx)
    }

    #[tokio::test]
    async fn a_flight_whose_task_died_is_no_flight() {
        let (cache, slot, t0, tx) = leading_first_flight();
        assert!(slot.in_flight());
        drop(tx);
        assert!(!slot.in_flight());
        assert_eq!(step_name(&cache.step(&slot, 0, t0)), "lead");
    }

    #[tokio::test]
    async fn a_token_ends_the_failure_and_refresh_leads_once() {
        let (cache, slot, t0, tx) = leading_first_flight();
        let token = Cached::from_body(&body(10_000), "fp".into()).unwrap();
        let outcome = Outcome::Failed(Failure::Timeout);
        slot.land(tx, outcome, Some(token), None);
        assert_eq!(step_name(&cache.step(&slot, 1_000, t0)), "fresh");
        // Near expiry: the first caller starts a refresh, the next does not.
        // (The refresh's sender is kept: a flight whose sender is gone is none.)
        let refresh = cache.step(&slot, 9_401, t0);
        assert_eq!(step_name(&refresh), "fresh+lead");
        assert_eq!(step_name(&cache.step(&slot, 9_401, t0)), "fresh");
        // Below the margin with a flight running: wait for it, token as fallback.
        let Step::Wait { fallback, lead, .. } = cache.step(&slot, 9_701, t0) else {
            unreachable!()
        };
        assert!(lead.is_none() && fallback.is_some());
    }
}

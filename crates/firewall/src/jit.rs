//! Just-in-time ports at run time: the elements of `jit4`/`jit6`, each one
//! source allowed to one protected port until its timeout, when the kernel
//! removes it by itself.
//!
//! The daemon states what should be open and [`sync`] makes the kernel agree
//! in one `nft -j list` and at most one `nft -f -` batch. A full
//! [`apply`](crate::apply) recreates the table and so empties both sets: call
//! [`sync`] after every apply, the watcher's repairs included.
//!
//! nft refuses a timeout above about 49 days (2^32 ms) with "value too
//! large"; the daemon's grants are far shorter.
//!
//! Deleting an element only stops new connections; established ones go on
//! (that is the rule set's first rule). Cut them with
//! `gatehouse_sys::destroy_sockets` after the delete.

use crate::nft::Nft;
use crate::ruleset::{FAMILY, JIT4, JIT6, TABLE};
pub use gatehouse_policy::Protocol;
use serde_json::Value;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

#[cfg(test)]
mod tests;

/// A transport protocol as nft lists it: `inet_proto` by name, or by number.
fn parse_protocol(v: &Value) -> Option<Protocol> {
    match v {
        Value::String(s) if s == "tcp" => Some(Protocol::Tcp),
        Value::String(s) if s == "udp" => Some(Protocol::Udp),
        Value::Number(n) if n.as_u64() == Some(6) => Some(Protocol::Tcp),
        Value::Number(n) if n.as_u64() == Some(17) => Some(Protocol::Udp),
        _ => None,
    }
}

/// One open port: `source` may connect to `proto`/`port` for `expires_in`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub source: IpAddr,
    pub proto: Protocol,
    pub port: u16,
    /// Time left. The kernel counts whole seconds down; an element someone
    /// added without a timeout never expires and is listed as `Duration::MAX`.
    pub expires_in: Duration,
}

/// What [`sync`] changed. A replaced element (its expiry was off by more
/// than [`TOLERANCE`]) is in both lists: in `removed` as the kernel had it,
/// in `added` as it is now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub added: Vec<Element>,
    pub removed: Vec<Element>,
    /// Elements left as they were.
    pub kept: usize,
}

/// How far the kernel's expiry may be from the desired one before [`sync`]
/// replaces the element: the kernel lists whole seconds, and `sync` runs
/// some time after the desired state was computed.
pub const TOLERANCE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JitError {
    #[error("table `{FAMILY} {TABLE}` is missing: run `gatehouse firewall apply` first")]
    TableMissing,
    #[error("table `{FAMILY} {TABLE}` has no set `{0}`: enable `[jit]` and run `gatehouse firewall apply`")]
    SetMissing(&'static str),
    #[error("`nft -j` output has no `nftables` array")]
    NotNftables,
}

/// Make jit4/jit6 contain exactly `desired` (one nft -j list + at most one batch): add missing
/// ones with `timeout` = expires_in (rounded up to whole seconds, min 1 s), delete ones not
/// desired, replace ones whose kernel expiry differs from desired by > 5 s. Returns what changed.
///
/// Two desired elements for the same source, protocol and port are one: the
/// later expiry wins. A v4-mapped IPv6 source is its IPv4 address (that is
/// how its packets arrive). Elements the kernel holds that `Element` cannot
/// describe (a protocol other than tcp/udp, added by hand) are deleted too,
/// and not reported.
pub fn sync(nft: &Nft, desired: &[Element]) -> Result<SyncReport, crate::Error> {
    let current = listed(nft)?;
    let plan = plan(&current, desired);
    if !plan.batch.is_empty() {
        nft.run_batch(&plan.batch)?;
    }
    Ok(plan.report)
}

/// The elements of jit4 and jit6, with the time the kernel gives each.
pub fn list(nft: &Nft) -> Result<Vec<Element>, crate::Error> {
    Ok(listed(nft)?.into_iter().filter_map(|l| l.element).collect())
}

/// Open `e.port` to `e.source` for exactly `e.expires_in` from now, whether
/// or not it was open before (one batch).
pub fn add(nft: &Nft, e: &Element) -> Result<(), crate::Error> {
    let key = Key::of(e);
    let mut batch = String::new();
    remove_line(&mut batch, &key);
    add_line(&mut batch, &key, e.expires_in);
    nft.run_batch(&batch)?;
    Ok(())
}

/// Close `e.port` to `e.source` for new connections; Ok when it was not open
/// (`e.expires_in` is ignored).
pub fn delete(nft: &Nft, e: &Element) -> Result<(), crate::Error> {
    let mut batch = String::new();
    remove_line(&mut batch, &Key::of(e));
    nft.run_batch(&batch)?;
    Ok(())
}

/// An element as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    key: Key,
    /// `None`: not a tcp/udp element.
    element: Option<Element>,
}

/// What identifies an element: the set and `source . proto . port` as nft
/// input.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    set: &'static str,
    text: String,
}

impl Key {
    fn of(e: &Element) -> Key {
        let source = e.source.to_canonical();
        Key {
            set: if source.is_ipv4() { JIT4 } else { JIT6 },
            text: format!("{source} . {} . {}", e.proto.as_str(), e.port),
        }
    }
}

#[derive(Debug, Default)]
struct Plan {
    batch: String,
    report: SyncReport,
}

/// The batch and report that turn `current` into `desired`.
fn plan(current: &[Listed], desired: &[Element]) -> Plan {
    // Deduplicate, keeping the later expiry; canonical sources.
    let mut wanted: Vec<(Key, Element)> = Vec::new();
    for e in desired {
        let e = Element {
            source: e.source.to_canonical(),
            ..e.clone()
        };
        let key = Key::of(&e);
        match wanted.iter_mut().find(|(k, _)| *k == key) {
            Some((_, have)) if have.expires_in < e.expires_in => *have = e,
            Some(_) => {}
            None => wanted.push((key, e)),
        }
    }
    let mut out = Plan::default();
    for l in current {
        let want = wanted.iter().find(|(k, _)| *k == l.key).map(|(_, e)| e);
        let keep = match (&l.element, want) {
            (Some(have), Some(want)) => {
                have.expires_in.abs_diff(timeout(want.expires_in)) <= TOLERANCE
            }
            _ => false,
        };
        if keep {
            out.report.kept += 1;
            continue;
        }
        remove_line(&mut out.batch, &l.key);
        if let Some(e) = &l.element {
            out.report.removed.push(e.clone());
        }
    }
    for (key, e) in wanted {
        let kept = current.iter().any(|l| {
            l.key == key
                && l.element.as_ref().is_some_and(|have| {
                    have.expires_in.abs_diff(timeout(e.expires_in)) <= TOLERANCE
                })
        });
        if !kept {
            add_line(&mut out.batch, &key, e.expires_in);
            out.report.added.push(e);
        }
    }
    out
}

/// `expires_in` as the kernel will hold it: whole seconds, rounded up, at
/// least one.
fn timeout(expires_in: Duration) -> Duration {
    let secs = expires_in
        .as_secs()
        .saturating_add(u64::from(expires_in.subsec_nanos() > 0));
    Duration::from_secs(secs.max(1))
}

fn add_line(batch: &mut String, key: &Key, expires_in: Duration) {
    let _ = writeln!(
        batch,
        "add element {FAMILY} {TABLE} {} {{ {} timeout {}s }}",
        key.set,
        key.text,
        timeout(expires_in).as_secs()
    );
}

/// Deleting an absent element fails the whole batch, and an element may
/// expire between the listing and the batch: adding it first (a no-op when it
/// is there) makes the delete always succeed, in the same transaction.
fn remove_line(batch: &mut String, key: &Key) {
    let _ = writeln!(
        batch,
        "add element {FAMILY} {TABLE} {} {{ {} }}",
        key.set, key.text
    );
    let _ = writeln!(
        batch,
        "delete element {FAMILY} {TABLE} {} {{ {} }}",
        key.set, key.text
    );
}

/// The elements of both sets, from one listing of the table.
fn listed(nft: &Nft) -> Result<Vec<Listed>, crate::Error> {
    let listing = nft.list_table()?.ok_or(JitError::TableMissing)?;
    Ok(parse_listing(&listing)?)
}

fn parse_listing(listing: &Value) -> Result<Vec<Listed>, JitError> {
    let items = listing
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or(JitError::NotNftables)?;
    let mut out = Vec::new();
    for set in [JIT4, JIT6] {
        let found = items.iter().filter_map(|i| i.get("set")).find(|s| {
            s.get("family").and_then(Value::as_str) == Some(FAMILY)
                && s.get("table").and_then(Value::as_str) == Some(TABLE)
                && s.get("name").and_then(Value::as_str) == Some(set)
        });
        let Some(found) = found else {
            return Err(JitError::SetMissing(set));
        };
        let elems = found
            .get("elem")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        out.extend(elems.iter().filter_map(|e| parse_element(set, e)));
    }
    Ok(out)
}

/// `{"elem": {"val": {"concat": [ADDR, PROTO, PORT]}, "timeout": S, "expires": S}}`,
/// or the bare `{"concat": …}` of an element without a timeout.
fn parse_element(set: &'static str, e: &Value) -> Option<Listed> {
    let (val, expires) = match e.get("elem") {
        Some(inner) => (
            inner.get("val")?,
            inner.get("expires").and_then(Value::as_u64),
        ),
        None => (e, None),
    };
    let parts = val.get("concat").and_then(Value::as_array)?;
    let [addr, proto, port] = parts.as_slice() else {
        return None;
    };
    let source: IpAddr = addr.as_str()?.parse().ok()?;
    let port = u16::try_from(port.as_u64()?).ok()?;
    let proto_text = match proto {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let element = parse_protocol(proto).map(|proto| Element {
        source,
        proto,
        port,
        expires_in: expires.map_or(Duration::MAX, Duration::from_secs),
    });
    Some(Listed {
        key: Key {
            set,
            text: format!("{source} . {proto_text} . {port}"),
        },
        element,
    })
}

//! `gatehouse check --replay FILES`: decide every recorded request again
//! under a candidate policy — with the caller, the request and the time as
//! recorded, and the just-in-time grants the records show — and report
//! what would change.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_policy::Policy;
use serde::Serialize;

use crate::evidence::{self, Verdict};

/// One group of recorded requests whose verdict changes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
struct Key {
    uid: u32,
    user: Option<String>,
    exe: Option<String>,
    unit: Option<String>,
    action: String,
    identity: Option<String>,
    audience: Option<String>,
    before: Verdict,
    after: Verdict,
    /// What decided then (assignments, or the reason).
    was: String,
    /// What decides now.
    now: String,
}

#[derive(Debug, Serialize)]
struct Change {
    #[serde(flatten)]
    key: Key,
    count: u64,
    first: String,
    last: String,
}

#[derive(Debug, Serialize)]
struct Replay {
    policy: String,
    replayed: u64,
    unchanged: u64,
    allow_to_deny: u64,
    deny_to_allow: u64,
    changes: Vec<Change>,
}

fn who_decided(names: &[String], reason: &str) -> String {
    if names.is_empty() {
        reason.to_owned()
    } else {
        names.join(", ")
    }
}

fn replay(name: &str, policy: &Policy, files: &[PathBuf], single: bool) -> Result<Replay, String> {
    let entries = evidence::read(files, single)?;
    let grants = evidence::grants(&entries);
    let mut groups: BTreeMap<Key, (u64, String, String)> = BTreeMap::new();
    let mut out = Replay {
        policy: name.to_owned(),
        replayed: 0,
        unchanged: 0,
        allow_to_deny: 0,
        deny_to_allow: 0,
        changes: Vec::new(),
    };
    let mut machine = evidence::Groups::default();
    for d in evidence::decided(&entries) {
        let audience = evidence::audience(d.record);
        let caller = evidence::caller(&mut machine, d.caller, d.trusted.is_some());
        let request = evidence::request(&d, audience.as_deref());
        let now = policy.decide_with(&caller, &request, &grants);
        let after = if now.is_allowed() && !now.would_deny() {
            Verdict::Allow
        } else {
            Verdict::Deny
        };
        out.replayed += 1;
        if after == d.verdict {
            out.unchanged += 1;
            continue;
        }
        match after {
            Verdict::Deny => out.allow_to_deny += 1,
            Verdict::Allow => out.deny_to_allow += 1,
        }
        let key = Key {
            uid: d.caller.uid,
            user: d.caller.user.clone(),
            exe: d.caller.exe.clone(),
            unit: d.caller.unit.clone(),
            action: d.action.as_str().to_owned(),
            identity: d.record.request.identity.clone(),
            audience,
            before: d.verdict,
            after,
            was: who_decided(&d.record.decided_by, &d.record.reason),
            now: who_decided(now.decided_by(), &now.reason().to_string()),
        };
        let time = &d.entry.time;
        let slot = groups
            .entry(key)
            .or_insert_with(|| (0, time.clone(), time.clone()));
        slot.0 += 1;
        if *time < slot.1 {
            slot.1.clone_from(time);
        }
        if *time > slot.2 {
            slot.2.clone_from(time);
        }
    }
    out.changes = groups
        .into_iter()
        .map(|(key, (count, first, last))| Change {
            key,
            count,
            first,
            last,
        })
        .collect();
    // Allow → deny first: they are what breaks.
    out.changes.sort_by_key(|c| std::cmp::Reverse(c.key.after));
    Ok(out)
}

fn print_human(r: &Replay) {
    for c in &r.changes {
        let k = &c.key;
        let mut who = format!("uid {}", k.uid);
        if let Some(u) = &k.user {
            who.push_str(&format!(" ({u})"));
        }
        if let Some(unit) = &k.unit {
            who.push_str(&format!(" unit {unit}"));
        }
        if let Some(exe) = &k.exe {
            who.push_str(&format!(" exe {exe}"));
        }
        let what = match (&k.identity, &k.audience) {
            (Some(i), Some(a)) => format!("{} {i} {a}", k.action),
            _ => k.action.clone(),
        };
        println!(
            "{} → {}  {who}  {what}  ×{} ({} .. {})\n    was: {}\n    now: {}",
            k.before.as_str(),
            k.after.as_str(),
            c.count,
            c.first,
            c.last,
            k.was,
            k.now
        );
    }
    println!(
        "{}: {} recorded request(s) replayed: {} unchanged, {} allow → deny, {} deny → allow",
        r.policy, r.replayed, r.unchanged, r.allow_to_deny, r.deny_to_allow
    );
}

/// Exit 0: no recorded allow would be denied; 1: some would; 2: bad input.
pub fn main(name: &str, policy: &Policy, files: &[PathBuf], single: bool, json: bool) -> ExitCode {
    let r = match replay(name, policy, files, single) {
        Ok(r) => r,
        Err(e) => return crate::fail(&e, None),
    };
    if json {
        match serde_json::to_string(&r) {
            Ok(text) => println!("{text}"),
            Err(e) => return crate::fail(&format!("cannot print the replay: {e}"), None),
        }
    } else {
        print_human(&r);
    }
    if r.allow_to_deny > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

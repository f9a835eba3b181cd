//! Audit records as evidence: the files to read (rotation sets), times,
//! and a recorded request turned back into the policy's inputs, so a
//! candidate policy can decide it as it was then.

#![allow(
    dead_code,
    reason = "suggest and replay, in the next commits, use the rest"
)]

use std::path::PathBuf;
use std::str::FromStr;
use std::time::SystemTime;

use gatehouse_audit::{Entry, Event, Outcome, RequestRecord};
use gatehouse_policy::{Action, Caller, Grant, Process, Request, SelectorKind};

/// `PATH` → its rotation set `PATH.N … PATH.1, PATH`, oldest first (only
/// `PATH` with `single`).
pub fn files(paths: &[PathBuf], single: bool) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        if single {
            out.push(path.clone());
            continue;
        }
        match gatehouse_audit::rotation_set(path) {
            Ok(set) => out.extend(set),
            Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
        }
    }
    Ok(out)
}

/// Every record of `paths` (with their rotation sets), or the first bad line.
pub fn read(paths: &[PathBuf], single: bool) -> Result<Vec<Entry>, String> {
    let files = files(paths, single)?;
    gatehouse_audit::read_all(&files).map_err(|e| e.to_string())
}

/// An audit time (`YYYY-MM-DDTHH:MM:SS.mmmZ`, or any RFC 3339) as a `SystemTime`.
pub fn system_time(text: &str) -> Option<SystemTime> {
    let ts = jiff::Timestamp::from_str(text).ok()?;
    let since = std::time::Duration::try_from(ts.as_duration()).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(since)
}

/// `--since`/`--until`: an RFC 3339 time, or a duration back from now
/// (`90s`, `30m`, `1h`, `2d`), as an audit time string (which compares as
/// text in time order).
pub fn time_bound(text: &str, now: SystemTime) -> Result<String, String> {
    if let Some(t) = system_time(text) {
        return Ok(gatehouse_gate::clock::rfc3339(t));
    }
    let ago = gatehouse_policy::parse_duration(text).map_err(|_| {
        format!("`{text}` is neither a time (`2026-12-01T09:00:00Z`) nor a duration (`1h`, `30m`, `2d`)")
    })?;
    let at = now.checked_sub(ago).unwrap_or(SystemTime::UNIX_EPOCH);
    Ok(gatehouse_gate::clock::rfc3339(at))
}

/// What the policy decided for a recorded request, enforce mode's view:
/// in audit mode a `would deny` is a deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Deny,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        }
    }
}

/// A request the policy decided, with everything needed to decide it again.
#[derive(Debug, Clone)]
pub struct Decided<'a> {
    pub entry: &'a Entry,
    pub record: &'a RequestRecord,
    pub caller: &'a gatehouse_audit::Caller,
    pub action: Action,
    pub verdict: Verdict,
    /// Allowed by a trusted-service exception (not by an assignment).
    pub trusted: Option<&'a str>,
}

/// The request records that reached the policy: a caller was identified,
/// the action is known and the policy was asked (not a rejected request).
pub fn decided(entries: &[Entry]) -> Vec<Decided<'_>> {
    entries
        .iter()
        .filter_map(|entry| {
            let Event::Request(record) = &entry.event else {
                return None;
            };
            let caller = record.caller.as_ref()?;
            let detail = record.decision_detail.as_ref()?;
            let action = Action::from_str(record.request.action.as_deref()?).ok()?;
            let verdict = match record.outcome {
                Outcome::Allow if !detail.would_deny => Verdict::Allow,
                Outcome::Allow | Outcome::Deny => Verdict::Deny,
                // Allowed, then the upstream or the audit failed.
                Outcome::Error if !detail.would_deny && !record.decided_by.is_empty() => {
                    Verdict::Allow
                }
                Outcome::Error | Outcome::Rejected => return None,
            };
            Some(Decided {
                entry,
                record,
                caller,
                action,
                verdict,
                trusted: detail.trusted_service.as_deref(),
            })
        })
        .collect()
}

/// Users' groups from this machine's /etc/passwd and /etc/group, read
/// once per user.
#[derive(Default)]
pub struct Groups(std::collections::HashMap<(u32, Option<String>), GidsAndNames>);

type GidsAndNames = (Vec<u32>, Vec<String>);

impl Groups {
    fn of(&mut self, uid: u32, user: Option<&str>) -> GidsAndNames {
        self.0
            .entry((uid, user.map(str::to_owned)))
            .or_insert_with(|| {
                crate::explain::user_caller(user, Some(uid))
                    .map(|u| (u.gids, u.group_names))
                    .unwrap_or_default()
            })
            .clone()
    }
}

/// The caller as the gate saw it. The first holder's facts are the
/// recorded ones; other holders are known by pid and uid only (so a
/// process principal, which needs every holder, does not match them: as
/// the gate would not have, unless they matched too). Groups are not in
/// the record: they are this machine's for the recorded user. Nor is the
/// executable's owner: it is taken as root only when a trusted service
/// allowed the request (the gate checked it then), else it is absent.
pub fn caller(groups: &mut Groups, c: &gatehouse_audit::Caller, trusted: bool) -> Caller {
    let first = Process {
        pid: c.pid.unwrap_or_default(),
        uid: c.uid,
        exe_path: c.exe.clone(),
        exe_path_verified: c.exe_verified.unwrap_or(false),
        exe_sha256: c.exe_sha256.clone(),
        unit: c.unit.clone(),
        cgroup: c.cgroup.clone(),
        container: c.container.clone(),
        exe_owner_uid: trusted.then_some(0),
    };
    let mut processes = Vec::new();
    if c.pid.is_some() {
        processes.push(first);
        processes.extend(
            c.holders
                .iter()
                .filter(|h| Some(h.pid) != c.pid)
                .map(|h| Process {
                    pid: h.pid,
                    uid: h.uid,
                    ..Process::default()
                }),
        );
    }
    let (gids, group_names) = groups.of(c.uid, c.user.as_deref());
    Caller {
        uid: Some(c.uid),
        user: c.user.clone(),
        gids,
        group_names,
        processes,
    }
}

/// The normalised audience of a recorded request.
pub fn audience(record: &RequestRecord) -> Option<String> {
    record
        .request
        .audience
        .as_deref()
        .and_then(gatehouse_policy::normalise_audience)
}

fn selector(text: &str) -> Option<SelectorKind> {
    Some(match text {
        "none" => SelectorKind::None,
        "client_id" => SelectorKind::ClientId,
        "object_id" => SelectorKind::ObjectId,
        "msi_res_id" => SelectorKind::ResourceId,
        _ => return None,
    })
}

/// The recorded request, at its recorded time.
pub fn request<'a>(d: &'a Decided<'_>, audience: Option<&'a str>) -> Request<'a> {
    let facts = &d.record.request;
    let mut r = Request::new(d.action)
        .identity(facts.identity.as_deref())
        .audience(audience)
        .api_version(facts.api_version.as_deref());
    if let Some(kind) = facts.selector.as_deref().and_then(selector) {
        r = r.selector(kind);
    }
    if let Some(path) = facts.path.as_deref() {
        r = r.path(path);
    }
    if let Some(t) = system_time(&d.entry.time) {
        r = r.at(t);
    }
    r
}

/// The just-in-time grants the records show: activated, until they
/// expired or were revoked (as recorded), for deciding recorded requests
/// as the gate did.
pub fn grants(entries: &[Entry]) -> Vec<Grant> {
    let mut out: Vec<Grant> = Vec::new();
    for entry in entries {
        match &entry.event {
            Event::JitActivated(e) => {
                let Some(view) = &e.request else { continue };
                let (Some(assignment), Some(identity), Some(uid)) =
                    (&view.assignment, &view.identity, view.requester.uid)
                else {
                    continue;
                };
                let (Some(starts), Some(expires)) = (
                    view.starts.as_deref().and_then(system_time),
                    view.expires.as_deref().and_then(system_time),
                ) else {
                    continue;
                };
                out.retain(|g| g.id != e.id);
                out.push(Grant {
                    id: e.id.clone(),
                    assignment: assignment.clone(),
                    uid,
                    identity: identity.clone(),
                    audience: view
                        .audience
                        .as_deref()
                        .and_then(gatehouse_policy::normalise_audience),
                    starts,
                    expires,
                });
            }
            Event::JitRevoked(e) => {
                let at = system_time(&e.at);
                for g in out.iter_mut().filter(|g| g.id == e.id) {
                    if let Some(at) = at {
                        g.expires = g.expires.min(at);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

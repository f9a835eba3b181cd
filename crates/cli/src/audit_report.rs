//! `gatehouse audit report`: what a period of the audit log says about
//! access — who used which identity and audience, what the policy grants
//! that nobody used, who tried and failed, just-in-time grants, and the
//! trusted-service exceptions taken.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use gatehouse_audit::{Entry, Event, Outcome};
use gatehouse_gate::clock::{Clock, SystemClock};
use serde::Serialize;

use crate::evidence::{self, Verdict};

#[derive(clap::Args)]
pub struct Args {
    /// Audit logs (each with its rotated predecessors).
    #[arg(default_value = "/var/log/gatehouse/audit.log", num_args = 1..)]
    files: Vec<PathBuf>,
    /// Read only the files named, not their rotated predecessors.
    #[arg(long)]
    single: bool,
    /// The period's start: RFC 3339 or a duration back from now (`7d`).
    #[arg(long, value_name = "TIME|AGO")]
    since: Option<String>,
    /// The period's end (same forms).
    #[arg(long, value_name = "TIME|AGO")]
    until: Option<String>,
    /// The policy in force, to list assignments nothing used in the period.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// `table` (default), `markdown` (for a ticket) or `json`.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Same as `--format json`.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Markdown,
    Json,
}

#[derive(Debug, Default, Serialize)]
struct Report {
    since: Option<String>,
    until: Option<String>,
    records: u64,
    /// Per identity and audience: who was served tokens, how often.
    usage: Vec<Usage>,
    /// Assignments of `--policy` that decided nothing in the period.
    unused_assignments: Option<Vec<String>>,
    /// Requests the policy denied (or in audit mode would have), by caller.
    denied: Vec<Denied>,
    /// Just-in-time activity, by eligible assignment.
    jit: Vec<Jit>,
    /// Requests allowed by a trusted-service exception, by service.
    trusted_services: Vec<Trusted>,
}

#[derive(Debug, Serialize)]
struct Usage {
    identity: String,
    audience: String,
    principals: Vec<Used>,
}

#[derive(Debug, Serialize)]
struct Used {
    caller: String,
    requests: u64,
    /// Of them, served only because the family was in audit mode.
    would_deny: u64,
}

#[derive(Debug, Serialize)]
struct Denied {
    caller: String,
    requests: u64,
    /// What was asked (`action identity audience`), distinct.
    asked: Vec<String>,
    reasons: Vec<String>,
    first: String,
    last: String,
}

#[derive(Debug, Default, Serialize)]
struct Jit {
    assignment: String,
    requested: u64,
    approved: u64,
    denied: u64,
    activated: u64,
    /// Requests a grant of it allowed.
    used: u64,
}

#[derive(Debug, Serialize)]
struct Trusted {
    service: String,
    requests: u64,
    callers: Vec<String>,
}

/// A caller in one short line.
fn describe(c: &gatehouse_audit::Caller) -> String {
    let mut s = format!("uid {}", c.uid);
    if let Some(u) = &c.user {
        s.push_str(&format!(" ({u})"));
    }
    if let Some(unit) = &c.unit {
        s.push_str(&format!(" unit {unit}"));
    }
    if let Some(exe) = &c.exe {
        s.push_str(&format!(" exe {exe}"));
    }
    s
}

/// The assignment a decided-by name stands for (`a (jit ID)` is `a`).
fn base_name(name: &str) -> &str {
    name.split_once(" (jit ").map_or(name, |(a, _)| a)
}

fn build(entries: &[Entry], policy: Option<&gatehouse_policy::Policy>) -> Report {
    let mut report = Report {
        records: u64::try_from(entries.len()).unwrap_or(u64::MAX),
        ..Report::default()
    };
    let mut usage: BTreeMap<(String, String), BTreeMap<String, (u64, u64)>> = BTreeMap::new();
    let mut denied: BTreeMap<String, Denied> = BTreeMap::new();
    let mut trusted: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut jit: BTreeMap<String, Jit> = BTreeMap::new();
    let mut jit_assignment: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_jit_events: BTreeSet<i64> = BTreeSet::new();
    for d in evidence::decided(entries) {
        let caller = describe(d.caller);
        for name in &d.record.decided_by {
            used.insert(base_name(name).to_owned());
            if name.contains(" (jit ") {
                jit.entry(base_name(name).to_owned()).or_default().used += 1;
            }
        }
        let served = matches!(d.record.outcome, Outcome::Allow);
        if served && d.action.is_token() {
            if let (Some(identity), Some(audience)) =
                (&d.record.request.identity, evidence::audience(d.record))
            {
                let slot = usage
                    .entry((identity.clone(), audience))
                    .or_default()
                    .entry(caller.clone())
                    .or_default();
                slot.0 += 1;
                slot.1 += u64::from(d.verdict == Verdict::Deny);
            }
        }
        if let Some(service) = d.trusted {
            let slot = trusted.entry(service.to_owned()).or_default();
            slot.0 += 1;
            slot.1.insert(caller.clone());
        }
        if d.verdict == Verdict::Deny {
            let asked = match (&d.record.request.identity, evidence::audience(d.record)) {
                (Some(i), Some(a)) => format!("{} {i} {a}", d.action.as_str()),
                _ => d.action.as_str().to_owned(),
            };
            let time = &d.entry.time;
            let slot = denied.entry(caller.clone()).or_insert_with(|| Denied {
                caller: caller.clone(),
                requests: 0,
                asked: Vec::new(),
                reasons: Vec::new(),
                first: time.clone(),
                last: time.clone(),
            });
            slot.requests += 1;
            if !slot.asked.contains(&asked) {
                slot.asked.push(asked);
            }
            if !slot.reasons.contains(&d.record.reason) {
                slot.reasons.push(d.record.reason.clone());
            }
            if *time < slot.first {
                slot.first.clone_from(time);
            }
            if *time > slot.last {
                slot.last.clone_from(time);
            }
        }
    }
    for entry in entries {
        let (e, kind) = match &entry.event {
            Event::JitRequested(e) => (e, "requested"),
            Event::JitApproved(e) | Event::JitAutoApproved(e) => (e, "approved"),
            Event::JitDenied(e) => (e, "denied"),
            Event::JitActivated(e) => (e, "activated"),
            _ => continue,
        };
        // Written at least once: a repeat has the same store sequence number.
        if !seen_jit_events.insert(e.jit_event) {
            continue;
        }
        let assignment = e
            .request
            .as_ref()
            .and_then(|r| r.assignment.clone())
            .or_else(|| jit_assignment.get(&e.id).cloned());
        let Some(assignment) = assignment else {
            continue;
        };
        jit_assignment.insert(e.id.clone(), assignment.clone());
        let slot = jit.entry(assignment.clone()).or_insert_with(|| Jit {
            assignment,
            ..Jit::default()
        });
        match kind {
            "requested" => slot.requested += 1,
            "approved" => slot.approved += 1,
            "denied" => slot.denied += 1,
            _ => slot.activated += 1,
        }
    }
    report.usage = usage
        .into_iter()
        .map(|((identity, audience), callers)| {
            let mut principals: Vec<Used> = callers
                .into_iter()
                .map(|(caller, (requests, would_deny))| Used {
                    caller,
                    requests,
                    would_deny,
                })
                .collect();
            principals.sort_by_key(|p| std::cmp::Reverse(p.requests));
            Usage {
                identity,
                audience,
                principals,
            }
        })
        .collect();
    report.denied = denied.into_values().collect();
    report.denied.sort_by_key(|d| std::cmp::Reverse(d.requests));
    report.jit = jit
        .into_iter()
        .map(|(name, mut j)| {
            j.assignment = name;
            j
        })
        .collect();
    report.trusted_services = trusted
        .into_iter()
        .map(|(service, (requests, callers))| Trusted {
            service,
            requests,
            callers: callers.into_iter().collect(),
        })
        .collect();
    report.unused_assignments = policy.map(|p| {
        p.assignments()
            .map(|a| a.name.clone())
            .filter(|n| !used.contains(n))
            .collect()
    });
    report
}

/// One table, as text columns or markdown.
fn table(out: &mut String, markdown: bool, header: &[&str], rows: &[Vec<String>]) {
    if rows.is_empty() {
        out.push_str(if markdown {
            "_none_\n\n"
        } else {
            "  (none)\n\n"
        });
        return;
    }
    if markdown {
        let esc = |s: &str| s.replace('|', "\\|");
        out.push_str(&format!("| {} |\n", header.join(" | ")));
        out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
        for r in rows {
            let cells: Vec<String> = r.iter().map(|c| esc(c)).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out.push('\n');
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("  {}\n", padded.join("  ").trim_end())
    };
    out.push_str(&line(header.to_vec()));
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out.push('\n');
}

fn render(r: &Report, markdown: bool) -> String {
    let mut out = String::new();
    let heading = |out: &mut String, title: &str| {
        if markdown {
            out.push_str(&format!("## {title}\n\n"));
        } else {
            out.push_str(&format!("{title}\n"));
        }
    };
    let period = format!(
        "{} .. {}",
        r.since.as_deref().unwrap_or("start"),
        r.until.as_deref().unwrap_or("end")
    );
    if markdown {
        out.push_str(&format!(
            "# gatehouse access report\n\nPeriod: {period}; {} records.\n\n",
            r.records
        ));
    } else {
        out.push_str(&format!(
            "gatehouse access report: {period}, {} records\n\n",
            r.records
        ));
    }
    heading(&mut out, "Tokens served, by identity and audience");
    let rows: Vec<Vec<String>> = r
        .usage
        .iter()
        .flat_map(|u| {
            u.principals.iter().map(|p| {
                vec![
                    u.identity.clone(),
                    u.audience.clone(),
                    p.caller.clone(),
                    p.requests.to_string(),
                    p.would_deny.to_string(),
                ]
            })
        })
        .collect();
    table(
        &mut out,
        markdown,
        &["identity", "audience", "caller", "requests", "would deny"],
        &rows,
    );
    heading(
        &mut out,
        "Assignments nothing used (candidates for removal)",
    );
    match &r.unused_assignments {
        None => out.push_str(if markdown {
            "_name the policy with `--policy` to list them_\n\n"
        } else {
            "  (name the policy with --policy to list them)\n\n"
        }),
        Some(names) => {
            let rows: Vec<Vec<String>> = names.iter().map(|n| vec![n.clone()]).collect();
            table(&mut out, markdown, &["assignment"], &rows);
        }
    }
    heading(&mut out, "Denied (or would be denied), by caller");
    let rows: Vec<Vec<String>> = r
        .denied
        .iter()
        .map(|d| {
            vec![
                d.caller.clone(),
                d.requests.to_string(),
                d.asked.join("; "),
                d.reasons.join("; "),
                d.last.clone(),
            ]
        })
        .collect();
    table(
        &mut out,
        markdown,
        &["caller", "requests", "asked", "why", "last"],
        &rows,
    );
    heading(&mut out, "Just-in-time grants");
    let rows: Vec<Vec<String>> = r
        .jit
        .iter()
        .map(|j| {
            vec![
                j.assignment.clone(),
                j.requested.to_string(),
                j.approved.to_string(),
                j.denied.to_string(),
                j.activated.to_string(),
                j.used.to_string(),
            ]
        })
        .collect();
    table(
        &mut out,
        markdown,
        &[
            "assignment",
            "requested",
            "approved",
            "denied",
            "activated",
            "requests used",
        ],
        &rows,
    );
    heading(&mut out, "Trusted-service exceptions used");
    let rows: Vec<Vec<String>> = r
        .trusted_services
        .iter()
        .map(|t| {
            vec![
                t.service.clone(),
                t.requests.to_string(),
                t.callers.join("; "),
            ]
        })
        .collect();
    table(
        &mut out,
        markdown,
        &["service", "requests", "callers"],
        &rows,
    );
    out
}

pub fn main(args: Args) -> ExitCode {
    let now = SystemClock.now();
    let bound = |t: &Option<String>| {
        t.as_deref()
            .map(|t| evidence::time_bound(t, now))
            .transpose()
    };
    let (since, until) = match (bound(&args.since), bound(&args.until)) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(e), _) | (_, Err(e)) => return crate::fail(&e, None),
    };
    let policy = match &args.policy {
        None => None,
        Some(path) => {
            let name = path.display().to_string();
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => return crate::fail(&format!("cannot read `{name}`: {e}"), None),
            };
            match gatehouse_policy::parse(&name, &text) {
                Ok(p) => Some(p),
                Err(d) => {
                    return crate::fail(
                        &format!("`{name}` does not load ({} errors)", d.error_count()),
                        Some(&format!("`gatehouse check --policy {name}` lists them")),
                    )
                }
            }
        }
    };
    let mut entries = match evidence::read(&args.files, args.single) {
        Ok(e) => e,
        Err(e) => return crate::fail(&e, None),
    };
    entries.retain(|e| {
        since.as_deref().is_none_or(|s| e.time.as_str() >= s)
            && until.as_deref().is_none_or(|u| e.time.as_str() < u)
    });
    let mut report = build(&entries, policy.as_ref());
    report.since = since;
    report.until = until;
    let format = if args.json { Format::Json } else { args.format };
    match format {
        Format::Json => match serde_json::to_string(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => return crate::fail(&format!("cannot print the report: {e}"), None),
        },
        Format::Table => print!("{}", render(&report, false)),
        Format::Markdown => print!("{}", render(&report, true)),
    }
    ExitCode::SUCCESS
}

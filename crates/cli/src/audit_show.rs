//! `gatehouse audit show`: the records that match, as a table or as the
//! JSON lines themselves; `--follow` keeps reading, across rotation.
//!
//! Fast on large logs: each line is first looked at by position (time and
//! type) and by substring (the value a filter names must occur in it); only
//! lines that pass are deserialised and matched exactly.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use gatehouse_audit::{Caller, Event, Lines, Next, Outcome, Raw, ReadProblem, RequestFacts};
use gatehouse_gate::clock::{Clock, SystemClock};

#[derive(clap::Args)]
pub struct Args {
    /// The audit log; its rotated predecessors (`PATH.1`, …) are read first.
    #[arg(default_value = "/var/log/gatehouse/audit.log")]
    pub path: PathBuf,
    /// Read only this file, not its rotated predecessors.
    #[arg(long)]
    pub single: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Print the matching records as they are stored, one JSON line each
    /// (for `jq`).
    #[arg(long)]
    pub json: bool,
    /// Keep reading as records are appended (like `tail -f`), following
    /// the log when it rotates.
    #[arg(long)]
    pub follow: bool,
}

/// Which records: every filter given must hold.
#[derive(clap::Args, Default, Clone)]
pub struct FilterArgs {
    /// Records at or after this time: RFC 3339 (`2026-12-01T09:00:00Z`) or
    /// a duration back from now (`90s`, `30m`, `1h`, `2d`).
    #[arg(long, value_name = "TIME|AGO")]
    pub since: Option<String>,
    /// Records before this time (same forms as `--since`).
    #[arg(long, value_name = "TIME|AGO")]
    pub until: Option<String>,
    /// The caller's uid (requests), or the requester's (just-in-time records).
    #[arg(long)]
    pub uid: Option<u32>,
    /// The caller's user name.
    #[arg(long)]
    pub user: Option<String>,
    /// The caller's executable path.
    #[arg(long)]
    pub exe: Option<String>,
    /// The caller's systemd unit.
    #[arg(long)]
    pub unit: Option<String>,
    /// The identity (its policy name).
    #[arg(long)]
    pub identity: Option<String>,
    /// The token audience (compared normalised: `https://Storage.azure.com/`
    /// is `https://storage.azure.com`).
    #[arg(long)]
    pub audience: Option<String>,
    /// The policy's verdict: `allow`, `deny` (also an audit mode "would
    /// deny"), `rejected` or `error`.
    #[arg(long, value_enum)]
    pub decision: Option<DecisionFilter>,
    /// Record types (`request`, `jit_activated`, …); repeat or separate
    /// with commas.
    #[arg(long = "type", value_name = "TYPE", value_delimiter = ',')]
    pub types: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DecisionFilter {
    Allow,
    Deny,
    Rejected,
    Error,
}

/// The filters, ready to match.
pub struct Filter {
    since: Option<String>,
    until: Option<String>,
    args: FilterArgs,
    audience: Option<String>,
    /// Substrings every matching line must contain.
    needles: Vec<gatehouse_audit::Needle>,
}

fn json_str(key: &str, value: &str) -> Vec<u8> {
    let value = serde_json::to_string(value).unwrap_or_default();
    format!("\"{key}\":{value}").into_bytes()
}

impl Filter {
    pub fn new(args: &FilterArgs) -> Result<Filter, String> {
        let now = SystemClock.now();
        let bound = |t: &Option<String>| {
            t.as_deref()
                .map(|t| crate::evidence::time_bound(t, now))
                .transpose()
        };
        let audience =
            match &args.audience {
                Some(a) => Some(gatehouse_policy::normalise_audience(a).ok_or_else(|| {
                    format!("`{a}` is not an audience (empty, or with whitespace)")
                })?),
                None => None,
            };
        let mut needles = Vec::new();
        if let Some(uid) = args.uid {
            needles.push(gatehouse_audit::Needle::new(
                format!("\"uid\":{uid}").as_bytes(),
            ));
        }
        for (key, value) in [
            ("user", &args.user),
            ("exe", &args.exe),
            ("unit", &args.unit),
            ("identity", &args.identity),
        ] {
            if let Some(v) = value {
                needles.push(gatehouse_audit::Needle::new(&json_str(key, v)));
            }
        }
        Ok(Filter {
            since: bound(&args.since)?,
            until: bound(&args.until)?,
            args: args.clone(),
            audience,
            needles,
        })
    }

    /// The cheap test: time, type and substrings.
    fn may_match(&self, raw: &Raw<'_>) -> bool {
        self.since.as_deref().is_none_or(|s| raw.time >= s)
            && self.until.as_deref().is_none_or(|u| raw.time < u)
            && (self.args.types.is_empty() || self.args.types.iter().any(|t| t == raw.kind))
            && self.needles.iter().all(|n| raw.contains(n))
    }

    /// The exact test on the event.
    pub fn matches(&self, event: &Event) -> bool {
        let a = &self.args;
        let facts = Facts::of(event);
        let eq = |want: &Option<String>, got: Option<&str>| {
            want.as_deref().is_none_or(|w| got == Some(w))
        };
        a.uid.is_none_or(|u| facts.uid == Some(u))
            && eq(&a.user, facts.user)
            && eq(&a.exe, facts.exe)
            && eq(&a.unit, facts.unit)
            && eq(&a.identity, facts.identity)
            && self.audience.as_deref().is_none_or(|want| {
                facts
                    .audience
                    .and_then(gatehouse_policy::normalise_audience)
                    .is_some_and(|got| got == want)
            })
            && a.decision.is_none_or(|d| facts.decision == Some(d))
    }
}

/// What a record says about who and what, for filters and the table
/// (cheap: it borrows; [`what`] builds the table's last column).
#[derive(Default)]
pub struct Facts<'a> {
    pub uid: Option<u32>,
    pub user: Option<&'a str>,
    pub exe: Option<&'a str>,
    pub unit: Option<&'a str>,
    pub identity: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub decision: Option<DecisionFilter>,
}

impl<'a> Facts<'a> {
    /// Who asked and for what, as a request or forwarding record says.
    fn asked(caller: Option<&'a Caller>, request: &'a RequestFacts) -> Facts<'a> {
        Facts {
            uid: caller.map(|c| c.uid),
            user: caller.and_then(|c| c.user.as_deref()),
            exe: caller.and_then(|c| c.exe.as_deref()),
            unit: caller.and_then(|c| c.unit.as_deref()),
            identity: request.identity.as_deref(),
            audience: request.audience.as_deref(),
            decision: None,
        }
    }

    pub fn of(event: &'a Event) -> Facts<'a> {
        match event {
            Event::Request(r) => {
                let would_deny = r.decision_detail.as_ref().is_some_and(|d| d.would_deny);
                let decision = match r.outcome {
                    Outcome::Allow if would_deny => DecisionFilter::Deny,
                    Outcome::Allow => DecisionFilter::Allow,
                    Outcome::Deny => DecisionFilter::Deny,
                    Outcome::Rejected => DecisionFilter::Rejected,
                    Outcome::Error => DecisionFilter::Error,
                };
                Facts {
                    decision: Some(decision),
                    ..Facts::asked(r.caller.as_ref(), &r.request)
                }
            }
            Event::Forwarding(f) => Facts::asked(f.caller.as_ref(), &f.request),
            other => match jit_event(other) {
                Some(e) => {
                    let view = e.request.as_ref();
                    Facts {
                        uid: view.and_then(|v| v.requester.uid),
                        user: view.map(|v| v.requester.name.as_str()),
                        identity: view.and_then(|v| v.identity.as_deref()),
                        audience: view.and_then(|v| v.audience.as_deref()),
                        ..Facts::default()
                    }
                }
                None => Facts::default(),
            },
        }
    }
}

/// The just-in-time request record an event is, if it is one.
fn jit_event(event: &Event) -> Option<&gatehouse_audit::JitEvent> {
    match event {
        Event::JitRequested(e)
        | Event::JitApproved(e)
        | Event::JitAutoApproved(e)
        | Event::JitDenied(e)
        | Event::JitActivated(e)
        | Event::JitRevoked(e)
        | Event::JitExpired(e)
        | Event::JitLapsed(e) => Some(e),
        _ => None,
    }
}

/// The table's last column: the verdict and who decided, or the record's
/// own fields.
fn what(event: &Event) -> String {
    match event {
        Event::Request(r) => {
            let would_deny = r.decision_detail.as_ref().is_some_and(|d| d.would_deny);
            let verdict = if would_deny {
                "would deny"
            } else {
                r.outcome.as_str()
            };
            let by = if r.decided_by.is_empty() {
                r.reason.clone()
            } else {
                r.decided_by.join(", ")
            };
            format!(
                "{verdict} {} {}: {by}",
                r.status,
                r.request.endpoint.as_deref().unwrap_or("-")
            )
        }
        Event::Forwarding(f) => format!("forwarding: {}", f.decided_by.join(", ")),
        other => match jit_event(other) {
            Some(e) => {
                let view = e.request.as_ref();
                format!(
                    "{} {}",
                    e.id,
                    view.and_then(|v| v.assignment.as_deref())
                        .or(view.map(|v| v.kind.as_str()))
                        .unwrap_or("")
                )
            }
            None => summary(other),
        },
    }
}

fn summary(event: &Event) -> String {
    let value = serde_json::to_value(event).unwrap_or_default();
    let mut parts = Vec::new();
    if let Some(map) = value.as_object() {
        for (k, v) in map.iter().filter(|(k, _)| *k != "type") {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            parts.push(format!("{k}={v}"));
        }
    }
    parts.join(" ")
}

const HEADER: [&str; 8] = [
    "TIME", "TYPE", "UID", "USER", "EXE/UNIT", "IDENTITY", "AUDIENCE", "WHAT",
];
const WIDTHS: [usize; 7] = [24, 14, 6, 10, 22, 15, 28];

fn write_row(out: &mut impl Write, cells: [&str; 8]) -> std::io::Result<()> {
    for (cell, width) in cells.iter().zip(WIDTHS) {
        write!(out, "{cell:<width$} ")?;
    }
    writeln!(out, "{}", cells.get(7).copied().unwrap_or_default())
}

fn write_table_row(out: &mut impl Write, time: &str, event: &Event) -> std::io::Result<()> {
    let f = Facts::of(event);
    let uid = f.uid.map(|u| u.to_string()).unwrap_or_else(|| "-".into());
    write_row(
        out,
        [
            time,
            event.kind(),
            &uid,
            f.user.unwrap_or("-"),
            f.unit.or(f.exe).unwrap_or("-"),
            f.identity.unwrap_or("-"),
            f.audience.unwrap_or("-"),
            &what(event),
        ],
    )
}

/// What one matching line is printed as.
struct Printer<W: Write> {
    out: W,
    json: bool,
    count: u64,
}

impl<W: Write> Printer<W> {
    fn header(&mut self) -> std::io::Result<()> {
        if self.json {
            Ok(())
        } else {
            write_row(&mut self.out, HEADER)
        }
    }

    /// Prints `raw` if it matches.
    fn visit(&mut self, filter: &Filter, raw: &Raw<'_>) -> Result<(), Problem> {
        if !filter.may_match(raw) {
            return Ok(());
        }
        // Every record shown is read in full: the table needs its fields,
        // and `--json` promises records this version knows.
        let event = raw.event().map_err(Problem::Read)?;
        if !filter.matches(&event) {
            return Ok(());
        }
        self.count += 1;
        let written = if self.json {
            self.out
                .write_all(raw.line)
                .and_then(|()| self.out.write_all(b"\n"))
        } else {
            write_table_row(&mut self.out, raw.time, &event)
        };
        written.map_err(|_| Problem::Write)
    }
}

enum Problem {
    Read(ReadProblem),
    Write,
}

pub fn main(args: Args) -> ExitCode {
    let filter = match Filter::new(&args.filter) {
        Ok(f) => f,
        Err(e) => return crate::fail(&e, None),
    };
    let files =
        match crate::evidence::files(std::slice::from_ref(&args.path), args.single) {
            Ok(f) => f,
            Err(e) => return crate::fail(
                &e,
                Some(
                    "name the audit log, e.g. `gatehouse audit show /var/log/gatehouse/audit.log`",
                ),
            ),
        };
    let stdout = std::io::stdout();
    let mut printer = Printer {
        out: std::io::BufWriter::with_capacity(64 * 1024, stdout.lock()),
        json: args.json,
        count: 0,
    };
    if printer.header().is_err() {
        return ExitCode::SUCCESS;
    }
    let last = files.len().saturating_sub(1);
    for (i, path) in files.iter().enumerate() {
        let follow_this = args.follow && i == last;
        match read_file(path, &filter, &mut printer, follow_this) {
            Ok(()) => {}
            Err(Stop::Quiet) => return ExitCode::SUCCESS,
            Err(Stop::Failed(message)) => {
                let _ = printer.out.flush();
                return crate::fail(&message, None);
            }
        }
    }
    if printer.out.flush().is_err() {
        return ExitCode::SUCCESS;
    }
    if !args.json && printer.count == 0 {
        eprintln!("no matching records");
    }
    ExitCode::SUCCESS
}

enum Stop {
    /// Output closed (e.g. `| head`): not an error.
    Quiet,
    Failed(String),
}

fn read_file<W: Write>(
    path: &Path,
    filter: &Filter,
    printer: &mut Printer<W>,
    follow: bool,
) -> Result<(), Stop> {
    let mut lines = Lines::open(path).map_err(|e| Stop::Failed(e.to_string()))?;
    let mut inode = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    loop {
        let line_no = lines.line() + 1;
        let torn = match lines.next_raw().map_err(|e| Stop::Failed(e.to_string()))? {
            Next::Line(raw) => {
                match printer.visit(filter, &raw) {
                    Ok(()) => {}
                    Err(Problem::Read(p)) => {
                        return Err(Stop::Failed(
                            gatehouse_audit::ReadError {
                                file: path.to_path_buf(),
                                line: line_no,
                                problem: p,
                            }
                            .to_string(),
                        ))
                    }
                    Err(Problem::Write) => return Err(Stop::Quiet),
                }
                continue;
            }
            Next::End { torn } => torn,
        };
        if !follow {
            if torn == 0 {
                return Ok(());
            }
            return Err(Stop::Failed(
                gatehouse_audit::ReadError {
                    file: path.to_path_buf(),
                    line: line_no,
                    problem: ReadProblem::Truncated { bytes: torn },
                }
                .to_string(),
            ));
        }
        if printer.out.flush().is_err() {
            return Err(Stop::Quiet);
        }
        std::thread::sleep(Duration::from_millis(200));
        // Rotated: the path names a new file. Finish the old one (records
        // written to it before the rename), then any rotated since (it may
        // have rotated more than once meanwhile), then go on with the new.
        let now = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
        if now.is_some() && now != inode {
            drain(&mut lines, filter, printer)?;
            for between in rotated_since(path, inode) {
                let mut lines = Lines::open(&between).map_err(|e| Stop::Failed(e.to_string()))?;
                drain(&mut lines, filter, printer)?;
            }
            lines = Lines::open(path).map_err(|e| Stop::Failed(e.to_string()))?;
            inode = now;
        }
    }
}

/// The rotated files newer than the one that was `inode`, oldest first.
fn rotated_since(path: &Path, inode: Option<(u64, u64)>) -> Vec<PathBuf> {
    let set = gatehouse_audit::rotation_set(path).unwrap_or_default();
    let numbered = set.split_last().map(|(_, rest)| rest).unwrap_or_default();
    let at = numbered
        .iter()
        .position(|p| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino())) == inode);
    match at {
        Some(i) => numbered.get(i + 1..).unwrap_or_default().to_vec(),
        None => Vec::new(),
    }
}

/// Prints what is left in `lines` up to its end.
fn drain<W: Write>(
    lines: &mut Lines<std::fs::File>,
    filter: &Filter,
    printer: &mut Printer<W>,
) -> Result<(), Stop> {
    loop {
        let line_no = lines.line() + 1;
        let file = lines.file().to_path_buf();
        match lines.next_raw().map_err(|e| Stop::Failed(e.to_string()))? {
            Next::Line(raw) => match printer.visit(filter, &raw) {
                Ok(()) => {}
                Err(Problem::Read(problem)) => {
                    return Err(Stop::Failed(
                        gatehouse_audit::ReadError {
                            file,
                            line: line_no,
                            problem,
                        }
                        .to_string(),
                    ))
                }
                Err(Problem::Write) => return Err(Stop::Quiet),
            },
            Next::End { .. } => return Ok(()),
        }
    }
}

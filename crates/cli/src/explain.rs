//! `gatehouse explain`: how the policy decides one request, with the trail
//! (candidate assignments, each condition's value and the attribute values
//! it used, what decided). The caller is a user (`--as`, `--uid`: uid and
//! groups from /etc/passwd and /etc/group) or a running process (`--pid`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatehouse_policy::condition::datetime;
use gatehouse_policy::{normalise_audience, Action, Caller, Process, Request, SelectorKind};

#[derive(clap::Args)]
pub struct Args {
    /// The policy file.
    #[arg(long, default_value = "/etc/gatehouse/policy.toml")]
    policy: PathBuf,
    /// The caller is this user (name).
    #[arg(long = "as", value_name = "USER", conflicts_with_all = ["uid", "pid"])]
    user: Option<String>,
    /// The caller is this uid.
    #[arg(long, conflicts_with = "pid")]
    uid: Option<u32>,
    /// The caller is this running process.
    #[arg(long)]
    pid: Option<u32>,
    /// The action, e.g. `Gatehouse/token/read`.
    #[arg(long)]
    action: String,
    /// The identity's policy name (token requests).
    #[arg(long)]
    identity: Option<String>,
    /// The audience (token requests).
    #[arg(long)]
    audience: Option<String>,
    /// The time of the request, `yyyy-mm-ddThh:mm:ssZ` (default: now).
    #[arg(long)]
    at: Option<String>,
}

/// (uid, primary gid) of `name`, or of `uid`, from /etc/passwd.
fn passwd_entry(by_name: Option<&str>, by_uid: Option<u32>) -> Option<(String, u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let (name, uid, gid) = (f.first()?, f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?);
        let hit = by_name.is_some_and(|n| n == *name) || by_uid == Some(uid);
        hit.then(|| ((*name).to_owned(), uid, gid))
    })
}

/// (gid, name) of every group in /etc/group.
fn groups() -> Vec<(u32, String, Vec<String>)> {
    let text = std::fs::read_to_string("/etc/group").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let members = f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            Some((f.get(2)?.parse().ok()?, (*f.first()?).to_owned(), members))
        })
        .collect()
}

/// Why `explain` cannot build the caller or the time it was asked about.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExplainError {
    #[error("no user `{0}` in /etc/passwd")]
    NoUser(String),
    #[error("name the caller with `--as USER`, `--uid N` or `--pid P`")]
    NoCaller,
    #[error("cannot open /proc/{pid}: {source}")]
    Proc {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read /proc/{pid}/status: {source}")]
    Status {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("no uid in status")]
    NoUid,
    #[error("invalid time `{0}`")]
    BadTime(String),
    #[error("time `{0}` is before 1970")]
    BeforeEpoch(String),
}

pub(crate) fn user_caller(name: Option<&str>, uid: Option<u32>) -> Result<Caller, ExplainError> {
    let entry = passwd_entry(name, uid);
    let (user, uid, gid) = match (entry, uid) {
        (Some(e), _) => (Some(e.0), e.1, Some(e.2)),
        (None, Some(u)) => (None, u, None),
        (None, None) => return Err(ExplainError::NoUser(name.unwrap_or_default().to_owned())),
    };
    let all = groups();
    let mut gids: Vec<u32> = gid.into_iter().collect();
    if let Some(u) = &user {
        gids.extend(all.iter().filter(|g| g.2.contains(u)).map(|g| g.0));
    }
    gids.sort_unstable();
    gids.dedup();
    let group_names = gids
        .iter()
        .filter_map(|g| all.iter().find(|x| x.0 == *g).map(|x| x.1.clone()))
        .collect();
    Ok(Caller {
        uid: Some(uid),
        user,
        gids,
        group_names,
        processes: Vec::new(),
    })
}

/// A running process's facts, read the way the daemon reads them.
fn pid_caller(pid: u32) -> Result<Caller, ExplainError> {
    let dir = gatehouse_sys::ProcDir::open(Path::new("/proc"), pid, false)
        .map_err(|source| ExplainError::Proc { pid, source })?;
    let status = dir
        .read_to_string("status")
        .map_err(|source| ExplainError::Status { pid, source })?;
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::split_whitespace)
    };
    let uid: u32 = field("Uid:")
        .and_then(|mut f| f.next()?.parse().ok())
        .ok_or(ExplainError::NoUid)?;
    let mut gids: Vec<u32> = field("Gid:")
        .and_then(|mut f| f.next()?.parse().ok())
        .into_iter()
        .collect();
    gids.extend(
        field("Groups:")
            .into_iter()
            .flatten()
            .filter_map(|g| g.parse::<u32>().ok()),
    );
    gids.sort_unstable();
    gids.dedup();
    let exe_path = dir.readlink("exe").ok();
    let file = dir.open_file("exe").ok();
    let meta = file.as_ref().and_then(|f| f.metadata().ok());
    let verified = match (&exe_path, &meta) {
        (Some(p), Some(m)) => {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(p).is_ok_and(|s| s.dev() == m.dev() && s.ino() == m.ino())
        }
        _ => false,
    };
    let exe_sha256 = file.and_then(|mut f| gatehouse_sys::hash_file(&mut f).ok());
    let cgroup_path = dir.read_to_string("cgroup").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
    });
    let cg = cgroup_path.as_deref().map(gatehouse_sys::classify_cgroup);
    let process = Process {
        pid,
        uid,
        exe_path,
        exe_path_verified: verified,
        exe_sha256,
        unit: cg.as_ref().and_then(|c| c.system_unit.clone()),
        cgroup: cg.as_ref().map(|c| c.path.clone()),
        container: cg.as_ref().and_then(|c| c.container_id.clone()),
        exe_owner_uid: meta.map(|m| std::os::unix::fs::MetadataExt::uid(&m)),
    };
    let group_names = gids
        .iter()
        .filter_map(|g| gatehouse_sys::group_name(*g))
        .collect();
    Ok(Caller {
        uid: Some(uid),
        user: gatehouse_sys::user_name(uid),
        gids,
        group_names,
        processes: vec![process],
    })
}

fn time(at: Option<&str>) -> Result<SystemTime, ExplainError> {
    let Some(text) = at else {
        return Ok(gatehouse_gate::clock::Clock::now(
            &gatehouse_gate::clock::SystemClock,
        ));
    };
    let nanos = datetime::parse(text).ok_or_else(|| ExplainError::BadTime(text.to_owned()))?;
    let n = u64::try_from(nanos).map_err(|_| ExplainError::BeforeEpoch(text.to_owned()))?;
    Ok(UNIX_EPOCH + Duration::from_nanos(n))
}

pub fn main(args: Args) -> ExitCode {
    let text = match crate::read_text(&args.policy) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let policy = match gatehouse_policy::parse(&args.policy.display().to_string(), &text) {
        Ok(p) => p,
        Err(d) => {
            eprintln!("{d}");
            return ExitCode::from(2);
        }
    };
    let Ok(action) = args.action.parse::<Action>() else {
        let all: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        return crate::fail(
            &format!("unknown action `{}`", args.action),
            Some(&format!("one of {}", all.join(", "))),
        );
    };
    let caller = match (&args.user, args.uid, args.pid) {
        (_, _, Some(pid)) => pid_caller(pid),
        (Some(u), _, _) => user_caller(Some(u), None),
        (None, Some(uid), None) => user_caller(None, Some(uid)),
        (None, None, None) => Err(ExplainError::NoCaller),
    };
    let caller = match caller {
        Ok(c) => c,
        Err(e) => return crate::fail(&e.to_string(), None),
    };
    let now = match time(args.at.as_deref()) {
        Ok(t) => t,
        Err(e) => return crate::fail(&e.to_string(), Some("write it as `2025-06-01T12:00:00Z`")),
    };
    let audience = match args
        .audience
        .as_deref()
        .map(|a| normalise_audience(a).ok_or(a))
    {
        Some(Err(a)) => return crate::fail(&format!("invalid audience `{a}`"), None),
        Some(Ok(a)) => Some(a),
        None => None,
    };
    let mut request = Request::new(action)
        .identity(args.identity.as_deref())
        .audience(audience.as_deref())
        .at(now);
    if action.is_token() {
        request = request.selector(SelectorKind::None);
    }
    let decision = policy.decide(&caller, &request);
    println!(
        "caller: uid {} user {} groups [{}]",
        caller.uid.unwrap_or_default(),
        caller.user.as_deref().unwrap_or("?"),
        caller.group_names.join(", ")
    );
    if let Some(p) = caller.processes.first() {
        println!(
            "process: pid {} exe {} unit {}",
            p.pid,
            p.exe_path.as_deref().unwrap_or("?"),
            p.unit.as_deref().unwrap_or("-")
        );
    }
    println!(
        "request: {action} identity {} audience {} at {}",
        args.identity.as_deref().unwrap_or("-"),
        audience.as_deref().unwrap_or("-"),
        datetime::format(datetime::from_system_time(now))
    );
    print!("{}", decision.trail());
    println!("decision: {}", decision.summary());
    if decision.is_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

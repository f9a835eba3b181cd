//! `gatehouse status`: a running gate's health over its admin socket.
//!
//! Exit codes: 0 healthy, 1 degraded (the gate runs, but something needs
//! attention: the reasons are printed), 3 down (no gate answers on the
//! socket), 4 refused (the socket answered, but not to you: root and the
//! `gatehouse` group only). 2 stays clap's usage error.

use gatehouse_gate::jit::admin;
use gatehouse_gate::jit::api::AdminRequest;
use gatehouse_gate::status::{GateStatus, JitGrantStatus, Verdict};
use std::path::PathBuf;
use std::process::ExitCode;

pub const HEALTHY: u8 = 0;
pub const DEGRADED: u8 = 1;
pub const DOWN: u8 = 3;
pub const REFUSED: u8 = 4;

#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 healthy, 1 degraded, 3 down (no gate answers), 4 not allowed to read it."
)]
pub struct Args {
    /// The gate's admin socket.
    #[arg(long, env = "GATEHOUSE_ADMIN_SOCKET", default_value = crate::jit::DEFAULT_SOCKET)]
    socket: PathBuf,

    /// Print the status as JSON (the same fields; for scripts).
    #[arg(long)]
    json: bool,
}

/// What `--json` prints when no gate answers.
#[derive(serde::Serialize)]
struct Down<'a> {
    health: DownHealth<'a>,
}

#[derive(serde::Serialize)]
struct DownHealth<'a> {
    verdict: Verdict,
    reasons: Vec<&'a str>,
}

pub fn main(args: Args) -> ExitCode {
    let answer = admin::call(&args.socket, &AdminRequest::Status);
    let response = match answer {
        Ok(r) => r,
        Err(e) => {
            let why = format!("no gate answers on `{}`: {e}", args.socket.display());
            if args.json {
                let down = Down {
                    health: DownHealth {
                        verdict: Verdict::Down,
                        reasons: vec![&why],
                    },
                };
                println!(
                    "{}",
                    serde_json::to_string_pretty(&down).unwrap_or_default()
                );
            } else {
                println!("gatehouse: down: {why}");
                println!("  is the gate running? `systemctl status gatehouse`; or name its socket with `--socket`");
            }
            return ExitCode::from(DOWN);
        }
    };
    let Some(status) = response.status.filter(|_| response.ok) else {
        let msg = response
            .error
            .map_or_else(|| "the gate gave no status".to_owned(), |e| e.message);
        eprintln!("gatehouse: error: {msg}");
        return ExitCode::from(REFUSED);
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status).unwrap_or_default()
        );
    } else {
        print!("{}", render(&status));
    }
    ExitCode::from(match status.health.verdict {
        Verdict::Healthy => HEALTHY,
        Verdict::Degraded => DEGRADED,
        Verdict::Down => DOWN,
    })
}

fn ago(secs: Option<u64>) -> String {
    secs.map_or_else(|| "never".to_owned(), |s| format!("{} ago", span(s)))
}

fn span(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

fn grant_lines(out: &mut Vec<(String, String)>, title: &str, grants: &[JitGrantStatus]) {
    if grants.is_empty() {
        out.push((title.to_owned(), "none".to_owned()));
    }
    for (i, g) in grants.iter().enumerate() {
        let expiry = match (&g.expires_at, g.expires_in_secs) {
            (Some(at), Some(s)) => format!("until {at} (in {})", span(s)),
            (Some(at), None) => format!("until {at}"),
            _ => "no expiry".to_owned(),
        };
        let label = if i == 0 { title } else { "" };
        out.push((
            label.to_owned(),
            format!("{} {} by {}, {expiry}", g.id, g.what, g.requester),
        ));
    }
}

/// The human table: one `name  value` row per fact.
pub fn render(s: &GateStatus) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |k: &str, v: String| rows.push((k.to_owned(), v));
    row("health", s.health.verdict.as_str().to_owned());
    for r in &s.health.reasons {
        row("", format!("- {r}"));
    }
    row(
        "gate",
        format!(
            "pid {}, version {}, up {} (since {})",
            s.pid,
            s.version,
            span(s.uptime_secs),
            s.started_at
        ),
    );
    row(
        "policy",
        format!(
            "{} sha256 {} loaded {} ({} reload(s))",
            s.policy.path,
            s.policy.sha256.get(..16).unwrap_or(&s.policy.sha256),
            s.policy.loaded_at,
            s.policy.reloads
        ),
    );
    let paths = s
        .callers
        .by_path
        .iter()
        .map(|(p, n)| format!("{p} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    row(
        "callers",
        if paths.is_empty() {
            s.callers.lookup.clone()
        } else {
            format!("{} (found by: {paths})", s.callers.lookup)
        },
    );
    row(
        "firewall",
        if s.firewall.watching {
            format!(
                "{:?}{}, {} repair(s){}",
                s.firewall.state,
                s.firewall
                    .since_secs
                    .map_or_else(String::new, |t| format!(" {}", ago(Some(t)))),
                s.firewall.repairs,
                s.firewall
                    .last_error
                    .as_ref()
                    .map_or_else(String::new, |e| format!("; last error: {e}"))
            )
            .to_lowercase()
        } else {
            "not kept by this gate (`--firewall off`)".to_owned()
        },
    );
    let mut up = format!(
        "{} ({}): last success {}",
        s.upstream.upstream,
        s.upstream.cloud,
        ago(s.upstream.last_success_secs_ago)
    );
    if let Some(n) = s.upstream.aws_sessions {
        up.push_str(&format!(", {n} live session token(s)"));
    }
    if let Some(e) = &s.upstream.last_error {
        up.push_str(&format!(
            ", last error {} ({e})",
            ago(s.upstream.last_error_secs_ago)
        ));
    }
    row("upstream", up);
    row(
        "limiter",
        match &s.upstream.limiter {
            Some(l) => format!(
                "{}/{} identity calls in flight, {} wait(s), {} refusal(s)",
                l.identity_in_flight, l.identity_concurrent, l.waits, l.refusals
            ),
            None => "off (`--no-upstream-limits`)".to_owned(),
        },
    );
    row(
        "cache",
        match &s.cache {
            Some(c) => format!(
                "{} key(s), {} valid; {} hit(s), {} miss(es), {} stale, {} refresh(es); next refresh {}",
                c.entries,
                c.valid,
                c.hits,
                c.misses,
                c.stale,
                c.refreshes,
                c.next_refresh_in_secs
                    .map_or_else(|| "none due".to_owned(), |n| format!("in {}", span(n)))
            ),
            None => "off (`--no-cache`)".to_owned(),
        },
    );
    match &s.jit {
        Some(j) => {
            grant_lines(&mut rows, "jit grants", &j.grants);
            grant_lines(&mut rows, "jit ports", &j.ports);
            rows.push(("jit pending".to_owned(), j.pending.to_string()));
        }
        None => rows.push(("jit".to_owned(), "off".to_owned())),
    }
    rows.push((
        "audit".to_owned(),
        format!(
            "{}: {} record(s) written, {} write error(s); head {}",
            s.audit.path,
            s.audit.records,
            s.audit.write_errors,
            match (&s.audit.head_seq, &s.audit.head_sha256) {
                (Some(n), Some(h)) => format!("#{n} {}", h.get(..16).unwrap_or(h)),
                _ => "none yet".to_owned(),
            }
        ),
    ));
    for sink in &s.export {
        let mut line = format!(
            "{} {}: delivered {}; {} record(s) / {} behind; {} exported, {} failure(s)",
            sink.name,
            sink.url,
            sink.delivered_seq
                .map_or_else(|| "nothing yet".to_owned(), |n| format!("up to #{n}")),
            sink.lag_records,
            span(sink.lag_secs),
            sink.exported,
            sink.failures,
        );
        if let Some(e) = &sink.last_error {
            line.push_str(&format!(
                "; last error {} ({e})",
                ago(sink.last_error_secs_ago)
            ));
        }
        rows.push(("export".to_owned(), line));
        for p in &sink.log_problems {
            rows.push(("".to_owned(), format!("- {p}")));
        }
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}\n"))
        .collect()
}

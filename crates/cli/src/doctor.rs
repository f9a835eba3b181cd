//! `gatehouse doctor`: read-only checks, before or after install, of what
//! gatehouse needs and of other agents that also guard or redirect IMDS.
//! Runs tools (`nft`, `ip`, `iptables-save`, `bpftool`, `systemctl`) and
//! reads files; changes nothing. It sends one request to IMDS's address
//! only when a gate answers on the admin socket (so the request goes
//! through the gate), and not with `--offline`.

mod detect;
#[cfg(test)]
mod tests;

use detect::{Finding, Level};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

#[derive(clap::Args)]
#[command(after_help = "Exit status: 0 nothing wrong, 1 warnings, 3 errors (2 is a usage error).")]
pub struct Args {
    /// The policy file to check.
    #[arg(long, default_value = "/etc/gatehouse/policy.toml")]
    policy: PathBuf,

    /// The admin socket of a running gate (if one answers there, IMDS is
    /// tried through it).
    #[arg(long, env = "GATEHOUSE_ADMIN_SOCKET", default_value = crate::jit::DEFAULT_SOCKET)]
    socket: PathBuf,

    /// Never send a request to the metadata service.
    #[arg(long)]
    offline: bool,

    /// Print the findings as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Report {
    findings: Vec<Finding>,
    worst: Level,
}

/// Where a tool is: on PATH, or in the sbin directories a user's PATH
/// often lacks.
fn tool(program: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    if !on_path {
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            let candidate = Path::new(dir).join(program);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from(program)
}

/// Why a tool gave no output to read.
#[derive(Debug, thiserror::Error)]
enum ToolError {
    #[error("`{program}` cannot run: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
}

/// A tool's stdout, or why there is none.
fn run(program: &str, args: &[&str]) -> Result<String, ToolError> {
    let out = Command::new(tool(program))
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| ToolError::Spawn {
            program: program.to_owned(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ToolError::Failed {
            command: format!("{program} {}", args.join(" ")),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn kernel() -> Vec<Finding> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let mut out = vec![Finding::new(
        "kernel",
        Level::Info,
        format!("kernel {release}"),
        "gatehouse needs sock_diag and nftables (any current kernel)",
        "nothing",
    )];
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    out.push(detect::cgroup_finding(&mounts));
    out
}

fn bpf() -> Vec<Finding> {
    let btf = Path::new("/sys/kernel/btf/vmlinux").exists();
    let root = gatehouse_sys::effective_uid() == 0;
    let mut out = vec![match (gatehouse_sys::EBPF_BUILT, btf, root) {
        (false, _, _) => Finding::new(
            "ebpf",
            Level::Info,
            "this build has no eBPF path",
            "callers are found with sock_diag and /proc (`--caller-lookup sock-diag`)",
            "build with `--features ebpf` (needs clang) for the faster path",
        ),
        (true, false, _) => Finding::new(
            "ebpf",
            Level::Warn,
            "the kernel has no BTF (/sys/kernel/btf/vmlinux)",
            "`--caller-lookup ebpf` may not load; `auto` falls back to sock_diag",
            "use a kernel built with CONFIG_DEBUG_INFO_BTF, or `--caller-lookup sock-diag`",
        ),
        (true, true, false) => Finding::new(
            "ebpf",
            Level::Info,
            "not root: cannot tell whether the eBPF path would attach",
            "the gate attaches it as root (CAP_BPF, CAP_PERFMON)",
            "run `gatehouse doctor` as root",
        ),
        (true, true, true) => Finding::new(
            "ebpf",
            Level::Ok,
            "eBPF build, BTF present, running as root",
            "`--caller-lookup ebpf` can attach (the gate self-tests it at start)",
            "nothing",
        ),
    }];
    match run("bpftool", &["cgroup", "show", "/sys/fs/cgroup"]) {
        Ok(text) => out.extend(detect::cgroup_program_findings(&text)),
        Err(e) => out.push(Finding::new(
            "cgroup-bpf",
            Level::Info,
            "cannot list the root cgroup's eBPF programs",
            e.to_string(),
            "install `bpftool` and run as root to look for other agents' connect programs",
        )),
    }
    out
}

fn firewall() -> Vec<Finding> {
    let mut out = Vec::new();
    match run("nft", &["-j", "list", "ruleset"]) {
        Ok(json) => match detect::parse_ruleset(&json) {
            Ok(r) => out.extend(detect::ruleset_findings(&r)),
            Err(e) => out.push(Finding::new(
                "nft",
                Level::Warn,
                "`nft -j list ruleset` printed something unreadable",
                e.to_string(),
                "check the nftables version (1.0 or later)",
            )),
        },
        Err(e) => out.push(Finding::new(
            "nft",
            Level::Error,
            "nftables is not usable",
            e.to_string(),
            "install `nftables` (gatehouse's firewall is an nftables table) and run as root",
        )),
    }
    for tool in ["iptables-save", "ip6tables-save"] {
        if let Ok(save) = run(tool, &[]) {
            out.extend(detect::iptables_findings(&save));
        }
    }
    let mut routes = run("ip", &["route", "show", "table", "all"]).unwrap_or_default();
    routes.push_str(&run("ip", &["-6", "route", "show", "table", "all"]).unwrap_or_default());
    let rules = run("ip", &["rule", "show"]).unwrap_or_default();
    out.extend(detect::route_findings(&routes, &rules));
    out
}

/// The checks whose warnings and errors are about another program that
/// redirects or blocks metadata traffic.
const OTHER_AGENT_CHECKS: [&str; 6] = [
    "nft-other-rule",
    "iptables-rule",
    "route",
    "ip-rule",
    "agent",
    "cgroup-bpf",
];

/// What else on this machine redirects or blocks metadata traffic, one
/// line each, as `doctor` reports it: named when the gate's start-up probe
/// does not reach it.
pub(crate) fn other_agents() -> Vec<String> {
    let mut findings = firewall();
    findings.extend(bpf());
    findings.extend(detect::agent_findings(&units()));
    findings
        .into_iter()
        .filter(|f| f.level >= Level::Warn && OTHER_AGENT_CHECKS.contains(&f.check))
        .map(|f| f.summary)
        .collect()
}

/// Unit names from systemd, or from the unit directories when it is not running.
fn units() -> Vec<String> {
    if let Ok(text) = run("systemctl", &["list-unit-files", "--no-legend", "--plain"]) {
        return text
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect();
    }
    [
        "/etc/systemd/system",
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
    ]
    .iter()
    .filter_map(|d| std::fs::read_dir(d).ok())
    .flatten()
    .filter_map(|e| e.ok()?.file_name().into_string().ok())
    .collect()
}

fn policy(path: &Path) -> Finding {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            return Finding::new(
                "policy",
                Level::Warn,
                format!("no policy at `{}`: {e}", path.display()),
                "the gate will not start without one",
                "write one (docs/policy.md), then `gatehouse check`",
            )
        }
    };
    let shown = format!(
        "`{}`: owner uid {}, mode {:04o}",
        path.display(),
        meta.uid(),
        meta.mode() & 0o7777
    );
    match gatehouse_gate::policy_store::load_file(path, &[0]) {
        Ok(_) => Finding::new(
            "policy",
            Level::Ok,
            shown,
            "root owns it and every directory above it, nobody else may write them, and it parses",
            "nothing",
        ),
        Err(e) => Finding::new(
            "policy",
            Level::Error,
            shown,
            format!("the gate would refuse it: {}", e.summary()),
            "`chown root:root` and `chmod 644` the file (and its directories), then `gatehouse check`",
        ),
    }
}

/// Through a running gate only: one request for IMDS's versions list.
fn reachability(socket: &Path, offline: bool) -> Finding {
    use gatehouse_gate::jit::api::AdminRequest;
    if offline {
        return Finding::new(
            "imds",
            Level::Info,
            "not tried (`--offline`)",
            "",
            "nothing",
        );
    }
    if gatehouse_gate::jit::admin::call(socket, &AdminRequest::Status).is_err() {
        return Finding::new(
            "imds",
            Level::Info,
            format!("not tried: no gate answers on `{}`", socket.display()),
            "doctor asks IMDS only through a running gate",
            "start the gate, then run doctor again",
        );
    }
    match get_versions() {
        Ok(status) => Finding::new(
            "imds",
            if status == 200 || status == 403 { Level::Ok } else { Level::Warn },
            format!("{}:80 answered {status} through the gate", detect::IMDS),
            "200: the gate forwarded and IMDS answered; 403: the gate answered for the policy (versions are not allowed to you)",
            "nothing; another status: see the gate's log and `gatehouse status`",
        ),
        Err(e) => Finding::new(
            "imds",
            Level::Error,
            format!("{}:80 did not answer: {e}", detect::IMDS),
            "the redirect to the gate or the gate's upstream is broken",
            "`gatehouse status` and `gatehouse firewall verify`",
        ),
    }
}

fn get_versions() -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([169, 254, 169, 254], 80));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metadata/versions HTTP/1.1\r\nHost: 169.254.169.254\r\nMetadata: true\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    std::str::from_utf8(head.get(9..12).unwrap_or_default())
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP answer"))
}

pub fn main(args: Args) -> ExitCode {
    let mut findings = kernel();
    findings.extend(firewall());
    findings.extend(bpf());
    findings.extend(detect::agent_findings(&units()));
    findings.push(policy(&args.policy));
    findings.push(reachability(&args.socket, args.offline));
    let worst = findings.iter().map(|f| f.level).max().unwrap_or(Level::Ok);
    if args.json {
        let report = Report { findings, worst };
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        for f in &findings {
            let tag = match f.level {
                Level::Ok => "ok   ",
                Level::Info => "info ",
                Level::Warn => "WARN ",
                Level::Error => "ERROR",
            };
            println!("{tag} {:<14} {}", f.check, f.summary);
            if f.level >= Level::Warn {
                println!("      {:<14} means: {}", "", f.meaning);
                println!("      {:<14} do:    {}", "", f.action);
            }
        }
    }
    ExitCode::from(match worst {
        Level::Ok | Level::Info => 0,
        Level::Warn => 1,
        Level::Error => 3,
    })
}

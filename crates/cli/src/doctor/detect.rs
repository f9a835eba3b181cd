//! Pure detectors for `gatehouse doctor`: each reads one tool's captured
//! output and says what it found. No I/O here, so every one is tested on
//! fixed inputs (tests.rs).

use serde::Serialize;
use serde_json::Value;

pub const IMDS: &str = "169.254.169.254";
/// IMDS's IPv6 address (AWS's), which gatehouse intercepts too.
pub const IMDS6: &str = "fd00:ec2::254";

/// Whether a line of a tool's output names either IMDS address.
fn names_imds(line: &str) -> bool {
    line.contains(IMDS) || line.contains(IMDS6)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Ok,
    Info,
    Warn,
    Error,
}

/// One thing doctor found: what, what it means, what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub summary: String,
    pub meaning: String,
    pub action: String,
}

impl Finding {
    pub fn new(
        check: &'static str,
        level: Level,
        summary: impl Into<String>,
        meaning: impl Into<String>,
        action: impl Into<String>,
    ) -> Finding {
        Finding {
            check,
            level,
            summary: summary.into(),
            meaning: meaning.into(),
            action: action.into(),
        }
    }
}

/// A rule in nftables' ruleset that names IMDS's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImdsRule {
    pub family: String,
    pub table: String,
    pub chain: String,
    /// What it does to the packet: `dnat`, `redirect`, `drop`, `reject`,
    /// `accept`, `mark`, or `match` (only matches).
    pub verdict: String,
}

/// What `nft -j list ruleset` says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    pub gatehouse_table: bool,
    pub gatehouse_chains: Vec<String>,
    /// Rules outside `inet gatehouse` that name 169.254.169.254.
    pub others: Vec<ImdsRule>,
}

fn mentions_imds(v: &Value) -> bool {
    match v {
        Value::String(s) => {
            s == IMDS
                || s.starts_with("169.254.169.254/")
                || s == IMDS6
                || s.starts_with("fd00:ec2::254/")
        }
        Value::Array(a) => a.iter().any(mentions_imds),
        Value::Object(o) => o.values().any(mentions_imds),
        _ => false,
    }
}

fn verdict_of(expr: &[Value]) -> String {
    const KINDS: [&str; 8] = [
        "dnat", "redirect", "snat", "drop", "reject", "accept", "mangle", "queue",
    ];
    for e in expr {
        if let Some(o) = e.as_object() {
            if let Some(k) = KINDS.iter().find(|k| o.contains_key(**k)) {
                return if *k == "mangle" { "mark" } else { k }.to_owned();
            }
        }
    }
    "match".to_owned()
}

/// Parse `nft -j list ruleset`.
pub fn parse_ruleset(json: &str) -> Result<Ruleset, serde_json::Error> {
    let doc: Value = serde_json::from_str(json)?;
    let mut out = Ruleset::default();
    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let field = |o: &Value, k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    for item in &items {
        if let Some(t) = item.get("table") {
            if field(t, "family") == "inet" && field(t, "name") == "gatehouse" {
                out.gatehouse_table = true;
            }
        }
        if let Some(c) = item.get("chain") {
            if field(c, "family") == "inet" && field(c, "table") == "gatehouse" {
                out.gatehouse_chains.push(field(c, "name"));
            }
        }
        let Some(r) = item.get("rule") else { continue };
        let ours = field(r, "family") == "inet" && field(r, "table") == "gatehouse";
        let expr = r
            .get("expr")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !ours && expr.iter().any(mentions_imds) {
            out.others.push(ImdsRule {
                family: field(r, "family"),
                table: field(r, "table"),
                chain: field(r, "chain"),
                verdict: verdict_of(&expr),
            });
        }
    }
    Ok(out)
}

/// Findings from the ruleset.
pub fn ruleset_findings(r: &Ruleset) -> Vec<Finding> {
    let mut out = Vec::new();
    if r.gatehouse_table {
        out.push(Finding::new(
            "nft-table",
            Level::Ok,
            format!(
                "table `inet gatehouse` is in place (chains: {})",
                r.gatehouse_chains.join(", ")
            ),
            "local connections to IMDS are sent to the gate",
            "`gatehouse firewall verify` compares it with what the gate expects",
        ));
    } else {
        out.push(Finding::new(
            "nft-table",
            Level::Warn,
            "no `inet gatehouse` table",
            "nothing sends connections to IMDS through the gate: every process reaches IMDS directly",
            "start the gate (it applies the table with `--upstream imds`), or `gatehouse firewall apply`",
        ));
    }
    for o in &r.others {
        let redirect = matches!(o.verdict.as_str(), "dnat" | "redirect" | "snat");
        out.push(Finding::new(
            "nft-other-rule",
            if redirect { Level::Error } else { Level::Warn },
            format!(
                "table `{} {}` chain `{}` has a rule for {IMDS} ({})",
                o.family, o.table, o.chain, o.verdict
            ),
            if redirect {
                "another agent redirects IMDS traffic: depending on hook priority it takes connections before or after gatehouse, so some callers may bypass the gate or the gate's own upstream calls may be diverted"
            } else {
                "another agent filters or marks IMDS traffic; it may refuse the gate's own upstream connections or let others through"
            },
            format!(
                "find its owner (`nft list table {} {}`); remove it or stop that agent, or make sure it leaves packets with mark 0x6761 from root alone",
                o.family, o.table
            ),
        ));
    }
    out
}

/// `iptables-save` (or `ip6tables-save`) lines that name IMDS.
pub fn iptables_findings(save: &str) -> Vec<Finding> {
    let mut table = String::new();
    let mut out = Vec::new();
    for line in save.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.trim().to_owned();
            continue;
        }
        if !line.starts_with("-A ") || !names_imds(line) {
            continue;
        }
        let redirect = line.contains("-j DNAT") || line.contains("-j REDIRECT");
        out.push(Finding::new(
            "iptables-rule",
            if redirect { Level::Error } else { Level::Warn },
            format!("iptables table `{table}`: `{}`", line.trim()),
            "a legacy iptables rule handles IMDS traffic beside gatehouse's nftables table; iptables-nft rules live in their own nftables tables and run at their own priorities",
            "find the agent that added it (cloud-init, a container runtime, an Azure agent) and remove the rule or that agent",
        ));
    }
    out
}

/// `ip route show table all` and `ip rule show`: systemd-imdsd's lockdown
/// mode adds a prohibit route to IMDS and a rule by firewall mark.
pub fn route_findings(routes: &str, rules: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for line in routes.lines() {
        let kind = line.split_whitespace().next().unwrap_or("");
        let blocked = matches!(kind, "prohibit" | "blackhole" | "unreachable");
        if blocked && names_imds(line) {
            out.push(Finding::new(
                "route",
                Level::Error,
                format!("route `{}`", line.trim()),
                "IMDS is made unreachable by routing (systemd-imdsd's lockdown mode does this): the gate's own upstream connections fail unless they carry the mark the lockdown exempts",
                "either let systemd-imdsd guard IMDS and do not run gatehouse with `--upstream imds`, or turn the lockdown off (see systemd-imdsd(8))",
            ));
        } else if names_imds(line) && !line.starts_with("local") {
            out.push(Finding::new(
                "route",
                Level::Info,
                format!("route `{}`", line.trim()),
                "IMDS has a route of its own (normal on some images)",
                "nothing, unless it points somewhere unexpected",
            ));
        }
    }
    for line in rules.lines() {
        if line.contains("fwmark") {
            out.push(Finding::new(
                "ip-rule",
                Level::Warn,
                format!("policy-routing rule `{}`", line.trim()),
                "routing depends on a firewall mark (systemd-imdsd's lockdown exempts its own traffic this way); gatehouse marks its upstream sockets 0x6761",
                "check that the rule does not catch or need gatehouse's mark; if it is systemd-imdsd's, choose one guard for IMDS",
            ));
        }
    }
    out
}

/// Known agents that guard or redirect IMDS, by the names of their units.
pub fn agent_findings(units: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    let has = |needles: &[&str]| -> Option<String> {
        units
            .iter()
            .find(|u| {
                let l = u.to_ascii_lowercase();
                needles.iter().any(|n| l.contains(n))
            })
            .cloned()
    };
    if let Some(u) = has(&["azure-proxy-agent", "guestproxyagent", "guest-proxy-agent"]) {
        out.push(Finding::new(
            "agent",
            Level::Error,
            format!("Azure Guest Proxy Agent (`{u}`)"),
            "it redirects connections to IMDS with an eBPF program of its own and decides by its own allow-list: two guards in series, and whichever redirects first decides which one callers meet",
            "run one of them: disable the Guest Proxy Agent (`systemctl disable --now` it, and its VM setting) or do not start gatehouse",
        ));
    }
    if let Some(u) = has(&["systemd-imdsd"]) {
        out.push(Finding::new(
            "agent",
            Level::Warn,
            format!("systemd's IMDS service (`{u}`)"),
            "systemd 261+ can proxy IMDS itself; in lockdown mode it adds a prohibit route and a firewall mark, which break gatehouse's upstream path",
            "keep systemd-imdsd out of lockdown mode while gatehouse guards IMDS, or use it instead of gatehouse",
        ));
    }
    if let Some(u) = has(&["himds"]) {
        out.push(Finding::new(
            "agent",
            Level::Warn,
            format!("Azure Arc's hybrid metadata service (`{u}`)"),
            "on an Arc-enabled server tokens come from himds (localhost:40342, IDENTITY_ENDPOINT), not from 169.254.169.254: gatehouse does not stand in front of it",
            "restrict himds separately (its `himds` group), or do not rely on gatehouse for Arc identities",
        ));
    }
    out
}

/// `bpftool cgroup show /sys/fs/cgroup`: programs on the root cgroup's
/// connect hooks other than gatehouse's own.
pub fn cgroup_program_findings(bpftool: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for line in bpftool.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(kind), Some(name)) = (f.get(1), f.last()) else {
            continue;
        };
        let connect = kind.contains("connect4") || kind.contains("inet4_connect");
        if !connect || name.starts_with("gatehouse") || f.len() < 3 {
            continue;
        }
        out.push(Finding::new(
            "cgroup-bpf",
            Level::Error,
            format!("cgroup connect4 program `{name}` on the root cgroup"),
            "another eBPF program rewrites or watches connect() for every process (Azure's Guest Proxy Agent redirects IMDS this way); gatehouse's `--caller-lookup ebpf` attaches in single mode and fails beside it",
            "find its owner (`bpftool prog show name NAME`); stop that agent, or run gatehouse with `--caller-lookup sock-diag`",
        ));
    }
    out
}

/// `/proc/self/mounts`: where cgroup v2 is, and whether it is the only hierarchy.
pub fn cgroup_finding(mounts: &str) -> Finding {
    let mut v2 = None;
    let mut v1 = false;
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match (f.get(1), f.get(2)) {
            (Some(path), Some(&"cgroup2")) => v2 = v2.or(Some((*path).to_owned())),
            (Some(_), Some(&"cgroup")) => v1 = true,
            _ => {}
        }
    }
    match (v2, v1) {
        (Some(p), false) => Finding::new(
            "cgroup",
            Level::Ok,
            format!("cgroup v2 (unified) at {p}"),
            "callers' systemd units and containers can be named, and the eBPF path can attach",
            "nothing",
        ),
        (Some(p), true) => Finding::new(
            "cgroup",
            Level::Info,
            format!("hybrid cgroups: v2 at {p}, v1 controllers beside it"),
            "the eBPF path attaches to the v2 hierarchy; `cgroup:` principals see v2 paths",
            "nothing; a unified hierarchy (systemd.unified_cgroup_hierarchy=1) is simpler",
        ),
        (None, _) => Finding::new(
            "cgroup",
            Level::Warn,
            "no cgroup v2 hierarchy is mounted",
            "policies on `unit:` or `cgroup:` cannot match and `--caller-lookup ebpf` cannot attach",
            "boot with the unified hierarchy (systemd.unified_cgroup_hierarchy=1)",
        ),
    }
}

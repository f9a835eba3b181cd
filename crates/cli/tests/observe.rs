//! Watching a running gate: the metrics listener scraped for real (and
//! checked by `promtool` when it is installed), and `gatehouse status`
//! over the admin socket, healthy, degraded and down.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::{
    gatehouse, http_addr, sample, scrape, scrape_as, start_until, storage_assignment, Running,
    STORAGE_WRITER_IDENTITY,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const STORAGE_WRITER: &str = "2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809";
const VAULT_READER: &str = "4b8d9eaf-b0c1-42d3-a4f5-a6b7c8d9e0fb";
/// Not root, not in the `gatehouse` group.
const OUTSIDER: u32 = 46201;

fn policy(uid: u32) -> String {
    let assignment = storage_assignment("me-storage", &format!("uid:{uid}"));
    format!(
        r#"{STORAGE_WRITER_IDENTITY}
[identities.vault-reader]
kind = "user"
client_id = "{VAULT_READER}"
object_id = "5c9eafb0-c1d2-43e4-b5a6-b7c8d9e0f10c"
{assignment}"#
    )
}

struct Gate {
    running: Option<Running>,
    addr: String,
    metrics: String,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

fn start(upstream: &str, extra: &[&str]) -> Gate {
    let dir = tempfile::tempdir().unwrap();
    let policy_path = common::readable_policy(dir.path(), &policy(gatehouse_sys::effective_uid()));
    let socket = dir.path().join("admin.sock");
    let started = start_until(
        gatehouse()
            .args(["run", "--upstream", upstream, "--listen", "127.0.0.1:0"])
            .args(["--caller-lookup", "sock-diag"])
            .args(["--metrics-listen", "127.0.0.1:0", "--policy"])
            .arg(&policy_path)
            .arg("--audit")
            .arg(dir.path().join("audit.log"))
            .arg("--admin-socket")
            .arg(&socket)
            .arg("--jit-db")
            .arg(dir.path().join("jit.db"))
            .args(extra),
        "listening on http://",
    );
    let addr = http_addr(&started.seen, "listening on http://");
    let metrics = http_addr(&started.seen, "metrics:")
        .trim_end_matches("/metrics")
        .to_owned();
    Gate {
        running: Some(started.running),
        addr,
        metrics,
        socket,
        _dir: dir,
    }
}

/// curl the gate; (status, body).
fn get(addr: &str, path: &str, metadata: bool) -> (u16, String) {
    let mut cmd = Command::new("/usr/bin/curl");
    cmd.args(["-s", "-w", "\n%{http_code}"]);
    if metadata {
        cmd.args(["-H", "Metadata: true"]);
    }
    let out = cmd.arg(format!("http://{addr}{path}")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_owned())
}

fn token_path(client_id: &str) -> String {
    format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com&client_id={client_id}")
}

/// `gatehouse status --socket S [--json]` as `uid` (None: as this test).
fn status(socket: &Path, json: bool, uid: Option<u32>) -> (i32, String) {
    use std::os::unix::process::CommandExt;
    let mut cmd = gatehouse();
    cmd.arg("status").arg("--socket").arg(socket).env_clear();
    if json {
        cmd.arg("--json");
    }
    if let Some(u) = uid {
        cmd.uid(u).gid(u);
    }
    let out = cmd.stderr(Stdio::inherit()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn metrics_count_what_the_gate_did_and_status_tells_the_same() {
    let mut g = start("emulator", &[]);
    // Two allowed token requests (a miss, then a hit), one denied, one
    // refused before any decision, one on an endpoint nobody is granted.
    let (code, allowed) = get(&g.addr, &token_path(STORAGE_WRITER), true);
    assert_eq!(code, 200, "{allowed}");
    let token: Value = serde_json::from_str(&allowed).unwrap();
    let access_token = token["access_token"].as_str().unwrap().to_owned();
    assert_eq!(get(&g.addr, &token_path(STORAGE_WRITER), true).0, 200);
    assert_eq!(get(&g.addr, &token_path(VAULT_READER), true).0, 403);
    assert_eq!(get(&g.addr, &token_path(STORAGE_WRITER), false).0, 400);
    assert_eq!(
        get(&g.addr, "/metadata/instance?api-version=2021-02-01", true).0,
        403
    );
    // The IMDS listener never serves the metrics (and rejects the request:
    // the second `rejected` below).
    let (_, imds_metrics) = get(&g.addr, "/metrics", true);
    assert!(!imds_metrics.contains("gatehouse_requests_total"));

    let (ctype, text) = scrape(&g.metrics);
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    let count =
        |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no `{series}` in\n{text}"));
    let rows = [
        (
            r#"gatehouse_requests_total{endpoint="token",decision="allow",rule="me-storage"}"#,
            2.0,
        ),
        (
            r#"gatehouse_requests_total{endpoint="token",decision="deny",rule="default"}"#,
            1.0,
        ),
        (
            r#"gatehouse_requests_total{endpoint="other",decision="rejected",rule="none"}"#,
            2.0,
        ),
        (
            r#"gatehouse_requests_total{endpoint="instance",decision="deny",rule="default"}"#,
            1.0,
        ),
        (r#"gatehouse_token_cache_lookups_total{result="miss"}"#, 1.0),
        (r#"gatehouse_token_cache_lookups_total{result="hit"}"#, 1.0),
        (r#"gatehouse_upstream_requests_total{status="200"}"#, 1.0),
        (r#"gatehouse_upstream_duration_seconds_count"#, 1.0),
        (r#"gatehouse_decision_duration_seconds_count"#, 4.0),
        (r#"gatehouse_token_cache_entries"#, 1.0),
    ];
    for (series, want) in rows {
        assert_eq!(count(series), want, "{series}");
    }
    // Four callers identified (the rejected requests never got that far),
    // the denied instance request twice: first on the socket, as the
    // assignments read only uids, then its processes, since a trusted
    // service could still allow instance metadata.
    let lookups: f64 = text
        .lines()
        .filter(|l| l.starts_with("gatehouse_caller_lookup_duration_seconds_count{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    assert_eq!(lookups, 5.0, "{text}");
    assert_eq!(
        count(r#"gatehouse_caller_lookup_duration_seconds_count{path="socket_only"}"#),
        4.0
    );
    // gate_started + five requests, at least.
    assert!(count("gatehouse_audit_records_total") >= 6.0);
    assert_eq!(count("gatehouse_audit_write_errors_total"), 0.0);
    assert!(!text.contains(&access_token), "a token in the metrics");
    // Without OpenMetrics in `Accept`: the classic format, which this
    // promtool (2.42) lints.
    let (ctype, classic) = scrape_as(&g.metrics, "*/*");
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    assert!(!classic.contains("# EOF"));
    assert_eq!(
        sample(
            &classic,
            r#"gatehouse_requests_total{endpoint="token",decision="allow",rule="me-storage"}"#
        ),
        Some(2.0)
    );
    promtool_check(&classic);

    // `gatehouse status` over the admin socket, from the same process's figures.
    let (code, out) = status(&g.socket, true, None);
    assert_eq!(code, 0, "{out}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["health"]["verdict"], "healthy", "{s}");
    assert_eq!(s["cache"]["hits"], 1);
    assert_eq!(s["cache"]["misses"], 1);
    assert_eq!(s["cache"]["entries"], 1);
    assert_eq!(s["cache"]["valid"], 1);
    assert!(s["cache"]["next_refresh_in_secs"].as_u64().is_some());
    assert!(s["upstream"]["last_success_secs_ago"].as_u64().is_some());
    assert_eq!(s["upstream"]["cloud"], "azure", "the default dialect");
    assert!(s["upstream"]["last_error"].is_null());
    assert_eq!(s["callers"]["lookup"], "sock-diag");
    assert_eq!(s["firewall"]["watching"], false);
    // Naming `--admin-socket` starts just-in-time access: nothing granted yet.
    assert_eq!(s["jit"]["grants"], serde_json::json!([]));
    assert_eq!(s["jit"]["pending"], 0);
    // The hash the gate recorded when it started.
    let audit = std::fs::read_to_string(g._dir.path().join("audit.log")).unwrap();
    let started: Value = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["event"]["type"] == "gate_started")
        .unwrap();
    assert_eq!(s["policy"]["sha256"], started["event"]["policy"]);
    assert!(s["audit"]["head_sha256"].as_str().unwrap().len() == 64);
    assert!(s["audit"]["records"].as_u64().unwrap() >= 6);
    assert!(!out.contains(&access_token), "a token in the status");
    let (code, table) = status(&g.socket, false, None);
    assert_eq!(code, 0);
    assert!(table.starts_with("health"), "{table}");
    assert!(table.contains("healthy"), "{table}");
    assert!(table.contains("1 hit(s), 1 miss(es)"), "{table}");

    // Only root, the gate's user and the `gatehouse` group read it.
    if gatehouse_sys::effective_uid() == 0 {
        let (code, out) = status(&g.socket, true, Some(OUTSIDER));
        assert_eq!(code, 4, "an outsider read the status: {out}");
    } else {
        eprintln!("*** not root: the outsider check of `gatehouse status` did not run ***");
    }

    // A stopped gate is down.
    drop(g.running.take());
    let (code, out) = status(&g.socket, true, None);
    assert_eq!(code, 3, "{out}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["health"]["verdict"], "down");
}

#[test]
fn an_upstream_that_fails_makes_the_gate_degraded() {
    // Nothing listens on port 1 of loopback: every upstream attempt fails.
    let g = start(
        "http://127.0.0.1:1",
        &["--upstream-timeout", "1", "--no-upstream-mark"],
    );
    let (code, _) = get(&g.addr, &token_path(STORAGE_WRITER), true);
    assert!(code >= 500, "{code}");
    let (code, out) = status(&g.socket, true, None);
    assert_eq!(code, 1, "{out}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["health"]["verdict"], "degraded");
    assert!(s["upstream"]["last_success_secs_ago"].is_null());
    let reasons = s["health"]["reasons"].to_string();
    assert!(reasons.contains("upstream"), "{reasons}");
    let (_, text) = scrape(&g.metrics);
    assert!(
        sample(
            &text,
            r#"gatehouse_upstream_requests_total{status="error"}"#
        )
        .unwrap()
            >= 1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"gatehouse_requests_total{endpoint="token",decision="error",rule="me-storage"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

/// `promtool check metrics` (Debian's `prometheus` package) on the text.
fn promtool_check(text: &str) {
    use std::io::Write;
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        if std::env::var("GATEHOUSE_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
            panic!("promtool is missing (apt-get install prometheus); CI requires the check");
        }
        eprintln!("\n*** SKIPPED: promtool check metrics (promtool is not installed) ***\n");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace made for one test, deleted when it ends.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn doctor_names_a_competing_dnat_rule_in_a_namespace() {
    if !common::privileged("gatehouse doctor reads nftables in a network namespace") {
        return;
    }
    let ns = Netns(format!("gh-doctor-{}", std::process::id()));
    assert!(Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status()
        .unwrap()
        .success());
    // Another agent's redirect of IMDS, in a table of its own.
    let rules = "table ip rogue-agent {\n chain out {\n  type nat hook output priority -150;\n  ip daddr 169.254.169.254 tcp dport 80 dnat to 127.0.0.1:3080\n }\n}\n";
    let mut nft = Command::new("ip")
        .args(["netns", "exec", &ns.0, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    nft.stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    assert!(nft.wait().unwrap().success());
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.0,
            env!("CARGO_BIN_EXE_gatehouse"),
            "doctor",
            "--json",
        ])
        .arg("--policy")
        .arg(dir.path().join("missing.toml"))
        .arg("--socket")
        .arg(dir.path().join("no.sock"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(3), "{report}");
    assert_eq!(report["worst"], "error");
    let findings = report["findings"].as_array().unwrap();
    let named = findings
        .iter()
        .find(|f| f["check"] == "nft-other-rule")
        .unwrap_or_else(|| panic!("the rogue rule is not named: {report}"));
    assert_eq!(named["level"], "error");
    let summary = named["summary"].as_str().unwrap();
    assert!(
        summary.contains("ip rogue-agent") && summary.contains("dnat"),
        "{summary}"
    );
    assert!(!named["action"].as_str().unwrap().is_empty());
    // No gate in this namespace: the table is missing, and IMDS was not tried.
    let table = findings.iter().find(|f| f["check"] == "nft-table").unwrap();
    assert_eq!(table["level"], "warn");
    let imds = findings.iter().find(|f| f["check"] == "imds").unwrap();
    assert!(
        imds["summary"].as_str().unwrap().starts_with("not tried"),
        "{imds}"
    );
}

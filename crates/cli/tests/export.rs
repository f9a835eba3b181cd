//! Audit export against real collectors, each started by the test in a
//! network namespace of its own (with the gate): a real rsyslog with its
//! RFC 5424 parser, and faults. Every record of a run must arrive, parsed,
//! in order; at-least-once means duplicates are allowed only where a
//! fault or a kill -9 made the gate resend, and gaps never.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed step must fail the test loudly"
)]

mod common;

use common::{gatehouse, privileged, start_until, Running, Started};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A network namespace of this test, deleted at the end.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let prefix = std::env::var("E2E_NS_PREFIX").unwrap_or_else(|_| "gh".to_owned());
        let name = format!("{prefix}-exp-{tag}-{}", std::process::id());
        common::netns_add(&name);
        Netns(name)
    }

    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).arg(program);
        // Never the machine's /var/lib/gatehouse-keys.
        c.env("GATEHOUSE_AUDIT_KEY", common::test_audit_key());
        c
    }

    fn listening(&self, port: u16) -> bool {
        let out = self
            .cmd("ss")
            .args(["-Hltn", &format!("sport = :{port}")])
            .output()
            .unwrap();
        !out.stdout.is_empty()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// A real rsyslogd receiving RFC 5424 over TCP, each message written as
/// tab-separated fields its RFC 5424 parser found.
struct Rsyslog {
    _running: Running,
    out: PathBuf,
}

fn rsyslog(ns: &Netns, dir: &Path, port: u16) -> Rsyslog {
    rsyslog_with(ns, dir, port, None)
}

/// With `tls`: (CA, certificate, key) for rsyslog's OpenSSL driver (RFC 5425).
fn rsyslog_with(ns: &Netns, dir: &Path, port: u16, tls: Option<(&Path, &Path, &Path)>) -> Rsyslog {
    let work = dir.join("rsyslog-work");
    std::fs::create_dir_all(&work).unwrap();
    let out = dir.join("received.log");
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}" maxMessageSize="256k"{global_tls})
module(load="imtcp"{module_tls})
template(name="fields" type="string" string="%pri%\t%timereported:::date-rfc3339%\t%hostname%\t%app-name%\t%procid%\t%msgid%\t%structured-data%\t%msg%\n")
ruleset(name="audit" parser="rsyslog.rfc5424") {{
  action(type="omfile" file="{out}" template="fields" flushOnTXEnd="on" asyncWriting="off")
}}
input(type="imtcp" port="{port}" address="127.0.0.1" ruleset="audit")
"#,
            work = work.display(),
            out = out.display(),
            global_tls = tls.map_or_else(String::new, |(ca, cert, key)| format!(
                " DefaultNetstreamDriver=\"ossl\" DefaultNetstreamDriverCAFile=\"{}\" DefaultNetstreamDriverCertFile=\"{}\" DefaultNetstreamDriverKeyFile=\"{}\"",
                ca.display(), cert.display(), key.display()
            )),
            module_tls = if tls.is_some() {
                " StreamDriver.Name=\"ossl\" StreamDriver.Mode=\"1\" StreamDriver.AuthMode=\"anon\""
            } else {
                ""
            },
        ),
    )
    .unwrap();
    let child = ns
        .cmd("/usr/sbin/rsyslogd")
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    wait_for("rsyslogd to listen", Duration::from_secs(10), || {
        ns.listening(port)
    });
    Rsyslog {
        _running: running,
        out,
    }
}

/// One message as rsyslog parsed it.
#[derive(Debug)]
struct Received {
    pri: u32,
    hostname: String,
    app: String,
    msgid: String,
    sd: String,
    msg: String,
}

fn received(path: &Path) -> Vec<Received> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.splitn(8, '\t').collect();
            assert_eq!(f.len(), 8, "not parsed as RFC 5424: {l}");
            Received {
                pri: f[0].parse().unwrap(),
                hostname: f[2].to_owned(),
                app: f[3].to_owned(),
                msgid: f[5].to_owned(),
                sd: f[6].to_owned(),
                msg: f[7].trim_start_matches('\u{feff}').to_owned(),
            }
        })
        .collect()
}

/// Every record of the log (all rotated files), by seq.
fn audit_records(audit: &Path) -> BTreeMap<u64, String> {
    let mut all = BTreeMap::new();
    for file in gatehouse_audit::rotation_set(audit).unwrap() {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            all.insert(v["seq"].as_u64().unwrap(), line.to_owned());
        }
    }
    all
}

struct Setup {
    dir: tempfile::TempDir,
    ns: Netns,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        common::readable_policy(
            dir.path(),
            "version = 1\n\n[[assignments]]\nname = \"root-md\"\nprincipal = \"uid:0\"\nrole = \"Instance Metadata Reader\"\n",
        );
        Setup {
            dir,
            ns: Netns::new(tag),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Wait (at most `limit`) until the first sink has delivered every
    /// record of the log.
    fn wait_caught_up(&self, limit: Duration) {
        wait_for("the sink to catch up", limit, || {
            let st = self.status();
            let sink = &st["export"][0];
            sink["lag_records"] == 0 && sink["delivered_seq"] == st["audit"]["head_seq"]
        });
    }

    fn settings(&self, sinks: &str) {
        self.settings_with("", sinks);
    }

    /// [`Setup::settings`] with more keys (`export_keys`, each line
    /// ending in a newline) in the `[export]` table.
    fn settings_with(&self, export_keys: &str, sinks: &str) {
        std::fs::write(
            self.path("gatehouse.toml"),
            format!(
                "[export]\nstate_dir = \"{}\"\nhostname = \"vm-test\"\n{export_keys}\n{sinks}",
                self.dir.path().display()
            ),
        )
        .unwrap();
    }

    /// `gatehouse run` in the namespace, with a small rotation size.
    fn gate(&self, port: u16) -> Started {
        let mut cmd = self.ns.cmd(env!("CARGO_BIN_EXE_gatehouse"));
        cmd.args(["run", "--upstream", "emulator", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args([
                "--caller-lookup",
                "sock-diag",
                "--audit-rotate-bytes",
                "16384",
            ])
            .arg("--policy")
            .arg(self.path("policy.toml"))
            .arg("--audit")
            .arg(self.path("audit.log"))
            .arg("--settings")
            .arg(self.path("gatehouse.toml"))
            .arg("--admin-socket")
            .arg(self.path("admin.sock"))
            .arg("--jit-db")
            .arg(self.path("jit.db"))
            .arg("--metrics-listen")
            .arg(format!("unix:{}", self.path("metrics.sock").display()));
        start_until(&mut cmd, "listening on http://")
    }

    /// `n` requests to the gate, from inside the namespace.
    fn requests(&self, port: u16, n: usize) {
        let url = format!("http://127.0.0.1:{port}/metadata/instance?api-version=2021-02-01");
        let mut cmd = self.ns.cmd("/usr/bin/curl");
        cmd.args(["-s", "-H", "Metadata: true"]);
        for _ in 0..n {
            cmd.arg(&url);
        }
        let status = cmd.stdout(Stdio::null()).status().unwrap();
        assert!(status.success());
    }

    fn status(&self) -> serde_json::Value {
        let out = gatehouse()
            .args(["status", "--json", "--socket"])
            .arg(self.path("admin.sock"))
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    fn metrics(&self) -> String {
        let out = Command::new("/usr/bin/curl")
            .args(["-s", "--unix-socket"])
            .arg(self.path("metrics.sock"))
            .arg("http://gate/metrics")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn stop(started: &mut Started) {
    let pid = started.running.0.id();
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if started.running.0.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the gate did not stop within 15 s of SIGTERM");
}

/// Every record of the log arrived at least once, and the first arrival
/// of each is in order; returns how many arrived twice.
fn check_complete(
    audit: &BTreeMap<u64, String>,
    got: &[Received],
    duplicates_allowed: bool,
) -> usize {
    let mut firsts = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut dups = 0;
    for r in got {
        assert_eq!(r.app, "gatehouse");
        assert_eq!(r.hostname, "vm-test");
        let v: serde_json::Value = serde_json::from_str(&r.msg)
            .unwrap_or_else(|e| panic!("MSG is not the JSON record ({e}): {}", r.msg));
        let seq = v["seq"].as_u64().unwrap();
        assert_eq!(
            audit.get(&seq),
            Some(&r.msg),
            "record {seq} differs from the log"
        );
        assert_eq!(r.msgid, v["event"]["type"].as_str().unwrap());
        assert!(
            r.sd.starts_with(&format!(
                "[gatehouse@32473 seq=\"{seq}\" hash=\"{}\"",
                v["hash"].as_str().unwrap()
            )),
            "{}",
            r.sd
        );
        // authpriv (10) * 8 + a severity from 3 to 6.
        assert!((83..=86).contains(&r.pri), "pri {}", r.pri);
        if seen.insert(seq) {
            firsts.push(seq);
        } else {
            dups += 1;
        }
    }
    let want: Vec<u64> = audit.keys().copied().collect();
    let mut sorted = firsts.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, want, "records missing at the collector");
    if !duplicates_allowed {
        assert_eq!(firsts, want, "out of order");
        assert_eq!(dups, 0, "duplicates without a fault");
    }
    dups
}

#[test]
fn rsyslog_receives_every_record_parsed_and_in_order_across_rotation() {
    if !privileged("rsyslog_receives_every_record") {
        return;
    }
    let s = Setup::new("rs");
    let syslog = rsyslog(&s.ns, s.dir.path(), 10514);
    s.settings("[export.sink.siem]\nurl = \"syslog+tcp://127.0.0.1:10514\"\n");
    let mut gate = s.gate(18001);
    s.requests(18001, 150);
    // Caught up while running: status and metrics say so.
    s.wait_caught_up(Duration::from_secs(30));
    let metrics = s.metrics();
    assert!(
        metrics.contains("gatehouse_export_lag_records{sink=\"siem\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gatehouse_export_records_total{sink=\"siem\"}"),
        "{metrics}"
    );
    stop(&mut gate);
    let audit = audit_records(&s.path("audit.log"));
    assert!(audit.len() > 150, "{}", audit.len());
    assert!(
        gatehouse_audit::rotation_set(&s.path("audit.log"))
            .unwrap()
            .len()
            > 3
    );
    let last = *audit.keys().last().unwrap();
    wait_for(
        "rsyslog to have the last record",
        Duration::from_secs(20),
        || {
            received(&syslog.out)
                .iter()
                .any(|r| r.sd.contains(&format!("seq=\"{last}\"")))
        },
    );
    check_complete(&audit, &received(&syslog.out), false);
    // The gate's last records (its stop, then the final checkpoint) left too.
    assert_stop_then_checkpoint(&audit);
}

/// A gate that stopped cleanly ends its audit with `gate_stopped` and then
/// the checkpoint that signs it.
fn assert_stop_then_checkpoint(audit: &BTreeMap<u64, String>) {
    let tail: Vec<&String> = audit.values().rev().take(2).collect();
    assert!(tail[0].contains("\"checkpoint\""), "{}", tail[0]);
    assert!(tail[1].contains("\"gate_stopped\""), "{}", tail[1]);
}

/// The OTLP receiver (Python, opentelemetry-proto) in the namespace.
struct Otlp {
    _running: Running,
    out: PathBuf,
    mode: PathBuf,
}

/// The built-in emulator's demo VM (crates/emulator/src/config.rs).
const DEMO_VM_ID: &str = "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d";

const VENV_PYTHON: &str = "/opt/gatehouse-venv/bin/python";

fn otlp(ns: &Netns, dir: &Path, port: u16, mode: &str) -> Otlp {
    let out = dir.join("otlp.jsonl");
    let mode_file = dir.join("otlp.mode");
    std::fs::write(&mode_file, mode).unwrap();
    let import = Command::new(VENV_PYTHON)
        .args([
            "-c",
            "import opentelemetry.proto.collector.logs.v1.logs_service_pb2",
        ])
        .status()
        .unwrap();
    assert!(
        import.success(),
        "opentelemetry-proto is missing from {VENV_PYTHON}: run .ci/python-venv.sh"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export_otlp_receiver.py");
    let child = ns
        .cmd(VENV_PYTHON)
        .arg(script)
        .arg(port.to_string())
        .arg(&out)
        .arg(&mode_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    wait_for(
        "the OTLP receiver to listen",
        Duration::from_secs(20),
        || ns.listening(port),
    );
    Otlp {
        _running: running,
        out,
        mode: mode_file,
    }
}

fn otlp_records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Every record arrived (first arrivals in order unless duplicates are
/// allowed); returns the number of duplicates.
fn check_otlp(
    audit: &BTreeMap<u64, String>,
    got: &[serde_json::Value],
    duplicates_allowed: bool,
    vm_id: &str,
) -> usize {
    let mut firsts = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for r in got {
        assert_eq!(r["resource"]["host.name"], "vm-test");
        assert_eq!(r["resource"]["host.id"], vm_id);
        assert_eq!(r["resource"]["service.name"], "gatehouse");
        let body = r["body"].as_str().unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        let seq = v["seq"].as_u64().unwrap();
        assert_eq!(audit.get(&seq).map(String::as_str), Some(body));
        assert_eq!(r["attributes"]["gatehouse.seq"].as_i64(), Some(seq as i64));
        assert_eq!(r["attributes"]["gatehouse.hash"], v["hash"]);
        let want_severity = match v["event"]["outcome"].as_str() {
            Some("allow") => 9,
            Some("deny" | "rejected") => 13,
            Some("error") => 17,
            _ if v["event"]["type"] == "forwarding" => 9,
            _ => r["severity_number"].as_i64().unwrap(),
        };
        assert_eq!(r["severity_number"].as_i64(), Some(want_severity), "{body}");
        assert!(r["time_unix_nano"].as_u64().unwrap() > 1_700_000_000_000_000_000);
        if seen.insert(seq) {
            firsts.push(seq);
        }
    }
    let want: Vec<u64> = audit.keys().copied().collect();
    let mut sorted = firsts.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, want, "records missing at the receiver");
    let dups = got.len() - firsts.len();
    if !duplicates_allowed {
        assert_eq!(firsts, want, "out of order");
        assert_eq!(dups, 0);
    }
    dups
}

/// The VM id the settings name (`None`: the gate asks the metadata service).
fn otlp_settings(s: &Setup, port: u16, vm_id: Option<&str>) {
    let vm_id = vm_id.map_or(String::new(), |id| format!("vm_id = \"{id}\"\n"));
    s.settings_with(
        &vm_id,
        &format!("[export.sink.otel]\nurl = \"otlp+http://127.0.0.1:{port}\"\n"),
    );
}

#[test]
fn otlp_receiver_decodes_every_record_with_resource_and_severity() {
    if !privileged("otlp_receiver_decodes_every_record") {
        return;
    }
    let s = Setup::new("ot");
    let rx = otlp(&s.ns, s.dir.path(), 14318, "ok");
    otlp_settings(&s, 14318, Some("vm-id-1"));
    let mut gate = s.gate(18002);
    s.requests(18002, 60);
    stop(&mut gate);
    let audit = audit_records(&s.path("audit.log"));
    wait_for(
        "the receiver to have the last record",
        Duration::from_secs(20),
        || otlp_records(&rx.out).len() >= audit.len(),
    );
    let got = otlp_records(&rx.out);
    check_otlp(&audit, &got, false, "vm-id-1");
    assert_stop_then_checkpoint(&audit);
}

#[test]
fn otlp_500_and_slow_answers_lose_nothing_and_show_in_status() {
    if !privileged("otlp_500_and_slow_answers_lose_nothing") {
        return;
    }
    let s = Setup::new("o5");
    let rx = otlp(&s.ns, s.dir.path(), 14319, "500");
    // No `vm_id`: the gate reads it from the (emulated) metadata service.
    otlp_settings(&s, 14319, None);
    let mut gate = s.gate(18003);
    s.requests(18003, 40);
    wait_for("the failures to show", Duration::from_secs(20), || {
        let st = s.status();
        let sink = &st["export"][0];
        sink["failures"].as_u64().unwrap_or(0) >= 2
            && sink["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("HTTP 500"))
            && sink["lag_records"].as_u64().unwrap_or(0) >= 40
    });
    let metrics = s.metrics();
    let failures =
        common::sample(&metrics, "gatehouse_export_failures_total{sink=\"otel\"}").unwrap();
    assert!(failures >= 2.0, "{metrics}");
    assert!(otlp_records(&rx.out).is_empty());
    // Very slow: the sink falls behind, the gate's answers do not.
    std::fs::write(&rx.mode, "slow").unwrap();
    let t = Instant::now();
    s.requests(18003, 40);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "40 requests took {:?} with a slow collector",
        t.elapsed()
    );
    std::fs::write(&rx.mode, "ok").unwrap();
    s.wait_caught_up(Duration::from_secs(60));
    stop(&mut gate);
    let audit = audit_records(&s.path("audit.log"));
    wait_for(
        "every record at the receiver",
        Duration::from_secs(20),
        || {
            let got = otlp_records(&rx.out);
            let last = *audit.keys().last().unwrap();
            got.iter()
                .any(|r| r["attributes"]["gatehouse.seq"].as_u64() == Some(last))
        },
    );
    check_otlp(&audit, &otlp_records(&rx.out), true, DEMO_VM_ID);
}

fn syslog_settings(s: &Setup, sinks: &[(&str, &str)]) {
    let body: String = sinks
        .iter()
        .map(|(name, url)| format!("[export.sink.{name}]\nurl = \"{url}\"\n"))
        .collect();
    s.settings(&body);
}

/// How many records the log holds now, while the gate writes and rotates
/// it (a file renamed between listing and reading counts as empty).
fn audit_records_or_none(audit: &Path) -> usize {
    gatehouse_audit::rotation_set(audit)
        .unwrap_or_default()
        .iter()
        .map(|f| std::fs::read_to_string(f).map_or(0, |t| t.lines().count()))
        .sum()
}

fn last_seq(audit: &BTreeMap<u64, String>) -> u64 {
    *audit.keys().last().unwrap()
}

/// Once rsyslog has the last record of the log at `audit`, every record
/// arrived (see [`check_complete`]); returns how many records the log
/// holds and how many arrived twice.
fn check_delivered(audit: &Path, syslog: &Rsyslog, duplicates_allowed: bool) -> (usize, usize) {
    let records = audit_records(audit);
    wait_received(syslog, last_seq(&records));
    let dups = check_complete(&records, &received(&syslog.out), duplicates_allowed);
    (records.len(), dups)
}

/// Fails unless one of the lines the gate wrote before it was up matches.
#[track_caller]
fn assert_seen(gate: &Started, line: impl Fn(&str) -> bool) {
    assert!(gate.seen.iter().any(|l| line(l)), "{:?}", gate.seen);
}

fn wait_received(syslog: &Rsyslog, last: u64) {
    wait_for(
        "rsyslog to have the last record",
        Duration::from_secs(30),
        || {
            received(&syslog.out)
                .iter()
                .any(|r| r.sd.contains(&format!("seq=\"{last}\"")))
        },
    );
}

#[test]
fn a_collector_down_at_start_then_back_gets_every_record() {
    if !privileged("a_collector_down_at_start_then_back") {
        return;
    }
    let s = Setup::new("dn");
    syslog_settings(&s, &[("siem", "syslog+tcp://127.0.0.1:10516")]);
    let mut gate = s.gate(18004);
    assert_seen(&gate, |l| {
        l.contains("audit export sink `siem` cannot be reached")
    });
    s.requests(18004, 30);
    wait_for(
        "the lag and the error to show",
        Duration::from_secs(20),
        || {
            let st = s.status();
            let sink = &st["export"][0];
            sink["lag_records"].as_u64().unwrap_or(0) >= 30
                && sink["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("cannot connect"))
        },
    );
    let syslog = rsyslog(&s.ns, s.dir.path(), 10516);
    s.requests(18004, 10);
    s.wait_caught_up(Duration::from_secs(40));
    stop(&mut gate);
    check_delivered(&s.path("audit.log"), &syslog, true);
}

#[test]
fn kill_9_mid_export_then_restart_delivers_everything() {
    if !privileged("kill_9_mid_export_then_restart") {
        return;
    }
    let s = Setup::new("k9");
    let syslog = rsyslog(&s.ns, s.dir.path(), 10517);
    syslog_settings(&s, &[("siem", "syslog+tcp://127.0.0.1:10517")]);
    for round in 0..3usize {
        let gate = s.gate(18005);
        // Requests in the background; the gate is killed while they and the
        // export are under way.
        let url = "http://127.0.0.1:18005/metadata/instance?api-version=2021-02-01";
        let mut curl = s.ns.cmd("/usr/bin/curl");
        curl.args(["-s", "-H", "Metadata: true"]);
        for _ in 0..200 {
            curl.arg(url);
        }
        let mut curl = Running(
            curl.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // Killed once the log has grown by 40 + 20·round records since the
        // last start: the export is then under way (its cursor mid-log).
        let before = audit_records_or_none(&s.path("audit.log"));
        wait_for("requests to be audited", Duration::from_secs(30), || {
            audit_records_or_none(&s.path("audit.log")) >= before + 40 + 20 * round
        });
        let pid = gate.running.0.id();
        assert!(Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap()
            .success());
        let _ = curl.0.wait();
        drop(gate);
    }
    let mut gate = s.gate(18005);
    s.requests(18005, 5);
    stop(&mut gate);
    let (records, dups) = check_delivered(&s.path("audit.log"), &syslog, true);
    eprintln!("kill -9 ×3: {records} records, {dups} delivered twice");
}

#[test]
fn a_collector_resetting_mid_message_loses_nothing() {
    if !privileged("a_collector_resetting_mid_message") {
        return;
    }
    let s = Setup::new("rst");
    let out = s.path("reset-collector.log");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export_reset_collector.py");
    let _collector = Running(
        s.ns.cmd("/usr/bin/python3")
            .arg(script)
            .args(["10518"])
            .arg(&out)
            .args(["3", "700"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the collector to listen", Duration::from_secs(10), || {
        s.ns.listening(10518)
    });
    syslog_settings(&s, &[("siem", "syslog+tcp://127.0.0.1:10518")]);
    let mut gate = s.gate(18006);
    s.requests(18006, 40);
    s.wait_caught_up(Duration::from_secs(40));
    let st = s.status();
    assert!(st["export"][0]["failures"].as_u64().unwrap() >= 1, "{st}");
    stop(&mut gate);
    let audit = audit_records(&s.path("audit.log"));
    let last = last_seq(&audit);
    wait_for(
        "the last record at the collector",
        Duration::from_secs(20),
        || {
            std::fs::read_to_string(&out)
                .unwrap_or_default()
                .contains(&format!("seq=\"{last}\""))
        },
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for msg in text.lines() {
        let json = msg.split_once('\u{feff}').unwrap().1;
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        let seq = v["seq"].as_u64().unwrap();
        assert_eq!(audit.get(&seq).map(String::as_str), Some(json));
        seen.insert(seq);
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        audit.keys().copied().collect::<Vec<_>>()
    );
}

/// A test CA and a server certificate for `localhost` only, by openssl.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // A new P-256 key in `key`, and a request for it (`rest` says more).
    let new_key = |key: &str, rest: &[&str]| {
        let head = [
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key,
        ];
        run(&[&head[..], rest].concat());
    };
    new_key(
        "ca.key",
        &[
            "-x509",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=gatehouse test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    );
    new_key(
        "server.key",
        &["-out", "server.csr", "-subj", "/CN=localhost"],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[test]
fn tls_to_rsyslog_delivers_and_a_certificate_for_another_name_is_refused() {
    if !privileged("tls_to_rsyslog") {
        return;
    }
    let s = Setup::new("tls");
    let (ca, cert, key) = certificates(s.dir.path());
    let syslog = rsyslog_with(&s.ns, s.dir.path(), 10519, Some((&ca, &cert, &key)));
    // One sink names the certificate's host; the other reaches the same
    // server by an address the certificate does not name.
    s.settings(&format!(
        "[export.sink.good]\nurl = \"syslog+tls://localhost:10519\"\nca = \"{ca}\"\n\n\
         [export.sink.mismatch]\nurl = \"syslog+tls://127.0.0.1:10519\"\nca = \"{ca}\"\n",
        ca = ca.display()
    ));
    let mut gate = s.gate(18007);
    assert_seen(&gate, |l| {
        l.contains("sink `mismatch` cannot be reached") && l.contains("certificate")
    });
    s.requests(18007, 30);
    wait_for(
        "good caught up, mismatch failing",
        Duration::from_secs(40),
        || {
            let st = s.status();
            let sinks = st["export"].as_array().cloned().unwrap_or_default();
            let by = |n: &str| {
                sinks
                    .iter()
                    .find(|x| x["name"] == n)
                    .cloned()
                    .unwrap_or_default()
            };
            let (good, bad) = (by("good"), by("mismatch"));
            good["lag_records"] == 0
                && good["delivered_seq"] == st["audit"]["head_seq"]
                && bad["lag_records"].as_u64().unwrap_or(0) >= 30
                && bad["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("certificate"))
        },
    );
    let metrics = s.metrics();
    assert!(
        common::sample(
            &metrics,
            "gatehouse_export_failures_total{sink=\"mismatch\"}"
        )
        .unwrap()
            >= 1.0,
        "{metrics}"
    );
    stop(&mut gate);
    check_delivered(&s.path("audit.log"), &syslog, false);
    // The refused sink's records are still waiting in the log: its cursor
    // never moved.
    assert!(!s.path("export-mismatch.cursor").exists());
}

#[test]
fn with_user_the_unprivileged_worker_exports() {
    use std::os::unix::fs::MetadataExt;
    if !privileged("with_user_the_unprivileged_worker_exports") {
        return;
    }
    common::separated::ensure_worker_user();
    let uid = common::separated::WORKER_UID;
    let s = Setup::new("usr");
    let syslog = rsyslog(&s.ns, s.dir.path(), 10520);
    let state = s.path("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(uid), Some(uid)).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(
        s.path("gatehouse.toml"),
        format!(
            "[export]\nstate_dir = \"{}\"\nhostname = \"vm-test\"\n\n[export.sink.siem]\nurl = \"syslog+tcp://127.0.0.1:10520\"\n",
            state.display()
        ),
    )
    .unwrap();
    let _emulator = Running(
        s.ns.cmd(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["emulate", "--listen", "127.0.0.1:18100"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("the emulator", Duration::from_secs(20), || {
        s.ns.listening(18100)
    });
    let audit = state.join("audit.log");
    let mut cmd = s.ns.cmd(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.args(["run", "--user", common::separated::WORKER_USER])
        .args([
            "--upstream",
            "http://127.0.0.1:18100",
            "--listen",
            "127.0.0.1:18008",
        ])
        .args([
            "--firewall",
            "off",
            "--upstream-mark",
            "0x6761",
            "--no-cache",
        ])
        .arg("--policy")
        .arg(s.path("policy.toml"))
        .arg("--audit")
        .arg(&audit)
        .arg("--settings")
        .arg(s.path("gatehouse.toml"));
    let mut gate = start_until(&mut cmd, "listening on http://");
    s.requests(18008, 20);
    // The connection to the collector is the worker's, not root's.
    wait_for(
        "the worker's connection to rsyslog",
        Duration::from_secs(20),
        || {
            let out =
                s.ns.cmd("ss")
                    .args(["-Htne", "dport = :10520"])
                    .output()
                    .unwrap();
            String::from_utf8_lossy(&out.stdout).contains(&format!("uid:{uid} "))
        },
    );
    stop(&mut gate);
    check_delivered(&audit, &syslog, false);
    let cursor = std::fs::metadata(state.join("export-siem.cursor")).unwrap();
    assert_eq!((cursor.uid(), cursor.mode() & 0o777), (uid, 0o600));
}

#[test]
fn check_and_run_refuse_bad_export_settings_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("gatehouse.toml");
    std::fs::write(
        &settings,
        "[export.sink.siem]\nurl = \"syslog+udp://siem:514\"\nfacility = \"kern\"\n\n[export.sink.tls]\nurl = \"syslog+tls://siem:6514\"\nca = \"/nonexistent/ca.pem\"\n",
    )
    .unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "version = 1\n").unwrap();
    // `gatehouse check` on the settings as they are now.
    let check = || {
        let out = gatehouse()
            .args(["check", "--settings"])
            .arg(&settings)
            .arg("--policy")
            .arg(&policy)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = check();
    assert_eq!(code, Some(2), "{err}");
    let name = settings.display().to_string();
    assert!(
        err.contains(&format!(
            "{name}:2:7: error: unknown sink scheme `syslog+udp`"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{name}:3:12: error: unknown syslog facility `kern`"
        )),
        "{err}"
    );
    // Syntax fixed, the CA bundle is still missing: named, before any start.
    std::fs::write(
        &settings,
        "[export.sink.tls]\nurl = \"syslog+tls://siem:6514\"\nca = \"/nonexistent/ca.pem\"\n",
    )
    .unwrap();
    let (code, err) = check();
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("cannot read the CA certificates `/nonexistent/ca.pem`"),
        "{err}"
    );
    // A named settings file that is missing, or a wrong `--export` URL,
    // stops `run` before anything starts.
    let run = |extra: &[&str]| {
        let out = gatehouse()
            .args(["run", "--upstream", "emulator", "--listen", "127.0.0.1:0"])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let missing = dir.path().join("none.toml");
    let (code, err) = run(&["--settings", missing.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot read the settings"), "{err}");
    std::fs::write(&settings, "").unwrap();
    let (code, err) = run(&[
        "--settings",
        settings.to_str().unwrap(),
        "--export",
        "siem=syslog://collector",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("`--export siem=syslog://collector`: unknown sink scheme `syslog`"),
        "{err}"
    );
    assert!(!err.contains("listening"), "{err}");
}

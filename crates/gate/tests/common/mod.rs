//! A gate in front of the in-process emulator, on loopback, and real client
//! processes started as other users.
#![allow(
    dead_code,
    reason = "shared test helpers: not every test binary uses each one"
)]

use gatehouse_gate::clock::SystemClock;
use gatehouse_gate::{Gate, GateConfig};
use serde::Deserialize;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub const STORAGE_WRITER: &str = "2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809";
pub const VAULT_READER: &str = "4b8d9eaf-b0c1-42d3-a4f5-a6b7c8d9e0fb";

/// The assignment most tests start from: user A may have a storage token
/// as `storage-writer`.
pub fn a_storage() -> String {
    format!(
        r#"
[[assignments]]
name = "a-storage"
principal = "uid:{UID_A}"
role = "Token Reader"
identities = ["storage-writer"]
audiences = ["https://storage.azure.com"]
"#
    )
}

/// Test uids. They need no passwd entries: policies name them by `uid:`.
pub const UID_A: u32 = 46001;
pub const UID_B: u32 = 46002;
pub const NOBODY: u32 = 65534;

/// The identities of the emulator's demo VM, as a policy names them.
pub const IDENTITIES: &str = r#"
version = 1
[identities.system]
kind = "system"
object_id = "0d4f5e6a-7b8c-4d9e-a0f1-b2c3d4e5f607"
client_id = "1e5a6b7c-8d9e-4fa0-b1c2-d3e4f5a6b708"
[identities.storage-writer]
kind = "user"
client_id = "2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809"
object_id = "3a7c8d9e-afb0-41c2-93e4-f5a6b7c8d90a"
resource_id = "/subscriptions/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b/resourcegroups/gatehouse-demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/storage-writer"
[identities.vault-reader]
kind = "user"
client_id = "4b8d9eaf-b0c1-42d3-a4f5-a6b7c8d9e0fb"
object_id = "5c9eafb0-c1d2-43e4-b5a6-b7c8d9e0f10c"
"#;

/// True when this test may run privileged steps; otherwise says loudly why
/// it is skipped — or fails, under GATEHOUSE_REQUIRE_PRIVILEGED=1.
pub fn privileged(test: &str) -> bool {
    if gatehouse_sys::effective_uid() == 0 {
        return true;
    }
    let msg = format!("SKIPPED (needs root): {test}");
    if std::env::var("GATEHOUSE_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!("{msg} — GATEHOUSE_REQUIRE_PRIVILEGED=1 forbids skipping");
    }
    eprintln!("\n*** {msg} ***\n");
    false
}

pub fn key_pem() -> String {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| gatehouse_emulator::generate_key_pem().unwrap())
        .clone()
}

/// Knobs for the gate under test (defaults: no cache, no limiter, the
/// system clock, a 5 s upstream budget, emulator without rate limits).
pub struct Opts {
    pub cache_margin: Option<Duration>,
    pub upstream_limits: Option<gatehouse_gate::limiter::Limits>,
    pub clock: Arc<dyn gatehouse_gate::clock::Clock>,
    pub upstream_timeout: Duration,
    pub emulator_rate_limits: bool,
    /// `gatehouse run --all-holders`.
    pub all_holders: bool,
    /// How the gate identifies callers (e.g. with eBPF connect records).
    pub identify: gatehouse_sys::IdentifyOptions,
    /// Who answers "who is this caller" instead of the kernel (tests of what
    /// the gate asks for).
    pub callers: Option<Arc<dyn gatehouse_gate::caller::CallerSource>>,
    /// The dialect the gate (and the emulator in front of it) speaks.
    pub cloud: gatehouse_policy::Cloud,
    /// Serving threads (`gatehouse run --threads`).
    pub threads: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            cache_margin: None,
            upstream_limits: None,
            clock: Arc::new(SystemClock),
            upstream_timeout: Duration::from_secs(5),
            emulator_rate_limits: false,
            all_holders: false,
            identify: gatehouse_sys::IdentifyOptions::default(),
            callers: None,
            cloud: gatehouse_policy::Cloud::Azure,
            threads: 1,
        }
    }
}

pub struct Harness {
    pub rt: tokio::runtime::Runtime,
    pub emulator: Option<gatehouse_emulator::Emulator>,
    pub gate: Arc<Gate>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub policy_path: PathBuf,
    pub audit_path: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Harness {
    pub fn start(policy: &str) -> Harness {
        Self::start_with(policy, gatehouse_emulator::EmulatorConfig::demo())
    }

    /// The demo emulator and a gate configured by `opts`.
    pub fn start_opts(policy: &str, opts: Opts) -> Harness {
        Self::start_opts_config(policy, opts, gatehouse_emulator::EmulatorConfig::demo())
    }

    /// As `start_opts`, with the emulator configured by `config` (and
    /// speaking the gate's dialect).
    pub fn start_opts_config(
        policy: &str,
        opts: Opts,
        config: gatehouse_emulator::EmulatorConfig,
    ) -> Harness {
        let dialect = match opts.cloud {
            gatehouse_policy::Cloud::Aws => gatehouse_emulator::Dialect::Aws,
            gatehouse_policy::Cloud::Gcp => gatehouse_emulator::Dialect::Gcp,
            gatehouse_policy::Cloud::Azure => gatehouse_emulator::Dialect::Azure,
        };
        let (rt, emulator) =
            Self::runtime_and_emulator_dialect(config, opts.emulator_rate_limits, dialect);
        let base = format!("http://{}", emulator.addr());
        let dir = tempfile::tempdir().unwrap();
        let audit_path = dir.path().join("audit.log");
        Self::start_full(dir, policy, &base, rt, Some(emulator), &audit_path, opts)
    }

    /// A gate configured by `opts` in front of `base` (no emulator).
    pub fn start_base_opts(policy: &str, base: &str, opts: Opts) -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let audit_path = dir.path().join("audit.log");
        Self::start_full(dir, policy, base, rt, None, &audit_path, opts)
    }

    /// The demo emulator, with the audit log at `audit_path`.
    pub fn start_with_audit(policy: &str, audit_path: &Path) -> Harness {
        let (rt, emulator) = Self::runtime_and_emulator(gatehouse_emulator::EmulatorConfig::demo());
        let base = format!("http://{}", emulator.addr());
        let dir = tempfile::tempdir().unwrap();
        let emulator = Some(emulator);
        Self::start_full(
            dir,
            policy,
            &base,
            rt,
            emulator,
            audit_path,
            Opts::default(),
        )
    }

    pub fn start_with(policy: &str, config: gatehouse_emulator::EmulatorConfig) -> Harness {
        let (rt, emulator) = Self::runtime_and_emulator(config);
        let base = format!("http://{}", emulator.addr());
        Self::start_upstream(policy, &base, rt, Some(emulator))
    }

    fn runtime_and_emulator(
        config: gatehouse_emulator::EmulatorConfig,
    ) -> (tokio::runtime::Runtime, gatehouse_emulator::Emulator) {
        Self::runtime_and_emulator_limits(config, false)
    }

    fn runtime_and_emulator_limits(
        config: gatehouse_emulator::EmulatorConfig,
        rate_limits: bool,
    ) -> (tokio::runtime::Runtime, gatehouse_emulator::Emulator) {
        Self::runtime_and_emulator_dialect(config, rate_limits, gatehouse_emulator::Dialect::Azure)
    }

    fn runtime_and_emulator_dialect(
        config: gatehouse_emulator::EmulatorConfig,
        rate_limits: bool,
        dialect: gatehouse_emulator::Dialect,
    ) -> (tokio::runtime::Runtime, gatehouse_emulator::Emulator) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let options = gatehouse_emulator::Options {
            rate_limits,
            dialect,
            key: gatehouse_emulator::KeySource::Pem(key_pem()),
            ..Default::default()
        };
        let emulator = rt
            .block_on(gatehouse_emulator::start(config, options))
            .unwrap();
        (rt, emulator)
    }

    pub fn start_upstream(
        policy: &str,
        base: &str,
        rt: tokio::runtime::Runtime,
        emulator: Option<gatehouse_emulator::Emulator>,
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let audit_path = dir.path().join("audit.log");
        Self::start_full(
            dir,
            policy,
            base,
            rt,
            emulator,
            &audit_path,
            Opts::default(),
        )
    }

    fn start_full(
        dir: tempfile::TempDir,
        policy: &str,
        base: &str,
        rt: tokio::runtime::Runtime,
        emulator: Option<gatehouse_emulator::Emulator>,
        audit_path: &Path,
        opts: Opts,
    ) -> Harness {
        // Client processes run as other users and must reach nothing here
        // but the network; the directory stays private.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let policy_path = dir.path().join("policy.toml");
        write_private(&policy_path, policy);
        let audit_path = audit_path.to_path_buf();
        let me = gatehouse_sys::effective_uid();
        let config = GateConfig {
            policy_path: policy_path.clone(),
            trusted_uids: vec![0, me],
            audit_path: audit_path.clone(),
            audit_options: gatehouse_audit::Options::default(),
            upstream_base: base.to_owned(),
            upstream_label: base.to_owned(),
            upstream_timeout: opts.upstream_timeout,
            upstream_mark: None,
            cache_margin: opts.cache_margin,
            upstream_limits: opts.upstream_limits,
            max_connections_per_uid: gatehouse_gate::server::MAX_CONNECTIONS_PER_UID,
            identify: opts.identify.clone(),
            all_holders: opts.all_holders,
            cloud: opts.cloud,
        };
        let gate = Arc::new(
            match opts.callers {
                Some(callers) => Gate::with_caller_source(&config, opts.clock, callers),
                None => Gate::new(&config, opts.clock),
            }
            .unwrap(),
        );
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(gatehouse_gate::server::serve_threads(
            Arc::clone(&gate),
            listener,
            None,
            async {
                let _ = rx.await;
            },
            None,
            opts.threads,
        ));
        Harness {
            rt,
            emulator,
            gate,
            addr,
            dir,
            policy_path,
            audit_path,
            stop: Some(tx),
        }
    }

    pub fn token_target(&self, resource: &str, client_id: Option<&str>) -> String {
        let mut t =
            format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}");
        if let Some(c) = client_id {
            t.push_str(&format!("&client_id={c}"));
        }
        t
    }

    /// Run curl as `uid` against the gate.
    pub fn curl(&self, uid: u32, target: &str) -> Reply {
        self.curl_with(uid, target, &["-H", "Metadata: true"])
    }

    pub fn curl_with(&self, uid: u32, target: &str, extra: &[&str]) -> Reply {
        self.client("/usr/bin/curl", uid, target, extra)
    }

    /// Run a curl-compatible program (curl, or a copy of it) as `uid`.
    pub fn client(&self, program: &str, uid: u32, target: &str, extra: &[&str]) -> Reply {
        let url = format!("http://{}{}", self.addr, target);
        let mut cmd = Command::new(program);
        cmd.args(["-s", "--path-as-is", "-g", "-w", "\n%{http_code}"])
            .args(extra)
            .arg(&url)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if uid != gatehouse_sys::effective_uid() {
            cmd.uid(uid).gid(uid); // std drops supplementary groups when root sets a uid
        }
        run_client(cmd)
    }

    /// Every record so far. Each one's event must read back as a typed
    /// [`gatehouse_audit::Event`] (no unknown type or field), so every test
    /// that looks at the audit also checks the schema.
    pub fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_path)
            .unwrap()
            .lines()
            .map(|l| {
                let record: Value = serde_json::from_str(l).unwrap();
                if let Err(e) = gatehouse_audit::Event::deserialize(&record["event"]) {
                    panic!("audit record outside the schema ({e}): {l}");
                }
                record
            })
            .collect()
    }

    /// The audit record of one decision.
    pub fn decision(&self, id: &str) -> Value {
        self.audit()
            .into_iter()
            .find(|r| r["event"]["decision"] == id)
            .unwrap_or_else(|| panic!("decision {id} not in the audit log"))
    }

    pub fn set_policy(&self, text: &str) {
        write_private(&self.policy_path, text);
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(e) = self.emulator.take() {
            e.shutdown();
        }
    }
}

pub fn write_private(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub pid: u32,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The decision id in a gatehouse error description.
    pub fn decision_id(&self) -> String {
        let d = self.json()["error_description"]
            .as_str()
            .unwrap()
            .to_owned();
        let start = d.rfind("(decision ").expect("decision id") + "(decision ".len();
        d[start..].trim_end_matches(')').to_owned()
    }
}

pub fn run_client(mut cmd: Command) -> Reply {
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    Reply {
        status: code.trim().parse().unwrap_or(0),
        body: body.to_owned(),
        pid,
    }
}

/// Send raw bytes and read the whole answer (connection closed by us after writing).
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Verify an RS256 JWT against a JWKS document; returns the claims.
pub fn verify_jwt(token: &str, jwks: &Value) -> Value {
    use base64::Engine as _;
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts");
    let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap();
    assert_eq!(header["alg"], "RS256");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the token's kid is in the JWKS");
    let n = rsa::BigUint::from_bytes_be(&b64.decode(jwk["n"].as_str().unwrap()).unwrap());
    let e = rsa::BigUint::from_bytes_be(&b64.decode(jwk["e"].as_str().unwrap()).unwrap());
    let key = VerifyingKey::<sha2::Sha256>::new(rsa::RsaPublicKey::new(n, e).unwrap());
    let sig = Signature::try_from(b64.decode(parts[2]).unwrap().as_slice()).unwrap();
    key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .expect("signature verifies against the emulator's JWKS");
    serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap()
}

/// The last `request` record in the audit log.
pub fn last_request(h: &Harness) -> Value {
    h.audit()
        .into_iter()
        .rev()
        .find(|r| r["event"]["type"] == "request")
        .expect("a request record")
}

/// A base URL on a loopback port nothing listens on.
pub fn dead_base() -> String {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    base
}

/// A gate configured by `opts` in front of a metadata service nobody
/// answers for, with an upstream budget of 1.5 s.
pub fn start_unreachable(policy: &str, opts: Opts) -> Harness {
    Harness::start_base_opts(
        policy,
        &dead_base(),
        Opts {
            upstream_timeout: Duration::from_millis(1_500),
            ..opts
        },
    )
}

/// The options of a gate speaking `cloud`, with a cache (margin 300 s).
pub fn cached_opts(cloud: gatehouse_policy::Cloud) -> Opts {
    Opts {
        cloud,
        cache_margin: Some(Duration::from_secs(300)),
        ..Opts::default()
    }
}

/// Where each audited request for `endpoint` was answered from
/// (`upstream`, `cache`; empty when not said), in order.
pub fn upstream_sources(h: &Harness, endpoint: &str) -> Vec<String> {
    h.audit()
        .into_iter()
        .filter(|r| r["event"]["request"]["endpoint"] == endpoint)
        .map(|r| {
            r["event"]["upstream"]["source"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

/// Why a gate speaking `cloud` refuses to start on `policy`.
pub fn gate_refusal(cloud: gatehouse_policy::Cloud, policy: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let policy_path = dir.path().join("policy.toml");
    write_private(&policy_path, policy);
    let config = GateConfig {
        policy_path,
        trusted_uids: vec![0, gatehouse_sys::effective_uid()],
        audit_path: dir.path().join("audit.log"),
        audit_options: gatehouse_audit::Options::default(),
        upstream_base: "http://127.0.0.1:9".into(),
        upstream_label: "test".into(),
        upstream_timeout: Duration::from_secs(1),
        upstream_mark: None,
        cache_margin: None,
        upstream_limits: None,
        max_connections_per_uid: 64,
        identify: gatehouse_sys::IdentifyOptions::default(),
        all_holders: false,
        cloud,
    };
    let err = Gate::new(&config, Arc::new(SystemClock)).expect_err("refused");
    err.to_string()
}

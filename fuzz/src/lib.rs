//! Fuzz targets for everything gatehouse parses from untrusted or operator
//! input. Each function panics on a bug (a crash for libFuzzer) and returns a
//! short signature of what happened. The libFuzzer binaries in
//! `fuzz_targets/` call them; `bash fuzz/run.sh SECONDS` runs them with
//! `cargo fuzz run -s none` — coverage-guided, on the stable toolchain.

use gatehouse_policy::condition::{self, Attr, Facts, Value};
use gatehouse_policy::vocabulary::GatehouseSchema;
use gatehouse_policy::{Action, Caller, Machine, Process, Request};

struct NoFacts;

impl Facts for NoFacts {
    fn action(&self) -> &str {
        "Gatehouse/token/read"
    }
    fn sub_operation(&self) -> Option<&str> {
        None
    }
    fn value(&self, attr: &Attr) -> Option<Vec<Value>> {
        (attr.to_string().len() % 2 == 0).then(|| vec![Value::Str("x".into()), Value::Int(1)])
    }
}

/// Condition parser: parse, and for a parsed condition print → parse must
/// give the same AST; type check and evaluate must not panic.
pub fn condition(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    match condition::parse(&text) {
        Ok(e) => {
            let printed = e.to_string();
            let back = condition::parse(&printed);
            assert_eq!(back.as_ref().ok(), Some(&e), "round trip of `{printed}`");
            let errors = condition::check(&e, &GatehouseSchema);
            let v = condition::evaluate(&e, &NoFacts);
            format!(
                "ok:{}:{}:{}",
                errors
                    .first()
                    .map(|e| e.message.split('`').next().unwrap_or(""))
                    .unwrap_or(""),
                v.value,
                v.absent.is_some()
            )
        }
        Err(errs) => format!(
            "err:{}",
            errs.first()
                .map(|e| e.message.split('`').next().unwrap_or(""))
                .unwrap_or("")
        ),
    }
}

struct Nothing;

impl Machine for Nothing {
    fn user_exists(&self, _: &str) -> bool {
        false
    }
    fn group_exists(&self, _: &str) -> bool {
        true
    }
    fn file_exists(&self, _: &str) -> bool {
        false
    }
    fn unit_exists(&self, _: &str) -> bool {
        true
    }
}

/// Policy file parser: parse; a loaded policy must lint and decide.
pub fn policy(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    match gatehouse_policy::parse("fuzz.toml", &text) {
        Ok(p) => {
            let w = p.lint("fuzz.toml", &text, &Nothing);
            let _ = w.to_string();
            let caller = Caller {
                uid: Some(1),
                user: Some("u".into()),
                gids: vec![1],
                group_names: vec!["g".into()],
                processes: vec![Process {
                    uid: 1,
                    unit: Some("a.service".into()),
                    ..Process::default()
                }],
            };
            let mut allowed = 0;
            for action in Action::ALL {
                let r = Request::new(action)
                    .identity(Some("system"))
                    .audience(Some("x"));
                let d = p.decide(&caller, &r);
                assert_eq!(d, p.decide_naive(&caller, &r), "indexed and naive disagree");
                allowed += usize::from(d.is_allowed());
                let _ = d.summary();
            }
            format!("ok:{}:{allowed}", w.len())
        }
        Err(d) => {
            let _ = d.to_string();
            format!(
                "err:{}",
                d.iter()
                    .next()
                    .map(|x| x.message.split('`').next().unwrap_or(""))
                    .unwrap_or("")
            )
        }
    }
}

/// The GCP dialect's canonicaliser (first line the path, the rest the
/// query): what is forwarded canonicalises to the same target and forwards
/// as itself, with the account named by email as the gate names it; a
/// recursive listing that may hold accounts is never text.
pub fn gcp_canonicalise(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let (path, query) = match text.split_once('\n') {
        Some((p, q)) => (p, Some(q)),
        None => (text.as_ref(), None),
    };
    match gatehouse_imds::canonicalise_gcp(path, query) {
        Ok(t) => {
            let email = t
                .endpoint
                .account()
                .map(|_| "app@p.iam.gserviceaccount.com");
            let forwarded = t.upstream_target(email);
            let (p, q) = forwarded.split_once('?').unwrap_or((&forwarded, ""));
            let again = gatehouse_imds::canonicalise_gcp(p, Some(q))
                .unwrap_or_else(|e| panic!("forwarded target `{forwarded}` is refused: {e}"));
            assert_eq!(again.endpoint.name(), t.endpoint.name(), "`{forwarded}`");
            assert_eq!(again.params, t.params, "`{forwarded}`");
            assert_eq!(
                again.upstream_target(email),
                forwarded,
                "forwarding is not idempotent"
            );
            if t.covers_accounts() {
                assert_ne!(t.params.alt, Some(gatehouse_imds::gcp::Alt::Text));
            }
            format!("ok:{}", t.endpoint.name())
        }
        Err(e) => format!("err:{e}"),
    }
}

/// `gatehouse_imds::canonicalise(path, query)`: the first line of the input
/// is the path, the rest (if any) the query.
/// The AWS dialect's canonicaliser: what is forwarded canonicalises to the
/// same target and forwards as itself, for any role spelling the gate uses.
pub fn aws_canonicalise(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let (path, query) = match text.split_once('\n') {
        Some((p, q)) => (p, Some(q)),
        None => (text.as_ref(), None),
    };
    match gatehouse_imds::canonicalise_aws(path, query) {
        Ok(t) => {
            let forwarded = t.path_with_role(Some("Web-Role"));
            let again = gatehouse_imds::canonicalise_aws(&forwarded, None)
                .unwrap_or_else(|e| panic!("forwarded target `{forwarded}` is refused: {e}"));
            assert_eq!(again.endpoint.name(), t.endpoint.name(), "`{forwarded}`");
            assert_eq!(again.version, t.version, "`{forwarded}`");
            assert_eq!(
                again.path_with_role(Some("Web-Role")),
                forwarded,
                "forwarding is not idempotent"
            );
            format!("ok:{}", t.endpoint.name())
        }
        Err(e) => format!("err:{e}"),
    }
}

pub fn canonicalise(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let (path, query) = match text.split_once('\n') {
        Some((p, q)) => (p, Some(q)),
        None => (text.as_ref(), None),
    };
    match gatehouse_imds::canonicalise(path, query) {
        Ok(c) => {
            // What the gate forwards means exactly what it decided on: the
            // forwarded target canonicalises to the same endpoint, selector,
            // audience and api-version, and forwards as itself (unknown
            // token parameters are dropped on the way, by design).
            let target = c.upstream_target();
            let (p, q) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (target.as_str(), None),
            };
            let again = gatehouse_imds::canonicalise(p, q)
                .unwrap_or_else(|e| panic!("forwarded target `{target}` is refused: {e}"));
            assert_eq!(
                again.upstream_target(),
                target,
                "forwarding is not idempotent"
            );
            assert_eq!(again.endpoint, c.endpoint, "`{target}`");
            assert_eq!(again.selector, c.selector, "`{target}`");
            assert_eq!(again.resource(), c.resource(), "`{target}`");
            assert_eq!(again.api_version(), c.api_version(), "`{target}`");
            format!(
                "ok:{}",
                format!("{:?}", c.endpoint)
                    .split(['(', '{', ' '])
                    .next()
                    .unwrap_or("")
            )
        }
        Err(e) => format!("err:{}", e.to_string().split('`').next().unwrap_or("")),
    }
}

/// Where [`audit_verify`] writes each input: one file per fuzzing process,
/// rewritten and removed every run (verify reads a path, not bytes).
fn audit_scratch() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("gatehouse-fuzz-audit-{}.log", std::process::id()))
}

/// `gatehouse_audit::verify` on a log file holding the input: errors are
/// fine, a panic is not. A log that verifies has contiguous seqs, and the
/// same file listed twice (a rotation set replaying itself) must not.
pub fn audit_verify(data: &[u8]) -> String {
    let path = audit_scratch();
    if std::fs::write(&path, data).is_err() {
        return "io".into();
    }
    let signature = verify_scratch(path.clone());
    let _ = std::fs::remove_file(&path);
    signature
}

fn verify_scratch(path: std::path::PathBuf) -> String {
    match gatehouse_audit::verify(std::slice::from_ref(&path)) {
        Ok(report) => {
            let _ = report.to_string();
            let span = match (report.first_seq, report.last_seq) {
                (Some(first), Some(last)) => last.checked_sub(first).and_then(|d| d.checked_add(1)),
                (None, None) => Some(0),
                _ => None,
            };
            assert_eq!(
                span,
                Some(report.records),
                "seq range and record count disagree: {report:?}"
            );
            let twice = gatehouse_audit::verify(&[path.clone(), path]);
            assert_eq!(
                twice.is_ok(),
                report.records == 0,
                "a log chained onto itself: {twice:?}"
            );
            format!("ok:{}", report.records.min(4))
        }
        Err(failure) => {
            let _ = failure.to_string();
            format!(
                "err:{}",
                failure
                    .problem
                    .to_string()
                    .split([' ', '`', ':'])
                    .next()
                    .unwrap_or("")
            )
        }
    }
}

/// The broker's request decoding (`serde_json` into `wire::Request`, what
/// `Broker::answer` does first; `answer` itself then identifies or connects
/// for real, so it is not called here). A decoded request re-encodes to
/// the same request.
pub fn broker_request(data: &[u8]) -> String {
    use gatehouse_gate::privsep::wire::{Ask, Request};
    match serde_json::from_slice::<Request>(data) {
        Ok(request) => {
            let bytes = serde_json::to_vec(&request)
                .unwrap_or_else(|e| panic!("re-encoding {request:?}: {e}"));
            let back: Result<Request, _> = serde_json::from_slice(&bytes);
            assert_eq!(
                back.as_ref().ok(),
                Some(&request),
                "round trip of {}",
                String::from_utf8_lossy(&bytes)
            );
            match request.ask {
                Ask::Identify { .. } => "ok:identify".into(),
                Ask::Connect { .. } => "ok:connect".into(),
                Ask::JitSync { .. } => "ok:jit_sync".into(),
                Ask::JitCut { .. } => "ok:jit_cut".into(),
                Ask::SignCheckpoint { .. } => "ok:sign_checkpoint".into(),
            }
        }
        Err(e) => format!("err:{:?}", e.classify()),
    }
}

/// `EmulatorConfig::from_toml`: errors are fine, a panic is not; a config
/// that loads and serialises loads back the same.
pub fn emulator_config(data: &[u8]) -> String {
    use gatehouse_emulator::EmulatorConfig;
    let text = String::from_utf8_lossy(data);
    match EmulatorConfig::from_toml(&text) {
        Ok(config) => {
            if let Ok(printed) = toml::to_string(&config) {
                let back = EmulatorConfig::from_toml(&printed);
                assert_eq!(
                    back.as_ref().ok(),
                    Some(&config),
                    "round trip of `{printed}`: {back:?}"
                );
            }
            format!("ok:{}", config.user_assigned.len().min(4))
        }
        Err(e) => format!(
            "err:{}",
            e.to_string().split([' ', '`', ':']).next().unwrap_or("")
        ),
    }
}

/// A remote port request packet (`gatehouse_jit::knock`): `verify_packet`
/// must not panic on any bytes; the seed packet is signed by the key the
/// fixed allowed-signers text names, so mutations reach every check. A
/// request message that parses prints back as the same text (one spelling
/// per request), and an allowed-signers text that parses can be asked.
pub fn knock(data: &[u8]) -> String {
    use gatehouse_jit::knock::{verify_packet, PortRequest, NAMESPACE};
    use gatehouse_jit::signers::AllowedSigners;
    use std::sync::OnceLock;
    use std::time::{Duration, UNIX_EPOCH};

    const SIGNERS: &str = include_str!("../seeds/knock/allowed_signers");
    static PARSED: OnceLock<AllowedSigners> = OnceLock::new();
    let signers = PARSED.get_or_init(|| {
        AllowedSigners::parse(SIGNERS).unwrap_or_else(|e| panic!("seed signers: {e:?}"))
    });
    let now = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let source = std::net::IpAddr::from([203, 0, 113, 7]);
    let verdict = match verify_packet(data, source, signers, now) {
        Ok(v) => {
            assert_eq!(v.request.source, source, "accepted from another source");
            format!("ok:{}", v.signer)
        }
        Err(e) => format!("err:{}", e.kind()),
    };
    let text = String::from_utf8_lossy(data);
    let message = text.split("-----BEGIN").next().unwrap_or("");
    if let Ok(request) = PortRequest::parse_message(message) {
        assert_eq!(request.message(), message, "message round trip");
    }
    if let Ok(parsed) = AllowedSigners::parse(&text) {
        if let Some(key) = ssh_key_of(&text) {
            let _ = parsed.principal_for(&key, NAMESPACE, now);
        }
    }
    verdict
}

/// The first public key written anywhere in `text`, to ask a parsed file about.
fn ssh_key_of(text: &str) -> Option<ssh_key::PublicKey> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .find_map(|w| ssh_key::PublicKey::from_openssh(&format!("{} {}", w[0], w[1])).ok())
}

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
            format!("ok:{}:{}:{}", errors.first().map(|e| e.message.split('`').next().unwrap_or("")).unwrap_or(""), v.value, v.absent.is_some())
        }
        Err(errs) => format!("err:{}", errs.first().map(|e| e.message.split('`').next().unwrap_or("")).unwrap_or("")),
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
                processes: vec![Process { uid: 1, unit: Some("a.service".into()), ..Process::default() }],
            };
            let mut allowed = 0;
            for action in Action::ALL {
                let r = Request::new(action).identity(Some("system")).audience(Some("x"));
                let d = p.decide(&caller, &r);
                assert_eq!(d, p.decide_naive(&caller, &r), "indexed and naive disagree");
                allowed += usize::from(d.is_allowed());
                let _ = d.summary();
            }
            format!("ok:{}:{allowed}", w.len())
        }
        Err(d) => {
            let _ = d.to_string();
            format!("err:{}", d.iter().next().map(|x| x.message.split('`').next().unwrap_or("")).unwrap_or(""))
        }
    }
}

/// `gatehouse_imds::canonicalise(path, query)`: the first line of the input
/// is the path, the rest (if any) the query.
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
            assert_eq!(again.upstream_target(), target, "forwarding is not idempotent");
            assert_eq!(again.endpoint, c.endpoint, "`{target}`");
            assert_eq!(again.selector, c.selector, "`{target}`");
            assert_eq!(again.resource(), c.resource(), "`{target}`");
            assert_eq!(again.api_version(), c.api_version(), "`{target}`");
            format!("ok:{}", format!("{:?}", c.endpoint).split(['(', '{', ' ']).next().unwrap_or(""))
        }
        Err(e) => format!("err:{}", e.to_string().split('`').next().unwrap_or("")),
    }
}

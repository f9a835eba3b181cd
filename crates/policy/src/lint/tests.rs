//! The semantic checks: one line per case, each saying which warning code
//! must appear (or that none of the semantic ones may), plus a property
//! test of the satisfiability search against brute force.

use super::satisfy::{can_be_true, Context, Verdict};
use super::*;
use crate::condition::{evaluate, Attr, Facts, Value};
use proptest::prelude::*;

/// A machine where every user, group, file and unit exists, and every uid
/// and gid below 60000.
pub(crate) struct AnyMachine;

impl Machine for AnyMachine {
    fn user_exists(&self, _: &str) -> bool {
        true
    }
    fn group_exists(&self, _: &str) -> bool {
        true
    }
    fn file_exists(&self, _: &str) -> bool {
        true
    }
    fn unit_exists(&self, _: &str) -> bool {
        true
    }
    fn uid_exists(&self, uid: u32) -> bool {
        uid < 60_000
    }
    fn gid_exists(&self, gid: u32) -> bool {
        gid < 60_000
    }
}

fn assign(name: &str, principal: &str, role: &str, scope: &str) -> String {
    format!("[[assignments]]\nname = \"{name}\"\nprincipal = \"{principal}\"\nrole = \"{role}\"\n{scope}")
}

const ANY: &str = "identities = [\"*\"]\naudiences = [\"*\"]\n";
const STORAGE: &str = "identities = [\"system\"]\naudiences = [\"https://storage.azure.com\"]\n";
const STORAGE_OR_VAULT: &str =
    "identities = [\"system\"]\naudiences = [\"https://storage.azure.com\", \"https://vault.azure.net\"]\n";

fn with_cond(body: String, condition: &str) -> String {
    format!("{body}condition = '''{condition}'''\n")
}

const DENY_ALL: &str = "[[deny_assignments]]\nname = \"d\"\nprincipals = [\"everyone\"]\nactions = [\"Gatehouse/*\"]\n";

/// The codes the semantic checks emit.
const SEMANTIC: &[&str] = &["always-false", "unreachable", "redundant", "orphan"];

#[test]
fn semantic_checks() {
    let imr = "Instance Metadata Reader";
    let tr = "Token Reader";
    // (what, policy body, the code that must be reported at `line`, or None)
    // (code, line, words in the message)
    type Want = Option<(&'static str, usize, &'static str)>;
    let cases: Vec<(&str, String, Want)> = vec![
        ("clean", assign("a", "uid:10", imr, ANY), None),
        (
            "contradicting equalities",
            with_cond(assign("a", "uid:10", tr, STORAGE), "@Principal[user] StringEquals 'x' AND @Principal[user] StringEquals 'y'"),
            Some(("always-false", 10, "can never match")),
        ),
        (
            "an empty numeric range",
            with_cond(assign("a", "everyone", imr, ANY), "@Principal[uid] NumericLessThan 5 AND @Principal[uid] NumericGreaterThan 9"),
            Some(("always-false", 10, "can never match")),
        ),
        (
            "a condition on another uid than the principal's",
            with_cond(assign("a", "uid:10", imr, ANY), "@Principal[uid] NumericEquals 11"),
            Some(("always-false", 10, "`uid:10`")),
        ),
        (
            "an identity outside the scope",
            with_cond(assign("a", "uid:10", tr, STORAGE), "@Resource[name] StringEquals 'other'"),
            Some(("always-false", 10, "can never match")),
        ),
        (
            "a group condition the group principal always meets is fine",
            with_cond(assign("a", "group:ops", imr, ANY), "@Principal[groups] ForAnyOfAnyValues:StringEquals {'ops'}"),
            None,
        ),
        (
            "groups that must hold both literals and nothing else",
            with_cond(assign("a", "everyone", imr, ANY), "@Principal[groups] ForAnyOfAnyValues:StringEquals {'a'} AND @Principal[groups] ForAnyOfAnyValues:StringEquals {'b'} AND @Principal[groups] ForAllOfAnyValues:StringEquals {'a', 'b'}"),
            None,
        ),
        (
            "groups that must be both inside and outside a list",
            with_cond(assign("a", "everyone", imr, ANY), "@Principal[groups] ForAllOfAnyValues:StringEquals {'a', 'b'} AND @Principal[groups] ForAnyOfAnyValues:StringEquals {'c'}"),
            Some(("always-false", 10, "can never match")),
        ),
        (
            "a satisfiable prefix and exclusion",
            with_cond(assign("a", "everyone", imr, ANY), "@Principal[unit] StringStartsWith 'app' AND @Principal[unit] StringNotEquals 'app'"),
            None,
        ),
        (
            "a satisfiable range",
            with_cond(assign("a", "everyone", imr, ANY), "@Principal[uid] NumericGreaterThan 5 AND @Principal[uid] NumericLessThan 7"),
            None,
        ),
        (
            "a time window that can hold",
            with_cond(assign("a", "everyone", imr, ANY), "@Environment[UtcNow] DateTimeGreaterThan '2025-01-01T00:00:00Z' AND @Environment[UtcNow] DateTimeLessThan '2025-01-01T00:00:01Z'"),
            None,
        ),
        (
            "a time window that cannot",
            with_cond(assign("a", "everyone", imr, ANY), "@Environment[UtcNow] DateTimeGreaterThan '2026-01-01T00:00:00Z' AND @Environment[UtcNow] DateTimeLessThan '2025-01-01T00:00:00Z'"),
            Some(("always-false", 10, "can never match")),
        ),
        (
            "NOT of a tautology",
            with_cond(assign("a", "everyone", imr, ANY), "NOT (@Principal[uid] NumericEquals 1 OR @Principal[uid] NumericNotEquals 1)"),
            Some(("always-false", 10, "can never match")),
        ),
        (
            "shadowed by a deny that always applies",
            format!("{}{DENY_ALL}", assign("a", "uid:10", imr, ANY)),
            Some(("unreachable", 4, "deny assignment `d`")),
        ),
        (
            "shadowed by a deny whose exclusion cannot be this uid",
            format!("{}{DENY_ALL}excluded_principals = [\"uid:0\"]\n", assign("a", "uid:10", imr, ANY)),
            Some(("unreachable", 4, "deny assignment `d`")),
        ),
        (
            "not shadowed when the exclusion may be the caller",
            format!("{}{DENY_ALL}excluded_principals = [\"group:ops\"]\n", assign("a", "uid:10", imr, ANY)),
            None,
        ),
        (
            "shadowed by a deny scoped to what it grants",
            format!("{}[[deny_assignments]]\nname = \"d\"\nprincipals = [\"uid:10\"]\nactions = [\"Gatehouse/token/*\"]\nidentities = [\"system\"]\naudiences = [\"https://storage.azure.com\"]\n", assign("a", "uid:10", tr, STORAGE)),
            Some(("unreachable", 4, "deny assignment `d`")),
        ),
        (
            "not shadowed by a deny of a narrower audience",
            format!("{}[[deny_assignments]]\nname = \"d\"\nprincipals = [\"uid:10\"]\nactions = [\"Gatehouse/token/*\"]\nidentities = [\"system\"]\naudiences = [\"https://storage.azure.com\"]\n", assign("a", "uid:10", tr, STORAGE_OR_VAULT)),
            None,
        ),
        (
            "redundant beside a broader one for everyone",
            format!("{}{}", assign("a", "uid:10", tr, STORAGE), assign("b", "everyone", tr, STORAGE_OR_VAULT)),
            Some(("redundant", 4, "`b` already grants")),
        ),
        (
            "redundant beside a role with more actions",
            format!("{}{}", assign("a", "uid:10", imr, ANY), assign("b", "uid:10", "Metadata Owner", ANY)),
            Some(("redundant", 4, "`b` already grants")),
        ),
        (
            "the broader one is not redundant",
            format!("{}{}", assign("b", "everyone", tr, STORAGE_OR_VAULT), assign("a", "uid:10", tr, STORAGE)),
            Some(("redundant", 10, "`a` is redundant")),
        ),
        (
            "not redundant when the other is conditioned",
            format!("{}{}", assign("a", "uid:10", tr, STORAGE), with_cond(assign("b", "everyone", tr, STORAGE_OR_VAULT), "@Principal[uid] NumericLessThan 1000")),
            None,
        ),
        (
            "a uid with no account",
            assign("a", "uid:61000", imr, ANY),
            Some(("orphan", 6, "uid `61000` has no account")),
        ),
        (
            "a gid with no group",
            assign("a", "gid:61000", imr, ANY),
            Some(("orphan", 6, "gid `61000` has no group")),
        ),
    ];
    for (what, body, want) in cases {
        let text = format!("version = 1\n[identities.system]\nkind = \"system\"\n{body}");
        let p = crate::parse("p", &text).unwrap_or_else(|d| panic!("{what}: {d}"));
        let w = p.lint("p", &text, &AnyMachine);
        let semantic: Vec<&Diagnostic> = w
            .iter()
            .filter(|d| d.code.as_deref().is_some_and(|c| SEMANTIC.contains(&c)))
            .collect();
        match want {
            None => assert!(semantic.is_empty(), "{what}: {w}"),
            Some((code, line, words)) => assert!(
                semantic.iter().any(|d| d.code.as_deref() == Some(code)
                    && d.line == line
                    && d.message.contains(words)),
                "{what}: want {code} at line {line} saying `{words}`: {w}"
            ),
        }
        assert_eq!(w.error_count(), 0, "{what}");
    }
}

#[test]
fn an_accepted_warning_is_not_reported() {
    let body = with_cond(
        assign("a", "uid:10", "Instance Metadata Reader", ANY),
        "@Principal[uid] NumericEquals 11",
    ) + "allow_warnings = [\"always-false\"]\n";
    let text = format!("version = 1\n{body}");
    let p = crate::parse("p", &text).unwrap();
    assert!(p.lint("p", &text, &AnyMachine).is_empty());
}

/// A caller with only a uid.
struct Uid(i64);

impl Facts for Uid {
    fn action(&self) -> &str {
        "Gatehouse/instance/read"
    }
    fn sub_operation(&self) -> Option<&str> {
        None
    }
    fn value(&self, attr: &Attr) -> Option<Vec<Value>> {
        (attr.to_string() == "@Principal[uid]").then(|| vec![Value::Int(self.0)])
    }
}

fn atom() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "NumericEquals",
            "NumericNotEquals",
            "NumericLessThan",
            "NumericLessThanEquals",
            "NumericGreaterThan",
            "NumericGreaterThanEquals",
        ]),
        0i64..8,
    )
        .prop_map(|(f, n)| format!("@Principal[uid] {f} {n}"))
}

fn condition() -> impl Strategy<Value = String> {
    atom().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|xs| format!("({})", xs.join(" AND "))),
            prop::collection::vec(inner.clone(), 2..4)
                .prop_map(|xs| format!("({})", xs.join(" OR "))),
            inner.prop_map(|x| format!("NOT ({x})")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Against brute force over every uid that matters (literals are 0..8,
    /// so -2..10 meets every case): "never" exactly when no uid satisfies it.
    #[test]
    fn never_true_iff_no_uid_satisfies(text in condition()) {
        let expr = crate::condition::parse(&text).unwrap();
        let ctx = Context {
            actions: vec!["Gatehouse/instance/read"],
            principal: &Principal::Everyone,
            identities: None,
        };
        let naive = (-2i64..10).any(|uid| evaluate(&expr, &Uid(uid)).value);
        let verdict = can_be_true(&expr, &ctx);
        prop_assert_ne!(verdict, Verdict::Unknown);
        prop_assert_eq!(verdict == Verdict::Sometimes, naive, "{}", text);
    }
}

//! Condition parser: parse, and for a parsed condition print → parse must
//! give the same AST; type check and evaluate must not panic.

use gatehouse_policy::condition::{self, Attr, Facts, Value};
use gatehouse_policy::vocabulary::GatehouseSchema;

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

fn target(data: &[u8]) -> String {
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

const DICT: &[&str] = &[
    "@Principal[", "@Request[", "@Resource[", "@Environment[", "]", "(", ")", "{", "}", ",", ":", "'", "!", "&&", "||",
    " AND ", " OR ", "NOT ", "Exists ", "ActionMatches{'", "SubOperationMatches{'", "StringEquals", "StringLike",
    "NumericLessThan", "DateTimeGreaterThan", "BoolEquals", "GuidEquals", "ForAnyOfAnyValues:", "ForAllOfAllValues:",
    "IgnoreCase", "true", "false", "-1", "2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809", "'2025-01-01T00:00:00.0Z'",
    "tags:k<$key_case_sensitive$>", "tags&$keys$&", "uid", "groups", "\\*", "?", "*",
];

fn main() {
    std::process::exit(gatehouse_fuzz::run("condition", target, DICT, gatehouse_fuzz::seconds_arg()));
}

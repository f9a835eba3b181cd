//! One-line table tests of the condition language: operators, quantifiers,
//! absent attributes, the truth checks and Azure's documented examples.

use std::collections::HashMap;

use super::*;

/// A test schema: gatehouse-like names plus the storage attributes the
/// Azure documentation examples use.
struct TestSchema;

const ATTRS: &[(Source, &str, Ty, bool)] = &[
    (Source::Principal, "user", Ty::String, false),
    (Source::Principal, "uid", Ty::Integer, false),
    (Source::Principal, "groups", Ty::String, true),
    (Source::Principal, "gids", Ty::Integer, true),
    (Source::Principal, "unit", Ty::String, false),
    (Source::Principal, "admin", Ty::Boolean, false),
    (Source::Resource, "clientId", Ty::Guid, false),
    (Source::Environment, "UtcNow", Ty::DateTime, false),
    (Source::Resource, "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:*<$key_case_sensitive$>", Ty::String, false),
    (Source::Request, "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags&$keys$&", Ty::String, true),
    (Source::Request, "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:*<$key_case_sensitive$>", Ty::String, false),
    (Source::Resource, "Microsoft.Storage/storageAccounts/blobServices/containers:name", Ty::String, false),
    (Source::Resource, "Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path", Ty::String, false),
    (Source::Request, "Microsoft.Storage/storageAccounts/blobServices/containers/blobs:versionId", Ty::DateTime, false),
    (Source::Resource, "Microsoft.Storage/storageAccounts/blobServices/containers/blobs:snapshot", Ty::DateTime, false),
    (Source::Principal, "Microsoft.Directory/CustomSecurityAttributes/Id:Engineering_Project", Ty::String, false),
    (Source::Environment, "isPrivateLink", Ty::Boolean, false),
];

impl Schema for TestSchema {
    fn attribute(&self, source: Source, name: &AttrName) -> Option<AttrType> {
        let key = name.schema_key();
        ATTRS
            .iter()
            .find(|(s, n, _, _)| *s == source && *n == key)
            .map(|(_, _, ty, multi)| AttrType {
                ty: *ty,
                multi: *multi,
            })
    }
    fn names(&self, source: Source) -> Vec<String> {
        ATTRS
            .iter()
            .filter(|a| a.0 == source)
            .map(|a| a.1.to_owned())
            .collect()
    }
}

/// Facts from `@Source[name]` text → values.
struct TestFacts {
    action: &'static str,
    sub_operation: Option<&'static str>,
    values: HashMap<String, Vec<Value>>,
}

impl Facts for TestFacts {
    fn action(&self) -> &str {
        self.action
    }
    fn sub_operation(&self) -> Option<&str> {
        self.sub_operation
    }
    fn value(&self, attr: &Attr) -> Option<Vec<Value>> {
        self.values.get(&attr.to_string()).cloned()
    }
}

fn s(v: &str) -> Value {
    Value::Str(v.to_owned())
}

fn facts() -> TestFacts {
    let mut values = HashMap::new();
    values.insert("@Principal[user]".to_owned(), vec![s("alice")]);
    values.insert("@Principal[uid]".to_owned(), vec![Value::Int(1001)]);
    values.insert("@Principal[groups]".to_owned(), vec![s("red"), s("blue")]);
    values.insert(
        "@Principal[gids]".to_owned(),
        vec![Value::Int(10), Value::Int(20)],
    );
    values.insert("@Principal[admin]".to_owned(), vec![Value::Bool(false)]);
    values.insert(
        "@Resource[clientId]".to_owned(),
        vec![s("2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809")],
    );
    values.insert(
        "@Environment[UtcNow]".to_owned(),
        vec![Value::Time(
            datetime::parse("2025-06-01T12:00:00Z").unwrap(),
        )],
    );
    TestFacts {
        action: "Gatehouse/token/read",
        sub_operation: None,
        values,
    }
}

/// Parse, type check against the test schema, evaluate.
fn run(text: &str, f: &TestFacts) -> Evaluation {
    let e = match parse(text) {
        Ok(e) => e,
        Err(errs) => panic!("`{text}` did not parse: {errs:?}"),
    };
    let errs = check(&e, &TestSchema);
    assert!(errs.is_empty(), "`{text}` did not type check: {errs:?}");
    evaluate(&e, f)
}

macro_rules! truth {
    ($text:expr, $want:expr) => {
        assert_eq!(run($text, &facts()).value, $want, "{}", $text)
    };
}

macro_rules! absent {
    ($text:expr, $attr:expr) => {{
        let e = run($text, &facts());
        assert!(!e.value, "{} should be false", $text);
        assert_eq!(e.absent.as_deref(), Some($attr), "{}", $text);
    }};
}

macro_rules! syntax {
    ($text:expr, $at:expr, $msg:expr) => {{
        let errs = match parse($text) {
            Ok(e) => panic!("`{}` parsed as {:?}", $text, e),
            Err(errs) => errs,
        };
        assert!(
            errs.iter()
                .any(|e| e.span.start == $at && e.message.contains($msg)),
            "`{}`: {:?}",
            $text,
            errs
        );
    }};
}

macro_rules! type_error {
    ($text:expr, $msg:expr) => {{
        let e = parse($text).unwrap();
        let errs = check(&e, &TestSchema);
        assert!(
            errs.iter().any(|e| e.message.contains($msg)),
            "`{}`: {:?}",
            $text,
            errs
        );
    }};
}

#[test]
fn string_operators() {
    truth!("@Principal[user] StringEquals 'alice'", true);
    truth!("@Principal[user] StringEquals 'Alice'", false);
    truth!("@Principal[user] StringEqualsIgnoreCase 'ALICE'", true);
    truth!("@Principal[user] StringNotEquals 'bob'", true);
    truth!("@Principal[user] StringNotEqualsIgnoreCase 'ALICE'", false);
    truth!("@Principal[user] StringStartsWith 'ali'", true);
    truth!("@Principal[user] StringStartsWith 'ALI'", false);
    truth!("@Principal[user] StringStartsWithIgnoreCase 'ALI'", true);
    truth!("@Principal[user] StringNotStartsWith 'bo'", true);
    truth!("@Principal[user] StringNotStartsWithIgnoreCase 'AL'", false);
    truth!("@Principal[user] StringLike 'a*e'", true);
    truth!("@Principal[user] StringLike 'a?ice'", true);
    truth!("@Principal[user] StringLike 'A*'", false);
    truth!("@Principal[user] StringLikeIgnoreCase 'A*'", true);
    truth!("@Principal[user] StringNotLike 'b*'", true);
    truth!("@Principal[user] StringNotLikeIgnoreCase 'AL*'", false);
    truth!("'alice' StringEquals @Principal[user]", true);
}

#[test]
fn like_escapes_and_doc_truths() {
    assert!(like::matches("a*c?", "abcd"));
    assert!(!like::matches("A*C?", "abcd"));
    assert!(!like::matches("a*c", "abcd"));
    assert!(like::matches("a\\*b", "a*b"));
    assert!(!like::matches("a\\*b", "axb"));
    assert!(like::matches("a\\?", "a?"));
    assert!(!like::matches("a\\?", "ab"));
    assert!(like::matches("*", ""));
    assert!(!like::matches("?", ""));
    assert!(like::matches("***a", "a"));
    truth!("'abcd' StringLike 'a*c?'", true);
    truth!("'abcd' StringLike 'A*C?'", false);
    truth!("'abcd' StringLike 'a*c'", false);
}

#[test]
fn numeric_datetime_bool_guid() {
    truth!("@Principal[uid] NumericEquals 1001", true);
    truth!("@Principal[uid] NumericNotEquals 1001", false);
    truth!("@Principal[uid] NumericLessThan 1002", true);
    truth!("@Principal[uid] NumericLessThanEquals 1001", true);
    truth!("@Principal[uid] NumericGreaterThan 1001", false);
    truth!("@Principal[uid] NumericGreaterThanEquals 1001", true);
    truth!("@Principal[uid] NumericGreaterThan -5", true);
    truth!(
        "@Environment[UtcNow] DateTimeGreaterThan '2025-01-01T00:00:00.0Z'",
        true
    );
    truth!(
        "@Environment[UtcNow] DateTimeLessThan '2025-06-01T12:00:00.0000001Z'",
        true
    );
    truth!(
        "@Environment[UtcNow] DateTimeLessThanEquals '2025-06-01T12:00:00Z'",
        true
    );
    truth!(
        "@Environment[UtcNow] DateTimeGreaterThanEquals '2025-06-01T12:00:01Z'",
        false
    );
    truth!(
        "@Environment[UtcNow] DateTimeEquals '2025-06-01T12:00:00.000Z'",
        true
    );
    truth!(
        "@Environment[UtcNow] DateTimeNotEquals '2025-06-01T12:00:00Z'",
        false
    );
    truth!("@Principal[admin] BoolEquals false", true);
    truth!("@Principal[admin] BoolNotEquals false", false);
    truth!(
        "@Resource[clientId] GuidEquals 2F6B7C8D-9EAF-40B1-82D3-E4F5A6B7C809",
        true
    );
    truth!(
        "@Resource[clientId] GuidEquals '2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809'",
        true
    );
    truth!(
        "@Resource[clientId] GuidNotEquals 00000000-0000-0000-0000-000000000000",
        true
    );
}

#[test]
fn quantifiers_and_doc_truths() {
    truth!(
        "{'red','blue'} ForAllOfAnyValues:StringEquals {'red','green'}",
        false
    );
    truth!("{10,20} ForAnyOfAllValues:NumericLessThan {15,18}", true);
    truth!(
        "{10,20} ForAllOfAllValues:NumericLessThan {15,25,30}",
        false
    );
    truth!("{10,12} ForAllOfAllValues:NumericLessThan {15,25,30}", true);
    truth!(
        "@Principal[groups] ForAnyOfAnyValues:StringEquals {'blue', 'x'}",
        true
    );
    truth!(
        "@Principal[groups] ForAnyOfAnyValues:StringEquals {'x'}",
        false
    );
    truth!(
        "@Principal[groups] ForAllOfAnyValues:StringEquals {'blue', 'red', 'x'}",
        true
    );
    truth!(
        "@Principal[groups] ForAllOfAnyValues:StringEquals {'blue'}",
        false
    );
    truth!(
        "@Principal[groups] ForAnyOfAllValues:StringStartsWith {'r', 're'}",
        true
    );
    truth!(
        "@Principal[groups] ForAllOfAllValues:StringNotEquals {'x', 'y'}",
        true
    );
    truth!(
        "@Principal[gids] ForAnyOfAnyValues:NumericEquals {20}",
        true
    );
    truth!(
        "@Principal[uid] ForAnyOfAnyValues:NumericEquals {1, 1001}",
        true
    );
    truth!(
        "@Resource[clientId] ForAnyOfAnyValues:GuidEquals {2f6b7c8d-9eaf-40b1-82d3-e4f5a6b7c809}",
        true
    );
}

#[test]
fn empty_sets_are_false_for_every_quantifier() {
    for q in Quantifier::ALL {
        truth!(
            &format!("@Principal[groups] {}:StringEquals {{}}", q.as_str()),
            false
        );
        truth!(&format!("{{}} {}:StringEquals {{'a'}}", q.as_str()), false);
    }
    // A caller with no groups satisfies no group condition, not even "all".
    let mut f = facts();
    f.values.insert("@Principal[groups]".into(), vec![]);
    for q in Quantifier::ALL {
        let text = format!("@Principal[groups] {}:StringEquals {{'wheel'}}", q.as_str());
        let e = run(&text, &f);
        assert!(!e.value && e.absent.is_none(), "{text}");
    }
}

#[test]
fn absent_attributes_fail_the_whole_condition() {
    absent!(
        "@Principal[unit] StringEquals 'a.service'",
        "@Principal[unit]"
    );
    absent!(
        "NOT @Principal[unit] StringEquals 'a.service'",
        "@Principal[unit]"
    );
    absent!(
        "!(@Principal[unit] StringEquals 'a.service')",
        "@Principal[unit]"
    );
    absent!(
        "@Principal[unit] StringNotEquals 'a.service'",
        "@Principal[unit]"
    );
    absent!(
        "@Principal[user] StringEquals 'alice' AND NOT @Principal[unit] StringLike '*'",
        "@Principal[unit]"
    );
    absent!(
        "@Principal[user] StringEquals 'bob' OR NOT (@Principal[unit] StringLike '*')",
        "@Principal[unit]"
    );
    // Short-circuit: an attribute never needed cannot fail the condition.
    truth!(
        "@Principal[user] StringEquals 'alice' OR @Principal[unit] StringEquals 'x'",
        true
    );
    truth!("NOT Exists @Principal[unit]", true);
    truth!("Exists @Principal[user]", true);
}

#[test]
fn action_matches_and_sub_operations() {
    truth!("ActionMatches{'Gatehouse/token/read'}", true);
    truth!("ActionMatches{'gatehouse/*/READ'}", true);
    truth!("ActionMatches{'Gatehouse/instance/*'}", false);
    truth!("SubOperationMatches{'Blob.List'}", false);
    truth!(
        "!(ActionMatches{'Gatehouse/instance/read'}) OR @Principal[unit] StringEquals 'x'",
        true
    );
    absent!(
        "!(ActionMatches{'Gatehouse/token/read'}) OR @Principal[unit] StringEquals 'x'",
        "@Principal[unit]"
    );
    truth!("(ActionMatches{'Gatehouse/token/read'} && @Principal[uid] NumericEquals 1001) || false BoolEquals true", true);
}

#[test]
fn syntax_errors() {
    syntax!("@Principal[user] StringEquals 'a' AND @Principal[uid] NumericEquals 1 OR true BoolEquals true", 70, "mixed without parentheses");
    syntax!(
        "@Principal[user] StringEquals 'a",
        30,
        "unterminated string"
    );
    syntax!("@Principal[user] stringequals 'a'", 17, "unknown operator");
    syntax!("@Principal[user] StringEqual 'a'", 17, "unknown operator");
    syntax!(
        "@Principal[user] StringEquals",
        29,
        "expected an attribute, a literal or a list"
    );
    syntax!("@Nobody[x] StringEquals 'a'", 0, "unknown attribute source");
    syntax!(
        "@Principal[user] StringEquals 'a' and true BoolEquals true",
        34,
        "expected the end"
    );
    syntax!("(@Principal[user] StringEquals 'a'", 34, "expected `)`");
    syntax!(
        "@Principal[user] StringEquals 'a' ~",
        34,
        "unexpected character"
    );
    syntax!("ActionMatches{Gatehouse}", 14, "a string in single quotes");
    syntax!("@Principal[user] StringEquals True", 30, "not a keyword");
    syntax!(
        "@Principal[uid] NumericEquals 99999999999999999999",
        30,
        "out of range"
    );
    let deep = format!(
        "{}true BoolEquals true{}",
        "(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    syntax!(&deep, MAX_DEPTH, "nests deeper");
    let shallow = format!(
        "{}true BoolEquals true{}",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    assert!(parse(&shallow).is_ok());
    let long = format!("@Principal[user] StringEquals '{}'", "a".repeat(MAX_LEN));
    syntax!(&long, 0, "more than the limit");
    // Every lexical error is reported, not just the first.
    let errs = parse("'a' ~ StringEquals ^ 'b").unwrap_err();
    assert_eq!(errs.len(), 3, "{errs:?}");
}

#[test]
fn type_errors() {
    type_error!(
        "@Principal[user] DateTimeGreaterThan '2025-01-01T00:00:00Z'",
        "compares datetime values, but `@Principal[user]` is a string"
    );
    type_error!("@Principal[uid] StringEquals 'a'", "is a integer");
    type_error!("@Principal[groups] StringEquals 'a'", "has several values");
    type_error!(
        "@Principal[user] StringEquals {'a'}",
        "a list needs a quantifier"
    );
    type_error!(
        "@Environment[UtcNow] DateTimeEquals 'yesterday'",
        "is not one"
    );
    type_error!("@Principal[uid] NumericEquals '5'", "is not one");
    type_error!(
        "@Principal[usr] StringEquals 'a'",
        "unknown attribute `@Principal[usr]`"
    );
    type_error!(
        "@Environment[UtcNow] ForAnyOfAnyValues:DateTimeEquals {'2025-01-01T00:00:00Z'}",
        "quantifiers apply only"
    );
    type_error!("Exists @Principal[nope]", "unknown attribute");
    type_error!("@Resource[clientId] GuidEquals 'not-a-guid'", "is not one");
    let all = check(
        &parse("@Principal[a] StringEquals 'x' AND @Principal[b] StringEquals 'y'").unwrap(),
        &TestSchema,
    );
    assert_eq!(all.len(), 2, "every type error is reported: {all:?}");
}

/// The examples of Azure's storage ABAC documentation, as written there.
#[test]
fn azure_documentation_examples() {
    let tag = "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:Project<$key_case_sensitive$>]";
    let read = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read";
    let write = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write";
    let storage =
        |action: &'static str, sub: Option<&'static str>, pairs: &[(&str, Vec<Value>)]| TestFacts {
            action,
            sub_operation: sub,
            values: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        };
    // Read blobs with a tag: the block pattern from conditions.md.
    let ex1 = "(\n (\n  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'} AND NOT SubOperationMatches{'Blob.List'})\n )\n OR\n (\n  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:Project<$key_case_sensitive$>] StringEqualsIgnoreCase 'Cascade'\n )\n)";
    assert!(run(ex1, &storage(read, None, &[(tag, vec![s("cascade")])])).value);
    assert!(!run(ex1, &storage(read, None, &[(tag, vec![s("Baker")])])).value);
    let e = run(ex1, &storage(read, None, &[]));
    assert_eq!(e.absent.as_deref(), Some(tag));
    assert!(
        run(ex1, &storage(write, None, &[])).value,
        "an action the block does not target passes"
    );
    assert!(
        run(ex1, &storage(read, Some("Blob.List"), &[])).value,
        "listing is not targeted"
    );
    // New blobs must carry given tag keys.
    let keys =
        "@Request[Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags&$keys$&]";
    let ex2 = format!("(\n (\n  !(ActionMatches{{'{write}'}} AND SubOperationMatches{{'Blob.Write.WithTagHeaders'}})\n )\n OR\n (\n  {keys} ForAllOfAnyValues:StringEquals {{'Project', 'Program'}}\n )\n)");
    let with_tags = |k: &[&str]| {
        storage(
            write,
            Some("Blob.Write.WithTagHeaders"),
            &[(keys, k.iter().map(|x| s(x)).collect())],
        )
    };
    assert!(run(&ex2, &with_tags(&["Project"])).value);
    assert!(!run(&ex2, &with_tags(&["Project", "Cost"])).value);
    // Container name and blob path.
    let ex3 = "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'blobs-example-container' AND @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringLike 'readonly/*'";
    let c = "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name]";
    let p = "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path]";
    assert!(
        run(
            ex3,
            &storage(
                read,
                None,
                &[
                    (c, vec![s("blobs-example-container")]),
                    (p, vec![s("readonly/a.txt")])
                ]
            )
        )
        .value
    );
    assert!(
        !run(
            ex3,
            &storage(
                read,
                None,
                &[
                    (c, vec![s("blobs-example-container")]),
                    (p, vec![s("rw/a.txt")])
                ]
            )
        )
        .value
    );
    // Principal attribute compared with a resource tag.
    let ex4 = format!("@Principal[Microsoft.Directory/CustomSecurityAttributes/Id:Engineering_Project] StringEquals {tag}");
    let pa = "@Principal[Microsoft.Directory/CustomSecurityAttributes/Id:Engineering_Project]";
    assert!(
        run(
            &ex4,
            &storage(
                read,
                None,
                &[(pa, vec![s("Cascade")]), (tag, vec![s("Cascade")])]
            )
        )
        .value
    );
    assert!(
        !run(
            &ex4,
            &storage(
                read,
                None,
                &[(pa, vec![s("Cascade")]), (tag, vec![s("Baker")])]
            )
        )
        .value
    );
    // Versions older than a date; snapshots; private link.
    let v = "@Request[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:versionId]";
    let ex5 = format!("{v} DateTimeLessThan '2022-06-01T00:00:00.0Z'");
    assert!(
        run(
            &ex5,
            &storage(read, None, &[(v, vec![s("2021-01-01T00:00:00.1234567Z")])])
        )
        .value
    );
    assert!(
        !run(
            &ex5,
            &storage(read, None, &[(v, vec![s("2023-01-01T00:00:00Z")])])
        )
        .value
    );
    let ex6 = "NOT Exists @Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:snapshot]";
    assert!(run(ex6, &storage(read, None, &[])).value);
    let ex7 = "@Environment[isPrivateLink] BoolEquals true";
    assert!(
        run(
            ex7,
            &storage(
                read,
                None,
                &[("@Environment[isPrivateLink]", vec![Value::Bool(true)])]
            )
        )
        .value
    );
}

#[test]
fn printing_round_trips() {
    for text in [
        "(@Principal[user] StringEquals 'a' OR @Principal[uid] NumericEquals 1) AND NOT Exists @Principal[unit]",
        "!(ActionMatches{'a/*'} && NOT SubOperationMatches{'x'}) || {1, 2} ForAllOfAnyValues:NumericEquals {}",
        "((true BoolEquals false))",
        "@Resource[tags:Env<$key_case_sensitive$>] StringLike 'p\\*' AND @Resource[clientId] GuidEquals 2F6B7C8D-9EAF-40B1-82D3-E4F5A6B7C809",
    ] {
        let ast = parse(text).unwrap();
        let printed = ast.to_string();
        assert_eq!(parse(&printed).unwrap(), ast, "{text} → {printed}");
    }
}

#[test]
fn datetime_parsing() {
    assert_eq!(datetime::parse("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        datetime::parse("1970-01-01T00:00:01.5Z"),
        Some(1_500_000_000)
    );
    assert_eq!(
        datetime::parse("2000-02-29T00:00:00Z").map(|n| n / 1_000_000_000),
        Some(951_782_400)
    );
    assert_eq!(datetime::parse("2001-02-29T00:00:00Z"), None);
    assert_eq!(datetime::parse("2025-01-01T00:00:00"), None);
    assert_eq!(datetime::parse("2025-01-01T00:00:00.12345678Z"), None);
    assert_eq!(datetime::parse("2025-01-01 00:00:00Z"), None);
    assert_eq!(
        datetime::format(datetime::parse("2025-06-01T12:34:56.789Z").unwrap()),
        "2025-06-01T12:34:56.7890000Z"
    );
}

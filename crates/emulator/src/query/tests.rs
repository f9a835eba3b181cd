use super::{Query, QueryError};

#[test]
fn decodes_values() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        (
            "resource=https://management.azure.com",
            "resource",
            Some("https://management.azure.com"),
        ),
        (
            "resource=https%3A%2F%2Fmanagement.azure.com%2F",
            "resource",
            Some("https://management.azure.com/"),
        ),
        ("resource=https%3a%2f%2fx", "resource", Some("https://x")),
        ("a=b+c", "a", Some("b c")),
        ("a=b%2Bc", "a", Some("b+c")),
        ("Resource=x", "resource", Some("x")),
        ("flag", "flag", Some("")),
        ("a=1&&b=2", "b", Some("2")),
        ("a=1", "b", None),
        ("a=x=y", "a", Some("x=y")),
    ];
    for (raw, name, want) in cases {
        let query = Query::parse(Some(raw)).unwrap();
        assert_eq!(query.get(name), *want, "{raw}");
    }
}

#[test]
fn rejects_bad_queries() {
    let cases: &[(&str, QueryError)] = &[
        (
            "resource=a&resource=b",
            QueryError::Duplicate("resource".into()),
        ),
        (
            "resource=a&RESOURCE=b",
            QueryError::Duplicate("resource".into()),
        ),
        (
            "resource=a&%72esource=b",
            QueryError::Duplicate("resource".into()),
        ),
        ("a=%zz", QueryError::Encoding),
        ("a=%4", QueryError::Encoding),
        ("a=%ff", QueryError::Encoding),
    ];
    for (raw, want) in cases {
        assert_eq!(Query::parse(Some(raw)).unwrap_err(), *want, "{raw}");
    }
}

#[test]
fn empty_query() {
    assert_eq!(Query::parse(None).unwrap(), Query::default());
    assert_eq!(Query::parse(Some("")).unwrap(), Query::default());
}

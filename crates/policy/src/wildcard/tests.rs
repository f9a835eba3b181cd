use super::*;

#[test]
fn table() {
    let cases: &[(&str, &str, bool)] = &[
        ("*", "", true),
        ("*", "anything", true),
        ("a*c", "abc", true),
        ("a*c", "ac", true),
        ("a*c", "abcd", false),
        ("a*c*", "abcd", true),
        ("Gatehouse/*", "Gatehouse/token/read", true),
        ("Gatehouse/*/read", "Gatehouse/token/read", true),
        (
            "Gatehouse/*/read",
            "Gatehouse/scheduledEvents/approve/action",
            false,
        ),
        ("**a", "bba", true),
        ("abc", "ab", false),
        ("", "", true),
        ("", "a", false),
        ("a*b*c", "aXbYbZc", true),
        ("a*b*c", "aXbYbZ", false),
    ];
    for (p, t, want) in cases {
        assert_eq!(matches(p, t), *want, "pattern {p:?} text {t:?}");
    }
}

#[test]
fn ignore_case() {
    assert!(matches_ignore_case(
        "gatehouse/TOKEN/*",
        "Gatehouse/token/read"
    ));
    assert!(!matches("gatehouse/TOKEN/*", "Gatehouse/token/read"));
}

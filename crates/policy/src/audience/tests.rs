use super::*;

#[test]
fn normalisation_table() {
    let cases: &[(&str, Option<&str>)] = &[
        (
            "https://storage.azure.com",
            Some("https://storage.azure.com"),
        ),
        (
            "https://storage.azure.com/",
            Some("https://storage.azure.com"),
        ),
        (
            "https://Storage.Azure.com/",
            Some("https://storage.azure.com"),
        ),
        (
            "https://storage.azure.com/.default",
            Some("https://storage.azure.com"),
        ),
        (
            "HTTPS://STORAGE.azure.com/.default",
            Some("https://storage.azure.com"),
        ),
        (
            "https://vault.azure.net/Some/Path",
            Some("https://vault.azure.net/Some/Path"),
        ),
        (
            "https://vault.azure.net/Some/Path/",
            Some("https://vault.azure.net/Some/Path"),
        ),
        (
            "https://management.core.windows.net/",
            Some("https://management.core.windows.net"),
        ),
        ("api://MyApp?x=Y", Some("api://myapp?x=Y")),
        (
            "0D4F5E6A-7B8C-4D9E-A0F1-B2C3D4E5F607",
            Some("0d4f5e6a-7b8c-4d9e-a0f1-b2c3d4e5f607"),
        ),
        ("SomeAudience", Some("SomeAudience")),
        ("", None),
        ("/", None),
        ("/.default", None),
        (" https://storage.azure.com", None),
        ("https://storage.azure.com ", None),
        ("https://storage.azure.com\n", None),
        ("https://stor\u{0}age.azure.com", None),
        ("https://storage .azure.com", None),
    ];
    for (input, want) in cases {
        assert_eq!(
            normalise_audience(input).as_deref(),
            *want,
            "input {input:?}"
        );
    }
}

#[test]
fn three_spellings_are_one_audience() {
    let a = normalise_audience("https://Storage.Azure.com/");
    let b = normalise_audience("https://storage.azure.com/.default");
    let c = normalise_audience("https://storage.azure.com");
    assert!(a.is_some());
    assert_eq!(a, b);
    assert_eq!(b, c);
}

#[test]
fn patterns() {
    assert!(pattern_matches("*", "anything"));
    assert!(pattern_matches(
        "https://*.azure.com",
        "https://storage.azure.com"
    ));
    assert!(!pattern_matches(
        "https://*.azure.com",
        "https://storage.azure.net"
    ));
    assert!(!pattern_matches(
        "https://storage.azure.com",
        "https://storage.azure.com/x"
    ));
    let rows: &[(&str, &str, bool)] = &[
        (
            "https://*.vault.azure.net",
            "https://kv1.vault.azure.net",
            true,
        ),
        (
            "https://*.vault.azure.net",
            "https://evil.example/x.vault.azure.net",
            false,
        ),
        (
            "https://*.vault.azure.net",
            "https://evil.example?x.vault.azure.net",
            false,
        ),
        (
            "https://*.vault.azure.net",
            "https://x@kv1.vault.azure.net",
            false,
        ),
        (
            "https://vault.azure.net/*",
            "https://vault.azure.net/keys/a",
            true,
        ),
        (
            "https://vault.azure.net/*",
            "https://evil.example/vault.azure.net/a",
            false,
        ),
        ("api://*", "api://myapp/scope", true),
        ("api://*", "https://myapp", false),
        ("https://*", "api://myapp", false),
        ("0d4f5e6a-*", "0d4f5e6a-7b8c-4d9e-a0f1-b2c3d4e5f607", true),
        ("0d4f5e6a-*", "https://0d4f5e6a-x", false),
    ];
    for (pattern, audience, want) in rows {
        assert_eq!(
            pattern_matches(pattern, audience),
            *want,
            "{pattern} ~ {audience}"
        );
    }
}

#[test]
fn guid_shape() {
    assert!(is_guid("0d4f5e6a-7b8c-4d9e-a0f1-b2c3d4e5f607"));
    assert!(!is_guid("0d4f5e6a-7b8c-4d9e-a0f1-b2c3d4e5f60"));
    assert!(!is_guid("0d4f5e6a7b8c4d9ea0f1b2c3d4e5f607"));
    assert!(!is_guid("0d4f5e6a-7b8c-4d9e-a0f1-b2c3d4e5f60g"));
}

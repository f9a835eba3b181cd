use super::{normalise, Audiences};

#[test]
fn normalises_spellings() {
    let cases = [
        ("https://storage.azure.com", "https://storage.azure.com"),
        ("https://storage.azure.com/", "https://storage.azure.com"),
        (
            "https://storage.azure.com/.default",
            "https://storage.azure.com",
        ),
        ("HTTPS://Storage.Azure.COM/", "https://storage.azure.com"),
        ("https://x.example/Path/", "https://x.example/Path"),
        (
            "1E5A6B7C-8D9E-4FA0-B1C2-D3E4F5A6B708",
            "1e5a6b7c-8d9e-4fa0-b1c2-d3e4f5a6b708",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(normalise(input), want, "{input}");
    }
}

#[test]
fn knows_defaults_and_extras() {
    let audiences = Audiences::new(&["api://my-app".to_string()]);
    let cases = [
        ("https://management.azure.com", true),
        ("https://management.core.windows.net/", true),
        ("https://vault.azure.net/.default", true),
        ("api://my-app", true),
        ("api://other-app", false),
        ("https://evil.example", false),
        ("https://storage.azure.com.evil.example", false),
        ("", false),
        ("/", false),
    ];
    for (resource, want) in cases {
        assert_eq!(audiences.contains(resource), want, "{resource}");
    }
}

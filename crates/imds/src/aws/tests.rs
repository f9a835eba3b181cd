use super::*;

fn canon(target: &str) -> Result<AwsTarget, CanonError> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    canonicalise_aws(path, query)
}

/// Every spelling in a row decides (and is forwarded) as the first.
#[test]
fn spellings_of_one_request_are_one_request() {
    let rows: &[&[&str]] = &[
        &[
            "/latest/meta-data/iam/security-credentials/web-role",
            "//latest//meta-data/iam/security-credentials/web-role",
            "/latest/./meta-data/iam/x/../security-credentials/web-role",
            "/LATEST/Meta-Data/IAM/Security-Credentials/web-role",
            "/latest/meta-data%2Fiam%2Fsecurity-credentials%2Fweb-role",
            "/latest/%6deta-data/iam/security-credentials/web-role",
            "/latest/meta-data/iam/security-credentials/web-role/",
            "/latest/meta-data/iam/security-credentials/%77eb-role",
        ],
        &[
            "/latest/meta-data/iam/security-credentials/",
            "/latest/meta-data/iam/security-credentials",
            "/latest/meta-data/iam/security-credentials//",
            "/latest/meta-data/iam/./security-credentials/",
        ],
        &[
            "/latest/user-data",
            "/latest/user-data/",
            "/latest//user-data",
            "/latest/USER-DATA",
            "/latest/meta-data/../user-data",
            "/latest/user%2Ddata",
        ],
        &[
            "/latest/dynamic/instance-identity/document",
            "/latest/dynamic//instance-identity/./document",
            "/latest/Dynamic/Instance-Identity/document",
        ],
        &[
            "/latest/api/token",
            "/latest//api/token",
            "/latest/API/Token",
        ],
    ];
    for row in rows {
        let first = canon(row[0]).unwrap();
        for spelling in &row[1..] {
            let got = canon(spelling).unwrap_or_else(|e| panic!("{spelling}: {e}"));
            assert_eq!(got.endpoint.name(), first.endpoint.name(), "{spelling}");
            if !matches!(first.endpoint, AwsEndpoint::Credentials { .. }) {
                assert_eq!(got.path(), first.path(), "{spelling}");
            }
            assert_eq!(
                got.path_with_role(Some("web-role")),
                first.path_with_role(Some("web-role")),
                "{spelling}"
            );
        }
    }
}

#[test]
fn endpoints_and_canonical_paths() {
    let rows: &[(&str, &str, &str)] = &[
        ("/", "aws_meta_data", "/"),
        ("/latest", "aws_meta_data", "/latest/"),
        ("/latest/meta-data/", "aws_meta_data", "/latest/meta-data/"),
        (
            "/latest/meta-data/instance-id",
            "aws_meta_data",
            "/latest/meta-data/instance-id",
        ),
        (
            "/2021-07-15/meta-data/iam/info",
            "aws_meta_data",
            "/2021-07-15/meta-data/iam/info",
        ),
        (
            "/latest/meta-data/tags/instance/My%20Key",
            "aws_meta_data",
            "/latest/meta-data/tags/instance/My%20Key",
        ),
        (
            "/latest/api/token",
            "aws_session_token",
            "/latest/api/token",
        ),
        ("/latest/user-data", "aws_user_data", "/latest/user-data"),
        (
            "/latest/dynamic/instance-identity/signature",
            "aws_identity_document",
            "/latest/dynamic/instance-identity/signature",
        ),
        ("/latest/dynamic/", "aws_meta_data", "/latest/dynamic/"),
        (
            "/latest/meta-data/iam/security-credentials/r",
            "aws_credentials",
            "/latest/meta-data/iam/security-credentials/r",
        ),
    ];
    for (target, name, path) in rows {
        let t = canon(target).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert_eq!(t.endpoint.name(), *name, "{target}");
        assert_eq!(t.path(), *path, "{target}");
    }
}

#[test]
fn ambiguous_or_unknown_targets_are_refused() {
    let rows: &[(&str, CanonError)] = &[
        (
            "/latest/meta-data/iam/security-credentials/r?x=1",
            CanonError::UnexpectedQuery,
        ),
        ("/latest/user-data?", CanonError::UnknownPath), // empty query: path decides
        (
            "/latest/meta-data/%252e%252e/x",
            CanonError::BadEncoding("double percent-encoding"),
        ),
        (
            "/latest/meta-data/%zz",
            CanonError::BadEncoding("malformed percent escape"),
        ),
        (
            "/latest/meta-data\\iam",
            CanonError::BadEncoding("backslash"),
        ),
        (
            "/latest/meta-data/%5ciam",
            CanonError::BadEncoding("encoded backslash"),
        ),
        (
            "/latest/meta-data/%00",
            CanonError::BadEncoding("control character"),
        ),
        ("/../latest/user-data", CanonError::DotSegmentAboveRoot),
        ("/latest/../../user-data", CanonError::DotSegmentAboveRoot),
        (
            "/latest/meta-data/iam/security-credentials/r/extra",
            CanonError::UnknownPath,
        ),
        ("/latest/something", CanonError::UnknownPath),
        ("/metadata/identity/oauth2/token", CanonError::UnknownPath),
        ("/2021-7-15/meta-data", CanonError::UnknownPath),
    ];
    for (target, want) in rows {
        match canon(target) {
            Err(e) if e == *want => {}
            // An empty query is no query: `/latest/user-data?` is user data.
            Ok(t) if *target == "/latest/user-data?" => {
                assert_eq!(t.endpoint, AwsEndpoint::UserData)
            }
            other => panic!("{target}: {other:?}, want {want:?}"),
        }
    }
}

proptest::proptest! {
    /// Whatever the input, a canonical target canonicalises to itself
    /// (forwarding it cannot be read as something else).
    #[test]
    fn canonical_paths_are_fixed_points(path in "(/[a-zA-Z0-9%._~-]{0,12}){0,7}/?") {
        if let Ok(t) = canonicalise_aws(&path, None) {
            let again = canonicalise_aws(&t.path(), None).unwrap();
            proptest::prop_assert_eq!(again, t);
        }
    }
}

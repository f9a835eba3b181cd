use super::*;

fn canon(target: &str) -> Result<GcpTarget, CanonError> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    canonicalise_gcp(path, query)
}

fn forwarded(target: &str) -> String {
    canon(target)
        .unwrap_or_else(|e| panic!("`{target}` refused: {e}"))
        .upstream_target(None)
}

/// Every spelling in a row decides (and is forwarded) as the first.
#[test]
fn spellings_of_one_request_are_one_request() {
    let rows: &[&[&str]] = &[
        &[
            "/computeMetadata/v1/instance/service-accounts/default/token",
            "//computeMetadata//v1/instance/service-accounts/default/token",
            "/computeMetadata/v1/./instance/x/../service-accounts/default/token",
            "/COMPUTEMETADATA/V1/Instance/Service-Accounts/DEFAULT/Token",
            "/computeMetadata/v1/instance%2Fservice-accounts%2Fdefault%2Ftoken",
            "/computeMetadata/v1/instance/service-accounts/%64efault/token",
            "/computeMetadata/v1/instance/service-accounts/default/token/",
            "/computeMetadata/v1/instance/service-accounts/default/token?",
        ],
        &[
            "/computeMetadata/v1/instance/service-accounts/default/token?scopes=https://www.googleapis.com/auth/cloud-platform,b",
            "/computeMetadata/v1/instance/service-accounts/default/token?scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform%2Cb",
            "/computeMetadata/v1/instance/service-accounts/default/token?SCOPES=https://www.googleapis.com/auth/cloud-platform,b",
            "/computeMetadata/v1/instance/service-accounts/default/token?&scopes=https://www.googleapis.com/auth/cloud-platform,b&",
        ],
        &[
            "/computeMetadata/v1/instance/service-accounts/app@p.iam.gserviceaccount.com/identity?audience=https://a.example&format=full",
            "/computeMetadata/v1/instance/service-accounts/app%40p.iam.gserviceaccount.com/identity?format=FULL&audience=https%3A%2F%2Fa.example",
            "/computeMetadata/v1/instance/service-accounts/app@p.iam.gserviceaccount.com/./identity?audience=https://a.example&format=Full",
        ],
        &[
            "/computeMetadata/v1/instance/service-accounts/default/?recursive=true",
            "/computeMetadata/v1/instance/service-accounts/default?recursive=TRUE",
            "/computeMetadata/v1/instance/service-accounts/default//?Recursive=True",
        ],
        &[
            "/computeMetadata/v1/project/project-id",
            "/computeMetadata/v1/Project/project-id",
            "/computeMetadata/v1/instance/../project/project-id",
            "/computeMetadata/v1/project%2Fproject-id",
        ],
        &["/", "//", "/./", "/computeMetadata/.."],
    ];
    for row in rows {
        let first = forwarded(row[0]);
        let canonical = canon(row[0]).unwrap();
        for spelling in *row {
            let t = canon(spelling).unwrap_or_else(|e| panic!("`{spelling}` refused: {e}"));
            assert_eq!(t.endpoint, canonical.endpoint, "{spelling}");
            assert_eq!(t.params, canonical.params, "{spelling}");
            assert_eq!(forwarded(spelling), first, "{spelling}");
        }
        // The forwarded target is canonical itself.
        assert_eq!(forwarded(&first), first, "{first}");
    }
}

#[test]
fn endpoints_and_canonical_targets() {
    let cases: &[(&str, &str, &str)] = &[
        ("/", "gcp_metadata", "/"),
        ("/computeMetadata/", "gcp_metadata", "/computeMetadata/"),
        ("/computeMetadata/v1", "gcp_metadata", "/computeMetadata/v1/"),
        (
            "/computeMetadata/v1/instance/attributes/Some-Key",
            "gcp_metadata",
            "/computeMetadata/v1/instance/attributes/Some-Key",
        ),
        (
            "/computeMetadata/v1/instance/service-accounts",
            "gcp_service_accounts",
            "/computeMetadata/v1/instance/service-accounts/",
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/default/email",
            "gcp_service_account",
            "/computeMetadata/v1/instance/service-accounts/default/email",
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/default/token?scopes=a,b",
            "gcp_access_token",
            "/computeMetadata/v1/instance/service-accounts/default/token?scopes=a,b",
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/default/identity?licenses=true&audience=x&format=full",
            "gcp_id_token",
            "/computeMetadata/v1/instance/service-accounts/default/identity?audience=x&format=full&licenses=TRUE",
        ),
        (
            "/computeMetadata/v1/instance/?recursive=true&alt=json",
            "gcp_metadata",
            "/computeMetadata/v1/instance/?recursive=true&alt=json",
        ),
    ];
    for (target, name, upstream) in cases {
        let t = canon(target).unwrap_or_else(|e| panic!("`{target}` refused: {e}"));
        assert_eq!(t.endpoint.name(), *name, "{target}");
        assert_eq!(t.upstream_target(None), *upstream, "{target}");
    }
    // The gate names the account by the policy's email upstream.
    let t = canon("/computeMetadata/v1/instance/service-accounts/default/token").unwrap();
    assert_eq!(
        t.upstream_target(Some("app@p.iam.gserviceaccount.com")),
        "/computeMetadata/v1/instance/service-accounts/app@p.iam.gserviceaccount.com/token"
    );
}

#[test]
fn ambiguous_or_unknown_targets_are_refused() {
    let cases: &[(&str, CanonError)] = &[
        (
            "/computeMetadata/v1/instance/%252e%252e/service-accounts/default/token",
            CanonError::BadEncoding("double percent-encoding"),
        ),
        (
            "/computeMetadata/v1/instance/%zz",
            CanonError::BadEncoding("malformed percent escape"),
        ),
        (
            "/computeMetadata/v1/instance\\service-accounts",
            CanonError::BadEncoding("backslash"),
        ),
        ("/../computeMetadata/v1/", CanonError::DotSegmentAboveRoot),
        ("/computeMetadata/v1beta1/instance/id", CanonError::UnknownPath),
        ("/computeMetadata/v2/instance/id", CanonError::UnknownPath),
        ("/metadata/instance", CanonError::UnknownPath),
        (
            "/computeMetadata/v1/instance/service-accounts/default/token/x",
            CanonError::UnknownPath,
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/not-an-account/token",
            CanonError::UnknownPath,
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/default/token?scopes=a&scopes=b",
            CanonError::DuplicateParameter("scopes".into()),
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/default/token?scopes=a+b",
            CanonError::AmbiguousPlus,
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/default/token?scopes=a,,b",
            CanonError::BadValue("scopes (a comma-separated list without spaces or empty entries)"),
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/default/token?scopes=a%20b",
            CanonError::BadValue("scopes (a comma-separated list without spaces or empty entries)"),
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/default/token?recursive=true",
            CanonError::UnknownParameter("recursive".into()),
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/default/token?audience=x",
            CanonError::UnknownParameter("audience".into()),
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/default/identity",
            CanonError::BadValue("audience (required)"),
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/default/identity?audience=",
            CanonError::BadValue("audience (non-empty, without spaces)"),
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/default/identity?audience=x&format=short",
            CanonError::BadValue("format (`standard` or `full`)"),
        ),
        (
            "/computeMetadata/v1/instance/id?recursive=yes",
            CanonError::BadValue("recursive (`true` or `false`)"),
        ),
        (
            "/computeMetadata/v1/instance/id?recursive=1",
            CanonError::BadValue("recursive (`true` or `false`)"),
        ),
        (
            "/computeMetadata/v1/instance/id?wait_for_change=true",
            CanonError::BadValue("wait_for_change (long polls are not served through gatehouse)"),
        ),
        (
            "/computeMetadata/v1/instance/id?x=1",
            CanonError::UnknownParameter("x".into()),
        ),
        (
            "/?recursive=true",
            CanonError::BadValue("recursive (only at /computeMetadata/v1/ and below)"),
        ),
        (
            "/computeMetadata/v1/?recursive=true&alt=text",
            CanonError::BadValue("alt (a recursive listing of service accounts is JSON only)"),
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/?recursive=true&alt=text",
            CanonError::BadValue("alt (a recursive listing of service accounts is JSON only)"),
        ),
    ];
    for (target, want) in cases {
        assert_eq!(canon(target).as_ref().err(), Some(want), "{target}");
    }
    // alt=text is fine where no account can be inside.
    assert!(canon("/computeMetadata/v1/project/?recursive=true&alt=text").is_ok());
}

#[test]
fn recursive_listings_that_may_hold_accounts_are_known() {
    for (target, covers) in [
        ("/computeMetadata/v1/?recursive=true", true),
        ("/computeMetadata/v1/instance/?recursive=true", true),
        (
            "/computeMetadata/v1/instance/service-accounts/?recursive=true",
            true,
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/default/?recursive=true",
            true,
        ),
        (
            "/computeMetadata/v1/instance/service-accounts/default/",
            false,
        ),
        ("/computeMetadata/v1/project/?recursive=true", false),
        (
            "/computeMetadata/v1/instance/attributes/?recursive=true",
            false,
        ),
    ] {
        assert_eq!(canon(target).unwrap().covers_accounts(), covers, "{target}");
    }
}

proptest::proptest! {
    /// Whatever the input, what the gate forwards canonicalises to the
    /// same target and forwards as itself.
    #[test]
    fn forwarded_targets_are_fixed_points(
        path in "(/(computeMetadata|v1|instance|project|service-accounts|default|token|identity|a@b.c|%2F|%40|\\.\\.|\\.|[a-zA-Z0-9%._~-]{0,8})){0,8}/?",
        query in "((scopes|audience|format|recursive|alt|licenses|x)=[a-zA-Z0-9%,:/._-]{0,10}&?){0,3}",
    ) {
        if let Ok(t) = canonicalise_gcp(&path, Some(&query)) {
            let forwarded = t.upstream_target(Some("app@p.iam.gserviceaccount.com"));
            let (p, q) = forwarded.split_once('?').unwrap_or((&forwarded, ""));
            let again = canonicalise_gcp(p, Some(q)).unwrap();
            proptest::prop_assert_eq!(&again.params, &t.params);
            proptest::prop_assert_eq!(again.endpoint.name(), t.endpoint.name());
            proptest::prop_assert_eq!(
                again.upstream_target(Some("app@p.iam.gserviceaccount.com")),
                forwarded
            );
        }
    }
}

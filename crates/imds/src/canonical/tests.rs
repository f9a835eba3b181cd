use super::*;

fn canon(target: &str) -> Result<Canonical, CanonError> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    canonicalise(path, query)
}

/// Every spelling in a row must mean the same request as the first.
#[test]
fn spellings_of_one_request_are_one_request() {
    let rows: &[&[&str]] = &[
        &[
            "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com",
            "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com",
            "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3a%2f%2fstorage.azure.com",
            "//metadata//identity/oauth2///token?api-version=2018-02-01&resource=https://storage.azure.com",
            "/metadata/./identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com",
            "/metadata/x/../identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com",
            "/METADATA/Identity/OAuth2/Token?api-version=2018-02-01&resource=https://storage.azure.com",
            "/metadata%2Fidentity%2Foauth2%2Ftoken?api-version=2018-02-01&resource=https://storage.azure.com",
            "/%6detadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com",
            "/metadata/identity/oauth2/token?API-VERSION=2018-02-01&Resource=https://storage.azure.com",
            "/metadata/identity/oauth2/token?api-version=2018-02-01&&resource=https://storage.azure.com&",
        ],
        &[
            "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x&msi_res_id=/subscriptions/s/rg",
            "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x&mi_res_id=/subscriptions/s/rg",
            "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x&mi_res_id=%2Fsubscriptions%2Fs%2Frg",
        ],
        &[
            "/metadata/instance/compute/azEnvironment?api-version=2021-02-01&format=text",
            "/metadata/instance//compute/./azEnvironment?api-version=2021-02-01&format=text",
            "/Metadata/Instance/compute/azEnvironment?api-version=2021-02-01&format=text",
        ],
    ];
    for row in rows {
        let first = canon(row[0]).unwrap();
        for spelling in row.iter().skip(1) {
            assert_eq!(canon(spelling).as_ref(), Ok(&first), "{spelling}");
            assert_eq!(
                canon(spelling).unwrap().upstream_target(),
                first.upstream_target(),
                "{spelling}"
            );
        }
    }
}

#[test]
fn refused_targets() {
    use CanonError::*;
    let rows: &[(&str, CanonError)] = &[
        (
            "/metadata/identity/oauth2/token?resource=a&resource=b",
            DuplicateParameter("resource".into()),
        ),
        (
            "/metadata/identity/oauth2/token?resource=a&Resource=b",
            DuplicateParameter("resource".into()),
        ),
        (
            "/metadata/identity/oauth2/token?resource=a&resource%3Db",
            BadEncoding("parameter name"),
        ),
        (
            "/metadata/identity/oauth2/token?=a",
            BadEncoding("parameter name"),
        ),
        (
            "/metadata/identity/oauth2/token?msi_res_id=a&mi_res_id=b",
            DuplicateParameter("msi_res_id".into()),
        ),
        (
            "/metadata/identity/oauth2/token?client_id=a&object_id=b",
            SeveralSelectors,
        ),
        (
            "/metadata/identity/oauth2/token?resource=a+b",
            AmbiguousPlus,
        ),
        (
            "/metadata/identity/oauth2/token?resource=%2541",
            BadEncoding("double percent-encoding"),
        ),
        (
            "/metadata/identity/oauth2/token?resource=%zz",
            BadEncoding("malformed percent escape"),
        ),
        (
            "/metadata/identity/oauth2/token?resource=%00",
            BadEncoding("control character"),
        ),
        (
            "/metadata/identity/oauth2/token?resource=%ff",
            BadEncoding("not UTF-8 after decoding"),
        ),
        ("/metadata\\identity/oauth2/token", BadEncoding("backslash")),
        (
            "/metadata%5Cidentity/oauth2/token",
            BadEncoding("encoded backslash"),
        ),
        ("/../metadata/identity/oauth2/token", DotSegmentAboveRoot),
        ("/metadata/../../identity", DotSegmentAboveRoot),
        ("/metadata/identity/oauth2/token/extra", UnknownPath),
        (
            "/metadata/identity/oauth2/token%252F",
            BadEncoding("double percent-encoding"),
        ),
        ("/latest/meta-data/", UnknownPath),
        ("/", UnknownPath),
    ];
    for (target, want) in rows {
        assert_eq!(canon(target).as_ref(), Err(want), "{target}");
    }
}

#[test]
fn endpoints_and_selectors() {
    let rows: &[(&str, Endpoint, Selector)] = &[
        (
            "/metadata/identity/oauth2/token?resource=r",
            Endpoint::Token,
            Selector::None,
        ),
        (
            "/metadata/identity/oauth2/token?client_id=C",
            Endpoint::Token,
            Selector::ClientId("C".into()),
        ),
        (
            "/metadata/identity/oauth2/token?object_id=O",
            Endpoint::Token,
            Selector::ObjectId("O".into()),
        ),
        (
            "/metadata/identity/info",
            Endpoint::IdentityInfo,
            Selector::None,
        ),
        ("/metadata/versions", Endpoint::Versions, Selector::None),
        (
            "/metadata/attested/document?nonce=1",
            Endpoint::AttestedDocument,
            Selector::None,
        ),
        (
            "/metadata/scheduledevents",
            Endpoint::ScheduledEvents,
            Selector::None,
        ),
        (
            "/metadata/instance",
            Endpoint::Instance { subpath: vec![] },
            Selector::None,
        ),
        (
            "/metadata/instance/network/interface/0",
            Endpoint::Instance {
                subpath: vec!["network".into(), "interface".into(), "0".into()],
            },
            Selector::None,
        ),
    ];
    for (target, endpoint, selector) in rows {
        let c = canon(target).unwrap();
        assert_eq!(&c.endpoint, endpoint, "{target}");
        assert_eq!(&c.selector, selector, "{target}");
    }
}

#[test]
fn upstream_keeps_the_clients_audience_and_drops_unknown_token_params() {
    let c =
        canon("/metadata/identity/oauth2/token?api-version=2019-08-01&resource=https://x/&foo=bar")
            .unwrap();
    assert_eq!(c.resource(), Some("https://x/"));
    assert_eq!(
        c.upstream_target(),
        "/metadata/identity/oauth2/token?api-version=2019-08-01&resource=https%3A%2F%2Fx%2F"
    );
    let c =
        canon("/metadata/identity/oauth2/token?api-version=2019-08-01&resource=https://x").unwrap();
    assert_eq!(c.resource(), Some("https://x"));
    let c = canon("/metadata/instance/compute?api-version=2021-02-01&format=json").unwrap();
    assert_eq!(
        c.upstream_target(),
        "/metadata/instance/compute?api-version=2021-02-01&format=json"
    );
}

#[test]
fn claims_decode_and_fingerprint() {
    use base64::Engine as _;
    let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let jwt = format!(
        "{}.{}.{}",
        enc("{}"),
        enc(r#"{"oid":"o","appid":"a","xms_mirid":"/m","aud":"x"}"#),
        "sig"
    );
    let c = crate::token::decode_claims(&jwt).unwrap();
    assert_eq!(c.oid.as_deref(), Some("o"));
    assert_eq!(c.xms_mirid.as_deref(), Some("/m"));
    assert!(crate::token::decode_claims("a.b").is_err());
    assert!(crate::token::decode_claims("a.!!.c").is_err());
    let fp = crate::token::fingerprint(&jwt);
    assert_eq!(fp.len(), 12);
    assert!(!jwt.contains(&fp));
}

proptest::proptest! {
    /// Canonicalisation is idempotent: the upstream target canonicalises to itself.
    #[test]
    fn canonical_form_is_a_fixed_point(seg in "[a-zA-Z0-9._~%/-]{0,30}", val in "[ -~]{0,30}") {
        let path = format!("/metadata/instance/{seg}");
        let query = format!("api-version=1&x={}", percent_encoding::utf8_percent_encode(&val, QUERY_COMPONENT));
        if let Ok(c) = canonicalise(&path, Some(&query)) {
            let t = c.upstream_target();
            let again = canon(&t).unwrap();
            proptest::prop_assert_eq!(again, c);
        }
    }
}

//! The GCP dialect (Compute Engine's metadata server) end to end: a real
//! gate in front of the emulator speaking GCE, real curl processes as
//! other uids. The attack classes covered for Azure, in GCE form:
//! canonicalisation, header rules (`Metadata-Flavor`, `X-Forwarded-For`),
//! audiences (every scope; an ID token's exact `audience`), recursive
//! listings without tokens, caching (`expires_in` counted down), limits and
//! fail-closed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::*;
use gatehouse_emulator::{Endpoint, Faults, ForcedStatus};
use std::time::{Duration, Instant};

const EMAIL: &str = "app@gatehouse-demo.iam.gserviceaccount.com";
const SA: &str = "/computeMetadata/v1/instance/service-accounts";
const CLOUD: &str = "https://www.googleapis.com/auth/cloud-platform";
const EMAIL_SCOPE: &str = "https://www.googleapis.com/auth/userinfo.email";

fn token_path() -> String {
    format!("{SA}/{EMAIL}/token")
}

/// uid A may have the account's tokens for Google's API scopes and ID
/// tokens for one audience; everyone reads instance metadata.
fn policy(extra: &str) -> String {
    format!(
        r#"version = 1
[identities.app-sa]
kind = "gcp_service_account"
email = "{EMAIL}"
default = true

[[assignments]]
name = "a-tokens"
principal = "uid:{UID_A}"
role = "Token Reader"
identities = ["app-sa"]
audiences = ["https://www.googleapis.com/auth/*", "https://api.example.com"]

[[assignments]]
name = "everyone-metadata"
principal = "everyone"
role = "Instance Metadata Reader"
{extra}"#
    )
}

fn opts() -> Opts {
    cached_opts(gatehouse_policy::Cloud::Gcp)
}

fn start(extra: &str) -> Harness {
    Harness::start_opts(&policy(extra), opts())
}

/// GET as `uid` with `Metadata-Flavor: Google`; the answer's own
/// `Metadata-Flavor` header is returned beside it.
fn get(h: &Harness, uid: u32, target: &str) -> (Reply, String) {
    get_with(h, uid, target, &["-H", "Metadata-Flavor: Google"])
}

fn get_with(h: &Harness, uid: u32, target: &str, extra: &[&str]) -> (Reply, String) {
    let mut args = extra.to_vec();
    args.extend_from_slice(&["-w", "\n%header{metadata-flavor}\n%{http_code}"]);
    let mut r = h.client("/usr/bin/curl", uid, target, &args);
    let (body, flavor) = r.body.rsplit_once('\n').unwrap_or(("", &r.body));
    let flavor = flavor.to_owned();
    r.body = body.to_owned();
    (r, flavor)
}

fn status(h: &Harness, uid: u32, target: &str) -> u16 {
    get(h, uid, target).0.status
}

fn upstream_count(h: &Harness) -> u64 {
    h.emulator
        .as_ref()
        .unwrap()
        .stats()
        .by_endpoint
        .values()
        .sum()
}

#[test]
fn allowed_uid_gets_tokens_and_others_are_denied() {
    if !privileged("allowed_uid_gets_tokens_and_others_are_denied") {
        return;
    }
    let h = start("");
    // google-auth's sequence: probe, project id, account info, token.
    let (probe, flavor) = get(&h, UID_B, "/");
    assert_eq!((probe.status, flavor.as_str()), (200, "Google"));
    assert_eq!(probe.body.trim(), "computeMetadata/");
    let (project, _) = get(&h, UID_B, "/computeMetadata/v1/project/project-id");
    assert_eq!(project.body, "gatehouse-demo");
    let (info, _) = get(&h, UID_A, &format!("{SA}/default/?recursive=true"));
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.json()["email"], EMAIL);
    let scopes = format!("{CLOUD},{EMAIL_SCOPE}");
    let target = format!("{SA}/default/token?scopes={scopes}");
    let (token, flavor) = get(&h, UID_A, &target);
    assert_eq!(token.status, 200, "{}", token.body);
    assert_eq!(flavor, "Google", "answers carry the flavor");
    let t = token.json();
    assert!(t["access_token"].as_str().unwrap().starts_with("ya29."));
    assert_eq!(t["token_type"], "Bearer");
    assert!((3_000..=3_599).contains(&t["expires_in"].as_u64().unwrap()));
    let record = last_request(&h);
    assert_eq!(record["event"]["request"]["action"], "Gatehouse/token/read");
    assert_eq!(record["event"]["request"]["identity"], "app-sa");
    assert_eq!(record["event"]["request"]["audience"], scopes);
    assert_eq!(record["event"]["request"]["selector"], "default");
    // Upstream (and in the audit line) the account is the policy's email.
    assert_eq!(record["event"]["request"]["path"], token_path());
    assert_eq!(record["event"]["decided_by"][0], "a-tokens");
    let log = std::fs::read_to_string(&h.audit_path).unwrap();
    assert!(
        !log.contains(t["access_token"].as_str().unwrap()),
        "a token leaked into the audit log"
    );

    // ID tokens: the audience decided on is the token's `aud`.
    let (id, _) = get(
        &h,
        UID_A,
        &format!("{SA}/default/identity?audience=https://api.example.com&format=full"),
    );
    assert_eq!(id.status, 200, "{}", id.body);
    let claims = verify_jwt(id.body.trim(), &h.emulator.as_ref().unwrap().jwks());
    assert_eq!(claims["aud"], "https://api.example.com");
    assert_eq!(claims["email"], EMAIL);

    let started = Instant::now();
    for target in [
        target.clone(),
        token_path(),
        format!("{SA}/default/identity?audience=https://api.example.com"),
    ] {
        let (denied, flavor) = get(&h, UID_B, &target);
        assert_eq!(denied.status, 403, "{target}: {}", denied.body);
        assert_eq!(flavor, "Google", "{target}: refusals carry the flavor");
        assert!(denied.body.contains("403"), "{}", denied.body);
        assert!(!denied.body.contains("ya29."));
        assert_eq!(last_request(&h)["event"]["outcome"], "deny");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "denials are quick"
    );
    assert_eq!(h.gate.status(None).upstream.cloud, "gcp");
}

#[test]
fn every_scope_must_be_allowed_and_id_token_audiences_match_exactly() {
    if !privileged("every_scope_must_be_allowed_and_id_token_audiences_match_exactly") {
        return;
    }
    let h = start("");
    for (target, want) in [
        (format!("{SA}/default/token?scopes={CLOUD}"), 200),
        (
            format!("{SA}/default/token?scopes={CLOUD},https://evil.example/x"),
            403,
        ),
        (
            format!("{SA}/default/token?scopes=https://evil.example/x,{CLOUD}"),
            403,
        ),
        // Without scopes GCE issues the account's own: only an assignment
        // not limited to audiences covers that.
        (format!("{SA}/default/token"), 403),
        (
            format!("{SA}/default/identity?audience=https://api.example.com"),
            200,
        ),
        (
            format!("{SA}/default/identity?audience=https://api.example.com/"),
            403,
        ),
        (
            format!("{SA}/default/identity?audience=https://API.example.com"),
            403,
        ),
        (
            format!("{SA}/default/identity?audience=https://api.example.com.evil"),
            403,
        ),
        (
            format!("{SA}/default/identity?audience=https://other.example"),
            403,
        ),
    ] {
        assert_eq!(status(&h, UID_A, &target), want, "{target}");
    }
    let any = start(&format!(
        r#"
[[assignments]]
name = "a-any-audience"
principal = "uid:{UID_A}"
role = "Token Reader"
identities = ["app-sa"]
audiences = ["*"]
"#
    ));
    assert_eq!(status(&any, UID_A, &format!("{SA}/default/token")), 200);
    assert_eq!(status(&any, UID_B, &format!("{SA}/default/token")), 403);
}

#[test]
fn the_flavor_header_is_required_and_proxies_are_refused() {
    if !privileged("the_flavor_header_is_required_and_proxies_are_refused") {
        return;
    }
    let h = start("");
    let target = format!("{SA}/default/token?scopes={CLOUD}");
    for extra in [
        vec![],
        vec!["-H", "Metadata-Flavor: google"],
        vec![
            "-H",
            "Metadata-Flavor: Google",
            "-H",
            "Metadata-Flavor: Google",
        ],
        vec!["-H", "Metadata: true"],
        vec!["-H", "X-Google-Metadata-Request: True"],
    ] {
        let (r, flavor) = get_with(&h, UID_A, &target, &extra);
        assert_eq!(r.status, 403, "{extra:?}: {}", r.body);
        assert_eq!(flavor, "Google", "{extra:?}");
        assert!(r.body.contains("Metadata-Flavor"), "{}", r.body);
        assert_eq!(last_request(&h)["event"]["outcome"], "rejected");
    }
    let (xff, _) = get_with(
        &h,
        UID_A,
        &target,
        &[
            "-H",
            "Metadata-Flavor: Google",
            "-H",
            "X-Forwarded-For: 10.0.0.9",
        ],
    );
    assert_eq!(xff.status, 403);
    let (post, _) = get_with(
        &h,
        UID_A,
        &target,
        &["-X", "POST", "-H", "Metadata-Flavor: Google"],
    );
    assert_eq!(post.status, 405);
    assert_eq!(upstream_count(&h), 0, "nothing refused reached upstream");
}

/// Every spelling GCE would read as the account's token decides as the
/// canonical one: denied for B, allowed for A.
#[test]
fn every_spelling_decides_as_the_canonical_target() {
    if !privileged("every_spelling_decides_as_the_canonical_target") {
        return;
    }
    let h = start("");
    let q = format!("?scopes={CLOUD}");
    let spellings = [
        format!("{SA}/default/token{q}"),
        format!("{SA}/{EMAIL}/token{q}"),
        format!("{SA}/APP@gatehouse-demo.iam.gserviceaccount.com/token{q}"),
        format!("//computeMetadata//v1/instance/service-accounts/default/token{q}"),
        format!("/computeMetadata/v1/./instance/x/../service-accounts/default/token{q}"),
        format!("/COMPUTEMETADATA/V1/Instance/Service-Accounts/Default/Token{q}"),
        format!("/computeMetadata/v1/instance%2Fservice-accounts%2Fdefault%2Ftoken{q}"),
        format!("{SA}/%64efault/token{q}"),
        format!("{SA}/app%40gatehouse-demo.iam.gserviceaccount.com/token{q}"),
        format!("{SA}/default/token/{q}"),
        format!(
            "{SA}/default/token?SCOPES=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform"
        ),
    ];
    for spelling in &spellings {
        let (allowed, _) = get(&h, UID_A, spelling);
        assert_eq!(allowed.status, 200, "{spelling}: {}", allowed.body);
        assert_eq!(status(&h, UID_B, spelling), 403, "{spelling}");
        let record = last_request(&h);
        assert_eq!(
            record["event"]["request"]["path"],
            token_path(),
            "{spelling}"
        );
        assert_eq!(record["event"]["request"]["audience"], CLOUD, "{spelling}");
    }
    // Ambiguous, unknown or unservable: refused before anyone is identified.
    for (target, want) in [
        (
            format!("/computeMetadata/v1/instance/%252e%252e/service-accounts/default/token{q}"),
            400,
        ),
        (format!("{SA}/default/token%zz{q}"), 400),
        (
            format!("/../computeMetadata/v1/instance/service-accounts/default/token{q}"),
            400,
        ),
        (
            format!("{SA}/default/token?scopes={CLOUD}&scopes={EMAIL_SCOPE}"),
            400,
        ),
        (format!("{SA}/default/token?scopes={CLOUD}+x"), 400),
        (format!("{SA}/default/token?scopes={CLOUD},,x"), 400),
        (format!("{SA}/default/token?scopes={CLOUD}&x=1"), 400),
        (
            format!("{SA}/default/token?scopes={CLOUD}&recursive=true"),
            400,
        ),
        (format!("{SA}/default/identity"), 400),
        (
            format!("{SA}/default/identity?audience=x&format=short"),
            400,
        ),
        (
            "/computeMetadata/v1/instance/id?wait_for_change=true".to_owned(),
            400,
        ),
        (
            "/computeMetadata/v1/instance/id?recursive=yes".to_owned(),
            400,
        ),
        ("/?recursive=true".to_owned(), 400),
        (
            format!("{SA}/other@gatehouse-demo.iam.gserviceaccount.com/token{q}"),
            404,
        ),
        (format!("{SA}/not-an-account/token{q}"), 404),
        ("/computeMetadata/v2/instance/id".to_owned(), 404),
        ("/metadata/instance".to_owned(), 404),
    ] {
        let (r, flavor) = get(&h, UID_A, &target);
        assert_eq!(r.status, want, "{target}: {}", r.body);
        assert_eq!(flavor, "Google", "{target}");
    }
}

#[test]
fn recursive_listings_hold_no_token() {
    if !privileged("recursive_listings_hold_no_token") {
        return;
    }
    let h = start("");
    // As GCE answers them (no token inside), for anyone who may read them.
    for target in [
        format!("{SA}/default/?recursive=true"),
        format!("{SA}/?recursive=true"),
        "/computeMetadata/v1/instance/?recursive=true".to_owned(),
        "/computeMetadata/v1/?recursive=true".to_owned(),
    ] {
        let (r, _) = get(&h, UID_B, &target);
        assert_eq!(r.status, 200, "{target}: {}", r.body);
        assert!(r.body.contains(EMAIL), "{target}: {}", r.body);
    }
    // A metadata server that does put tokens in: the gate takes them out.
    let secret = "ya29.SECRET-IN-A-LISTING";
    let emulator = h.emulator.as_ref().unwrap();
    emulator.set_faults(Faults {
        forced: vec![ForcedStatus {
            endpoint: Some(Endpoint::IdentityInfo),
            status: 200,
            body: Some(format!(
                r#"{{"default":{{"email":"{EMAIL}","token":{{"access_token":"{secret}"}},"identity":"{secret}"}}}}"#
            )),
            retry_after_secs: None,
            count: None,
        }],
        ..Faults::default()
    });
    let (r, _) = get(&h, UID_B, &format!("{SA}/?recursive=true"));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains(secret), "{}", r.body);
    assert_eq!(r.json()["default"]["email"], EMAIL);
    // And one it cannot filter is not served.
    emulator.set_faults(Faults {
        forced: vec![ForcedStatus {
            endpoint: Some(Endpoint::IdentityInfo),
            status: 200,
            body: Some(format!("default/ token {secret}")),
            retry_after_secs: None,
            count: None,
        }],
        ..Faults::default()
    });
    let (r, _) = get(&h, UID_B, &format!("{SA}/?recursive=true"));
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(!r.body.contains(secret));
    // A text listing of accounts is refused before it is asked for.
    assert_eq!(
        status(&h, UID_B, &format!("{SA}/?recursive=true&alt=text")),
        400
    );
}

#[test]
fn tokens_are_cached_and_expires_in_counts_down() {
    if !privileged("tokens_are_cached_and_expires_in_counts_down") {
        return;
    }
    let h = start("");
    let target = format!("{SA}/default/token?scopes={CLOUD}");
    let first = get(&h, UID_A, &target).0.json();
    std::thread::sleep(Duration::from_millis(1_100));
    let answers: Vec<serde_json::Value> =
        (0..4).map(|_| get(&h, UID_A, &target).0.json()).collect();
    for a in &answers {
        assert_eq!(
            a["access_token"], first["access_token"],
            "served from the cache"
        );
        assert!(
            a["expires_in"].as_u64().unwrap() < first["expires_in"].as_u64().unwrap(),
            "expires_in counts down: {a} vs {first}"
        );
    }
    // Another scope set is another token; an ID token another again.
    let other = get(
        &h,
        UID_A,
        &format!("{SA}/default/token?scopes={EMAIL_SCOPE}"),
    )
    .0
    .json();
    assert_ne!(other["access_token"], first["access_token"]);
    let aud = format!("{SA}/default/identity?audience=https://api.example.com");
    let id1 = get(&h, UID_A, &aud).0.body;
    let id2 = get(&h, UID_A, &aud).0.body;
    assert_eq!(id1, id2, "ID tokens are cached too");
    let stats = h.emulator.as_ref().unwrap().stats();
    assert_eq!(
        stats.by_endpoint.get(&Endpoint::Token),
        Some(&3),
        "{stats:?}"
    );
    let sources = upstream_sources(&h, "gcp_access_token");
    assert_eq!(
        sources,
        ["upstream", "cache", "cache", "cache", "cache", "upstream"]
    );
}

#[test]
fn a_wrong_or_failing_metadata_server_fails_closed() {
    if !privileged("a_wrong_or_failing_metadata_server_fails_closed") {
        return;
    }
    let h = start("");
    let emulator = h.emulator.as_ref().unwrap();
    let target = format!("{SA}/default/token?scopes={CLOUD}");
    for body in [
        r#"{"access_token":"","expires_in":3599,"token_type":"Bearer"}"#,
        r#"{"access_token":"ya29.x","expires_in":0,"token_type":"Bearer"}"#,
        r#"{"error":"nope"}"#,
        "ya29.not-json",
    ] {
        emulator.set_faults(Faults {
            forced: vec![ForcedStatus {
                endpoint: Some(Endpoint::Token),
                status: 200,
                body: Some(body.to_owned()),
                retry_after_secs: None,
                count: Some(1),
            }],
            ..Faults::default()
        });
        let (r, _) = get(&h, UID_A, &target);
        assert_eq!(r.status, 502, "{body}: {}", r.body);
        assert!(!r.body.contains("ya29"), "{}", r.body);
        // The failure stands a moment (negative cache); let it pass.
        std::thread::sleep(Duration::from_millis(2_100));
    }
    // An ID token for another audience than the one decided on.
    emulator.set_faults(Faults {
        forced: vec![ForcedStatus {
            endpoint: Some(Endpoint::Token),
            status: 200,
            body: Some(format!(
                "e30.{}.c2ln",
                base64::Engine::encode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    br#"{"aud":"https://other.example","exp":9999999999}"#
                )
            )),
            retry_after_secs: None,
            count: Some(1),
        }],
        ..Faults::default()
    });
    let (r, _) = get(
        &h,
        UID_A,
        &format!("{SA}/default/identity?audience=https://api.example.com"),
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body.contains("another identity"), "{}", r.body);

    // Unreachable: 503 within the budget, and denied stays denied.
    let h = start_unreachable(&policy(""), opts());
    let started = Instant::now();
    let (r, flavor) = get(&h, UID_A, &target);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(flavor, "Google");
    assert!(started.elapsed() < Duration::from_millis(2_500));
    assert_eq!(last_request(&h)["event"]["outcome"], "error");
    assert_eq!(status(&h, UID_B, &target), 403);
}

/// An account the policy declares but the instance lacks: GCE's 404, at
/// once (on GCE a 404 is not "updating, retry" as on Azure).
#[test]
fn an_account_the_instance_lacks_is_a_quick_404() {
    if !privileged("an_account_the_instance_lacks_is_a_quick_404") {
        return;
    }
    let h = start(&format!(
        r#"
[identities.other-sa]
kind = "gcp_service_account"
email = "other@gatehouse-demo.iam.gserviceaccount.com"

[[assignments]]
name = "a-other"
principal = "uid:{UID_A}"
role = "Token Reader"
identities = ["other-sa"]
audiences = ["https://www.googleapis.com/auth/*"]
"#
    ));
    let started = Instant::now();
    let (r, flavor) = get(
        &h,
        UID_A,
        &format!("{SA}/other@gatehouse-demo.iam.gserviceaccount.com/token?scopes={CLOUD}"),
    );
    assert_eq!((r.status, flavor.as_str()), (404, "Google"), "{}", r.body);
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "not retried"
    );
    let stats = h.emulator.as_ref().unwrap().stats();
    assert_eq!(
        stats.by_endpoint.get(&Endpoint::Token),
        Some(&1),
        "{stats:?}"
    );
}

#[test]
fn a_gate_for_gcp_refuses_a_policy_with_other_clouds_identities() {
    let msg = gate_refusal(gatehouse_policy::Cloud::Gcp, IDENTITIES);
    assert!(
        msg.contains("is of `azure`, but the gate speaks `gcp`"),
        "{msg}"
    );
}

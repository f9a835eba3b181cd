//! The AWS dialect (IMDSv2) end to end: a real gate in front of the
//! emulator speaking AWS, real curl processes as other uids. The attack
//! classes covered for Azure, in AWS form: canonicalisation, header rules
//! (session token, `X-Forwarded-For`, TTL), session binding to the caller,
//! caching (`Expiration` passed through), limits and fail-closed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::*;
use gatehouse_emulator::Endpoint;
use std::time::{Duration, Instant};

const ROLE: &str = "gatehouse-demo-role";
const CREDS: &str = "/latest/meta-data/iam/security-credentials/gatehouse-demo-role";

/// uid A may have the role's credentials; everyone reads meta-data; nobody
/// user data.
fn policy(extra: &str) -> String {
    format!(
        r#"version = 1
{extra}
[identities.app-role]
kind = "aws_role"
role = "{ROLE}"

[[assignments]]
name = "a-credentials"
principal = "uid:{UID_A}"
role = "Token Reader"
identities = ["app-role"]

[[assignments]]
name = "everyone-meta-data"
principal = "everyone"
role = "Instance Metadata Reader"
"#
    )
}

fn opts() -> Opts {
    cached_opts(gatehouse_policy::Cloud::Aws)
}

fn start(extra: &str) -> Harness {
    Harness::start_opts(&policy(extra), opts())
}

fn put_token(h: &Harness, uid: u32, extra: &[&str]) -> Reply {
    let mut args = vec!["-X", "PUT"];
    args.extend_from_slice(extra);
    h.client("/usr/bin/curl", uid, "/latest/api/token", &args)
}

fn session(h: &Harness, uid: u32) -> String {
    let r = put_token(h, uid, &["-H", "X-aws-ec2-metadata-token-ttl-seconds: 60"]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.len() >= 40 && !r.body.contains(' '), "{}", r.body);
    r.body
}

fn get(h: &Harness, uid: u32, target: &str, token: Option<&str>) -> Reply {
    let header = token.map(|t| format!("X-aws-ec2-metadata-token: {t}"));
    let args: Vec<&str> = match &header {
        Some(hd) => vec!["-H", hd.as_str()],
        None => vec![],
    };
    h.client("/usr/bin/curl", uid, target, &args)
}

#[test]
fn allowed_uid_gets_the_roles_credentials_and_others_are_denied() {
    if !privileged("allowed_uid_gets_the_roles_credentials_and_others_are_denied") {
        return;
    }
    let h = start("");
    let a = session(&h, UID_A);
    let listing = get(
        &h,
        UID_A,
        "/latest/meta-data/iam/security-credentials/",
        Some(&a),
    );
    assert_eq!((listing.status, listing.body.as_str()), (200, ROLE));
    let creds = get(&h, UID_A, CREDS, Some(&a));
    assert_eq!(creds.status, 200, "{}", creds.body);
    let c = creds.json();
    assert_eq!(c["Code"], "Success");
    assert!(c["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    let record = last_request(&h);
    assert_eq!(record["event"]["request"]["action"], "Gatehouse/token/read");
    assert_eq!(record["event"]["request"]["identity"], "app-role");
    assert_eq!(record["event"]["decided_by"][0], "a-credentials");
    // No secret in the audit log.
    let log = std::fs::read_to_string(&h.audit_path).unwrap();
    for secret in [
        c["SecretAccessKey"].as_str().unwrap(),
        c["Token"].as_str().unwrap(),
        &a,
    ] {
        assert!(!log.contains(secret), "a secret leaked into the audit log");
    }

    let b = session(&h, UID_B);
    let started = Instant::now();
    for target in [CREDS, "/latest/meta-data/iam/security-credentials/"] {
        let denied = get(&h, UID_B, target, Some(&b));
        assert_eq!(denied.status, 403, "{target}: {}", denied.body);
        assert!(denied.body.contains("403 - Forbidden"), "{}", denied.body);
        assert!(!denied.body.contains("SecretAccessKey"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "denials are quick"
    );
    // Instance metadata is everyone's; user data nobody's.
    let id = get(&h, UID_B, "/latest/meta-data/instance-id", Some(&b));
    assert_eq!((id.status, id.body.as_str()), (200, "i-0abc1234def567890"));
    assert_eq!(get(&h, UID_A, "/latest/user-data", Some(&a)).status, 403);
    assert_eq!(
        last_request(&h)["event"]["request"]["action"],
        "Gatehouse/userData/read"
    );
    // `gatehouse status` names the dialect and counts sessions, no token.
    let status = h.gate.status(None);
    assert_eq!(status.upstream.cloud, "aws");
    assert_eq!(status.upstream.aws_sessions, Some(2));
    let json = serde_json::to_string(&status).unwrap();
    assert!(
        !json.contains(&a) && !json.contains(&b),
        "no session token in status"
    );
}

#[test]
fn no_session_token_is_401_unless_the_policy_allows_imdsv1() {
    if !privileged("no_session_token_is_401_unless_the_policy_allows_imdsv1") {
        return;
    }
    let h = start("");
    for target in [CREDS, "/latest/meta-data/instance-id", "/latest/user-data"] {
        let r = get(&h, UID_A, target, None);
        assert_eq!(r.status, 401, "{target}");
        assert!(r.body.contains("401 - Unauthorized"), "{}", r.body);
    }
    assert_eq!(last_request(&h)["event"]["outcome"], "rejected");
    // Two tokens are one too many.
    let t = session(&h, UID_A);
    let two = h.client(
        "/usr/bin/curl",
        UID_A,
        CREDS,
        &[
            "-H",
            &format!("X-aws-ec2-metadata-token: {t}"),
            "-H",
            "X-aws-ec2-metadata-token: x",
        ],
    );
    assert_eq!(two.status, 401);

    let v1 = start("aws_allow_imdsv1 = true");
    assert_eq!(get(&v1, UID_A, CREDS, None).status, 200);
    assert_eq!(get(&v1, UID_B, CREDS, None).status, 403, "still decided");
    // A token, when sent, must still be a live one of the caller's.
    assert_eq!(get(&v1, UID_A, CREDS, Some("forged")).status, 401);
}

#[test]
fn a_session_token_is_useless_to_another_uid() {
    if !privileged("a_session_token_is_useless_to_another_uid") {
        return;
    }
    let h = start("aws_allow_imdsv1 = false");
    let a = session(&h, UID_A);
    // uid B holds A's token (read from a log, an SSRF answer...): refused
    // before any decision, on the uid the kernel reports.
    let stolen = get(&h, UID_B, "/latest/meta-data/instance-id", Some(&a));
    assert_eq!(stolen.status, 401, "{}", stolen.body);
    let record = last_request(&h);
    assert!(
        record["event"]["reason"]
            .as_str()
            .unwrap()
            .contains("another uid"),
        "{record}"
    );
    assert_eq!(record["event"]["caller"]["uid"], UID_B);
    // And a made-up token is no token.
    assert_eq!(get(&h, UID_A, CREDS, Some("AAAA")).status, 401);
    assert_eq!(get(&h, UID_A, CREDS, Some(&a)).status, 200);
}

#[test]
fn the_put_refuses_forwarded_for_and_ttls_outside_1_to_21600() {
    if !privileged("the_put_refuses_forwarded_for_and_ttls_outside_1_to_21600") {
        return;
    }
    let h = start("");
    let ttl = |v: &str| format!("X-aws-ec2-metadata-token-ttl-seconds: {v}");
    let xff = put_token(
        &h,
        UID_A,
        &["-H", &ttl("60"), "-H", "X-Forwarded-For: 10.0.0.9"],
    );
    assert_eq!(xff.status, 403, "{}", xff.body);
    for bad in ["0", "21601", "-1", "abc", "60.5", ""] {
        let r = put_token(&h, UID_A, &["-H", &ttl(bad)]);
        assert_eq!(r.status, 400, "ttl `{bad}`: {}", r.body);
    }
    assert_eq!(put_token(&h, UID_A, &[]).status, 400, "no TTL header");
    for good in ["1", "21600"] {
        assert_eq!(
            put_token(&h, UID_A, &["-H", &ttl(good)]).status,
            200,
            "ttl {good}"
        );
    }
    // The token endpoint takes PUT only, the rest GET only.
    let t = session(&h, UID_A);
    let get_token = h.client(
        "/usr/bin/curl",
        UID_A,
        "/latest/api/token",
        &[
            "-H",
            &ttl("60"),
            "-H",
            &format!("X-aws-ec2-metadata-token: {t}"),
        ],
    );
    assert_eq!(get_token.status, 405);
    let put_creds = h.client(
        "/usr/bin/curl",
        UID_A,
        CREDS,
        &["-X", "PUT", "-H", &format!("X-aws-ec2-metadata-token: {t}")],
    );
    assert_eq!(put_creds.status, 405);
    // A session expires with its TTL.
    let short = put_token(&h, UID_A, &["-H", &ttl("1")]).body;
    std::thread::sleep(Duration::from_millis(1_200));
    assert_eq!(get(&h, UID_A, CREDS, Some(&short)).status, 401);
}

/// Every spelling IMDS would read as the role's credentials (or as user
/// data) decides as the canonical one: denied for B, allowed for A.
#[test]
fn every_spelling_decides_as_the_canonical_target() {
    if !privileged("every_spelling_decides_as_the_canonical_target") {
        return;
    }
    let h = start("");
    let a = session(&h, UID_A);
    let b = session(&h, UID_B);
    let creds = [
        CREDS,
        "//latest//meta-data/iam/security-credentials/gatehouse-demo-role",
        "/latest/./meta-data/iam/x/../security-credentials/gatehouse-demo-role",
        "/LATEST/Meta-Data/IAM/Security-Credentials/gatehouse-demo-role",
        "/latest/meta-data%2Fiam%2Fsecurity-credentials%2Fgatehouse-demo-role",
        "/latest/%6deta-data/iam/security-credentials/gatehouse-demo-role",
        "/latest/meta-data/iam/security-credentials/Gatehouse-Demo-Role",
        "/latest/meta-data/iam/security-credentials/gatehouse-demo-role/",
        "/latest/meta-data/iam/security-credentials/%67atehouse-demo-role",
    ];
    let first = get(&h, UID_A, CREDS, Some(&a)).json();
    for spelling in creds {
        let allowed = get(&h, UID_A, spelling, Some(&a));
        assert_eq!(allowed.status, 200, "{spelling}: {}", allowed.body);
        assert_eq!(
            allowed.json()["AccessKeyId"],
            first["AccessKeyId"],
            "{spelling}"
        );
        assert_eq!(get(&h, UID_B, spelling, Some(&b)).status, 403, "{spelling}");
        let record = last_request(&h);
        assert_eq!(record["event"]["request"]["path"], CREDS, "{spelling}");
    }
    for spelling in [
        "/latest/user-data",
        "/latest//user-data",
        "/latest/USER-DATA",
        "/latest/meta-data/../user-data",
        "/latest/user%2Ddata",
        "/latest/./user-data/",
    ] {
        assert_eq!(get(&h, UID_A, spelling, Some(&a)).status, 403, "{spelling}");
        assert_eq!(
            last_request(&h)["event"]["request"]["action"],
            "Gatehouse/userData/read",
            "{spelling}"
        );
    }
    // Ambiguous or unknown: refused before anyone is identified.
    for (target, status) in [
        ("/latest/meta-data/%252e%252e/user-data", 400),
        ("/latest/meta-data/iam/security-credentials/%zz", 400),
        ("/../latest/user-data", 400),
        (
            "/latest/meta-data/iam/security-credentials/gatehouse-demo-role?x=1",
            400,
        ),
        ("/latest/meta-data/iam/security-credentials/other-role", 404),
        ("/latest/nothing-here", 404),
    ] {
        let r = get(&h, UID_A, target, Some(&a));
        assert_eq!(r.status, status, "{target}: {}", r.body);
    }
}

#[test]
fn credentials_are_cached_with_their_own_expiration() {
    if !privileged("credentials_are_cached_with_their_own_expiration") {
        return;
    }
    let h = start("");
    let a = session(&h, UID_A);
    let bodies: Vec<String> = (0..5)
        .map(|_| get(&h, UID_A, CREDS, Some(&a)).body)
        .collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "served unchanged");
    let c: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    let expiration: jiff::Timestamp = c["Expiration"].as_str().unwrap().parse().unwrap();
    let left = expiration.as_second() - jiff::Timestamp::now().as_second();
    assert!((21_000..=21_600).contains(&left), "{left}");
    let stats = h.emulator.as_ref().unwrap().stats();
    assert_eq!(
        stats.by_endpoint.get(&Endpoint::Token),
        Some(&1),
        "{stats:?}"
    );
    let sources = upstream_sources(&h, "aws_credentials");
    assert_eq!(sources, ["upstream", "cache", "cache", "cache", "cache"]);
    // The gate keeps one session of its own with IMDS, whatever the callers do.
    assert_eq!(
        stats.by_endpoint.get(&Endpoint::SessionToken),
        Some(&1),
        "{stats:?}"
    );
}

#[test]
fn an_unreachable_metadata_service_fails_closed_within_the_budget() {
    if !privileged("an_unreachable_metadata_service_fails_closed_within_the_budget") {
        return;
    }
    // A port nothing listens on.
    let h = start_unreachable(&policy(""), opts());
    let a = session(&h, UID_A);
    let started = Instant::now();
    let r = get(&h, UID_A, CREDS, Some(&a));
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(started.elapsed() < Duration::from_millis(2_500));
    assert_eq!(last_request(&h)["event"]["outcome"], "error");
    // Denied stays denied (no upstream needed to say no).
    let b = session(&h, UID_B);
    assert_eq!(get(&h, UID_B, CREDS, Some(&b)).status, 403);
}

#[test]
fn a_gate_for_aws_refuses_a_policy_with_azure_identities() {
    let msg = gate_refusal(gatehouse_policy::Cloud::Aws, IDENTITIES);
    assert!(
        msg.contains("is of `azure`, but the gate speaks `aws`"),
        "{msg}"
    );
}

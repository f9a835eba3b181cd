//! The gate end to end on loopback: real curl processes as several users,
//! the in-process emulator upstream, the audit log read back.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::*;

fn uid_policy() -> String {
    let a_storage = a_storage();
    format!(
        r#"{IDENTITIES}
{a_storage}
[[assignments]]
name = "nobody-instance"
principal = "uid:{NOBODY}"
role = "Instance Metadata Reader"
"#
    )
}

#[test]
fn allowed_and_denied_callers_by_uid() {
    if !privileged("allowed_and_denied_callers_by_uid") {
        return;
    }
    // `--all-holders`: a uid-only policy needs no process, but this test
    // checks that the audit line names the very process that asked.
    let h = Harness::start_opts(
        &uid_policy(),
        Opts {
            all_holders: true,
            ..Opts::default()
        },
    );
    let jwks = h.emulator.as_ref().unwrap().jwks();
    let target = h.token_target("https://storage.azure.com", Some(STORAGE_WRITER));

    // Allowed: 200, a token that verifies and is for what was asked.
    let ok = h.curl(UID_A, &target);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let body = ok.json();
    for field in [
        "access_token",
        "expires_in",
        "expires_on",
        "resource",
        "token_type",
    ] {
        assert!(body[field].is_string(), "{field} is a string in {body}");
    }
    let claims = verify_jwt(body["access_token"].as_str().unwrap(), &jwks);
    assert_eq!(claims["aud"], "https://storage.azure.com");
    assert_eq!(claims["appid"], STORAGE_WRITER);

    // The allowed request is audited with the caller and the assignment.
    let allowed = h
        .audit()
        .into_iter()
        .rev()
        .find(|r| r["event"]["outcome"] == "allow")
        .expect("an allow record");
    assert_eq!(allowed["event"]["caller"]["uid"], UID_A);
    assert_eq!(allowed["event"]["caller"]["pid"], ok.pid);
    assert_eq!(allowed["event"]["caller"]["exe"], "/usr/bin/curl");
    assert_eq!(allowed["event"]["decided_by"][0], "a-storage");
    assert_eq!(allowed["event"]["upstream"]["status"], 200);
    let token = body["access_token"].as_str().unwrap();
    let log = std::fs::read_to_string(&h.audit_path).unwrap();
    assert!(
        !log.contains(token),
        "the token must never be in the audit log"
    );
    assert!(
        !log.contains(token.split('.').nth(2).unwrap()),
        "nor its signature"
    );

    // Denied: three other uids, each a 403 whose decision id is in the log.
    for uid in [UID_B, NOBODY, 0] {
        let denied = h.curl(uid, &target);
        assert_eq!(denied.status, 403, "uid {uid}: {}", denied.body);
        assert_eq!(denied.json()["error"], "access_denied");
        let desc = denied.json()["error_description"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(desc.starts_with("gatehouse: "), "{desc}");
        assert!(
            !desc.contains("a-storage"),
            "a denial never names others' assignments: {desc}"
        );
        let record = h.decision(&denied.decision_id());
        assert_eq!(record["event"]["outcome"], "deny");
        assert_eq!(record["event"]["caller"]["uid"], uid);
        assert_eq!(record["event"]["caller"]["pid"], denied.pid);
        assert_eq!(record["event"]["caller"]["exe"], "/usr/bin/curl");
        assert_eq!(record["event"]["request"]["identity"], "storage-writer");
    }

    // The allowed uid is still held to its scope: another identity, another audience.
    let other_identity = h.curl(
        UID_A,
        &h.token_target("https://storage.azure.com", Some(VAULT_READER)),
    );
    assert_eq!(other_identity.status, 403, "{}", other_identity.body);
    let other_audience = h.curl(
        UID_A,
        &h.token_target("https://vault.azure.net", Some(STORAGE_WRITER)),
    );
    assert_eq!(other_audience.status, 403, "{}", other_audience.body);

    // Non-token endpoints go by their own actions.
    let instance = "/metadata/instance?api-version=2021-02-01";
    assert_eq!(h.curl(NOBODY, instance).status, 200);
    assert_eq!(h.curl(UID_A, instance).status, 403);
}

#[test]
fn every_spelling_reaches_the_same_decision() {
    if !privileged("every_spelling_reaches_the_same_decision") {
        return;
    }
    let h = Harness::start(&uid_policy());
    let jwks = h.emulator.as_ref().unwrap().jwks();
    let c = STORAGE_WRITER;
    let spellings = [
        format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com&client_id={c}"),
        format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%3A%2F%2Fstorage.azure.com&client_id={c}"),
        format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com/&client_id={c}"),
        format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://Storage.Azure.COM/&client_id={}", c.to_uppercase()),
        format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com/.default&client_id={c}"),
        "/metadata/identity/oauth2/token?api-version=2019-08-01&resource=https://storage.azure.com&mi_res_id=/subscriptions/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b/resourcegroups/gatehouse-demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/storage-writer".to_owned(),
        "/metadata/identity/oauth2/token?api-version=2019-08-01&resource=https://storage.azure.com&msi_res_id=/subscriptions/6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b/resourceGroups/gatehouse-demo/providers/Microsoft.ManagedIdentity/userAssignedIdentities/storage-writer".to_owned(),
        "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com&object_id=3a7c8d9e-afb0-41c2-93e4-f5a6b7c8d90a".to_owned(),
        format!("//metadata/./identity//oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com&client_id={c}"),
        format!("/metadata/x/../identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com&client_id={c}"),
        format!("/METADATA/Identity/OAuth2/Token?api-version=2018-02-01&resource=https://storage.azure.com&client_id={c}"),
        format!("/metadata%2Fidentity%2Foauth2%2Ftoken?api-version=2018-02-01&resource=https://storage.azure.com&client_id={c}"),
    ];
    for target in &spellings {
        let allowed = h.curl(UID_A, target);
        assert_eq!(allowed.status, 200, "{target}: {}", allowed.body);
        let denied = h.curl(UID_B, target);
        assert_eq!(denied.status, 403, "{target}: {}", denied.body);
    }
    // The token's aud and the answer's resource are the spelling asked for.
    for resource in ["https://storage.azure.com", "https://storage.azure.com/"] {
        let r = h.curl(UID_A, &h.token_target(resource, Some(c)));
        assert_eq!(r.status, 200, "{}", r.body);
        let claims = verify_jwt(r.json()["access_token"].as_str().unwrap(), &jwks);
        assert_eq!(claims["aud"], resource);
        assert_eq!(r.json()["resource"], resource);
    }
    // What cannot be given one meaning is refused like IMDS refuses it.
    let refused = [
        format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com&resource=https://vault.azure.net&client_id={c}"),
        format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com&client_id={c}&object_id=3a7c8d9e-afb0-41c2-93e4-f5a6b7c8d90a"),
        format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https%253A%252F%252Fstorage.azure.com&client_id={c}"),
        "/../metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com".to_owned(),
    ];
    for target in &refused {
        let r = h.curl(UID_A, target);
        assert_eq!(r.status, 400, "{target}: {}", r.body);
        assert_eq!(r.json()["error"], "invalid_request");
    }
}

#[test]
fn imds_errors_come_back_like_imds() {
    if !privileged("imds_errors_come_back_like_imds") {
        return;
    }
    let h = Harness::start(&uid_policy());
    let target = h.token_target("https://storage.azure.com", Some(STORAGE_WRITER));

    // No Metadata header: IMDS's own 400, at once (azure-identity probes with it).
    let probe = h.curl_with(UID_A, &target, &[]);
    assert_eq!(probe.status, 400);
    assert_eq!(
        probe.json()["error_description"],
        "Required metadata header not specified"
    );
    let wrong_value = h.curl_with(UID_A, &target, &["-H", "Metadata: True"]);
    assert_eq!(wrong_value.status, 400);

    // A proxied request is refused like IMDS refuses it.
    let xff = h.curl_with(
        UID_A,
        &target,
        &["-H", "Metadata: true", "-H", "X-Forwarded-For: 10.0.0.1"],
    );
    assert_eq!(xff.status, 400);

    // Unknown identity: IMDS's 400.
    let unknown = h.curl(
        UID_A,
        &h.token_target(
            "https://storage.azure.com",
            Some("00000000-0000-0000-0000-000000000000"),
        ),
    );
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert_eq!(unknown.json()["error_description"], "Identity not found");

    // Unknown paths and methods.
    assert_eq!(
        h.curl(UID_A, "/metadata/nothing-here?api-version=2021-02-01")
            .status,
        404
    );
    let post = h.curl_with(UID_A, &target, &["-H", "Metadata: true", "-X", "POST"]);
    assert_eq!(post.status, 405);
    // The method is judged on the canonical path, not the client's spelling.
    let smuggled = target.replace(
        "/metadata/identity",
        "/metadata/scheduledevents/../identity",
    );
    let post = h.curl_with(
        UID_A,
        &smuggled,
        &["-H", "Metadata: true", "-X", "POST", "-d", "{}"],
    );
    assert_eq!(post.status, 405, "{}", post.body);

    // Malformed HTTP gets 400 and the gate keeps serving.
    let answer = raw(h.addr, b"GARBAGE\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let answer = raw(
        h.addr,
        b"GET /metadata/versions HTTP/1.1\r\nHost: x\r\nMetadata: true\r\nBad Header\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(h.curl(UID_A, &target).status, 200);

    // Content-Length and Transfer-Encoding together: framing two parsers
    // may read differently. An IMDS-shaped 400, audited, connection closed.
    let before = h.audit().len();
    let answer = raw(
        h.addr,
        format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET {target} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(
        answer.matches("HTTP/1.1").count(),
        1,
        "nothing after it is served: {answer}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(!body.to_string().contains("access_token"));
    let records = h.audit();
    let line = &records[before..]
        .iter()
        .find(|r| r["event"]["type"] == "request")
        .expect("the refusal is audited")["event"];
    assert_eq!(line["outcome"], "rejected", "{line}");
    assert_eq!(line["status"], 400, "{line}");
    assert_eq!(
        line["reason"], "`Transfer-Encoding` present: ambiguous framing, connection closed",
        "{line}"
    );
    // Transfer-Encoding alone is refused the same way (IMDS's clients never send it).
    let answer = raw(
        h.addr,
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(
        h.curl(UID_A, &target).status,
        200,
        "and the gate keeps serving"
    );
}

#[test]
fn an_answer_for_another_identity_is_withheld() {
    if !privileged("an_answer_for_another_identity_is_withheld") {
        return;
    }
    // The policy believes storage-writer has another object id than the
    // emulator issues tokens for: the gate must not hand that token on.
    let policy = uid_policy().replace(
        "object_id = \"3a7c8d9e-afb0-41c2-93e4-f5a6b7c8d90a\"",
        "object_id = \"99999999-afb0-41c2-93e4-f5a6b7c8d90a\"",
    );
    let h = Harness::start(&policy);
    let r = h.curl(
        UID_A,
        &h.token_target("https://storage.azure.com", Some(STORAGE_WRITER)),
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(!r.body.contains("access_token"));
    let record = h.decision(&r.decision_id());
    assert_eq!(record["event"]["outcome"], "error");
    assert!(
        record["event"]["reason"].as_str().unwrap().contains("oid"),
        "{record}"
    );
}

#[test]
fn a_bad_reload_keeps_the_policy_in_force() {
    if !privileged("a_bad_reload_keeps_the_policy_in_force") {
        return;
    }
    let h = Harness::start(&uid_policy());
    let target = h.token_target("https://storage.azure.com", Some(STORAGE_WRITER));
    assert_eq!(h.curl(UID_A, &target).status, 200);
    let before = h.gate.policy_hash();

    h.set_policy("version = 1\n[[assignments]]\nname = \"x\"\nprincipal = \"uid:nope\"\nrole = \"No Such Role\"\n");
    assert!(h.gate.reload().is_err());
    assert_eq!(h.gate.policy_hash(), before);
    assert_eq!(
        h.curl(UID_A, &target).status,
        200,
        "the old policy still decides"
    );
    let rejected = h
        .audit()
        .into_iter()
        .find(|r| r["event"]["type"] == "policy_rejected")
        .expect("audited");
    assert_eq!(rejected["event"]["kept"], before);

    // A good reload takes effect on the next request, and its hash is audited.
    h.set_policy(&uid_policy().replace(&format!("uid:{UID_A}"), &format!("uid:{UID_B}")));
    let after = h.gate.reload().unwrap();
    assert_ne!(after, before);
    assert_eq!(h.curl(UID_A, &target).status, 403);
    assert_eq!(h.curl(UID_B, &target).status, 200);
    assert!(h
        .audit()
        .iter()
        .any(|r| r["event"]["type"] == "policy_loaded" && r["event"]["policy"] == after));
    let last = h.audit().pop().unwrap();
    assert_eq!(last["event"]["policy"], after.get(..16).unwrap());
}

#[test]
fn an_untrusted_policy_file_is_refused() {
    if !privileged("an_untrusted_policy_file_is_refused") {
        return;
    }
    let h = Harness::start(&uid_policy());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&h.policy_path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = h.gate.reload().unwrap_err().to_string();
    assert!(err.contains("writable"), "{err}");
    // The directory above, writable by others, is refused too.
    std::fs::set_permissions(&h.policy_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(h.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(h.gate.reload().is_err());
    std::fs::set_permissions(h.dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(h.gate.reload().is_ok());
}

//! The policy language as the gate applies it: conditions over the real
//! caller, an absent attribute named in the audit line, and the rollout
//! modes (audit, off) per endpoint family.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::*;

fn conditioned(condition: &str, modes: &str) -> String {
    format!(
        "{IDENTITIES}\n{modes}{}condition = '''{condition}'''\n",
        a_storage()
    )
}

fn detail(h: &Harness, id: &str) -> serde_json::Value {
    h.decision(id)["event"]["decision_detail"].clone()
}

#[test]
fn conditions_see_the_real_caller() {
    if !privileged("conditions_see_the_real_caller") {
        return;
    }
    let target = |h: &Harness| h.token_target("https://storage.azure.com", Some(STORAGE_WRITER));
    // True for curl as UID_A: the executable is the verified /usr/bin/curl.
    let h = Harness::start(&conditioned(
        "@Principal[exe] StringEquals '/usr/bin/curl' AND @Principal[uid] NumericEquals 46001",
        "",
    ));
    assert_eq!(h.curl(UID_A, &target(&h)).status, 200);
    // False on a value: denied, nothing absent.
    let h = Harness::start(&conditioned(
        "@Principal[exe] StringEquals '/usr/bin/wget'",
        "",
    ));
    let r = h.curl(UID_A, &target(&h));
    assert_eq!(r.status, 403);
    assert!(detail(&h, &r.decision_id())["absent_attribute"].is_null());
    // The test's curl runs in no systemd unit: the attribute is absent, the
    // whole condition is false even under NOT, and the audit line says which.
    let h = Harness::start(&conditioned(
        "NOT @Principal[unit] StringEquals 'evil.service'",
        "",
    ));
    let r = h.curl(UID_A, &target(&h));
    assert_eq!(
        r.status, 403,
        "an absent attribute never allows: {}",
        r.body
    );
    let d = detail(&h, &r.decision_id());
    assert!(
        d["absent_attribute"].as_str().unwrap().contains("unit"),
        "{d}"
    );
    assert!(
        !r.body.contains("unit"),
        "the client is not told the policy's internals: {}",
        r.body
    );
}

#[test]
fn audit_mode_lets_through_and_records_what_would_be_denied() {
    if !privileged("audit_mode_lets_through_and_records_what_would_be_denied") {
        return;
    }
    let h = Harness::start(&conditioned(
        "@Principal[uid] NumericEquals 46001",
        "[modes]\ntoken = \"audit\"\n",
    ));
    let target = h.token_target("https://storage.azure.com", Some(STORAGE_WRITER));
    assert_eq!(h.curl(UID_A, &target).status, 200);
    let r = h.curl(UID_B, &target);
    assert_eq!(
        r.status, 200,
        "audit mode lets the request through: {}",
        r.body
    );
    let record = last_request(&h);
    assert_eq!(record["event"]["caller"]["uid"], UID_B);
    assert_eq!(
        record["event"]["decision_detail"]["would_deny"], true,
        "{record}"
    );
    assert_eq!(record["event"]["decision_detail"]["mode"], "audit");
    // Other families stay enforced.
    assert_eq!(
        h.curl(UID_B, "/metadata/instance?api-version=2021-02-01")
            .status,
        403
    );
}

#[test]
fn off_mode_passes_through_unmediated_but_audited() {
    if !privileged("off_mode_passes_through_unmediated_but_audited") {
        return;
    }
    let h = Harness::start(&conditioned(
        "@Principal[uid] NumericEquals 46001",
        "[modes]\ninstance = \"off\"\n",
    ));
    let r = h.curl(UID_B, "/metadata/instance?api-version=2021-02-01");
    assert_eq!(r.status, 200, "{}", r.body);
    let record = last_request(&h);
    assert_eq!(
        record["event"]["decision_detail"]["mode"], "off",
        "{record}"
    );
    assert_eq!(record["event"]["caller"]["uid"], UID_B, "still attributed");
    // Tokens are still enforced.
    let t = h.token_target("https://storage.azure.com", Some(STORAGE_WRITER));
    assert_eq!(h.curl(UID_B, &t).status, 403);
}

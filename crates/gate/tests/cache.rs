//! The token cache and upstream discipline, end to end against the emulator.
#![allow(
    clippy::disallowed_methods,
    reason = "tests seed manual clocks and check answers against the wall clock"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failed expectation is a failed test"
)]

mod common;
use common::*;
use gatehouse_gate::clock::ManualClock;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn policy() -> String {
    let a_storage = a_storage();
    format!(
        r#"{IDENTITIES}
[[assignments]]
name = "root-any-token"
principal = "uid:0"
role = "Token Reader"
identities = ["*"]
audiences = ["*"]

{a_storage}"#
    )
}

/// One request over a fresh connection from this (root) process.
fn get(h: &Harness, target: &str) -> (u16, Value) {
    let answer = raw(
        h.addr,
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    let status: u16 = answer[9..12].parse().unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn token_requests(h: &Harness) -> u64 {
    let stats = serde_json::to_value(h.emulator.as_ref().unwrap().stats()).unwrap();
    stats["by_endpoint"]["token"].as_u64().unwrap_or(0)
}

fn with_cache(clock: Arc<ManualClock>) -> Opts {
    Opts {
        cache_margin: Some(Duration::from_secs(300)),
        upstream_limits: Some(gatehouse_gate::limiter::Limits::default()),
        clock,
        ..Opts::default()
    }
}

#[test]
fn a_burst_on_one_key_makes_one_upstream_call() {
    if !privileged("a_burst_on_one_key_makes_one_upstream_call") {
        return;
    }
    let clock = Arc::new(ManualClock::at(SystemTime::now()));
    let h = Arc::new(Harness::start_opts(&policy(), with_cache(clock)));
    let target = h.token_target("https://storage.azure.com", Some(STORAGE_WRITER));
    let threads: Vec<_> = (0..48)
        .map(|_| {
            let h = Arc::clone(&h);
            let target = target.clone();
            std::thread::spawn(move || get(&h, &target).0)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    assert_eq!(
        token_requests(&h),
        1,
        "48 concurrent requests for one key, one upstream call"
    );
    let sources: Vec<String> = h
        .audit()
        .iter()
        .filter(|r| r["event"]["type"] == "request")
        .map(|r| {
            r["event"]["upstream"]["source"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        sources.iter().filter(|s| *s == "upstream").count(),
        1,
        "{sources:?}"
    );
    // The others waited for that call (shared) or came just after it (cache).
    assert_eq!(
        sources
            .iter()
            .filter(|s| *s == "shared" || *s == "cache")
            .count(),
        47,
        "{sources:?}"
    );

    // Another spelling of the audience is another key: the token's aud differs.
    assert_eq!(
        get(
            &h,
            &h.token_target("https://storage.azure.com/", Some(STORAGE_WRITER))
        )
        .0,
        200
    );
    assert_eq!(token_requests(&h), 2);
}

#[test]
fn cached_tokens_count_down_and_outlive_an_imds_outage() {
    if !privileged("cached_tokens_count_down_and_outlive_an_imds_outage") {
        return;
    }
    let clock = Arc::new(ManualClock::at(SystemTime::now()));
    let h = Harness::start_opts(&policy(), with_cache(Arc::clone(&clock)));
    let target = h.token_target("https://storage.azure.com", Some(STORAGE_WRITER));
    let (s, first) = get(&h, &target);
    assert_eq!(s, 200);
    let lifetime: u64 = first["expires_in"].as_str().unwrap().parse().unwrap();

    // expires_in is recomputed for the moment each cached answer is served.
    clock.advance(Duration::from_secs(100));
    let (_, second) = get(&h, &target);
    assert_eq!(second["access_token"], first["access_token"]);
    // (The emulator stamps tokens with the real clock and the gate counts
    // with its manual one, started a moment earlier: they may straddle a
    // second, so allow one second either way.)
    let within_a_second = |got: &Value, want: u64| {
        let got = got.as_str().unwrap().parse::<u64>().unwrap();
        assert!(
            got.abs_diff(want) <= 1,
            "expires_in {got}, expected {want} ± 1"
        );
    };
    within_a_second(&second["expires_in"], lifetime - 100);
    assert_eq!(second["expires_on"], first["expires_on"]);
    assert!(second.as_object().unwrap().values().all(Value::is_string));
    clock.advance(Duration::from_secs(1_000));
    let (_, third) = get(&h, &target);
    within_a_second(&third["expires_in"], lifetime - 1_100);
    let (second_in, third_in): (u64, u64) = (
        second["expires_in"].as_str().unwrap().parse().unwrap(),
        third["expires_in"].as_str().unwrap().parse().unwrap(),
    );
    assert_eq!(
        second_in - third_in,
        1_000,
        "it counts down with the gate's clock"
    );
    assert_eq!(token_requests(&h), 1);
    assert_eq!(last_request(&h)["event"]["upstream"]["source"], "cache");

    // IMDS goes away: the cached token is still served.
    h.emulator
        .as_ref()
        .unwrap()
        .set_faults(gatehouse_emulator::Faults {
            outage: true,
            ..Default::default()
        });
    let (s, during) = get(&h, &target);
    assert_eq!(s, 200);
    assert_eq!(during["access_token"], first["access_token"]);

    // Below the margin the gate asks IMDS; IMDS is down, the token is still
    // valid: it is served (stale) rather than an error.
    clock.advance(Duration::from_secs(lifetime - 1_100 - 200));
    let (s, stale) = get(&h, &target);
    assert_eq!(s, 200, "{stale}");
    assert_eq!(stale["expires_in"], "200");
    assert_eq!(last_request(&h)["event"]["upstream"]["source"], "stale");

    // Past its expiry nothing is served from the cache: an IMDS-shaped 5xx.
    clock.advance(Duration::from_secs(300));
    let (s, gone) = get(&h, &target);
    assert!(s >= 500, "{s} {gone}");
    assert!(gone["error_description"]
        .as_str()
        .unwrap()
        .starts_with("gatehouse: "));
}

#[test]
fn the_cache_never_skips_a_decision() {
    if !privileged("the_cache_never_skips_a_decision") {
        return;
    }
    let clock = Arc::new(ManualClock::at(SystemTime::now()));
    let h = Harness::start_opts(&policy(), with_cache(clock));
    let target = h.token_target("https://storage.azure.com", Some(STORAGE_WRITER));
    assert_eq!(h.curl(UID_A, &target).status, 200);
    // Cached now; another uid is still decided, and denied.
    assert_eq!(h.curl(UID_B, &target).status, 403);
    // A policy change takes effect on the next request, cache or not.
    h.set_policy(&policy().replace(&format!("uid:{UID_A}"), &format!("uid:{UID_B}")));
    h.gate.reload().unwrap();
    assert_eq!(h.curl(UID_A, &target).status, 403);
    assert_eq!(h.curl(UID_B, &target).status, 200);
    assert_eq!(token_requests(&h), 1);
}

#[test]
fn many_keys_stay_under_imds_limits() {
    if !privileged("many_keys_stay_under_imds_limits") {
        return;
    }
    // The emulator enforces IMDS's limits (20/s, 5 at a time, 429 beyond);
    // the gate must never trip them, whatever the local burst.
    let clock = Arc::new(ManualClock::at(SystemTime::now()));
    let opts = Opts {
        emulator_rate_limits: true,
        upstream_timeout: Duration::from_secs(20),
        ..with_cache(clock)
    };
    let h = Arc::new(Harness::start_opts(&policy(), opts));
    let audiences = [
        "https://management.azure.com",
        "https://storage.azure.com",
        "https://vault.azure.net",
        "https://graph.microsoft.com",
        "https://database.windows.net",
    ];
    let mut targets = Vec::new();
    for a in audiences {
        for client in [
            STORAGE_WRITER,
            VAULT_READER,
            "1e5a6b7c-8d9e-4fa0-b1c2-d3e4f5a6b708",
        ] {
            for spelling in [a.to_owned(), format!("{a}/")] {
                targets.push(h.token_target(&spelling, Some(client)));
            }
        }
    }
    assert_eq!(targets.len(), 30);
    let threads: Vec<_> = targets
        .into_iter()
        .map(|t| {
            let h = Arc::clone(&h);
            std::thread::spawn(move || get(&h, &t).0)
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let stats = serde_json::to_value(h.emulator.as_ref().unwrap().stats()).unwrap();
    assert_eq!(stats["by_endpoint"]["token"], 30);
    assert!(
        stats["by_status"].get("429").is_none(),
        "the gate tripped IMDS's limits: {stats}"
    );
}

#[test]
fn transient_errors_are_retried_within_the_budget() {
    if !privileged("transient_errors_are_retried_within_the_budget") {
        return;
    }
    let clock = Arc::new(ManualClock::at(SystemTime::now()));
    let h = Harness::start_opts(&policy(), with_cache(clock));
    let force = |status: u16| gatehouse_emulator::Faults {
        forced: vec![gatehouse_emulator::ForcedStatus {
            endpoint: Some(gatehouse_emulator::Endpoint::Token),
            status,
            body: None,
            retry_after_secs: None,
            count: Some(1),
        }],
        ..Default::default()
    };
    h.emulator.as_ref().unwrap().set_faults(force(500));
    let (s, _) = get(
        &h,
        &h.token_target("https://storage.azure.com", Some(STORAGE_WRITER)),
    );
    assert_eq!(s, 200);
    assert_eq!(last_request(&h)["event"]["upstream"]["attempts"], 2);
    // A 400 is IMDS's final word: not retried, passed through.
    let (s, body) = get(
        &h,
        &h.token_target("https://nothing.example", Some(STORAGE_WRITER)),
    );
    assert_eq!(s, 400, "{body}");
    assert_eq!(last_request(&h)["event"]["upstream"]["attempts"], 1);
}

#[test]
fn a_reload_that_renames_identities_never_serves_the_old_token() {
    if !privileged("a_reload_that_renames_identities_never_serves_the_old_token") {
        return;
    }
    let named = |app: &str, legacy: &str| {
        format!(
            r#"version = 1
[identities.app]
kind = "user"
client_id = "{app}"
[identities.legacy]
kind = "user"
client_id = "{legacy}"
[[assignments]]
name = "root-app"
principal = "uid:0"
role = "Token Reader"
identities = ["app"]
audiences = ["*"]
"#
        )
    };
    let clock = Arc::new(ManualClock::at(SystemTime::now()));
    let h = Harness::start_opts(&named(STORAGE_WRITER, VAULT_READER), with_cache(clock));
    let jwks = h.emulator.as_ref().unwrap().jwks();
    let (s, first) = get(
        &h,
        &h.token_target("https://storage.azure.com", Some(STORAGE_WRITER)),
    );
    assert_eq!(s, 200);
    assert_eq!(
        verify_jwt(first["access_token"].as_str().unwrap(), &jwks)["appid"],
        STORAGE_WRITER
    );
    // `app` now names the other identity; the request for it must get that
    // identity's token, not the cached one under the same name.
    h.set_policy(&named(VAULT_READER, STORAGE_WRITER));
    h.gate.reload().unwrap();
    let (s, second) = get(
        &h,
        &h.token_target("https://storage.azure.com", Some(VAULT_READER)),
    );
    assert_eq!(s, 200, "{second}");
    assert_eq!(
        verify_jwt(second["access_token"].as_str().unwrap(), &jwks)["appid"],
        VAULT_READER
    );
    assert_eq!(token_requests(&h), 2);
    // And the old identity is no longer allowed at all.
    assert_eq!(
        get(
            &h,
            &h.token_target("https://storage.azure.com", Some(STORAGE_WRITER))
        )
        .0,
        403
    );
}

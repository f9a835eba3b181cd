//! A failing metadata service, and what it costs callers: each fault with
//! 1, 8 and 50 concurrent callers of one key, and 40 callers of 40 keys.
//! Every caller is answered within the budget (1.5 s, as deployed) plus a
//! margin, with an IMDS-shaped status and `Retry-After`; the upstream calls
//! stay few (one shared exchange per key) and inside IMDS's limits.
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
use std::sync::Arc;
use std::time::{Duration, Instant};

const BUDGET: Duration = Duration::from_millis(1_500);
/// Scheduling on a 2-core machine shared with other builds; still well
/// under the 6 s (and 48 s) this used to cost.
const MARGIN: Duration = Duration::from_millis(1_000);

fn policy() -> String {
    format!(
        "{IDENTITIES}\n[[assignments]]\nname = \"root\"\nprincipal = \"uid:0\"\nrole = \"Token Reader\"\nidentities = [\"*\"]\naudiences = [\"*\"]\n"
    )
}

fn opts() -> Opts {
    Opts {
        cache_margin: Some(Duration::from_secs(300)),
        upstream_limits: Some(gatehouse_gate::limiter::Limits::default()),
        upstream_timeout: BUDGET,
        ..Opts::default()
    }
}

/// 1 or 40 distinct keys, `n` callers in all.
fn targets(h: &Harness, keys: usize, n: usize) -> Vec<String> {
    let mut all = Vec::new();
    for a in gatehouse_emulator::DEFAULT_AUDIENCES {
        for client in [STORAGE_WRITER, VAULT_READER] {
            for spelling in [a.to_string(), format!("{a}/")] {
                all.push(h.token_target(&spelling, Some(client)));
            }
        }
    }
    assert!(all.len() >= keys);
    (0..n).map(|i| all[i % keys].clone()).collect()
}

#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    took: Duration,
}

fn ask(h: &Harness, target: &str) -> Answer {
    let started = Instant::now();
    let text = raw(
        h.addr,
        format!("GET {target} HTTP/1.1\r\nHost: x\r\nMetadata: true\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    let took = started.elapsed();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let retry_after = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().to_owned())
    });
    Answer {
        status,
        retry_after,
        took,
    }
}

/// All callers at once (each on its own thread, released together).
fn stampede(h: &Arc<Harness>, targets: Vec<String>) -> Vec<Answer> {
    let gate = Arc::new(std::sync::Barrier::new(targets.len()));
    let threads: Vec<_> = targets
        .into_iter()
        .map(|t| {
            let (h, gate) = (Arc::clone(h), Arc::clone(&gate));
            std::thread::spawn(move || {
                gate.wait();
                ask(&h, &t)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

struct Case {
    name: &'static str,
    /// Statuses a caller may get.
    statuses: &'static [u16],
    /// Most upstream calls for one key (the shared exchange's attempts).
    calls_per_key: u64,
}

fn check(case: &Case, keys: usize, n: usize, answers: &[Answer]) {
    let label = format!("{} with {n} callers of {keys} key(s)", case.name);
    let slowest = answers.iter().map(|a| a.took).max().unwrap();
    eprintln!("{label}: slowest answer {slowest:?}");
    for a in answers {
        assert!(a.took <= BUDGET + MARGIN, "{label}: {a:?}");
        assert!(case.statuses.contains(&a.status), "{label}: {a:?}");
        assert!(a.retry_after.is_some(), "{label}: no Retry-After: {a:?}");
    }
}

fn calls(h: &Harness) -> (u64, serde_json::Value) {
    let stats = serde_json::to_value(h.emulator.as_ref().unwrap().stats()).unwrap();
    let n = stats["by_endpoint"]["token"].as_u64().unwrap_or(0)
        + stats["closed_at_accept"].as_u64().unwrap_or(0);
    (n, stats)
}

/// One fault against the in-process emulator, every caller count.
fn emulator_fault(case: &Case, faults: &Faults) {
    for (keys, n) in [(1, 1), (1, 8), (1, 50), (40, 40)] {
        let h = Arc::new(Harness::start_opts(&policy(), opts()));
        h.emulator.as_ref().unwrap().set_faults(faults.clone());
        let t = targets(&h, keys, n);
        let answers = stampede(&h, t);
        check(case, keys, n, &answers);
        if case.name == "slow" {
            // The emulator counts a request when it has answered it.
            std::thread::sleep(Duration::from_millis(2_000));
        }
        let (made, stats) = calls(&h);
        eprintln!(
            "{}: {n} callers of {keys} key(s): {made} upstream calls",
            case.name
        );
        let keys = u64::try_from(keys).unwrap();
        assert!(made >= 1, "{}: IMDS was never asked: {stats}", case.name);
        assert!(
            made <= case.calls_per_key * keys,
            "{}: {made} upstream calls for {n} callers of {keys} key(s): {stats}",
            case.name
        );
        assert!(
            stats["identity_peak_per_second"].as_u64().unwrap() <= 20
                && stats["identity_peak_in_flight"].as_u64().unwrap() <= 5,
            "{}: over IMDS's limits: {stats}",
            case.name
        );
        // A stampede right after: the failure stands, nobody asks again
        // (`slow` is the exception: its exchange still ran, and landed).
        // With 40 keys, the keys IMDS's allowance had no room for are
        // asked now; still within the budget and the limits.
        let again = stampede(&h, targets(&h, usize::try_from(keys).unwrap(), n));
        if case.name != "slow" {
            check(case, usize::try_from(keys).unwrap(), n, &again);
        }
        let (after, stats) = calls(&h);
        if keys == 1 && case.name != "slow" {
            assert_eq!(after, made, "{}: the failure was not remembered", case.name);
        }
        assert!(
            after <= case.calls_per_key * keys,
            "{}: {after} calls: {stats}",
            case.name
        );
    }
}

fn forced(status: u16, retry_after_secs: Option<u64>) -> Faults {
    Faults {
        forced: vec![ForcedStatus {
            endpoint: Some(Endpoint::Token),
            status,
            body: None,
            retry_after_secs,
            count: None,
        }],
        ..Faults::default()
    }
}

#[test]
fn imds_answering_500_without_retry_after() {
    if !privileged("imds_answering_500_without_retry_after") {
        return;
    }
    let case = Case {
        name: "500",
        // 429/504: no room in IMDS's allowance (40 keys) within the budget.
        statuses: &[500, 429, 504],
        calls_per_key: 3,
    };
    emulator_fault(&case, &forced(500, None));
}

#[test]
fn imds_throttling_with_retry_after() {
    if !privileged("imds_throttling_with_retry_after") {
        return;
    }
    // Retry-After 3 s is past the budget: one call per key, passed on.
    let case = Case {
        name: "429",
        statuses: &[429, 504],
        calls_per_key: 1,
    };
    emulator_fault(&case, &forced(429, Some(3)));
}

#[test]
fn imds_closing_every_connection_at_once() {
    if !privileged("imds_closing_every_connection_at_once") {
        return;
    }
    let case = Case {
        name: "close",
        statuses: &[503, 429, 504],
        calls_per_key: 3,
    };
    let faults = Faults {
        close_at_once: true,
        ..Faults::default()
    };
    emulator_fault(&case, &faults);
}

#[test]
fn imds_reading_then_hanging_up() {
    if !privileged("imds_reading_then_hanging_up") {
        return;
    }
    let case = Case {
        name: "outage",
        statuses: &[503, 429, 504],
        calls_per_key: 3,
    };
    let faults = Faults {
        outage: true,
        ..Faults::default()
    };
    emulator_fault(&case, &faults);
}

#[test]
fn imds_answering_after_3_s() {
    if !privileged("imds_answering_after_3_s") {
        return;
    }
    let case = Case {
        name: "slow",
        statuses: &[504, 429],
        calls_per_key: 1,
    };
    let faults = Faults {
        latency_ms: 3_000,
        ..Faults::default()
    };
    emulator_fault(&case, &faults);
    // The shared exchange lands after its first waiters gave up: the next
    // caller is served from the cache.
    let h = Arc::new(Harness::start_opts(&policy(), opts()));
    h.emulator.as_ref().unwrap().set_faults(faults);
    let t = targets(&h, 1, 1);
    assert_eq!(ask(&h, &t[0]).status, 504);
    std::thread::sleep(Duration::from_millis(2_000));
    let later = ask(&h, &t[0]);
    assert_eq!(later.status, 200, "{later:?}");
    assert!(later.took < Duration::from_millis(500), "{later:?}");
    assert_eq!(calls(&h).0, 1);
}

/// No emulator: nothing listening (refused), or a listener whose accept
/// queue is full, so the kernel drops every further SYN (a black hole).
fn network_fault(name: &'static str, base: &str) {
    let case = Case {
        name,
        statuses: &[503, 504, 429],
        calls_per_key: 3,
    };
    for (keys, n) in [(1, 1), (1, 8), (1, 50), (40, 40)] {
        let h = Arc::new(Harness::start_base_opts(&policy(), base, opts()));
        let answers = stampede(&h, targets(&h, keys, n));
        check(&case, keys, n, &answers);
        let again = stampede(&h, targets(&h, keys, n));
        check(&case, keys, n, &again);
        if keys == 1 {
            // Remembered: the second stampede is answered at once.
            let slowest = again.iter().map(|a| a.took).max().unwrap();
            assert!(slowest < Duration::from_millis(500), "{name}: {slowest:?}");
        }
    }
}

#[test]
fn imds_refusing_connections() {
    if !privileged("imds_refusing_connections") {
        return;
    }
    network_fault("refused", &dead_base());
}

#[test]
fn imds_dropping_syns() {
    if !privileged("imds_dropping_syns") {
        return;
    }
    let socket = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            s.listen(0).unwrap()
        });
    let addr = socket.local_addr().unwrap();
    // Fill the accept queue (never accepted): further SYNs are dropped.
    let mut held = Vec::new();
    for _ in 0..4 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            held.push(s);
        }
    }
    let probe = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300));
    assert!(probe.is_err(), "the black hole still completes handshakes");
    network_fault("blackhole", &format!("http://{addr}"));
    drop((held, socket));
}

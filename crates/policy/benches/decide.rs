//! Decision time against the number of assignments, with and without
//! conditions, indexed next to the naive linear evaluator.
//!
//! Each policy has N assignments spread over N distinct uids (plus a few
//! group and `everyone` ones), so a caller has a handful of candidates;
//! the naive evaluator scans all N (with fewer samples at 100,000, where
//! one naive decision takes milliseconds).
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark setup: a broken fixture should stop the run loudly"
)]

use std::time::{Duration, SystemTime};

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use gatehouse_policy::{parse, Action, Caller, Policy, Process, Request};

const CONDITION: &str = "(!(ActionMatches{'Gatehouse/token/read'})) OR (@Principal[unit] StringEquals 'app.service' AND @Environment[UtcNow] DateTimeLessThan '2030-01-01T00:00:00Z' AND @Principal[groups] ForAnyOfAnyValues:StringEquals {'users', 'ops'})";

fn policy(n: usize, conditions: bool) -> Policy {
    let mut s = String::from("version = 1\n[identities.system]\nkind = \"system\"\n");
    for i in 0..n {
        let principal = match i % 100 {
            0 => format!("group:g{}", i % 7),
            _ => format!("uid:{}", 1000 + i),
        };
        s.push_str(&format!(
            "[[assignments]]\nname = \"a{i}\"\nprincipal = \"{principal}\"\nrole = \"Token Reader\"\nidentities = [\"system\"]\naudiences = [\"https://storage.azure.com\"]\n"
        ));
        if conditions {
            s.push_str(&format!("condition = \"{CONDITION}\"\n"));
        }
    }
    match parse("bench.toml", &s) {
        Ok(p) => p,
        Err(d) => panic!("{d}"),
    }
}

fn caller(uid: u32) -> Caller {
    Caller {
        uid: Some(uid),
        user: Some("app".into()),
        gids: vec![uid, 100],
        group_names: vec!["app".into(), "users".into()],
        processes: vec![Process {
            pid: 4242,
            uid,
            exe_path: Some("/usr/bin/app".into()),
            exe_path_verified: true,
            unit: Some("app.service".into()),
            cgroup: Some("/system.slice/app.service".into()),
            exe_owner_uid: Some(0),
            ..Process::default()
        }],
    }
}

fn bench(c: &mut Criterion) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let request = Request::new(Action::TokenRead)
        .identity(Some("system"))
        .audience(Some("https://storage.azure.com"))
        .at(now);
    let mut group = c.benchmark_group("decide");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for n in [10usize, 1_000, 100_000] {
        for conditions in [false, true] {
            let p = policy(n, conditions);
            let who = caller(1000 + (n / 2 + 1) as u32);
            let d = p.decide(&who, &request);
            assert!(d.is_allowed(), "{:?}", d);
            let label = if conditions { "conditions" } else { "plain" };
            group.bench_with_input(
                BenchmarkId::new(format!("indexed/{label}"), n),
                &n,
                |b, _| b.iter(|| black_box(p.decide(black_box(&who), black_box(&request)))),
            );
            if n > 1_000 {
                group.sample_size(10);
            }
            {
                group.bench_with_input(
                    BenchmarkId::new(format!("naive/{label}"), n),
                    &n,
                    |b, _| {
                        b.iter(|| black_box(p.decide_naive(black_box(&who), black_box(&request))))
                    },
                );
            }
            group.sample_size(30);
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

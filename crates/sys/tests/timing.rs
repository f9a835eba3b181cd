//! Prints identify() latency over 200 fresh client processes (no thresholds asserted:
//! the figure is for later speed work). Run with `--nocapture` to see it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "integration test helpers outside #[test] fns"
)]

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::Instant;

use common::{accept, connect_then, spawn, tuple};
use gatehouse_sys::{Identifier, IdentifyOptions, Needs};

const CONNECTIONS: usize = 200;

#[test]
fn identify_latency_over_200_connections() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let id = Identifier::new(IdentifyOptions::default());
    let needs = Needs {
        exe: true,
        exe_hash: true,
        cgroup: true,
        groups: true,
        all_holders: false,
        process: true,
    };
    let mut micros = Vec::with_capacity(CONNECTIONS);
    let mut strategies: HashMap<String, usize> = HashMap::new();
    let mut candidates = 0u64;
    for _ in 0..CONNECTIONS {
        let client = spawn(&connect_then("exec sleep 30"), port, None);
        let conn = accept(&l);
        let (src, dst) = tuple(&conn);
        let started = Instant::now();
        let facts = id.identify(src, dst, needs).unwrap();
        micros.push(started.elapsed().as_micros());
        assert_eq!(facts.holders[0].pid, client.pid());
        *strategies
            .entry(format!("{:?}", facts.lookup.strategy))
            .or_default() += 1;
        candidates += u64::from(facts.lookup.candidates);
    }
    micros.sort_unstable();
    let p50 = micros[micros.len() / 2];
    let p99 = micros[micros.len() * 99 / 100];
    let procs = std::fs::read_dir("/proc")
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        })
        .count();
    eprintln!(
        "identify(): p50 {p50} µs, p99 {p99} µs over {CONNECTIONS} fresh clients \
         ({procs} processes; strategies {strategies:?}; mean candidates {})",
        candidates / CONNECTIONS as u64
    );
}

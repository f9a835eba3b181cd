//! The limiter against a naive model — a sliding log of every grant, and
//! the in-flight intervals — on tokio's paused clock, so seconds of load run
//! in microseconds and every instant is exact.

use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
struct Req {
    arrival_ms: u64,
    uid: u32,
    hold_ms: u64,
    budget_ms: u64,
    kind: Kind,
}

#[derive(Debug, Clone, Copy)]
struct Got {
    req: Req,
    arrival: Duration,
    /// (granted, released), since the start; `None`: refused.
    slot: Option<(Duration, Duration)>,
    answered: Duration,
}

fn run(limits: Limits, reqs: &[Req]) -> Vec<Got> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let start = Instant::now();
        let limiter = Limiter::new(limits);
        let tasks: Vec<_> = reqs
            .iter()
            .copied()
            .map(|req| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    let arrival = start + Duration::from_millis(req.arrival_ms);
                    tokio::time::sleep_until(arrival).await;
                    let deadline = arrival + Duration::from_millis(req.budget_ms);
                    let slot = match limiter.acquire(req.kind, req.uid, deadline).await {
                        Some(slot) => {
                            let granted = Instant::now() - start;
                            tokio::time::sleep(Duration::from_millis(req.hold_ms)).await;
                            let released = Instant::now() - start;
                            drop(slot);
                            Some((granted, released))
                        }
                        None => None,
                    };
                    Got {
                        req,
                        arrival: arrival - start,
                        slot,
                        answered: Instant::now() - start,
                    }
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    })
}

/// The model: with every grant of one kind laid out, no window of
/// `limits.window` holds more than the limit and no instant more than the
/// concurrency in flight; every request is answered by its deadline, and a
/// request that waited found the lane busy when it came.
fn check(limits: Limits, got: &[Got]) -> Result<(), String> {
    let w = limits.window;
    for kind in [Kind::Identity, Kind::Other] {
        let (per_window, max_in_flight) = match kind {
            Kind::Identity => (limits.identity_per_second, Some(limits.identity_concurrent)),
            Kind::Other => (limits.other_per_second, None),
        };
        let mine: Vec<&Got> = got.iter().filter(|g| g.req.kind == kind).collect();
        let slots: Vec<(Duration, Duration)> = mine.iter().filter_map(|g| g.slot).collect();
        let in_window = |t: Duration| slots.iter().filter(|(g, _)| *g <= t && *g + w > t).count();
        let in_flight_at = |t: Duration| slots.iter().filter(|(g, r)| *g <= t && t < *r).count();
        for (g, _) in &slots {
            let n = in_window(*g);
            if n > usize::try_from(per_window).unwrap() {
                return Err(format!("{kind:?}: {n} grants in the window ending {g:?}"));
            }
            if let Some(max) = max_in_flight {
                let f = in_flight_at(*g);
                if f > max {
                    return Err(format!("{kind:?}: {f} in flight at {g:?}"));
                }
            }
        }
        for g in &mine {
            let deadline = g.arrival + Duration::from_millis(g.req.budget_ms);
            match g.slot {
                Some((granted, _)) if granted > deadline => {
                    return Err(format!("granted after its deadline: {g:?}"))
                }
                // (tokio's timers tick in whole milliseconds.)
                None if g.answered < deadline
                    || g.answered > deadline + Duration::from_millis(2) =>
                {
                    return Err(format!("refused before its deadline: {g:?}"))
                }
                _ => {}
            }
            // Refused only while the lane was full: had it room at the
            // deadline, every waiter would have been granted.
            if g.slot.is_none() {
                let full = |t: Duration| {
                    in_window(t) >= usize::try_from(per_window).unwrap()
                        || max_in_flight.is_some_and(|m| in_flight_at(t) >= m)
                };
                let d = g.answered;
                if !(full(d) || full(d.saturating_sub(Duration::from_millis(1)))) {
                    return Err(format!("refused with the lane free: {g:?}"));
                }
            }
            let waited = g.slot.is_none_or(|(granted, _)| granted > g.arrival);
            if waited {
                let window_full = in_window(g.arrival) >= usize::try_from(per_window).unwrap();
                let busy = max_in_flight.is_some_and(|m| in_flight_at(g.arrival) >= m);
                let others_waiting = mine.iter().any(|o| {
                    !std::ptr::eq(*o, *g)
                        && o.arrival <= g.arrival
                        && o.slot
                            .map_or(o.answered > g.arrival, |(s, _)| s >= g.arrival)
                });
                if !(window_full || busy || others_waiting) {
                    return Err(format!("waited with the lane idle: {g:?}"));
                }
            }
        }
    }
    Ok(())
}

fn req() -> impl Strategy<Value = Req> {
    (
        0u64..3_000,
        0u32..4,
        prop_oneof![Just(0u64), 1u64..50, 50u64..1_500],
        50u64..2_500,
        prop_oneof![4 => Just(Kind::Identity), 1 => Just(Kind::Other)],
    )
        .prop_map(|(arrival_ms, uid, hold_ms, budget_ms, kind)| Req {
            arrival_ms,
            uid,
            hold_ms,
            budget_ms,
            kind,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn the_limiter_agrees_with_the_sliding_log(reqs in proptest::collection::vec(req(), 1..120)) {
        let limits = Limits::default();
        let got = run(limits, &reqs);
        if let Err(e) = check(limits, &got) {
            prop_assert!(false, "{e}");
        }
    }

    #[test]
    fn bursts_at_one_instant_stay_exact(n in 1usize..150, window_ms in 900u64..1_200) {
        // Everything at once, held for no time: only the window limits.
        let limits = Limits { window: Duration::from_millis(window_ms), ..Limits::default() };
        let reqs: Vec<Req> = (0..n)
            .map(|i| Req {
                arrival_ms: 0,
                uid: u32::try_from(i % 3).unwrap(),
                hold_ms: 0,
                budget_ms: 10_000,
                kind: Kind::Identity,
            })
            .collect();
        let got = run(limits, &reqs);
        if let Err(e) = check(limits, &got) {
            prop_assert!(false, "{e}");
        }
        prop_assert!(got.iter().all(|g| g.slot.is_some()));
    }
}

#[test]
fn a_window_that_starts_full_admits_twenty_not_thirty() {
    let limits = Limits::default();
    let reqs: Vec<Req> = (0..40)
        .map(|_| Req {
            arrival_ms: 0,
            uid: 7,
            hold_ms: 0,
            budget_ms: 5_000,
            kind: Kind::Identity,
        })
        .collect();
    let got = run(limits, &reqs);
    let mut grants: Vec<Duration> = got.iter().filter_map(|g| g.slot.map(|s| s.0)).collect();
    grants.sort();
    assert_eq!(grants.len(), 40);
    assert!(grants[..20].iter().all(|g| g.is_zero()), "{grants:?}");
    let ms = Duration::from_millis(1);
    assert!(
        grants[20] >= limits.window,
        "the 21st waits for the window: {grants:?}"
    );
    assert!(grants[39] <= limits.window + ms, "{grants:?}");
}

#[test]
fn one_uid_flooding_does_not_starve_another() {
    // uid 1 asks for 60 cold keys at once; uid 2 asks for one a moment later.
    let limits = Limits::default();
    let mut reqs: Vec<Req> = (0..60)
        .map(|_| Req {
            arrival_ms: 0,
            uid: 1,
            hold_ms: 100,
            budget_ms: 10_000,
            kind: Kind::Identity,
        })
        .collect();
    reqs.push(Req {
        arrival_ms: 10,
        uid: 2,
        hold_ms: 100,
        budget_ms: 1_500,
        kind: Kind::Identity,
    });
    let got = run(limits, &reqs);
    check(limits, &got).unwrap();
    let theirs = got.iter().find(|g| g.req.uid == 2).unwrap();
    let granted = theirs.slot.expect("uid 2 was served").0;
    let before = got
        .iter()
        .filter(|g| g.req.uid == 1 && g.slot.is_some_and(|s| s.0 < granted))
        .count();
    // Five were in flight when it came; the next turn after one more is its.
    assert!(before <= 6, "{before} of uid 1's went first");
    assert_eq!(granted, Duration::from_millis(100));
}

#[test]
fn a_waiter_past_its_deadline_gets_none_and_returns_nothing() {
    let limits = Limits {
        identity_concurrent: 1,
        ..Limits::default()
    };
    let reqs = [
        Req {
            arrival_ms: 0,
            uid: 1,
            hold_ms: 1_000,
            budget_ms: 100,
            kind: Kind::Identity,
        },
        Req {
            arrival_ms: 10,
            uid: 1,
            hold_ms: 0,
            budget_ms: 200,
            kind: Kind::Identity,
        },
        Req {
            arrival_ms: 20,
            uid: 2,
            hold_ms: 0,
            budget_ms: 2_000,
            kind: Kind::Identity,
        },
    ];
    let got = run(limits, &reqs);
    check(limits, &got).unwrap();
    assert!(got[1].slot.is_none());
    let answered = got[1].answered.as_millis();
    assert!((210..=212).contains(&answered), "{answered}");
    // The refused waiter took nothing: the third starts when the first ends.
    assert_eq!(got[2].slot.unwrap().0, Duration::from_millis(1_000));
}

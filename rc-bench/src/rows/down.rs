//! Rows with Redis down: what a decorated call costs once its server is
//! gone. It fails open (the body runs and its value is returned), and the
//! host backs off, so a call must not wait for the network.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rc::{AsyncCache, Cache};

use super::{Ctx, Goal, Outcome, Row, Unit, on_worker, server, time, time_each_async};
use crate::harness::{interleave, time_each};

/// Distinct arguments the rows cycle through.
const IDS: u64 = 1000;
/// Calls of the paced phase, made [`GAP`] apart after the measured rounds:
/// long enough for the host's backoff to expire a few times, so that some
/// calls start a background probe of the server (the measured rounds are
/// over in a fraction of a second, within the first backoffs).
const PACED: u64 = 2000;
const GAP: Duration = Duration::from_millis(1);
/// A paced call slower than this is counted as slow (starting a probe, or the scheduler).
const SLOW: Duration = Duration::from_micros(20);

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "down-overhead",
            measures: "a decorated `fn square(cache: &Cache, x: u64) -> u64` (`#[rc::cache(cache = cache, \
                       skip(cache))]`) on a `Cache` whose server was started, used, then killed, measured \
                       after the first failing call (which pays the refused connect): every call fails open, \
                       running the body, vs that body called directly; p50 and p99 of single calls",
            goal: Goal::P99Below(1e6),
            run: down_sync,
        },
        Row {
            name: "down-overhead-async",
            measures: "as `down-overhead` with an `async fn` on an `AsyncCache`, awaited one call after \
                       another in a task of the one-worker runtime, vs the body awaited in the same task",
            goal: Goal::P99Below(1e6),
            run: down_async,
        },
    ]
}

/// The body of the decorated functions, and the baseline (also of the
/// `frozen` rows).
pub(super) fn body(x: u64) -> u64 {
    black_box(x).wrapping_mul(x)
}

#[rc::cache(cache = cache, skip(cache), expire = 3600)]
pub(super) fn square(cache: &Cache, x: u64) -> u64 {
    let _ = cache;
    body(x)
}

#[rc::cache(cache = cache, skip(cache), expire = 3600)]
pub(super) async fn square_async(cache: &AsyncCache, x: u64) -> u64 {
    let _ = cache;
    body(x)
}

/// The note of both rows: what the cache's counters saw while measuring,
/// and the paced phase's single calls.
fn note(calls: u64, errors: u64, rounds: Duration, mut paced: Vec<Duration>) -> String {
    paced.sort_unstable();
    let slow = paced.iter().filter(|&&d| d > SLOW).count();
    let slowest = paced.last().copied().unwrap_or_default();
    format!(
        "the server stays down for the whole row; `stats().errors` counted {errors} failures in \
         {calls} measured decorated calls: each call's read fails at once while the host backs \
         off (after each backoff, 100 ms doubling, one call starts a probe in the background and \
         fails fast too), the body runs, and the write is skipped. The rounds took {:.2} s, so \
         few of their calls start a probe; \
         then {PACED} calls {} ms apart (so the backoff expires several times): the slowest \
         took {}, {slow} took over {}",
        rounds.as_secs_f64(),
        GAP.as_millis(),
        time(slowest.as_nanos() as f64),
        time(SLOW.as_nanos() as f64)
    )
}

fn down_sync(ctx: &Ctx) -> Outcome {
    let server = server();
    let cache = Cache::open(&server.url()).expect("rc cache");
    assert_eq!(square(&cache, 3), 9);
    assert_eq!(square(&cache, 3), 9);
    assert_eq!(cache.stats().hits, 1, "the server was up and used");
    server.kill();
    let before = cache.stats().errors;
    assert_eq!(
        square(&cache, 3),
        9,
        "the first call after the kill fails open"
    );
    assert!(cache.stats().errors > before, "{:?}", cache.stats());

    let plan = ctx.plan(10_000);
    let before = cache.stats().errors;
    let rc = |n| {
        time_each(n, |i| {
            let x = i as u64 % IDS;
            assert_eq!(black_box(square(&cache, x)), x * x);
        })
    };
    let direct = |n| {
        time_each(n, |i| {
            let x = i as u64 % IDS;
            assert_eq!(black_box(body(x)), x * x);
        })
    };
    let began = Instant::now();
    let mut out = Outcome::new(interleave(&plan, rc, direct), Unit::Tail);
    let rounds = began.elapsed();
    let calls = (plan.warmup + plan.rounds * plan.ops) as u64;
    let errors = cache.stats().errors - before;
    let paced = (0..PACED)
        .map(|x| {
            std::thread::sleep(GAP);
            let start = Instant::now();
            assert_eq!(black_box(square(&cache, x)), x * x);
            start.elapsed()
        })
        .collect();
    out.note = Some(note(calls, errors, rounds, paced));
    out
}

fn down_async(ctx: &Ctx) -> Outcome {
    let server = server();
    let cache = AsyncCache::open(&server.url()).expect("rc async cache");
    let c = cache.clone();
    on_worker(async move {
        assert_eq!(square_async(&c, 3).await, 9);
        assert_eq!(square_async(&c, 3).await, 9);
    });
    assert_eq!(cache.stats().hits, 1, "the server was up and used");
    server.kill();
    let before = cache.stats().errors;
    let c = cache.clone();
    on_worker(async move {
        assert_eq!(square_async(&c, 3).await, 9, "fails open");
    });
    assert!(cache.stats().errors > before, "{:?}", cache.stats());

    let plan = ctx.plan(10_000);
    let before = cache.stats().errors;
    let rc = |n| {
        let cache = cache.clone();
        time_each_async(n, move |i| {
            let cache = cache.clone();
            async move {
                let x = i as u64 % IDS;
                assert_eq!(black_box(square_async(&cache, x).await), x * x);
            }
        })
    };
    let direct = |n| {
        time_each_async(n, move |i| async move {
            let x = i as u64 % IDS;
            assert_eq!(black_box(body(x)), x * x);
        })
    };
    let began = Instant::now();
    let mut out = Outcome::new(interleave(&plan, rc, direct), Unit::Tail);
    let rounds = began.elapsed();
    let calls = (plan.warmup + plan.rounds * plan.ops) as u64;
    let errors = cache.stats().errors - before;
    let c = cache.clone();
    let paced = on_worker(async move {
        let mut times = Vec::with_capacity(PACED as usize);
        for x in 0..PACED {
            tokio::time::sleep(GAP).await;
            let start = Instant::now();
            assert_eq!(black_box(square_async(&c, x).await), x * x);
            times.push(start.elapsed());
        }
        times
    });
    out.note = Some(note(calls, errors, rounds, paced));
    out
}

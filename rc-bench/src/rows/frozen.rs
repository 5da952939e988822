//! Rows with Redis frozen (`SIGSTOP`): the server accepts connections and
//! requests but answers nothing, so every network wait ends in a timeout.
//! Only the call in flight when it froze may pay one; after that the host is
//! down, calls fail open at once, and the probes run in the background.

use std::cell::RefCell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rc::{AsyncCache, Cache};

use super::down::{body, square, square_async};
use super::{Ctx, Goal, Outcome, Row, Unit, on_worker, server, time};
use crate::harness::{Round, interleave};

/// Distinct arguments, all cached before the freeze.
const IDS: u64 = 100;
/// Pause between two calls: a steady rate of requests.
const GAP: Duration = Duration::from_millis(1);
/// A call slower than this waited for the network: it paid (most of) the
/// response timeout, 1 s by default.
const PAID: Duration = Duration::from_millis(500);

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "frozen-redis",
            measures: "a decorated `fn square(cache: &Cache, x: u64) -> u64` on a `Cache::open` (1 s \
                       timeouts) whose server was used, then frozen with SIGSTOP for the whole row: \
                       calls one every 1 ms, each failing open, vs that body called at the same pace; \
                       p50 and p99 of single calls, and (in the note) how many calls paid a timeout",
            goal: Goal::P99Below(1e6),
            run: frozen_sync,
        },
        Row {
            name: "frozen-redis-async",
            measures: "as `frozen-redis` with an `async fn` on an `AsyncCache`, awaited one call after \
                       another in a task of the one-worker runtime, vs the body awaited in the same task",
            goal: Goal::P99Below(1e6),
            run: frozen_async,
        },
    ]
}

/// The note of both rows: every rc call's time (warm-up included), the
/// outage's length, the errors counted, and how soon hits came back after
/// `SIGCONT`.
fn note(mut all: Vec<Duration>, frozen: Duration, errors: u64, back: Duration) -> String {
    all.sort_unstable();
    let paid: Vec<_> = all.iter().filter(|&&d| d > PAID).collect();
    format!(
        "the server stayed frozen for {:.1} s; rc made {} paced calls (warm-up included) and \
         `stats().errors` counted {errors} failures; {} call(s) paid a timeout ({}), the slowest \
         of the others took {}: only the call in flight when the server froze waits, then the \
         host is down and probes run in the background (no call waits on one). After SIGCONT, \
         hits came back in {}",
        frozen.as_secs_f64(),
        all.len(),
        paid.len(),
        paid.iter()
            .map(|d| time(d.as_nanos() as f64))
            .collect::<Vec<_>>()
            .join(", "),
        time(
            all.iter()
                .rev()
                .find(|&&d| d <= PAID)
                .map_or(0.0, |d| d.as_nanos() as f64)
        ),
        time(back.as_nanos() as f64),
    )
}

/// Runs `n` calls `GAP` apart, timing each call (not the pause).
fn paced(n: usize, mut call: impl FnMut(u64)) -> Vec<u64> {
    (0..n)
        .map(|i| {
            std::thread::sleep(GAP);
            let start = Instant::now();
            call(i as u64 % IDS);
            start.elapsed().as_nanos() as u64
        })
        .collect()
}

fn frozen_sync(ctx: &Ctx) -> Outcome {
    let server = server();
    let cache = Cache::open(&server.url()).expect("rc cache");
    for x in 0..IDS {
        assert_eq!(square(&cache, x), x * x);
        assert_eq!(square(&cache, x), x * x);
    }
    assert_eq!(cache.stats().hits, IDS, "the server was up and used");

    server.pause();
    let froze = Instant::now();
    let before = cache.stats().errors;
    let all = Rc::new(RefCell::new(Vec::new()));
    let plan = ctx.plan(200);
    let rc = |n| {
        let ops = paced(n, |x| assert_eq!(black_box(square(&cache, x)), x * x));
        all.borrow_mut()
            .extend(ops.iter().map(|&ns| Duration::from_nanos(ns)));
        Round::from_ops(ops)
    };
    let direct = |n| Round::from_ops(paced(n, |x| assert_eq!(black_box(body(x)), x * x)));
    let mut out = Outcome::new(interleave(&plan, rc, direct), Unit::Tail);
    let errors = cache.stats().errors - before;
    let frozen = froze.elapsed();

    server.resume();
    let resumed = Instant::now();
    let hits = cache.stats().hits;
    let mut x = 0;
    while cache.stats().hits == hits {
        assert!(resumed.elapsed() < Duration::from_secs(30), "never back");
        std::thread::sleep(GAP);
        assert_eq!(square(&cache, x % IDS), (x % IDS).pow(2));
        x += 1;
    }
    let back = resumed.elapsed();
    out.note = Some(note(all.take(), frozen, errors, back));
    out
}

fn frozen_async(ctx: &Ctx) -> Outcome {
    let server = server();
    let cache = AsyncCache::open(&server.url()).expect("rc async cache");
    let c = cache.clone();
    on_worker(async move {
        for x in 0..IDS {
            assert_eq!(square_async(&c, x).await, x * x);
            assert_eq!(square_async(&c, x).await, x * x);
        }
    });
    assert_eq!(cache.stats().hits, IDS, "the server was up and used");

    server.pause();
    let froze = Instant::now();
    let before = cache.stats().errors;
    let all = Arc::new(Mutex::new(Vec::new()));
    let plan = ctx.plan(200);
    let rc = |n| {
        let (c, all) = (cache.clone(), all.clone());
        let ops = on_worker(async move {
            let mut ops = Vec::with_capacity(n);
            for i in 0..n {
                tokio::time::sleep(GAP).await;
                let x = i as u64 % IDS;
                let start = Instant::now();
                assert_eq!(black_box(square_async(&c, x).await), x * x);
                ops.push(start.elapsed().as_nanos() as u64);
            }
            all.lock()
                .unwrap()
                .extend(ops.iter().map(|&ns| Duration::from_nanos(ns)));
            ops
        });
        Round::from_ops(ops)
    };
    let direct = |n| {
        Round::from_ops(on_worker(async move {
            let mut ops = Vec::with_capacity(n);
            for i in 0..n {
                tokio::time::sleep(GAP).await;
                let x = i as u64 % IDS;
                let start = Instant::now();
                assert_eq!(black_box(body(x)), x * x);
                ops.push(start.elapsed().as_nanos() as u64);
            }
            ops
        }))
    };
    let mut out = Outcome::new(interleave(&plan, rc, direct), Unit::Tail);
    let errors = cache.stats().errors - before;
    let frozen = froze.elapsed();

    server.resume();
    let c = cache.clone();
    let back = on_worker(async move {
        let resumed = Instant::now();
        let hits = c.stats().hits;
        let mut x = 0;
        while c.stats().hits == hits {
            assert!(resumed.elapsed() < Duration::from_secs(30), "never back");
            tokio::time::sleep(GAP).await;
            assert_eq!(square_async(&c, x % IDS).await, (x % IDS).pow(2));
            x += 1;
        }
        resumed.elapsed()
    });
    let all = std::mem::take(&mut *all.lock().unwrap());
    out.note = Some(note(all, frozen, errors, back));
    out
}

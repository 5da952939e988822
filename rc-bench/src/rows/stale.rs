//! Stale-while-revalidate: a hit on a value past its expiry, whose refresh
//! the call starts, against a plain hit.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::decorated::{ASYNC_CACHE, CACHE, IDS, SMALL, prime, small, small_async};
use super::{Ctx, Goal, Outcome, Row, on_worker, shared_server, time_each_async, value};
use crate::harness::{interleave, time_each};

/// The stale window of the functions here.
const WINDOW: Duration = Duration::from_secs(30);

/// [`small`] with a stale window.
#[rc::cache(cache = CACHE, expire = 3600, stale_while_revalidate = 30)]
fn swr_small(id: u64) -> String {
    black_box(id);
    value(SMALL)
}

/// [`small_async`] with a stale window.
#[rc::cache(cache = ASYNC_CACHE, expire = 3600, stale_while_revalidate = 30)]
async fn swr_small_async(id: u64) -> String {
    black_box(id);
    value(SMALL)
}

/// [`swr_small_async`] whose refresh takes a minute: it stays under way
/// while the row measures.
#[rc::cache(cache = ASYNC_CACHE, expire = 3600, stale_while_revalidate = 30)]
async fn swr_slow_async(id: u64) -> String {
    tokio::time::sleep(Duration::from_secs(60)).await;
    black_box(id);
    value(SMALL)
}

/// Distinct keys of the refreshing row.
const SLOW_KEYS: usize = 100;

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "swr-hit-due",
            measures: "`swr_small(id)` (`stale_while_revalidate = 30`) on a value one second \
                       past its expiry: returns it and starts its refresh (on a kept refresh \
                       thread, which takes the lease and stores: two more round trips), every call a new key (the \
                       round's refreshes finish before the baseline's round); vs a plain \
                       decorated hit `small(id)`; per call",
            goal: Goal::AtMost(1.10),
            run: swr_sync,
        },
        Row {
            name: "swr-hit-due-async",
            measures: "`swr_small_async(id)` on a value one second past its expiry: returns it \
                       and spawns its refresh (a tokio task), every call a new key; vs a plain \
                       decorated async hit `small_async(id)`; per call",
            goal: Goal::AtMost(1.10),
            run: swr_async,
        },
        Row {
            name: "swr-hit-refreshing-async",
            measures: "`swr_slow_async(id)` on values one second past their expiry, 100 keys \
                       per round, each refreshed (a minute-long body) from its first call on: \
                       the other calls are stale hits while the refresh is under way; vs a plain \
                       decorated async hit `small_async(id)`; per call",
            goal: Goal::AtMost(1.10),
            run: swr_refreshing,
        },
    ]
}

/// Ids no earlier call used: each call finds its own stale value.
static NEXT: AtomicU64 = AtomicU64::new(1 << 48);

/// Stores `n` values under fresh ids of `name`, one second past their
/// expiry (a stale window less a second left), as rc stores them; returns
/// the first id.
fn stale_values(conn: &mut redis::Connection, name: &str, n: usize) -> u64 {
    let first = NEXT.fetch_add(n as u64, Ordering::Relaxed);
    let json = serde_json::to_vec(&value(SMALL)).expect("JSON");
    let left = (WINDOW - Duration::from_secs(1)).as_millis() as u64;
    let mut pipe = redis::pipe();
    for id in first..first + n as u64 {
        let key = format!("{} {name} {id}", module_path!());
        pipe.cmd("SET")
            .arg(key)
            .arg(&json)
            .arg("PX")
            .arg(left)
            .ignore();
    }
    let () = pipe.query(conn).expect("SET stale values");
    first
}

/// Waits (outside the timings) until the refreshes of `n` values from
/// `first` stored, so that they do not load the baseline's round.
fn settle(conn: &mut redis::Connection, name: &str, first: u64, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut pipe = redis::pipe();
        for id in first..first + n as u64 {
            pipe.cmd("PTTL")
                .arg(format!("{} {name} {id}", module_path!()));
        }
        let lefts: Vec<i64> = pipe.query(conn).expect("PTTL");
        if lefts.iter().all(|&ms| ms > WINDOW.as_millis() as i64) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "refreshes did not finish"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn connection() -> redis::Connection {
    redis::Client::open(shared_server().url())
        .and_then(|c| c.get_connection())
        .expect("raw connection")
}

/// Notes how many calls served stale values and how many refreshes ran.
fn note(out: &mut Outcome, before: rc::Stats, after: rc::Stats) {
    out.note = Some(format!(
        "{} stale hits, {} refreshes",
        after.stale_hits - before.stale_hits,
        after.refreshes - before.refreshes
    ));
}

fn swr_sync(ctx: &Ctx) -> Outcome {
    prime(small);
    let mut conn = connection();
    let rc = |n| {
        let first = stale_values(&mut conn, "swr_small", n);
        let round = time_each(n, |i| {
            black_box(swr_small(first + i as u64));
        });
        settle(&mut conn, "swr_small", first, n);
        round
    };
    let plain = |n| {
        time_each(n, |i| {
            black_box(small(i as u64 % IDS));
        })
    };
    let before = CACHE.stats();
    let mut out = Outcome::latency(interleave(&ctx.plan(3_000), rc, plain));
    note(&mut out, before, CACHE.stats());
    out
}

fn swr_async(ctx: &Ctx) -> Outcome {
    on_worker(async {
        for id in 0..IDS {
            black_box(small_async(id).await);
        }
    });
    let mut conn = connection();
    let rc = |n| {
        let first = stale_values(&mut conn, "swr_small_async", n);
        let round = time_each_async(n, move |i| async move {
            black_box(swr_small_async(first + i as u64).await);
        });
        settle(&mut conn, "swr_small_async", first, n);
        round
    };
    let plain = |n| {
        time_each_async(n, |i| async move {
            black_box(small_async(i as u64 % IDS).await);
        })
    };
    let before = ASYNC_CACHE.stats();
    let mut out = Outcome::latency(interleave(&ctx.plan(10_000), rc, plain));
    note(&mut out, before, ASYNC_CACHE.stats());
    out
}

fn swr_refreshing(ctx: &Ctx) -> Outcome {
    on_worker(async {
        for id in 0..IDS {
            black_box(small_async(id).await);
        }
    });
    let mut conn = connection();
    let rc = |n| {
        let first = stale_values(&mut conn, "swr_slow_async", SLOW_KEYS);
        time_each_async(n, move |i| async move {
            black_box(swr_slow_async(first + (i % SLOW_KEYS) as u64).await);
        })
    };
    let plain = |n| {
        time_each_async(n, |i| async move {
            black_box(small_async(i as u64 % IDS).await);
        })
    };
    let before = ASYNC_CACHE.stats();
    let mut out = Outcome::latency(interleave(&ctx.plan(10_000), rc, plain));
    note(&mut out, before, ASYNC_CACHE.stats());
    out
}

//! Rows of `#[rc::cache]` functions: a decorated hit against the same thing
//! written by hand, and a batch against sequential calls.
//!
//! The decorated functions here are also what the peer rows measure.

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::Duration;

use rc::{AsyncCache, Cache, Promise};

use super::{Ctx, Goal, Outcome, Row, shared_server, value};
use crate::harness::{interleave, time_each};

/// Distinct arguments (so keys) the decorated rows cycle through.
pub(super) const IDS: u64 = 1000;
/// The small and the large value (JSON-encoded sizes).
pub(super) const SMALL: usize = 100;
pub(super) const LARGE: usize = 10 * 1024;
/// Expiry of every decorated result.
const EXPIRE: Duration = Duration::from_secs(3600);

/// rc's blocking cache on the shared server.
pub(super) static CACHE: LazyLock<Cache> =
    LazyLock::new(|| Cache::open(&shared_server().url()).expect("rc cache"));
/// rc's async cache on the shared server.
pub(super) static ASYNC_CACHE: LazyLock<AsyncCache> =
    LazyLock::new(|| AsyncCache::open(&shared_server().url()).expect("rc async cache"));

/// A decorated function with a 100-byte result.
#[rc::cache(cache = CACHE, expire = 3600)]
pub(super) fn small(id: u64) -> String {
    black_box(id);
    value(SMALL)
}

/// A decorated function with a 10 KiB result.
#[rc::cache(cache = CACHE, expire = 3600)]
pub(super) fn large(id: u64) -> String {
    black_box(id);
    value(LARGE)
}

/// [`small`] under another name, for the miss row: every call has a key never used before.
#[rc::cache(cache = CACHE, expire = 3600)]
pub(super) fn fresh(id: u64) -> String {
    black_box(id);
    value(SMALL)
}

/// [`small`], async.
#[rc::cache(cache = ASYNC_CACHE, expire = 3600)]
pub(super) async fn small_async(id: u64) -> String {
    black_box(id);
    value(SMALL)
}

/// [`large`], async.
#[rc::cache(cache = ASYNC_CACHE, expire = 3600)]
pub(super) async fn large_async(id: u64) -> String {
    black_box(id);
    value(LARGE)
}

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "macro-hit-100B",
            measures: "a hit of a `#[rc::cache(cache = CACHE)] fn small(id: u64) -> String` (100 B JSON) vs the \
                       same written by hand on a raw `redis::Connection`: `format!` the same key, `GET`, \
                       `serde_json::from_slice` (on a miss: compute, `SET .. EX`); per call",
            goal: Goal::AtMost(1.15),
            run: |ctx| hit_vs_by_hand(ctx, "small", SMALL, small),
        },
        Row {
            name: "macro-hit-10KiB",
            measures: "as `macro-hit-100B` with a 10 KiB result",
            goal: Goal::AtMost(1.15),
            run: |ctx| hit_vs_by_hand(ctx, "large", LARGE, large),
        },
        Row {
            name: "macro-miss-100B",
            measures: "a miss of `fn fresh(id: u64) -> String` (100 B; each call a key never used): `GET`, \
                       take the key's lease (`SET rc-lease:{key} token NX PX`), compute, store under the \
                       lease (`EVAL`), i.e. 3 round trips, vs the same written by hand without a lease \
                       (`GET`, compute, `SET .. EX`: 2 round trips); per call",
            goal: Goal::AtMost(1.6),
            run: miss_vs_by_hand,
        },
        Row {
            name: "macro-batch-100",
            measures: "100 hits of `small` through one batch (`CACHE.batch()`, 100 × `batch_small`, `run`: one \
                       `MGET`) vs 100 sequential calls of `small`; per 100 calls",
            goal: Goal::FasterBy(10.0),
            run: batch_vs_sequential,
        },
    ]
}

/// Calls `f` once for every id, so later calls hit.
pub(super) fn prime(f: fn(u64) -> String) {
    for id in 0..IDS {
        black_box(f(id));
    }
}

/// The Redis key rc gives the call `name(id)` of a function of this module.
pub(super) fn key(name: &str, id: u64) -> String {
    format!("{} {name} {id}", module_path!())
}

/// What a user of the `redis` crate writes instead of `#[rc::cache]`.
fn by_hand(conn: &mut redis::Connection, name: &str, id: u64, size: usize) -> String {
    let key = key(name, id);
    let bytes: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query(conn).expect("GET");
    if let Some(v) = bytes.and_then(|b| serde_json::from_slice(&b).ok()) {
        return v;
    }
    let v = value(size);
    let json = serde_json::to_vec(&v).expect("JSON");
    let () = redis::cmd("SET")
        .arg(&key)
        .arg(json)
        .arg("EX")
        .arg(EXPIRE.as_secs())
        .query(conn)
        .expect("SET");
    v
}

fn hit_vs_by_hand(ctx: &Ctx, name: &str, size: usize, f: fn(u64) -> String) -> Outcome {
    prime(f);
    let mut conn = redis::Client::open(shared_server().url())
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let rc = |n| {
        time_each(n, |i| {
            black_box(f(i as u64 % IDS));
        })
    };
    let hand = |n| {
        time_each(n, |i| {
            black_box(by_hand(&mut conn, name, i as u64 % IDS, size));
        })
    };
    let before = CACHE.stats();
    let out = Outcome::latency(interleave(&ctx.plan(10_000), rc, hand));
    let after = CACHE.stats();
    assert_eq!(
        after.misses, before.misses,
        "every measured rc call is a hit"
    );
    out
}

fn miss_vs_by_hand(ctx: &Ctx) -> Outcome {
    use std::sync::atomic::{AtomicU64, Ordering};
    // Ids no earlier round used, so every call of both sides misses.
    static NEXT: AtomicU64 = AtomicU64::new(1 << 32);
    let mut conn = redis::Client::open(shared_server().url())
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let rc = |n| {
        time_each(n, |_| {
            black_box(fresh(NEXT.fetch_add(1, Ordering::Relaxed)));
        })
    };
    let hand = |n| {
        time_each(n, |_| {
            let id = NEXT.fetch_add(1, Ordering::Relaxed);
            black_box(by_hand(&mut conn, "fresh", id, SMALL));
        })
    };
    let before = CACHE.stats();
    let out = Outcome::latency(interleave(&ctx.plan(3_000), rc, hand));
    let after = CACHE.stats();
    assert_eq!(after.hits, before.hits, "every measured rc call is a miss");
    assert_eq!(
        after.sets - before.sets,
        after.misses - before.misses,
        "and stores"
    );
    out
}

fn batch_vs_sequential(ctx: &Ctx) -> Outcome {
    prime(small);
    let batched = |n| {
        time_each(n, |i| {
            let batch = CACHE.batch();
            let base = (i as u64 * 100) % IDS;
            let promises: Vec<Promise<String>> = (0..100)
                .map(|j| batch_small(&batch, (base + j) % IDS))
                .collect();
            batch.run();
            for p in promises {
                black_box(p.into_value().expect("resolved"));
            }
        })
    };
    let sequential = |n| {
        time_each(n, |i| {
            let base = (i as u64 * 100) % IDS;
            for j in 0..100 {
                black_box(small((base + j) % IDS));
            }
        })
    };
    Outcome::latency(interleave(&ctx.plan(200), batched, sequential))
}

//! Rows of the near cache (`local_cache`): a decorated hit served from
//! process memory, how soon another client's write stops it being served,
//! and its memory under a byte bound.

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::Instant;

use rc::Cache;

use super::decorated::{self, IDS, SMALL, prime};
use super::{Ctx, Goal, Outcome, Row, Unit, rss_bytes, server, shared_server, value};
use crate::harness::{Comparison, Plan, Round, interleave, time_each};

/// rc's blocking cache on the shared server, with a near cache.
static NEAR: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .url(&shared_server().url())
        .local_cache(10_000)
        .build()
        .expect("rc near cache")
});

/// [`decorated::small`] on the cache with a near cache.
#[rc::cache(cache = NEAR, expire = 3600)]
fn small_near(id: u64) -> String {
    black_box(id);
    value(SMALL)
}

/// The byte bound of the memory row.
const BOUND_MIB: u64 = 32;

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "near-hit-100B",
            measures: "a hit of `fn small(id: u64) -> String` (100 B JSON) on a cache built with \
                       `.local_cache(10_000)`, served from process memory, vs the same function on a cache \
                       without one (a `GET` round trip); per call",
            goal: Goal::FasterBy(50.0),
            run: hit_near_vs_redis,
        },
        Row {
            name: "near-invalidation",
            measures: "another client's `SET` of a key this process holds locally returns; time until \
                       `cache.get` (spinning) returns the new value, vs a plain `GET` right after the `SET` \
                       (what a reader without a near cache pays); p50 and p99 of single writes",
            goal: Goal::P99Below(5e6),
            run: invalidation_delay,
        },
        Row {
            name: "near-memory-1M",
            measures: "resident memory (`VmRSS`) after reading 1M distinct keys (100 B values, `get_many` of \
                       1000) through a cache with `.local_cache(1_000_000).local_cache_bytes(32 MiB)`, vs \
                       before; the goal is the byte bound",
            goal: Goal::ExtraMibAtMost(BOUND_MIB as f64),
            run: memory_bound,
        },
    ]
}

/// Calls `small_near` for every id until each is served locally.
fn warm_near() {
    prime(small_near);
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let before = NEAR.stats().local_hits;
        prime(small_near);
        if NEAR.stats().local_hits - before == IDS {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the near cache never served every id"
        );
    }
}

fn hit_near_vs_redis(ctx: &Ctx) -> Outcome {
    prime(decorated::small);
    warm_near();
    let near = |n| {
        time_each(n, |i| {
            black_box(small_near(i as u64 % IDS));
        })
    };
    let redis = |n| {
        time_each(n, |i| {
            black_box(decorated::small(i as u64 % IDS));
        })
    };
    let before = NEAR.stats();
    // Enough near calls per round to time, few enough Redis ones to finish.
    let out = Outcome::latency(interleave(&ctx.plan(10_000), near, redis));
    let after = NEAR.stats();
    assert_eq!(after.misses, before.misses, "every measured call is a hit");
    let mut out = out;
    out.note = Some(format!(
        "{} of {} near-cache hits were served from process memory",
        after.local_hits - before.local_hits,
        after.hits - before.hits
    ));
    out
}

fn invalidation_delay(ctx: &Ctx) -> Outcome {
    let server = server();
    let cache = Cache::builder()
        .url(&server.url())
        .local_cache(100)
        .build()
        .expect("rc near cache");
    let mut conn = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let mut n = 0u64;
    let set = |conn: &mut redis::Connection, v: u64| {
        let () = redis::cmd("SET")
            .arg("k")
            .arg(v.to_string())
            .arg("EX")
            .arg(3600)
            .query(conn)
            .expect("SET");
    };
    // Until the value is held locally again (a read that is a local hit).
    let hold = |cache: &Cache, v: u64| {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let before = cache.stats().local_hits;
            assert_eq!(cache.get::<u64>("k").expect("get"), Some(v));
            if cache.stats().local_hits > before {
                return;
            }
            assert!(Instant::now() < deadline, "never held locally");
        }
    };
    set(&mut conn, n);
    hold(&cache, n);
    let mut raw = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let plan = Plan {
        ops: if ctx.quick { 50 } else { 300 },
        ..ctx.plan(300)
    };
    let mut near_side = |ops| {
        let mut op_ns = Vec::with_capacity(ops);
        for _ in 0..ops {
            hold(&cache, n);
            n += 1;
            set(&mut conn, n);
            let written = Instant::now();
            while cache.get::<u64>("k").expect("get") != Some(n) {}
            op_ns.push(written.elapsed().as_nanos() as u64);
        }
        Round::from_ops(op_ns)
    };
    let plain_side = |ops| {
        let mut conn = redis::Client::open(server.url())
            .and_then(|c| c.get_connection())
            .expect("raw connection");
        let mut op_ns = Vec::with_capacity(ops);
        for i in 0..ops {
            let v = 1_000_000 + i as u64;
            let () = redis::cmd("SET")
                .arg("plain")
                .arg(v)
                .query(&mut conn)
                .expect("SET");
            let written = Instant::now();
            let got: u64 = redis::cmd("GET").arg("plain").query(&mut raw).expect("GET");
            assert_eq!(got, v);
            op_ns.push(written.elapsed().as_nanos() as u64);
        }
        Round::from_ops(op_ns)
    };
    Outcome::new(interleave(&plan, &mut near_side, plain_side), Unit::Tail)
}

fn memory_bound(ctx: &Ctx) -> Outcome {
    let total: usize = if ctx.quick { 200_000 } else { 1_000_000 };
    let server = server();
    let mut conn = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let payload = serde_json::to_vec(&value(SMALL)).expect("JSON");
    let key = |i: usize| format!("near-mem:{i:07}");
    for chunk in (0..total).collect::<Vec<_>>().chunks(10_000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            pipe.cmd("SET")
                .arg(key(i))
                .arg(&payload)
                .arg("EX")
                .arg(3600)
                .ignore();
        }
        let () = pipe.query(&mut conn).expect("SET pipeline");
    }
    let cache = Cache::builder()
        .url(&server.url())
        .local_cache(total as u64)
        .local_cache_bytes(BOUND_MIB << 20)
        .build()
        .expect("rc near cache");
    // Tracking on, and one batch's buffers allocated, before the baseline.
    let first: Vec<String> = (0..1000).map(key).collect();
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while cache.stats().local_hits == 0 {
        assert!(Instant::now() < deadline, "tracking never started");
        black_box(cache.get_many::<String, _, _>(&first).expect("get_many"));
    }
    let before = rss_bytes();
    for start in (0..total).step_by(1000) {
        let keys: Vec<String> = (start..start + 1000).map(key).collect();
        let got = cache.get_many::<String, _, _>(&keys).expect("get_many");
        assert!(got.iter().all(Option::is_some), "every key is there");
    }
    let after = rss_bytes();
    let stats = cache.stats();
    let mut out = Outcome::new(Comparison::values(after, before), Unit::Memory);
    out.note = Some(format!(
        "{total} distinct keys read; the near cache holds {} of them at the end ({} local hits)",
        stats.local_entries, stats.local_hits
    ));
    drop(cache);
    out
}

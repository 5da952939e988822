//! Rows against peers and limits: the `cached` crate's Redis-backed
//! functions, raw multiplexed throughput, `redis-benchmark`, and memory.

use std::future::Future;
use std::hint::black_box;
use std::process::Command;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use cached::macros::concurrent_cached;
use rc::{AsyncCache, CborSerializer};

use super::decorated::{
    self, ASYNC_CACHE, IDS, LARGE, SMALL, large, large_async, small, small_async,
};
use super::{
    Ctx, Goal, Outcome, Row, Unit, on_worker, shared_server, time, time_each_async, value,
};
use crate::harness::{Comparison, Round, interleave, time_each};

/// Concurrent tasks of the throughput rows.
const TASKS: usize = 64;

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "vs-cached-sync-100B",
            measures: "a hit of rc's decorated `small` (`macro-hit-100B`) vs a hit of the same function under \
                       the `cached` crate (4.x) `#[concurrent_cached]` (its name for `#[io_cached]`) with a \
                       `RedisCache` store (r2d2 pool, MessagePack values) on the same server; per call",
            goal: Goal::AtMost(1.0),
            run: |ctx| vs_cached_sync(ctx, SMALL, small, peer_small),
        },
        Row {
            name: "vs-cached-sync-10KiB",
            measures: "as `vs-cached-sync-100B` with 10 KiB results",
            goal: Goal::AtMost(1.0),
            run: |ctx| vs_cached_sync(ctx, LARGE, large, peer_large),
        },
        Row {
            name: "vs-cached-async-100B",
            measures: "an awaited hit of rc's decorated `async fn small_async` (an `AsyncCache`) vs `cached`'s \
                       `#[concurrent_cached]` `async fn` with an `AsyncRedisCache` store, one call after \
                       another in a task of the one-worker runtime; per call",
            goal: Goal::AtMost(1.0),
            run: |ctx| vs_cached_async(ctx, Variant::Small),
        },
        Row {
            name: "vs-cached-async-10KiB",
            measures: "as `vs-cached-async-100B` with 10 KiB results",
            goal: Goal::AtMost(1.0),
            run: |ctx| vs_cached_async(ctx, Variant::Large),
        },
        Row {
            name: "vs-cached-async-10KiB-cbor",
            measures: "as `vs-cached-async-10KiB` with rc's cache built with `.serializer(CborSerializer)` \
                       (binary, as `cached`'s MessagePack), to tell the JSON decode apart from the rest",
            goal: Goal::AtMost(1.0),
            run: |ctx| vs_cached_async(ctx, Variant::LargeCbor),
        },
        Row {
            name: "async-64-tasks",
            measures: "throughput of 64 tokio tasks (on the one-worker runtime) calling the decorated `small_async` (hits, 100 B) vs 64 tasks \
                       doing raw `GET` + `serde_json::from_slice` on one cloned `MultiplexedConnection`; \
                       time per call = a round's wall time / its calls",
            goal: Goal::ShareAtLeast(0.9),
            run: async_64_vs_raw,
        },
        Row {
            name: "async-64-vs-redis-benchmark",
            measures: "the rc side of `async-64-tasks` vs `redis-benchmark -t get -c 64 -d 100` (C client, \
                       64 connections, no decode) against the same server: the ceiling, as a fraction",
            goal: Goal::Share,
            run: async_64_vs_redis_benchmark,
        },
        Row {
            name: "rss-1M-calls",
            measures: "resident memory (`VmRSS`) of the bench process after 1M calls of a decorated sync \
                       function over 10k distinct arguments (the first 10k miss and store, the rest hit) vs \
                       after its first 10k calls",
            goal: Goal::ExtraMibAtMost(10.0),
            run: rss_after_calls,
        },
    ]
}

/// Why a `cached` function failed (its macro needs an error type).
#[derive(Debug, Clone)]
pub struct PeerError(String);

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cached: {}", self.0)
    }
}

/// `cached`'s blocking Redis store for a function called `prefix`.
fn peer_store(prefix: &str) -> cached::RedisCache<u64, String> {
    cached::RedisCache::builder(prefix)
        .ttl_secs(3600)
        .connection_string(&shared_server().url())
        .build()
        .expect("cached RedisCache")
}

/// `cached`'s async Redis store for a function called `prefix`.
async fn peer_async_store(prefix: &str) -> cached::AsyncRedisCache<u64, String> {
    cached::AsyncRedisCache::builder(prefix)
        .ttl_secs(3600)
        .connection_string(&shared_server().url())
        .build()
        .await
        .expect("cached AsyncRedisCache")
}

/// [`small`] under `cached`.
#[concurrent_cached(
    map_error = r##"|e| PeerError(format!("{e:?}"))"##,
    ty = "cached::RedisCache<u64, String>",
    create = r##"{ peer_store("peer_small") }"##
)]
fn peer_small(id: u64) -> Result<String, PeerError> {
    black_box(id);
    Ok(value(SMALL))
}

/// [`large`] under `cached`.
#[concurrent_cached(
    map_error = r##"|e| PeerError(format!("{e:?}"))"##,
    ty = "cached::RedisCache<u64, String>",
    create = r##"{ peer_store("peer_large") }"##
)]
fn peer_large(id: u64) -> Result<String, PeerError> {
    black_box(id);
    Ok(value(LARGE))
}

/// [`small_async`] under `cached`.
#[concurrent_cached(
    map_error = r##"|e| PeerError(format!("{e:?}"))"##,
    ty = "cached::AsyncRedisCache<u64, String>",
    create = r##"{ peer_async_store("peer_small_async").await }"##
)]
async fn peer_small_async(id: u64) -> Result<String, PeerError> {
    black_box(id);
    Ok(value(SMALL))
}

/// [`large_async`] under `cached`.
#[concurrent_cached(
    map_error = r##"|e| PeerError(format!("{e:?}"))"##,
    ty = "cached::AsyncRedisCache<u64, String>",
    create = r##"{ peer_async_store("peer_large_async").await }"##
)]
async fn peer_large_async(id: u64) -> Result<String, PeerError> {
    black_box(id);
    Ok(value(LARGE))
}

fn vs_cached_sync(
    ctx: &Ctx,
    size: usize,
    rc: fn(u64) -> String,
    peer: fn(u64) -> Result<String, PeerError>,
) -> Outcome {
    decorated::prime(rc);
    for id in 0..IDS {
        black_box(peer(id).expect("cached call"));
    }
    let rc_side = |n| {
        time_each(n, |i| {
            black_box(rc(i as u64 % IDS));
        })
    };
    let peer_side = |n| {
        time_each(n, |i| {
            black_box(peer(i as u64 % IDS).expect("cached call"));
        })
    };
    let mut out = Outcome::latency(interleave(&ctx.plan(10_000), rc_side, peer_side));
    out.note = Some(codec_note(size));
    out
}

/// How much of a call rc's JSON decode of one value takes.
fn codec_note(size: usize) -> String {
    let json = serde_json::to_vec(&value(size)).expect("JSON");
    // The fastest of 5 batches: the decode's own cost, without wake-ups or other processes.
    let n = 2000;
    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                black_box(serde_json::from_slice::<String>(black_box(&json)).expect("JSON"));
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .fold(f64::INFINITY, f64::min);
    format!(
        "rc stores JSON (its default serializer, readable by Python rc) and `cached` MessagePack; \
         `serde_json` alone takes {} to decode one of these values",
        time(best)
    )
}

/// Which rc function an async peer row calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    /// `small_async` (100 B, JSON).
    Small,
    /// `large_async` (10 KiB, JSON).
    Large,
    /// `large_async_cbor` (10 KiB, CBOR).
    LargeCbor,
}

/// rc's async cache on the shared server, storing CBOR.
static CBOR_CACHE: LazyLock<AsyncCache> = LazyLock::new(|| {
    AsyncCache::builder()
        .url(&shared_server().url())
        .serializer(CborSerializer)
        .build_async()
        .expect("rc CBOR cache")
});

/// [`large_async`] on a CBOR cache.
#[rc::cache(cache = CBOR_CACHE, expire = 3600)]
async fn large_async_cbor(id: u64) -> String {
    black_box(id);
    value(LARGE)
}

fn vs_cached_async(ctx: &Ctx, variant: Variant) -> Outcome {
    let large = variant != Variant::Small;
    let rc = move |i: usize| async move {
        let id = i as u64 % IDS;
        black_box(match variant {
            Variant::Small => small_async(id).await,
            Variant::Large => large_async(id).await,
            Variant::LargeCbor => large_async_cbor(id).await,
        });
    };
    let peer = move |i: usize| async move {
        let id = i as u64 % IDS;
        let v = if large {
            peer_large_async(id).await
        } else {
            peer_small_async(id).await
        };
        black_box(v.expect("cached call"));
    };
    on_worker(async move {
        for id in 0..IDS as usize {
            rc(id).await;
            peer(id).await;
        }
    });
    let mut out = Outcome::latency(interleave(
        &ctx.plan(10_000),
        |n| time_each_async(n, rc),
        |n| time_each_async(n, peer),
    ));
    out.note = Some(match variant {
        Variant::Small => codec_note(SMALL),
        Variant::Large => codec_note(LARGE),
        Variant::LargeCbor => "rc decodes CBOR here, `cached` MessagePack".to_owned(),
    });
    out
}

/// Runs `op(i)` for `i in 0..n` spread over [`TASKS`] tasks; the round's
/// time per op is its wall time over `n`.
fn concurrent<F, Fut>(n: usize, op: F) -> Round
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let per_task = n.div_ceil(TASKS);
    on_worker(async move {
        let start = Instant::now();
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let op = op.clone();
                tokio::spawn(async move {
                    for j in 0..per_task {
                        op(((t * per_task + j) as u64) % IDS).await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("bench task");
        }
        Round::from_total(start.elapsed(), per_task * TASKS)
    })
}

/// The rc side of the throughput rows: decorated async hits from 64 tasks.
fn rc_64(n: usize) -> Round {
    concurrent(n, |id| async move {
        black_box(small_async(id).await);
    })
}

/// Primes `small_async` for every id.
fn prime_async() {
    on_worker(async {
        for id in 0..IDS {
            black_box(small_async(id).await);
        }
    });
}

fn async_64_vs_raw(ctx: &Ctx) -> Outcome {
    prime_async();
    let client = redis::Client::open(shared_server().url()).expect("redis client");
    let conn = on_worker(async move { client.get_multiplexed_async_connection().await })
        .expect("raw multiplexed connection");
    let raw = move |n| {
        let conn = conn.clone();
        concurrent(n, move |id| {
            let mut conn = conn.clone();
            async move {
                let key = decorated::key("small_async", id);
                let bytes: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .expect("GET");
                let v: String = serde_json::from_slice(&bytes.expect("a hit")).expect("JSON");
                black_box(v);
            }
        })
    };
    let before = ASYNC_CACHE.stats();
    let out = Outcome::new(interleave(&ctx.plan(200_000), rc_64, raw), Unit::Throughput);
    assert_eq!(
        ASYNC_CACHE.stats().misses,
        before.misses,
        "every measured rc call is a hit"
    );
    out
}

/// Runs `redis-benchmark` for `n` GETs with 64 clients; its requests per second.
fn redis_benchmark(port: u16, n: usize) -> f64 {
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-c",
            "64",
            "-n",
            &n.to_string(),
        ])
        .args(["-t", "get", "-d", "100", "--csv"])
        .output()
        .expect("run redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("\"GET\""))
        .and_then(|l| l.split(',').nth(1))
        .and_then(|rps| rps.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("no GET line in redis-benchmark's output: {text}"))
}

fn async_64_vs_redis_benchmark(ctx: &Ctx) -> Outcome {
    prime_async();
    let server = shared_server();
    // redis-benchmark's GET asks for this key; give it a 100-byte value so every GET hits.
    server.cli(&["SET", "key:__rand_int__", &"x".repeat(100)]);
    let port = server.port().expect("a TCP server");
    let ceiling = |n: usize| {
        let rps = redis_benchmark(port, n);
        Round::from_total(Duration::from_secs_f64(n as f64 / rps), n)
    };
    Outcome::new(
        interleave(&ctx.plan(200_000), rc_64, ceiling),
        Unit::Throughput,
    )
}

/// Resident memory of this process, from `/proc/self/status`.
pub(crate) fn rss_bytes() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status");
    kb * 1024.0
}

/// The function the memory row calls: its own keys, 100 B results.
#[rc::cache(cache = decorated::CACHE, expire = 3600)]
fn rss_probe(id: u64) -> String {
    black_box(id);
    value(SMALL)
}

fn rss_after_calls(ctx: &Ctx) -> Outcome {
    const DISTINCT: u64 = 10_000;
    let total: u64 = if ctx.quick { 200_000 } else { 1_000_000 };
    for id in 0..DISTINCT {
        black_box(rss_probe(id));
    }
    let after_10k = rss_bytes();
    for i in DISTINCT..total {
        black_box(rss_probe(i % DISTINCT));
    }
    let after_all = rss_bytes();
    let mut out = Outcome::new(Comparison::values(after_all, after_10k), Unit::Memory);
    if ctx.quick {
        out.note = Some(format!("quick run: {total} calls instead of 1M"));
    }
    out
}

//! Rows on one server: `Cache::get` and `AsyncCache::get` hits against the
//! raw `redis` crate doing the same GET and JSON decode.

use std::hint::black_box;
use std::sync::Arc;

use rc::{AsyncCache, Cache};

use super::{Ctx, EXPIRE, Goal, Outcome, Row, keys, on_worker, server, time_each_async, value};
use crate::harness::{interleave, time_each};

/// Distinct keys the single-server rows cycle through.
const KEYS: usize = 1000;

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "get-100B",
            measures: "`Cache::get::<String>` hits of 100-byte JSON values, one after another, vs raw \
                       `redis::Connection` (`Client::get_connection`) `GET` + `serde_json::from_slice::<String>`; \
                       per op",
            goal: Goal::AtMost(1.10),
            run: |ctx| get_hit(ctx, 100),
        },
        Row {
            name: "get-10KiB",
            measures: "as `get-100B` with 10 KiB values",
            goal: Goal::AtMost(1.10),
            run: |ctx| get_hit(ctx, 10 * 1024),
        },
        Row {
            name: "async-get-100B",
            measures: "`AsyncCache::get::<String>` hits, awaited one after another in a task of a tokio \
                       runtime with one worker, vs raw `MultiplexedConnection` `GET` + `serde_json::from_slice` in the same runtime",
            goal: Goal::AtMost(1.10),
            run: |ctx| async_get_hit(ctx, 100),
        },
        Row {
            name: "async-get-10KiB",
            measures: "as `async-get-100B` with 10 KiB values",
            goal: Goal::AtMost(1.10),
            run: |ctx| async_get_hit(ctx, 10 * 1024),
        },
    ]
}

/// Stores `KEYS` values of `size` bytes through rc; returns their keys.
fn fill(cache: &Cache, size: usize) -> Vec<String> {
    let keys = keys(KEYS);
    let v = value(size);
    assert!(
        cache
            .set_many(keys.iter().map(|k| (k.as_str(), &v)), EXPIRE)
            .expect("fill the server")
    );
    keys
}

/// The baseline's decode, as a user of the `redis` crate would write it.
fn decode(bytes: Option<Vec<u8>>) -> String {
    serde_json::from_slice(&bytes.expect("a hit")).expect("JSON")
}

fn get_hit(ctx: &Ctx, size: usize) -> Outcome {
    let server = server();
    let cache = Cache::open(&server.url()).expect("rc cache");
    let keys = fill(&cache, size);
    let mut conn = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let rc = |n| {
        time_each(n, |i| {
            let v: Option<String> = cache.get(&keys[i % KEYS]).expect("rc get");
            black_box(v.expect("a hit"));
        })
    };
    let raw = |n| {
        time_each(n, |i| {
            let bytes: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&keys[i % KEYS])
                .query(&mut conn)
                .expect("GET");
            black_box(decode(bytes));
        })
    };
    Outcome::latency(interleave(&ctx.plan(10_000), rc, raw))
}

fn async_get_hit(ctx: &Ctx, size: usize) -> Outcome {
    let server = server();
    let keys = Arc::new(fill(&Cache::open(&server.url()).expect("rc cache"), size));
    let cache = AsyncCache::open(&server.url()).expect("rc async cache");
    let client = redis::Client::open(server.url()).expect("redis client");
    let conn = on_worker(async move { client.get_multiplexed_async_connection().await })
        .expect("raw multiplexed connection");
    let rc = |n| {
        let (cache, keys) = (cache.clone(), keys.clone());
        time_each_async(n, move |i| {
            let (cache, keys) = (cache.clone(), keys.clone());
            async move {
                let v: Option<String> = cache.get(&keys[i % KEYS]).await.expect("rc get");
                black_box(v.expect("a hit"));
            }
        })
    };
    let raw = |n| {
        let (conn, keys) = (conn.clone(), keys.clone());
        time_each_async(n, move |i| {
            let (mut conn, keys) = (conn.clone(), keys.clone());
            async move {
                let bytes: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&keys[i % KEYS])
                    .query_async(&mut conn)
                    .await
                    .expect("GET");
                black_box(decode(bytes));
            }
        })
    };
    Outcome::latency(interleave(&ctx.plan(10_000), rc, raw))
}

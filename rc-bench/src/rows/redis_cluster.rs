//! Rows on a Redis Cluster of 3 primaries (`Cache::builder().redis_cluster`):
//! single-key calls and a decorated hit against the `redis` crate's own
//! cluster client, `get_many` against one `MGET` on one server, and a batch
//! against sequential calls.

use std::hint::black_box;
use std::sync::LazyLock;

use rc::testing::RedisCluster;
use rc::{Cache, Promise};

use super::{Ctx, EXPIRE, Goal, Outcome, Row, keys, server, value};
use crate::harness::{interleave, time_each};

/// Distinct keys (and decorated arguments) the rows cycle through.
const IDS: u64 = 1000;
/// Size of each value (its JSON encoding).
const SIZE: usize = 100;

/// The cluster of every row here: 3 primaries, no replicas.
static CLUSTER: LazyLock<RedisCluster> = LazyLock::new(|| RedisCluster::start(3, 0));
/// rc's blocking cache on it.
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .redis_cluster(CLUSTER.seed_urls())
        .build()
        .expect("rc cache on the cluster")
});

/// A decorated function with a 100-byte result, cached on the cluster.
#[rc::cache(cache = CACHE, expire = 3600)]
fn on_cluster(id: u64) -> String {
    black_box(id);
    value(SIZE)
}

pub fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "redis-cluster-get",
            measures: "`Cache::get::<String>` (100 B) on a Redis Cluster of 3 primaries vs the `redis` \
                       crate's `cluster::ClusterConnection`: `GET` + `serde_json::from_slice`; per call",
            goal: Goal::AtMost(1.10),
            run: get_vs_raw,
        },
        Row {
            name: "redis-cluster-set",
            measures: "`Cache::set` (100 B, 1 h) on the cluster (`SET .. EX` and the `DEL` of the key's \
                       lease, pipelined) vs `serde_json::to_vec` + `SET .. EX` on the `redis` crate's \
                       cluster connection; per call",
            goal: Goal::AtMost(1.25),
            run: set_vs_raw,
        },
        Row {
            name: "redis-cluster-macro-hit",
            measures: "a hit of `#[rc::cache(cache = CACHE)] fn on_cluster(id: u64) -> String` (100 B) on the \
                       cluster vs the same by hand on the `redis` crate's cluster connection: `format!` the \
                       key, `GET`, `serde_json::from_slice`; per call",
            goal: Goal::AtMost(1.10),
            run: macro_hit_vs_raw,
        },
        Row {
            name: "redis-cluster-get_many-vs-mget",
            measures: "`Cache::get_many::<String>` of 1000 keys (100 B) on the cluster (one pipeline per \
                       primary, all 3 at once) vs the floor: one raw `MGET` of 1000 keys on one server + \
                       `serde_json::from_slice` of each value",
            goal: Goal::AtMost(1.3),
            run: |ctx| get_many_vs_mget(ctx, false),
        },
        Row {
            name: "redis-cluster-get_many-tagged-vs-mget",
            measures: "as `redis-cluster-get_many-vs-mget` with the 1000 keys behind 3 hash tags, one per \
                       primary (`{t0}bench:0`, ..): one `MGET` per primary",
            goal: Goal::AtMost(1.3),
            run: |ctx| get_many_vs_mget(ctx, true),
        },
        Row {
            name: "redis-cluster-get_many-vs-raw",
            measures: "the `get_many` of `redis-cluster-get_many-vs-mget` vs the `redis` crate's cluster \
                       connection: `MGET` of the 1000 keys (which it splits per hash slot and sends one slot \
                       after the other) + `serde_json::from_slice` of each value",
            goal: Goal::FasterBy(5.0),
            run: get_many_vs_raw,
        },
        Row {
            name: "redis-cluster-batch-100",
            measures: "100 hits of `on_cluster` through one batch (one pipeline per primary) vs 100 \
                       sequential calls of `on_cluster`; per 100 calls",
            goal: Goal::FasterBy(10.0),
            run: batch_vs_sequential,
        },
    ]
}

/// The `redis` crate's blocking connection to the cluster.
fn raw() -> redis::cluster::ClusterConnection {
    redis::cluster::ClusterClient::new(CLUSTER.seed_urls())
        .and_then(|c| c.get_connection())
        .expect("raw cluster connection")
}

/// `GET key` + decode on the raw cluster connection.
fn raw_get(conn: &mut redis::cluster::ClusterConnection, key: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = redis::cmd("GET").arg(key).query(conn).expect("GET");
    bytes.map(|b| serde_json::from_slice(&b).expect("JSON"))
}

/// Stores the rows' values through rc; returns their keys.
fn fill() -> Vec<String> {
    let keys = keys(IDS as usize);
    let v = value(SIZE);
    let items = keys.iter().map(|k| (k.as_str(), &v));
    assert!(CACHE.set_many(items, EXPIRE).expect("fill"));
    keys
}

fn get_vs_raw(ctx: &Ctx) -> Outcome {
    let keys = fill();
    let mut conn = raw();
    let rc = |n| {
        time_each(n, |i| {
            let v: Option<String> = CACHE.get(&keys[i % keys.len()]).expect("get");
            black_box(v.expect("a hit"));
        })
    };
    let by_hand = |n| {
        time_each(n, |i| {
            black_box(raw_get(&mut conn, &keys[i % keys.len()]).expect("a hit"));
        })
    };
    Outcome::latency(interleave(&ctx.plan(10_000), rc, by_hand))
}

fn set_vs_raw(ctx: &Ctx) -> Outcome {
    let keys = keys(IDS as usize);
    let v = value(SIZE);
    let mut conn = raw();
    let rc = |n| {
        time_each(n, |i| {
            assert!(CACHE.set(&keys[i % keys.len()], &v, EXPIRE).expect("set"));
        })
    };
    let by_hand = |n| {
        time_each(n, |i| {
            let json = serde_json::to_vec(&v).expect("JSON");
            let () = redis::cmd("SET")
                .arg(&keys[i % keys.len()])
                .arg(json)
                .arg("EX")
                .arg(EXPIRE.expect("an expiry").as_secs())
                .query(&mut conn)
                .expect("SET");
        })
    };
    Outcome::latency(interleave(&ctx.plan(10_000), rc, by_hand))
}

fn macro_hit_vs_raw(ctx: &Ctx) -> Outcome {
    for id in 0..IDS {
        black_box(on_cluster(id));
    }
    let mut conn = raw();
    let rc = |n| {
        time_each(n, |i| {
            black_box(on_cluster(i as u64 % IDS));
        })
    };
    let by_hand = |n| {
        time_each(n, |i| {
            let key = format!("{} on_cluster {}", module_path!(), i as u64 % IDS);
            black_box(raw_get(&mut conn, &key).expect("a hit"));
        })
    };
    let before = CACHE.stats();
    let out = Outcome::latency(interleave(&ctx.plan(10_000), rc, by_hand));
    assert_eq!(
        CACHE.stats().misses,
        before.misses,
        "every rc call is a hit"
    );
    out
}

/// Keys `bench:0`.. or, `tagged`, the same keys behind three hash tags
/// (`{t0}`, `{t1}`, ..), one owned by each primary.
fn row_keys(tagged: bool) -> Vec<String> {
    let keys = keys(IDS as usize);
    if !tagged {
        return keys;
    }
    let owner = |t: &String| CLUSTER.primary_for_key(t);
    let mut tags: Vec<String> = Vec::new();
    for t in (0..).map(|i| format!("t{i}")) {
        if !tags.iter().any(|x| owner(x) == owner(&t)) {
            tags.push(t);
        }
        if tags.len() == 3 {
            break;
        }
    }
    keys.iter()
        .enumerate()
        .map(|(i, k)| format!("{{{}}}{k}", tags[i % 3]))
        .collect()
}

fn get_many_vs_mget(ctx: &Ctx, tagged: bool) -> Outcome {
    let keys = row_keys(tagged);
    let v = value(SIZE);
    assert!(
        CACHE
            .set_many(keys.iter().map(|k| (k.as_str(), &v)), EXPIRE)
            .expect("fill")
    );
    let single = server();
    let floor = Cache::open(&single.url()).expect("floor cache");
    assert!(
        floor
            .set_many(keys.iter().map(|k| (k.as_str(), &v)), EXPIRE)
            .expect("fill the floor")
    );
    let mut conn = redis::Client::open(single.url())
        .and_then(|c| c.get_connection())
        .expect("raw connection");
    let rc = |n| {
        time_each(n, |_| {
            let values: Vec<Option<String>> = CACHE.get_many(&keys).expect("get_many");
            assert!(values.iter().all(Option::is_some), "every key is a hit");
            black_box(values);
        })
    };
    let mget = |n| {
        time_each(n, |_| {
            let replies: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(&keys)
                .query(&mut conn)
                .expect("MGET");
            let values: Vec<String> = replies
                .into_iter()
                .map(|b| serde_json::from_slice(&b.expect("a hit")).expect("JSON"))
                .collect();
            black_box(values);
        })
    };
    Outcome::latency(interleave(&ctx.plan(300), rc, mget))
}

fn get_many_vs_raw(ctx: &Ctx) -> Outcome {
    let keys = fill();
    let mut conn = raw();
    let rc = |n| {
        time_each(n, |_| {
            let values: Vec<Option<String>> = CACHE.get_many(&keys).expect("get_many");
            assert!(values.iter().all(Option::is_some), "every key is a hit");
            black_box(values);
        })
    };
    let by_hand = |n| {
        time_each(n, |_| {
            let replies: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(&keys)
                .query(&mut conn)
                .expect("cluster MGET");
            let values: Vec<String> = replies
                .into_iter()
                .map(|b| serde_json::from_slice(&b.expect("a hit")).expect("JSON"))
                .collect();
            black_box(values);
        })
    };
    Outcome::latency(interleave(&ctx.plan(100), rc, by_hand))
}

fn batch_vs_sequential(ctx: &Ctx) -> Outcome {
    for id in 0..IDS {
        black_box(on_cluster(id));
    }
    let batched = |n| {
        time_each(n, |i| {
            let batch = CACHE.batch();
            let base = (i as u64 * 100) % IDS;
            let promises: Vec<Promise<String>> = (0..100)
                .map(|j| batch_on_cluster(&batch, (base + j) % IDS))
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
                black_box(on_cluster((base + j) % IDS));
            }
        })
    };
    Outcome::latency(interleave(&ctx.plan(200), batched, sequential))
}

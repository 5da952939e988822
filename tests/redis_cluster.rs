//! `Cache::builder().redis_cluster(..)`: every operation on a real Redis
//! Cluster (values checked against what the test stored and against the
//! nodes themselves), keys over many slots and nodes, a password, slot
//! migrations under traffic, and a killed primary (replica promoted).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use common::{TIMEOUT, cube, square};
use rc::testing::{RedisCluster, RedisServer};
use rc::{AsyncCache, Cache};

fn cache_on(cluster: &RedisCluster, namespace: &str) -> Cache {
    Cache::builder()
        .redis_cluster(cluster.seed_urls())
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
        .namespace(namespace)
        .build()
        .unwrap()
}

fn async_cache_on(cluster: &RedisCluster, namespace: &str) -> AsyncCache {
    Cache::builder()
        .redis_cluster(cluster.seed_urls())
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
        .namespace(namespace)
        .build_async()
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A blocking and an async cache on `cluster` without a namespace, and a
/// runtime for the async one.
fn both_faces(cluster: &RedisCluster) -> (Cache, AsyncCache, tokio::runtime::Runtime) {
    (
        cache_on(cluster, ""),
        async_cache_on(cluster, ""),
        runtime(),
    )
}

/// The raw bytes of `key` on the primary that owns it, as `redis-cli` prints them.
fn on_node(cluster: &RedisCluster, key: &str) -> String {
    cluster.cli(cluster.primary_for_key(key), &["GET", key])
}

#[test]
fn every_operation_on_a_cluster_sync_and_async() {
    let cluster = RedisCluster::start(3, 0);
    let cache = cache_on(&cluster, "s:");

    // Single keys land on the primary of their slot.
    assert_eq!(cache.get::<String>("missing").unwrap(), None);
    assert!(cache.set("greeting", &"hello", None).unwrap());
    assert_eq!(
        cache.get::<String>("greeting").unwrap().as_deref(),
        Some("hello")
    );
    assert_eq!(on_node(&cluster, "s:greeting"), "\"hello\"");
    let ttl = cache.ttl("greeting").unwrap().unwrap();
    assert!(ttl > Duration::from_secs(259_000), "{ttl:?}");
    assert!(cache.delete("greeting").unwrap());
    assert!(!cache.delete("greeting").unwrap());
    assert_eq!(cache.get::<String>("greeting").unwrap(), None);
    cache.ping().unwrap();

    // Many keys over every node and many slots, in key order.
    let keys: Vec<String> = (0..600).map(|i| format!("k{i}")).collect();
    let nodes: std::collections::BTreeSet<usize> = keys
        .iter()
        .map(|k| cluster.primary_for_key(format!("s:{k}")))
        .collect();
    assert_eq!(nodes.len(), 3, "the keys span every primary");
    let items: Vec<(String, u64)> = keys
        .iter()
        .zip(0u64..)
        .map(|(k, i)| (k.clone(), i * 7))
        .collect();
    assert!(cache.set_many(items.clone(), None).unwrap());
    let mut asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    asked.insert(300, "absent");
    asked.reverse();
    let got: Vec<Option<u64>> = cache.get_many(asked.iter().copied()).unwrap();
    for (key, value) in asked.iter().zip(&got) {
        let want = keys.iter().position(|k| k == key).map(|i| i as u64 * 7);
        assert_eq!(*value, want, "{key}");
    }
    for (k, v) in items.iter().step_by(97) {
        assert_eq!(on_node(&cluster, &format!("s:{k}")), v.to_string(), "{k}");
    }
    // Hash-tagged keys share a slot (one MGET); mixed with the others.
    let tagged: Vec<String> = (0..20).map(|i| format!("{{user7}}:{i}")).collect();
    assert!(
        cache
            .set_many(tagged.iter().map(|k| (k.as_str(), k.len())), None)
            .unwrap()
    );
    let mut mixed: Vec<&str> = tagged.iter().map(String::as_str).collect();
    mixed.extend(keys[..50].iter().map(String::as_str));
    let got: Vec<Option<usize>> = cache.get_many(mixed.iter().copied()).unwrap();
    for (k, v) in mixed.iter().zip(got) {
        let want = if k.starts_with('{') {
            k.len()
        } else {
            keys.iter().position(|x| x == k).unwrap() * 7
        };
        assert_eq!(v, Some(want), "{k}");
    }
    assert_eq!(cache.delete_many(asked.iter().copied()).unwrap(), 600);
    assert_eq!(cache.delete_many(mixed.iter().copied()).unwrap(), 20);
    let got: Vec<Option<u64>> = cache.get_many(asked.iter().copied()).unwrap();
    assert!(got.iter().all(Option::is_none));
    assert_eq!(
        cache.get_many::<u64, _, _>(Vec::<&str>::new()).unwrap(),
        vec![]
    );

    // Decorated calls (leases included), invalidation and batches.
    let calls = AtomicU32::new(0);
    for x in 0..50 {
        assert_eq!(square(&cache, &calls, x), x * x);
    }
    for x in 0..50 {
        assert_eq!(square(&cache, &calls, x), x * x);
    }
    assert_eq!(calls.load(SeqCst), 50, "the second round hits");
    assert!(common::invalidate_square(&cache, &calls, 3));
    assert_eq!(square(&cache, &calls, 3), 9);
    assert_eq!(calls.load(SeqCst), 51);
    let batch = cache.batch();
    let promises: Vec<_> = (40..80)
        .map(|x| common::batch_square(&batch, &cache, &calls, x))
        .collect();
    batch.run();
    for (x, p) in (40..80).zip(promises) {
        assert_eq!(p.into_value().unwrap(), x * x);
    }
    assert_eq!(calls.load(SeqCst), 51 + 30, "40..50 were cached");
    let stats = cache.stats();
    assert_eq!(stats.errors, 0, "{stats:?}");
    assert!(stats.hits >= 60, "{stats:?}");

    // Leases of keys with hash tags and braces stay in their key's slot:
    // a leased store (one EVAL on both keys) succeeds.
    for key in ["{t}lease", "a}b", "x{y}z", "}{"] {
        let calls = AtomicU32::new(0);
        let cache = cache_on(&cluster, key);
        assert_eq!(square(&cache, &calls, 11), 121);
        assert_eq!(square(&cache, &calls, 11), 121);
        assert_eq!(calls.load(SeqCst), 1, "namespace {key:?}: stored, then hit");
        assert_eq!(cache.stats().errors, 0, "namespace {key:?}");
    }

    // The async face, on the same cluster.
    let rt = runtime();
    rt.block_on(async {
        let cache = async_cache_on(&cluster, "a:");
        assert!(cache.set("one", &1, None).await.unwrap());
        assert_eq!(cache.get::<i32>("one").await.unwrap(), Some(1));
        assert!(cache.set_many(items.clone(), None).await.unwrap());
        let got: Vec<Option<u64>> = cache.get_many(asked.iter().copied()).await.unwrap();
        for (key, value) in asked.iter().zip(&got) {
            let want = keys.iter().position(|k| k == key).map(|i| i as u64 * 7);
            assert_eq!(*value, want, "{key}");
        }
        assert_eq!(on_node(&cluster, "a:k5"), "35");
        assert_eq!(cache.delete_many(asked.iter().copied()).await.unwrap(), 600);
        assert!(cache.delete("one").await.unwrap());
        let calls = AtomicU32::new(0);
        for _ in 0..2 {
            for x in 0..30 {
                assert_eq!(cube(&cache, &calls, x).await, x * x * x);
            }
        }
        assert_eq!(calls.load(SeqCst), 30);
        assert!(common::invalidate_cube(&cache, &calls, 2).await);
        assert_eq!(cube(&cache, &calls, 2).await, 8);
        assert_eq!(calls.load(SeqCst), 31);
        cache.ping().await.unwrap();
        assert_eq!(cache.stats().errors, 0);
    });
}

#[test]
fn a_password_is_used_on_every_node_and_never_shown() {
    let cluster = RedisCluster::builder()
        .primaries(2)
        .replicas(0)
        .password("s3cret-pw")
        .start();
    let cache = cache_on(&cluster, "");
    let keys: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
    assert!(
        cache
            .set_many(keys.iter().map(|k| (k.as_str(), k.as_str())), None)
            .unwrap()
    );
    let got: Vec<Option<String>> = cache.get_many(keys.iter()).unwrap();
    assert_eq!(got, keys.iter().cloned().map(Some).collect::<Vec<_>>());

    let wrong: Vec<String> = cluster
        .seed_urls()
        .iter()
        .map(|u| u.replace("s3cret-pw", "wrong-pw"))
        .collect();
    let cache = Cache::builder()
        .redis_cluster(&wrong)
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
        .build()
        .unwrap();
    let err = cache.get::<String>("p1").unwrap_err().to_string();
    assert!(err.contains("127.0.0.1:"), "names a node: {err}");
    assert!(
        !err.contains("wrong-pw") && !err.contains("s3cret"),
        "{err}"
    );
    assert!(!format!("{cache:?}").contains("wrong-pw"));
    // A password given to the builder applies to every node.
    let no_password: Vec<String> = cluster
        .seed_urls()
        .iter()
        .map(|u| u.replace(":s3cret-pw@", ""))
        .collect();
    let cache = Cache::builder()
        .redis_cluster(&no_password)
        .password("s3cret-pw")
        .build()
        .unwrap();
    assert_eq!(cache.get::<String>("p7").unwrap().as_deref(), Some("p7"));
}

#[test]
fn bad_combinations_are_clear_errors() {
    let err = |b: rc::CacheBuilder| b.build().unwrap_err().to_string();
    let seeds = ["redis://127.0.0.1:7000"];
    let e = err(Cache::builder().redis_cluster(seeds).url("redis://h"));
    assert!(e.contains("redis_cluster") && e.contains("url"), "{e}");
    let e = err(Cache::builder().redis_cluster(seeds).sentinel("m", seeds));
    assert!(e.contains("not both"), "{e}");
    let e = err(Cache::builder().redis_cluster(Vec::<String>::new()));
    assert!(e.contains("at least one"), "{e}");
    let e = err(Cache::builder().redis_cluster(["redis://127.0.0.1:7000/3"]));
    assert!(e.contains("db 3"), "{e}");
    let e = err(Cache::builder().redis_cluster(["redis://:pw@h:0"]));
    assert!(e.contains("port") && !e.contains(":pw@"), "{e}");
    let e = err(Cache::builder().redis_cluster(["redis+unix:///tmp/s.sock"]));
    assert!(e.contains("unix socket"), "{e}");
    let e = err(Cache::builder().sentinel("", ["redis://h:26379"]));
    assert!(e.contains("master name"), "{e}");
    let e = err(Cache::builder().sentinel("m", ["redis://h:26379"]).port(1));
    assert!(e.contains("sentinel") && e.contains("port"), "{e}");
}

#[test]
fn unreachable_seeds_fail_open_and_name_the_seeds() {
    let free = RedisServer::start();
    let url = free.url();
    drop(free); // nothing listens there now
    let cache = Cache::builder()
        .redis_cluster([url.as_str()])
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
        .build()
        .unwrap();
    let err = cache.get::<u64>("k").unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("Redis Cluster"), "{err}");
    let calls = AtomicU32::new(0);
    assert_eq!(square(&cache, &calls, 4), 16, "decorated calls fail open");
}

/// Once a layout lookup has failed and none is known (the cluster hangs),
/// calls fail at once (as on a server that is down) instead of each waiting
/// a lookup's timeouts, and the cache finds the cluster when it is back.
#[test]
fn with_no_layout_calls_fail_at_once_and_the_cluster_is_found_again() {
    let cluster = RedisCluster::start(1, 0);
    let builder = Cache::builder()
        .redis_cluster(cluster.seed_urls())
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
        .namespace("f:");
    cluster.pause(0);
    let cache = builder.clone().build().unwrap();
    let async_cache = builder.build_async().unwrap();
    let rt = runtime();
    assert!(cache.get::<u64>("k").unwrap_err().is_unavailable());
    assert!(
        rt.block_on(async_cache.get::<u64>("k"))
            .unwrap_err()
            .is_unavailable()
    );

    // One lookup's wait is 2 × TIMEOUT: 20 calls waiting it take 8 s.
    let start = Instant::now();
    for _ in 0..10 {
        let err = cache.get::<u64>("k").unwrap_err();
        assert!(
            err.is_unavailable() && err.to_string().contains("Redis Cluster"),
            "{err}"
        );
        let err = rt.block_on(async_cache.get::<u64>("k")).unwrap_err();
        assert!(err.is_unavailable(), "{err}");
    }
    assert!(
        start.elapsed() < 10 * TIMEOUT,
        "{:?} for 20 failed calls",
        start.elapsed()
    );

    cluster.resume(0);
    wait_for("the sync cache to find the cluster", || {
        cache.set("k", &1, None).is_ok()
    });
    wait_for("the async cache to find the cluster", || {
        rt.block_on(async_cache.set("k", &2, None)).is_ok()
    });
    assert_eq!(cache.get::<u64>("k").unwrap(), Some(2));
    assert_eq!(rt.block_on(async_cache.get::<u64>("k")).unwrap(), Some(2));
    assert_eq!(on_node(&cluster, "f:k"), "2");
}

#[test]
fn slot_migrations_under_traffic_cause_no_caller_visible_error() {
    let cluster = RedisCluster::start(2, 0);
    let cache = cache_on(&cluster, "");
    let keys: Vec<String> = (0..64).map(|i| format!("{{m}}{i}")).collect();
    let slot = RedisCluster::key_slot("{m}");
    let stop = Arc::new(AtomicBool::new(false));
    let written: Vec<(String, u64)> = keys.iter().cloned().zip(1..).collect();
    assert!(cache.set_many(written.clone(), None).unwrap());
    let traffic = {
        let (cache, stop, written) = (cache.clone(), Arc::clone(&stop), written.clone());
        thread::spawn(move || {
            let (mut rounds, calls) = (0u64, AtomicU32::new(0));
            while !stop.load(SeqCst) {
                let got: Vec<Option<u64>> = cache.get_many(written.iter().map(|(k, _)| k)).unwrap();
                for ((k, v), g) in written.iter().zip(got) {
                    assert_eq!(g, Some(*v), "{k}");
                }
                let (k, v) = &written[(rounds % 64) as usize];
                assert!(cache.set(k, v, None).unwrap());
                assert_eq!(cache.get::<u64>(k).unwrap(), Some(*v));
                let x = 1000 + rounds % 16;
                assert_eq!(square(&cache, &calls, x), x * x);
                rounds += 1;
            }
            rounds
        })
    };
    for round in 0..4 {
        let to = 1 - cluster.primary_for_slot(slot);
        cluster.migrate_slot(slot, to);
        thread::sleep(Duration::from_millis(50));
        assert_eq!(cluster.primary_for_slot(slot), to, "round {round}");
    }
    stop.store(true, SeqCst);
    let rounds = traffic.join().expect("no caller-visible error");
    assert!(rounds > 0);
    assert_eq!(cache.stats().errors, 0, "{:?}", cache.stats());
}

/// A slot half migrated for longer than rc's retries last: keys still on the
/// old owner are read there, new and moved ones through `ASK` redirections
/// (sync and async).
#[test]
fn a_long_slot_migration_is_served_through_ask_redirections() {
    let cluster = RedisCluster::start(2, 0);
    let cache = cache_on(&cluster, "");
    let rt = runtime();
    let async_cache = async_cache_on(&cluster, "");
    let keys: Vec<String> = (0..40).map(|i| format!("{{a}}{i}")).collect();
    let mut truth: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for (i, k) in keys[..20].iter().enumerate() {
        truth.insert(k.clone(), i as u64);
    }
    assert!(cache.set_many(truth.clone(), None).unwrap());
    let slot = RedisCluster::key_slot("{a}");
    let to = 1 - cluster.primary_for_slot(slot);
    cluster.begin_slot_migration(slot, to);
    let started = Instant::now();
    let mut round = 0u64;
    while started.elapsed() < Duration::from_millis(1500) {
        let k = &keys[20 + (round % 20) as usize];
        assert!(
            cache.set(k, &round, None).unwrap(),
            "a new key goes to the importing node"
        );
        truth.insert(k.clone(), round);
        assert_eq!(cache.get::<u64>(k).unwrap(), Some(round));
        let got: Vec<Option<u64>> = cache.get_many(&keys).unwrap();
        for (k, v) in keys.iter().zip(got) {
            assert_eq!(v, truth.get(k).copied(), "{k}");
        }
        // The async face, through the same redirections.
        let k = &keys[20 + ((round + 7) % 20) as usize];
        rt.block_on(async {
            assert!(async_cache.set(k, &round, None).await.unwrap());
            truth.insert(k.clone(), round);
            let got: Vec<Option<u64>> = async_cache.get_many(&keys).await.unwrap();
            for (k, v) in keys.iter().zip(got) {
                assert_eq!(v, truth.get(k).copied(), "async {k}");
            }
        });
        round += 1;
    }
    assert_eq!(async_cache.stats().errors, 0, "{:?}", async_cache.stats());
    cluster.finish_slot_migration(slot, to);
    let got: Vec<Option<u64>> = cache.get_many(&keys).unwrap();
    for (k, v) in keys.iter().zip(got) {
        assert_eq!(v, truth.get(k).copied(), "{k}");
        if let Some(want) = truth.get(k) {
            assert_eq!(cluster.cli(to, &["GET", k]), want.to_string(), "{k} moved");
        }
    }
    assert_eq!(cache.delete_many(&keys).unwrap(), truth.len() as u64);
    assert!(round > 2, "{round} rounds");
    assert_eq!(cache.stats().errors, 0, "{:?}", cache.stats());
}

/// Waits (bounded) until `check` holds.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// A primary that joins the cluster and takes a slot is found through the
/// `MOVED` its old owner answers: no rebuild of the cache.
#[test]
fn a_node_added_to_the_cluster_is_used_without_a_rebuild() {
    let cluster = RedisCluster::start(3, 0);
    let cache = cache_on(&cluster, "");
    // (built now: the harness cannot list a cluster with a node it does not know)
    let tagged = cache_on(&cluster, "{added}");
    let key = "{added}k";
    assert!(cache.set(key, &1u64, None).unwrap());
    let slot = RedisCluster::key_slot(key);
    let from = cluster.primary_for_slot(slot);
    // A fourth node, met by the others (the harness does not know it).
    let bus = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let extra = RedisServer::builder()
        .config("cluster-enabled", "yes")
        .config("cluster-port", &bus)
        .config("cluster-node-timeout", "2000")
        .start();
    let port = extra.port().unwrap().to_string();
    assert_eq!(
        cluster.cli(0, &["CLUSTER", "MEET", "127.0.0.1", &port, &bus]),
        "OK"
    );
    let new_id = extra.cli(&["CLUSTER", "MYID"]);
    wait_for("every node to know the new one, and it the slots", || {
        (0..3).all(|n| cluster.cli(n, &["CLUSTER", "NODES"]).contains(&new_id))
            && extra.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok")
    });
    // It takes the key's slot, key included.
    let slot = slot.to_string();
    let ok = |reply: String| assert_eq!(reply, "OK");
    ok(extra.cli(&[
        "CLUSTER",
        "SETSLOT",
        &slot,
        "IMPORTING",
        cluster.node_id(from),
    ]));
    ok(cluster.cli(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &new_id]));
    ok(cluster.cli(
        from,
        &["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS", key],
    ));
    ok(extra.cli(&["CLUSTER", "SETSLOT", &slot, "NODE", &new_id]));
    for n in 0..3 {
        ok(cluster.cli(n, &["CLUSTER", "SETSLOT", &slot, "NODE", &new_id]));
    }
    assert_eq!(
        cache.get::<u64>(key).unwrap(),
        Some(1),
        "read on the new node"
    );
    assert!(cache.set(key, &2u64, None).unwrap());
    assert_eq!(extra.cli(&["GET", key]), "2", "written on the new node");
    let calls = AtomicU32::new(0);
    let cache = tagged;
    assert_eq!(square(&cache, &calls, 9), 81);
    assert_eq!(square(&cache, &calls, 9), 81);
    assert_eq!(
        calls.load(SeqCst),
        1,
        "stored (leased) on the new node, then hit"
    );
    assert_eq!(cache.stats().errors, 0);
}

/// Kills a primary under decorated traffic and measures how long its keys
/// go unserved: fail-open calls keep answering with right values, and hits
/// come back once the replica is promoted.
#[test]
fn a_killed_primary_is_failed_over_without_a_wrong_value() {
    let cluster = RedisCluster::start(3, 1);
    let cache = cache_on(&cluster, "f:");
    let calls = AtomicU32::new(0);
    // Warm every key, then wait until the replicas have them.
    let xs: Vec<u64> = (0..200).collect();
    for &x in &xs {
        assert_eq!(square(&cache, &calls, x), x * x);
    }
    thread::sleep(Duration::from_millis(300));
    let victim = 0;
    let killed = Instant::now();
    cluster.kill(victim);
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            cluster.wait_for_failover(victim);
            Instant::now()
        });
        let mut first_hit_after_kill = None;
        let mut rounds = 0u32;
        let limit = killed + cluster.node_timeout() * 5 + Duration::from_secs(20);
        while Instant::now() < limit {
            let before = calls.load(SeqCst);
            for &x in &xs {
                assert_eq!(square(&cache, &calls, x), x * x, "never a wrong value");
            }
            rounds += 1;
            if calls.load(SeqCst) == before && first_hit_after_kill.is_none() {
                first_hit_after_kill = Some(Instant::now());
            }
            if first_hit_after_kill.is_some() && waiter.is_finished() {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        let promoted = waiter.join().unwrap();
        let back = first_hit_after_kill.expect("every key hits again");
        eprintln!(
            "cluster failover: promoted {:?} after the kill; all hits again {:?} after the kill \
             ({:?} after the promotion); {rounds} rounds of {} calls",
            promoted - killed,
            back - killed,
            back.saturating_duration_since(promoted),
            xs.len()
        );
        assert!(
            back <= promoted + cluster.node_timeout() + Duration::from_secs(2),
            "hits again within node timeout + 2 s of the promotion"
        );
    });
    assert!(
        cache.stats().errors > 0,
        "the outage was felt (and failed open)"
    );
}

#[test]
fn a_killed_primary_is_failed_over_async() {
    // Three primaries: a failover needs a majority of them to vote.
    let cluster = RedisCluster::start(3, 1);
    let rt = runtime();
    let cache = async_cache_on(&cluster, "fa:");
    let calls = AtomicU32::new(0);
    let xs: Vec<u64> = (0..100).collect();
    rt.block_on(async {
        for &x in &xs {
            assert_eq!(cube(&cache, &calls, x).await, x * x * x);
        }
    });
    thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    cluster.kill(1);
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            cluster.wait_for_failover(1);
            Instant::now()
        });
        let back = rt.block_on(async {
            let limit = killed + cluster.node_timeout() * 5 + Duration::from_secs(20);
            while Instant::now() < limit {
                let before = calls.load(SeqCst);
                for &x in &xs {
                    assert_eq!(cube(&cache, &calls, x).await, x * x * x);
                }
                if calls.load(SeqCst) == before && waiter.is_finished() {
                    return Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            None
        });
        let promoted = waiter.join().unwrap();
        let back = back.expect("every key hits again");
        eprintln!(
            "cluster failover (async): promoted {:?} after the kill; all hits again {:?} after the kill",
            promoted - killed,
            back - killed,
        );
        assert!(back <= promoted + cluster.node_timeout() + Duration::from_secs(2));
    });
}

/// The blocking or the async cache on one cluster, for tests run on both.
enum Face<'a> {
    Sync(&'a Cache),
    Async(&'a AsyncCache, &'a tokio::runtime::Runtime),
}

impl Face<'_> {
    fn name(&self) -> &'static str {
        match self {
            Face::Sync(_) => "sync",
            Face::Async(..) => "async",
        }
    }

    fn set_many(&self, items: &[(String, u64)]) -> bool {
        match self {
            Face::Sync(c) => c.set_many(items.to_vec(), None).unwrap(),
            Face::Async(c, rt) => rt.block_on(c.set_many(items.to_vec(), None)).unwrap(),
        }
    }

    fn delete_many(&self, keys: &[String]) -> u64 {
        match self {
            Face::Sync(c) => c.delete_many(keys).unwrap(),
            Face::Async(c, rt) => rt.block_on(c.delete_many(keys)).unwrap(),
        }
    }
}

/// 60 keys over many slots of every primary, then `tagged` keys in the
/// slot of `{tag}`.
fn keys_around(tag: &str, tagged: usize) -> Vec<String> {
    let spread = (0..60).map(|i| format!("{tag}-{i}"));
    spread
        .chain((0..tagged).map(|i| format!("{{{tag}}}{i}")))
        .collect()
}

/// How many keys the primaries hold (the source of truth for a delete).
fn keys_held(cluster: &RedisCluster) -> u64 {
    let held = |n| cluster.cli(n, &["DBSIZE"]).parse::<u64>().unwrap();
    cluster.primaries().into_iter().map(held).sum()
}

/// Zeroes every primary's command and error counters (`INFO`).
fn reset_stats(cluster: &RedisCluster) {
    for n in cluster.primaries() {
        assert_eq!(cluster.cli(n, &["CONFIG", "RESETSTAT"]), "OK");
    }
}

/// `field` of the `INFO section` line `name`, summed over the primaries:
/// `stat(c, "commandstats", "cmdstat_set", "calls")` is how many `SET`s
/// they ran (a redirected command does not run), `stat(c, "errorstats",
/// "errorstat_ASK", "count")` how many `ASK`s they answered.
fn stat(cluster: &RedisCluster, section: &str, name: &str, field: &str) -> u64 {
    let of = |n| {
        let info = cluster.cli(n, &["INFO", section]);
        let line = info
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")));
        line.and_then(|l| {
            l.split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{field}=")))
                .map(|v| v.trim().parse::<u64>().unwrap())
        })
        .unwrap_or(0)
    };
    cluster.primaries().into_iter().map(of).sum()
}

/// Moves `keys` of a slot being migrated from `from` to `to` now, so that
/// the slot's keys are split between both nodes.
fn move_keys(cluster: &RedisCluster, from: usize, to: usize, keys: &[String]) {
    let port = cluster.node(to).port().unwrap().to_string();
    let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
    args.extend(keys.iter().map(String::as_str));
    assert_eq!(cluster.cli(from, &args), "OK");
}

/// Writes every other key of `keys` (and every tagged key from 0 to 7),
/// then starts moving the slot of `{tag}` to the other primary with the
/// even ones of those tagged keys already moved: commands on that slot's
/// keys meet `ASK` and `TRYAGAIN`. Another caller's leases on the tagged
/// keys `leased` are moved too (their keys stay). Returns the slot and
/// its new owner.
fn half_migrated(
    cluster: &RedisCluster,
    face: &Face,
    tag: &str,
    keys: &[String],
    leased: &[u32],
) -> (u16, usize) {
    let tagged = |i: u32| format!("{{{tag}}}{i}");
    let slot = RedisCluster::key_slot(tagged(0));
    let written: Vec<(String, u64)> = keys
        .iter()
        .zip(0..)
        .filter(|(k, i)| i % 2 == 0 || (0..8).any(|t| **k == tagged(t)))
        .map(|(k, i)| (k.clone(), i))
        .collect();
    assert!(face.set_many(&written));
    let from = cluster.primary_for_slot(slot);
    let mut moved: Vec<String> = (0..8).step_by(2).map(tagged).collect();
    for &i in leased {
        let lease = format!("rc-lease:{}", tagged(i));
        let set = ["SET", &lease, "another-token", "PX", "600000"];
        assert_eq!(cluster.cli(from, &set), "OK");
        moved.push(lease);
    }
    let to = 1 - from;
    cluster.begin_slot_migration(slot, to);
    move_keys(cluster, from, to, &moved);
    (slot, to)
}

/// `delete_many` over a slot being migrated (its keys on both nodes) or
/// just moved (the cache's layout is stale) returns exactly how many keys
/// existed: a command that deleted keys is not sent again (it would find
/// none the second time), only the redirected ones are.
#[test]
fn delete_many_across_a_migration_counts_each_key_once() {
    let cluster = RedisCluster::start(2, 0);
    let (cache, async_cache, rt) = both_faces(&cluster);
    for face in [Face::Sync(&cache), Face::Async(&async_cache, &rt)] {
        // A slot half migrated.
        let tag = format!("del-{}", face.name());
        let keys = keys_around(&tag, 16);
        let (slot, to) = half_migrated(&cluster, &face, &tag, &keys, &[]);
        let existed = keys_held(&cluster);
        assert!(existed > 30, "{existed}");
        reset_stats(&cluster);
        assert_eq!(
            face.delete_many(&keys),
            existed,
            "{} migrating",
            face.name()
        );
        assert_eq!(keys_held(&cluster), 0, "every key deleted");
        let redirected = stat(&cluster, "errorstats", "errorstat_TRYAGAIN", "count")
            + stat(&cluster, "errorstats", "errorstat_ASK", "count");
        assert!(redirected > 0, "the delete met the migration");
        cluster.finish_slot_migration(slot, to);

        // A slot moved since the cache looked the layout up. (A layout
        // lookup of its own in between would avoid the `MOVED`: tried again.)
        let mut moved = 0;
        for round in 0..3 {
            let tag = format!("mv{round}-{}", face.name());
            let keys = keys_around(&tag, 16);
            let items: Vec<(String, u64)> = keys.iter().cloned().zip(0..).collect();
            assert!(face.set_many(&items[..items.len() - 3]));
            let slot = RedisCluster::key_slot(format!("{{{tag}}}"));
            cluster.migrate_slot(slot, 1 - cluster.primary_for_slot(slot));
            let existed = keys_held(&cluster);
            assert_eq!(existed, keys.len() as u64 - 3);
            reset_stats(&cluster);
            assert_eq!(face.delete_many(&keys), existed, "{} moved", face.name());
            assert_eq!(keys_held(&cluster), 0, "every key deleted");
            moved += stat(&cluster, "errorstats", "errorstat_MOVED", "count");
            if moved > 0 {
                break;
            }
        }
        assert!(moved > 0, "a delete met a MOVED");
    }
    assert_eq!(cache.stats().errors, 0, "{:?}", cache.stats());
    assert_eq!(async_cache.stats().errors, 0, "{:?}", async_cache.stats());
}

/// `set_many` over a slot being migrated stores every value, and runs each
/// `SET` once: a store that went through is not sent again with the keys
/// that were redirected. A lease its old node does not hold is voided on
/// the new one.
#[test]
fn set_many_across_a_migration_runs_each_set_once() {
    let cluster = RedisCluster::start(2, 0);
    let (cache, async_cache, rt) = both_faces(&cluster);
    for face in [Face::Sync(&cache), Face::Async(&async_cache, &rt)] {
        let tag = format!("set-{}", face.name());
        let keys = keys_around(&tag, 16);
        // Key 1 stays on the old owner, its lease is on the new one.
        let (slot, to) = half_migrated(&cluster, &face, &tag, &keys, &[1]);
        let items: Vec<(String, u64)> = keys.iter().cloned().zip(1000..).collect();
        reset_stats(&cluster);
        assert!(face.set_many(&items), "{}", face.name());
        assert_eq!(
            stat(&cluster, "commandstats", "cmdstat_set", "calls"),
            items.len() as u64,
            "{}: one SET a key",
            face.name()
        );
        assert!(stat(&cluster, "errorstats", "errorstat_ASK", "count") > 0);
        cluster.finish_slot_migration(slot, to);
        for (k, v) in &items {
            assert_eq!(on_node(&cluster, k), v.to_string(), "{} {k}", face.name());
        }
        let lease = format!("rc-lease:{{{tag}}}1");
        assert_eq!(
            cluster.cli(to, &["EXISTS", &lease]),
            "0",
            "the write voided it"
        );
    }
    assert_eq!(cache.stats().errors, 0, "{:?}", cache.stats());
    assert_eq!(async_cache.stats().errors, 0, "{:?}", async_cache.stats());
}

/// `ttl` of a key its slot's new owner holds while the slot is migrated
/// (the old owner answers `ASK`): the time it has left, from the new owner.
#[test]
fn ttl_follows_an_ask_redirection() {
    let cluster = RedisCluster::start(2, 0);
    let (cache, async_cache, rt) = both_faces(&cluster);
    let (moved, stays) = ("{ttl}moved".to_string(), "{ttl}stays".to_string());
    for key in [&moved, &stays] {
        assert!(cache.set(key, &1, Some(Duration::from_secs(100))).unwrap());
    }
    let slot = RedisCluster::key_slot(&moved);
    let from = cluster.primary_for_slot(slot);
    cluster.begin_slot_migration(slot, 1 - from);
    move_keys(&cluster, from, 1 - from, std::slice::from_ref(&moved));
    let left = |t: Option<Duration>| t.is_some_and(|t| t > Duration::from_secs(90));
    for key in [&moved, &stays] {
        let sync = cache.ttl(key);
        assert!(matches!(sync, Ok(t) if left(t)), "{key}: {sync:?}");
        let not_sync = rt.block_on(async_cache.ttl(key));
        assert!(matches!(not_sync, Ok(t) if left(t)), "{key}: {not_sync:?}");
    }
    let asked = stat(&cluster, "errorstats", "errorstat_ASK", "count");
    assert!(asked > 0, "the old owner answered ASK");
    cluster.finish_slot_migration(slot, 1 - from);
}

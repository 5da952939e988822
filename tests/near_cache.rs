//! The near cache (`local_cache`) against real redis-servers: values read
//! are checked against what other clients wrote, through their writes,
//! deletes, expiries, `FLUSHALL`, the invalidation connection being killed
//! and the server restarting, on the blocking and async faces and on a
//! sharded cluster.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rc::redis::{self, Commands};
use rc::testing::{DelayProxy, RedisServer};
use rc::{AsyncCache, Cache, CacheCluster, MemoryBackend};

/// Liveness bound for an invalidation to be applied (the goal, a few
/// milliseconds, is measured by the benchmarks, not here).
const BOUND: Duration = Duration::from_millis(500);

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(5);

fn near(server: &RedisServer, namespace: &str) -> Cache {
    Cache::builder()
        .url(&server.url())
        .namespace(namespace)
        .local_cache(1000)
        .build()
        .unwrap()
}

fn near_async(server: &RedisServer, namespace: &str) -> AsyncCache {
    AsyncCache::builder()
        .url(&server.url())
        .namespace(namespace)
        .local_cache(1000)
        .build_async()
        .unwrap()
}

/// Another client: a plain connection of the `redis` crate.
fn other(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

/// Writes `value` as JSON (what the caches decode) from another client.
fn write(conn: &mut redis::Connection, key: &str, value: u64) {
    let _: () = conn.set_ex(key, value.to_string(), 600).unwrap();
}

/// Waits until `f` holds, failing the test after [`PATIENCE`].
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Reads `key` until a read is served from process memory, and checks it
/// reads `want` meanwhile.
fn warm(cache: &Cache, key: &str, want: Option<u64>) {
    until(&format!("{key} served locally"), || {
        let before = cache.stats().local_hits;
        assert_eq!(cache.get::<u64>(key).unwrap(), want, "{key}");
        cache.stats().local_hits > before
    });
}

/// Reads `key` until it is `want` (within [`PATIENCE`]), then checks it
/// stays so for [`BOUND`]: the old value is never served again.
fn settles(cache: &Cache, key: &str, want: Option<u64>) {
    until(&format!("{key} == {want:?}"), || {
        cache.get::<u64>(key).unwrap() == want
    });
    let end = Instant::now() + BOUND;
    while Instant::now() < end {
        assert_eq!(cache.get::<u64>(key).unwrap(), want, "{key} went back");
    }
}

#[test]
fn own_writes_and_deletes_are_seen_at_once() {
    let server = RedisServer::start();
    let cache = near(&server, "own:");
    cache.set("k", &1u64, None).unwrap();
    warm(&cache, "k", Some(1));
    for v in 2..50u64 {
        cache.set("k", &v, None).unwrap();
        assert_eq!(cache.get::<u64>("k").unwrap(), Some(v));
        assert_eq!(cache.get::<u64>("k").unwrap(), Some(v));
    }
    assert!(cache.delete("k").unwrap());
    assert_eq!(cache.get::<u64>("k").unwrap(), None);
    cache.set_many([("a", 1u64), ("b", 2)], None).unwrap();
    warm(&cache, "a", Some(1));
    warm(&cache, "b", Some(2));
    cache.set_many([("a", 3u64), ("b", 4)], None).unwrap();
    assert_eq!(
        cache.get_many::<u64, _, _>(["a", "b"]).unwrap(),
        [Some(3), Some(4)]
    );
    assert_eq!(cache.delete_many(["a", "b"]).unwrap(), 2);
    assert_eq!(
        cache.get_many::<u64, _, _>(["a", "b"]).unwrap(),
        [None, None]
    );
}

#[test]
fn get_many_mixes_local_copies_and_one_read() {
    let server = RedisServer::start();
    let cache = near(&server, "many:");
    let mut conn = other(&server);
    for i in 0..10u64 {
        write(&mut conn, &format!("many:k{i}"), i);
    }
    for i in 0..5u64 {
        warm(&cache, &format!("k{i}"), Some(i));
    }
    let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
    let before = cache.stats();
    let got = cache.get_many::<u64, _, _>(&keys).unwrap();
    let want: Vec<Option<u64>> = (0..12).map(|i| (i < 10).then_some(i)).collect();
    assert_eq!(got, want);
    let after = cache.stats();
    assert_eq!(after.local_hits - before.local_hits, 5);
    assert_eq!(after.hits - before.hits, 10);
    assert_eq!(after.misses - before.misses, 2);
    assert!(after.local_entries >= 1, "{after:?}");
}

/// Writers on other connections bump per-key counters; readers check each
/// value against the history of what was written: a read that starts
/// [`BOUND`] after a write returned never sees an older value, and every
/// value read was written.
fn check_coherence(
    read: impl Fn(&str) -> Option<u64> + Sync,
    local_hits: impl Fn() -> u64,
    server: &RedisServer,
    ns: &str,
) {
    const KEYS: usize = 4;
    let history: Vec<Mutex<Vec<(u64, Instant)>>> = (0..KEYS)
        .map(|_| Mutex::new(vec![(0, Instant::now())]))
        .collect();
    let started: Vec<AtomicU64> = (0..KEYS).map(|_| AtomicU64::new(0)).collect();
    let mut conn = other(server);
    for k in 0..KEYS {
        write(&mut conn, &format!("{ns}k{k}"), 0);
    }
    let done = AtomicBool::new(false);
    let reads = AtomicU64::new(0);
    let hits_before = local_hits();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut conn = other(server);
            for n in 1..=300u64 {
                let k = (n as usize) % KEYS;
                started[k].store(n, SeqCst);
                write(&mut conn, &format!("{ns}k{k}"), n);
                history[k].lock().unwrap().push((n, Instant::now()));
                std::thread::sleep(Duration::from_millis(3));
            }
            done.store(true, SeqCst);
        });
        for _ in 0..2 {
            s.spawn(|| {
                let mut k = 0;
                while !done.load(SeqCst) {
                    k = (k + 1) % KEYS;
                    let t = Instant::now();
                    let floor = history[k]
                        .lock()
                        .unwrap()
                        .iter()
                        .rev()
                        .find(|(_, at)| *at + BOUND <= t)
                        .map_or(0, |(n, _)| *n);
                    let v = read(&format!("k{k}")).expect("a key that is always there");
                    let ceiling = started[k].load(SeqCst);
                    assert!(
                        v >= floor,
                        "k{k}: read {v}, but {floor} was written {BOUND:?} before"
                    );
                    assert!(
                        v <= ceiling,
                        "k{k}: read {v}, never written (last {ceiling})"
                    );
                    assert!(
                        v == 0 || v as usize % KEYS == k,
                        "k{k}: read another key's value {v}"
                    );
                    reads.fetch_add(1, SeqCst);
                }
            });
        }
    });
    // The final values, once the last invalidations are in.
    for (k, last) in started.iter().enumerate() {
        let last = last.load(SeqCst);
        until("final values", || read(&format!("k{k}")) == Some(last));
    }
    let served = local_hits() - hits_before;
    assert!(
        served > 100,
        "the near cache served only {served} of {} reads",
        reads.load(SeqCst)
    );
}

#[test]
fn coherent_with_other_clients_writes() {
    let server = RedisServer::start();
    let cache = near(&server, "co:");
    cache.set("warm", &0u64, None).unwrap();
    warm(&cache, "warm", Some(0));
    check_coherence(
        |k| cache.get(k).unwrap(),
        || cache.stats().local_hits,
        &server,
        "co:",
    );
}

#[test]
fn coherent_with_other_clients_writes_async() {
    let server = RedisServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cache = near_async(&server, "coa:");
    rt.block_on(async {
        cache.set("warm", &0u64, None).await.unwrap();
        until_async(&cache, "warm").await;
    });
    check_coherence(
        |k| rt.block_on(cache.get(k)).unwrap(),
        || cache.stats().local_hits,
        &server,
        "coa:",
    );
}

async fn until_async(cache: &AsyncCache, key: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let before = cache.stats().local_hits;
        cache.get::<u64>(key).await.unwrap();
        if cache.stats().local_hits > before {
            return;
        }
        assert!(Instant::now() < deadline, "{key} never served locally");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[test]
fn deletes_by_others_are_seen() {
    let server = RedisServer::start();
    let cache = near(&server, "del:");
    let mut conn = other(&server);
    write(&mut conn, "del:k", 7);
    warm(&cache, "k", Some(7));
    let _: () = conn.del("del:k").unwrap();
    settles(&cache, "k", None);
}

#[test]
fn killing_the_invalidation_connection_flushes_until_it_is_back() {
    let server = RedisServer::start();
    let cache = near(&server, "kill:");
    let mut conn = other(&server);
    for round in 0..3u64 {
        write(&mut conn, "kill:k", round * 10);
        settles(&cache, "k", Some(round * 10));
        warm(&cache, "k", Some(round * 10));
        // Killed, then written while nobody listens for invalidations.
        let killed = server.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]);
        assert_eq!(killed, "1", "one invalidation connection");
        write(&mut conn, "kill:k", round * 10 + 1);
        settles(&cache, "k", Some(round * 10 + 1));
        // Tracking comes back, and with it local copies and invalidations.
        warm(&cache, "k", Some(round * 10 + 1));
    }
}

#[test]
fn a_server_restart_flushes_local_copies() {
    let server = RedisServer::start();
    let cache = near(&server, "rs:");
    let mut conn = other(&server);
    write(&mut conn, "rs:k", 1);
    warm(&cache, "k", Some(1));
    server.restart();
    // The restarted server is empty: the local copy must not outlive it.
    settles(&cache, "k", None);
    let mut conn = other(&server);
    write(&mut conn, "rs:k", 2);
    settles(&cache, "k", Some(2));
    warm(&cache, "k", Some(2));
    write(&mut conn, "rs:k", 3);
    settles(&cache, "k", Some(3));
}

#[test]
fn flushall_drops_every_local_copy() {
    let server = RedisServer::start();
    let cache = near(&server, "fa:");
    let mut conn = other(&server);
    write(&mut conn, "fa:a", 1);
    write(&mut conn, "fa:b", 2);
    warm(&cache, "a", Some(1));
    warm(&cache, "b", Some(2));
    assert_eq!(server.cli(&["FLUSHALL"]), "OK");
    settles(&cache, "a", None);
    settles(&cache, "b", None);
    // Still tracking: new copies are kept and invalidated.
    write(&mut conn, "fa:a", 3);
    warm(&cache, "a", Some(3));
    write(&mut conn, "fa:a", 4);
    settles(&cache, "a", Some(4));
}

#[test]
fn namespaces_track_their_own_keys() {
    let server = RedisServer::start();
    let a = near(&server, "a:");
    let b = near(&server, "b:");
    let mut conn = other(&server);
    write(&mut conn, "a:k", 1);
    write(&mut conn, "b:k", 2);
    warm(&a, "k", Some(1));
    warm(&b, "k", Some(2));
    write(&mut conn, "a:k", 3);
    settles(&a, "k", Some(3));
    // b's copy is its own key's: still right, still local.
    let before = b.stats().local_hits;
    assert_eq!(b.get::<u64>("k").unwrap(), Some(2));
    assert_eq!(b.stats().local_hits, before + 1);
    write(&mut conn, "b:k", 4);
    settles(&b, "k", Some(4));
}

#[test]
fn a_local_copy_never_outlives_its_key() {
    // Without active expiry Redis drops an expired key only when it is
    // read: a copy kept past the key's TTL would then be served forever.
    let server = RedisServer::builder()
        .config("enable-debug-command", "yes")
        .start();
    assert_eq!(server.cli(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), "OK");
    let cache = near(&server, "ttl:");
    cache
        .set("k", &5u64, Some(Duration::from_millis(400)))
        .unwrap();
    let written = Instant::now();
    warm(&cache, "k", Some(5));
    while written.elapsed() < Duration::from_millis(350) {
        assert_eq!(cache.get::<u64>("k").unwrap(), Some(5));
    }
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(cache.get::<u64>("k").unwrap(), None, "served after its TTL");
    // Another client's write with a TTL.
    let mut conn = other(&server);
    let _: () = conn.pset_ex("ttl:j", "6", 300).unwrap();
    let written = Instant::now();
    warm(&cache, "j", Some(6));
    std::thread::sleep(
        Duration::from_millis(300).saturating_sub(written.elapsed()) + Duration::from_millis(10),
    );
    assert_eq!(cache.get::<u64>("j").unwrap(), None, "served after its TTL");
}

static RUNS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = cache, skip(cache))]
fn doubled(cache: &Cache, x: u64) -> u64 {
    let _ = cache;
    RUNS.fetch_add(1, SeqCst);
    x * 2
}

#[test]
fn decorated_calls_and_batches_use_local_copies() {
    let server = RedisServer::start();
    let cache = near(&server, "dec:");
    assert_eq!(doubled(&cache, 21), 42);
    let runs = RUNS.load(SeqCst);
    until("decorated hit served locally", || {
        let before = cache.stats().local_hits;
        assert_eq!(doubled(&cache, 21), 42);
        cache.stats().local_hits > before
    });
    assert_eq!(RUNS.load(SeqCst), runs, "hits never recompute");
    // Another client changes the stored result: the next calls see it.
    let key = server
        .cli(&["KEYS", "dec:*"])
        .trim_start_matches("1) ")
        .to_owned();
    let mut conn = other(&server);
    write(&mut conn, &key, 43);
    until("decorated call sees the new value", || {
        doubled(&cache, 21) == 43
    });
    // Invalidation drops the local copy at once.
    assert!(invalidate_doubled(&cache, 21));
    assert_eq!(doubled(&cache, 21), 42);
    assert_eq!(RUNS.load(SeqCst), runs + 1);
    // A batch: local copies and one read for the rest.
    let batch = cache.batch();
    let promises: Vec<_> = [21, 1, 2]
        .iter()
        .map(|&x| batch_doubled(&batch, &cache, x))
        .collect();
    batch.run();
    let got: Vec<u64> = promises
        .into_iter()
        .map(|p| p.into_value().unwrap())
        .collect();
    assert_eq!(got, [42, 2, 4]);
}

#[test]
fn a_cluster_flushes_only_the_server_that_lost_tracking() {
    let servers = [RedisServer::start(), RedisServer::start()];
    let cache = CacheCluster::builder()
        .host("s0", servers[0].host_config())
        .host("s1", servers[1].host_config())
        .local_cache(1000)
        .build()
        .unwrap();
    let backend = CacheCluster::builder()
        .host("s0", servers[0].host_config())
        .host("s1", servers[1].host_config())
        .build_backend()
        .unwrap();
    // One key on each server.
    let mut on: HashMap<&str, String> = HashMap::new();
    for i in 0.. {
        let key = format!("k{i}");
        let host = backend.host_for_key(&key).unwrap();
        let host = if host == "s0" { "s0" } else { "s1" };
        on.entry(host).or_insert(key);
        if on.len() == 2 {
            break;
        }
    }
    let (k0, k1) = (on["s0"].clone(), on["s1"].clone());
    let mut c0 = other(&servers[0]);
    let mut c1 = other(&servers[1]);
    write(&mut c0, &k0, 1);
    write(&mut c1, &k1, 1);
    warm(&cache, &k0, Some(1));
    warm(&cache, &k1, Some(1));
    assert_eq!(servers[1].cli(&["CLIENT", "KILL", "TYPE", "pubsub"]), "1");
    write(&mut c1, &k1, 2);
    settles(&cache, &k1, Some(2));
    // s0 kept tracking: its copy is still served locally.
    let before = cache.stats().local_hits;
    assert_eq!(cache.get::<u64>(&k0).unwrap(), Some(1));
    assert_eq!(cache.stats().local_hits, before + 1);
    write(&mut c0, &k0, 3);
    settles(&cache, &k0, Some(3));
    warm(&cache, &k1, Some(2));
    write(&mut c1, &k1, 4);
    settles(&cache, &k1, Some(4));
}

#[test]
fn the_invalidation_connection_closes_with_the_cache() {
    let server = RedisServer::start();
    let pubsub = || server.cli(&["CLIENT", "LIST", "TYPE", "pubsub"]);
    let cache = near(&server, "drop:");
    until("tracking connection open", || pubsub().contains("cmd="));
    let clone = cache.clone();
    drop(cache);
    std::thread::sleep(Duration::from_millis(300));
    assert!(pubsub().contains("cmd="), "a clone still uses it");
    drop(clone);
    until("tracking connection closed", || !pubsub().contains("cmd="));
}

#[test]
fn bad_near_cache_configuration_is_an_error() {
    let err = Cache::builder().local_cache(0).build().unwrap_err();
    assert!(err.to_string().contains("greater than zero"), "{err}");
    let err = Cache::builder()
        .local_cache(10)
        .build_with_backend(Arc::new(MemoryBackend::new()))
        .unwrap_err();
    assert!(err.to_string().contains("local_cache needs Redis"), "{err}");
}

#[test]
fn a_stalled_invalidation_connection_stops_local_reads() {
    let server = RedisServer::start();
    let proxy = DelayProxy::start(server.port().unwrap(), Duration::ZERO).unwrap();
    let timeout = Duration::from_millis(200);
    let cache = Cache::builder()
        .url(&format!("redis://127.0.0.1:{}", proxy.port()))
        .namespace("st:")
        .socket_timeout(timeout)
        .connect_timeout(timeout)
        .local_cache(100)
        .build()
        .unwrap();
    let mut conn = other(&server);
    write(&mut conn, "st:k", 1);
    warm(&cache, "k", Some(1));
    // The link stalls (nothing is lost, all is late), and another client
    // writes straight to the server: its invalidation is stuck.
    proxy.set_delay(Duration::from_secs(2));
    write(&mut conn, "st:k", 2);
    let stalled = Instant::now();
    let old = |r: &rc::Result<Option<u64>>| matches!(r, Ok(Some(1)));
    // Served locally until the heartbeat (100 ms of quiet, then a PING
    // unanswered within the timeout) gives tracking up...
    until(
        "the stale copy is given up",
        || !old(&cache.get::<u64>("k")),
    );
    let given_up = stalled.elapsed();
    assert!(given_up < Duration::from_secs(2), "took {given_up:?}");
    // ...and never again: reads go to Redis (and time out on the slow link).
    let end = Instant::now() + BOUND;
    while Instant::now() < end {
        let r = cache.get::<u64>("k");
        assert!(!old(&r), "served the old value again: {r:?}");
    }
    proxy.set_delay(Duration::ZERO);
    until("the new value", || {
        matches!(cache.get::<u64>("k"), Ok(Some(2)))
    });
    warm(&cache, "k", Some(2));
}

static ASYNC_RUNS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = cache, skip(cache))]
async fn tripled(cache: &AsyncCache, x: u64) -> u64 {
    let _ = cache;
    ASYNC_RUNS.fetch_add(1, SeqCst);
    x * 3
}

#[tokio::test]
async fn async_own_writes_decorated_calls_and_a_killed_connection() {
    let server = RedisServer::start();
    let cache = near_async(&server, "as:");
    cache.set("k", &1u64, None).await.unwrap();
    until_async(&cache, "k").await;
    for v in 2..20u64 {
        cache.set("k", &v, None).await.unwrap();
        assert_eq!(cache.get::<u64>("k").await.unwrap(), Some(v));
    }
    assert!(cache.delete("k").await.unwrap());
    assert_eq!(cache.get::<u64>("k").await.unwrap(), None);
    // Decorated: a hit served locally never recomputes; invalidation drops it.
    assert_eq!(tripled(&cache, 5).await, 15);
    let runs = ASYNC_RUNS.load(SeqCst);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let before = cache.stats().local_hits;
        assert_eq!(tripled(&cache, 5).await, 15);
        if cache.stats().local_hits > before {
            break;
        }
        assert!(Instant::now() < deadline, "never served locally");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(ASYNC_RUNS.load(SeqCst), runs);
    assert!(invalidate_tripled(&cache, 5).await);
    assert_eq!(tripled(&cache, 5).await, 15);
    assert_eq!(ASYNC_RUNS.load(SeqCst), runs + 1);
    // Another client's write while the invalidation connection is dead.
    let mut conn = other(&server);
    write(&mut conn, "as:j", 1);
    until_async(&cache, "j").await;
    assert_eq!(server.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]), "1");
    write(&mut conn, "as:j", 2);
    let deadline = Instant::now() + PATIENCE;
    while cache.get::<u64>("j").await.unwrap() != Some(2) {
        assert!(Instant::now() < deadline, "the old value stayed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let end = Instant::now() + BOUND;
    while Instant::now() < end {
        assert_eq!(cache.get::<u64>("j").await.unwrap(), Some(2));
    }
    until_async(&cache, "j").await;
    assert_eq!(
        cache.get_many::<u64, _, _>(["j", "none"]).await.unwrap(),
        [Some(2), None]
    );
}

#[tokio::test]
async fn an_async_cluster_keeps_each_host_coherent() {
    let servers = [RedisServer::start(), RedisServer::start()];
    let cache = CacheCluster::builder()
        .host("s0", servers[0].host_config())
        .host("s1", servers[1].host_config())
        .namespace("ac:")
        .local_cache(1000)
        .build_async()
        .unwrap();
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let values: Vec<(&str, u64)> = keys.iter().map(|k| (k.as_str(), 1)).collect();
    assert!(cache.set_many(values, None).await.unwrap());
    for k in &keys {
        until_async(&cache, k).await;
    }
    // Both hosts hold some of the keys; another client rewrites each key
    // on its own host (written to both: only the right one has it).
    let mut conns = [other(&servers[0]), other(&servers[1])];
    let mut held = [0, 0];
    for k in &keys {
        let full = format!("ac:{k}");
        for (s, (server, conn)) in servers.iter().zip(&mut conns).enumerate() {
            if server.cli(&["EXISTS", &full]) == "1" {
                write(conn, &full, 2);
                held[s] += 1;
            }
        }
    }
    assert!(
        held[0] > 0 && held[1] > 0 && held[0] + held[1] == keys.len(),
        "{held:?}"
    );
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = cache.get_many::<u64, _, _>(&keys).await.unwrap();
        if got.iter().all(|v| *v == Some(2)) {
            break;
        }
        assert!(got.iter().all(|v| v.is_some()), "{got:?}");
        assert!(Instant::now() < deadline, "stale: {got:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let before = cache.stats().local_hits;
    for k in &keys {
        until_async(&cache, k).await;
    }
    assert!(cache.stats().local_hits > before);
}

//! Concurrency against real `redis-server` processes: many threads and tasks
//! on shared keys with invalidations (no panic, no deadlock, only values the
//! body could have returned), isolation of namespaces and dbs, and passwords
//! never reaching logs or `Debug`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use rc::testing::RedisServer;
use rc::{AsyncCache, Cache, CacheCluster, ClusterConfig, Error, HostConfig};

static SERVER: LazyLock<RedisServer> = LazyLock::new(RedisServer::start);

/// Upper bound of each hammering test; past it the test fails as a deadlock.
const DEADLINE: Duration = Duration::from_secs(45);
/// Shared logical keys: few, so threads collide on them.
const KEYS: u64 = 8;

/// A small xorshift: deterministic per thread, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What the bodies returned: generation → key. A value returned by a
/// decorated call must be one of these.
struct Ledger {
    next: AtomicU64,
    issued: Mutex<HashMap<u64, u64>>,
}

impl Ledger {
    fn new() -> Self {
        Ledger {
            next: AtomicU64::new(0),
            issued: Mutex::new(HashMap::new()),
        }
    }

    fn issue(&self, k: u64) -> (u64, u64) {
        let generation = self.next.fetch_add(1, SeqCst) + 1;
        self.issued.lock().unwrap().insert(generation, k);
        (k, generation)
    }

    fn assert_issued(&self, k: u64, got: (u64, u64)) {
        assert_eq!(got.0, k, "a value of another key came back: {got:?}");
        let issued = self.issued.lock().unwrap().get(&got.1).copied();
        assert_eq!(
            issued,
            Some(k),
            "value {got:?} was never returned by the body for key {k}"
        );
    }

    fn bodies(&self) -> u64 {
        self.next.load(SeqCst)
    }
}

/// Waits for `n` workers that report on `rx`; a silent worker past
/// [`DEADLINE`] is a deadlock.
fn await_workers(rx: std::sync::mpsc::Receiver<usize>, n: usize, start: Instant) {
    for _ in 0..n {
        let left = DEADLINE.saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(_) => {}
            // Every sender is gone: a worker panicked; joining shows why.
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                panic!("workers did not finish within {DEADLINE:?}: deadlock")
            }
        }
    }
}

// ---------------------------------------------------------------- threads

static SYNC_LEDGER: LazyLock<Ledger> = LazyLock::new(Ledger::new);

#[rc::cache(cache = cache, skip(cache))]
fn shared_value(cache: &Cache, k: u64) -> (u64, u64) {
    let _ = cache;
    SYNC_LEDGER.issue(k)
}

#[test]
fn sixteen_threads_ten_thousand_decorated_calls_with_invalidations() {
    const THREADS: usize = 16;
    const CALLS: usize = 10_000;
    let cache = Cache::builder()
        .url(&SERVER.url())
        .namespace("threads:")
        .build()
        .unwrap();
    let start = Instant::now();
    let (tx, rx) = channel();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let cache = cache.clone();
            let tx = tx.clone();
            thread::spawn(move || {
                let mut rng = Rng::new(t as u64 + 1);
                let mut invalidated = 0u64;
                for _ in 0..CALLS {
                    let r = rng.next();
                    let k = r % KEYS;
                    if (r >> 32).is_multiple_of(10) {
                        invalidated += u64::from(invalidate_shared_value(&cache, k));
                    } else {
                        SYNC_LEDGER.assert_issued(k, shared_value(&cache, k));
                    }
                }
                tx.send(t).unwrap();
                invalidated
            })
        })
        .collect();
    drop(tx);
    await_workers(rx, THREADS, start);
    let invalidated: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let elapsed = start.elapsed();
    let stats = cache.stats();
    eprintln!(
        "{THREADS} threads x {CALLS} calls: {elapsed:?}, {} bodies, {invalidated} invalidations, {stats:?}",
        SYNC_LEDGER.bodies()
    );
    assert_eq!(stats.errors, 0, "no call failed under contention");
    assert!(invalidated > 0, "invalidations really interleaved");
    assert!(SYNC_LEDGER.bodies() >= KEYS, "every key was computed");
    assert!(stats.hits > 0, "values really were shared through Redis");
    // What Redis holds now is a value the body returned for that key.
    for k in 0..KEYS {
        if let Some(v) = cache
            .get::<(u64, u64)>(&format!("{} shared_value {k}", module_path!()))
            .unwrap()
        {
            SYNC_LEDGER.assert_issued(k, v);
        }
    }
}

static ASYNC_LEDGER: LazyLock<Ledger> = LazyLock::new(Ledger::new);

#[rc::cache(cache = cache, skip(cache))]
async fn shared_async(cache: &AsyncCache, k: u64) -> (u64, u64) {
    let _ = cache;
    tokio::task::yield_now().await;
    ASYNC_LEDGER.issue(k)
}

#[test]
fn thousand_async_tasks_with_invalidations() {
    const TASKS: usize = 1000;
    const CALLS: usize = 40;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cache = AsyncCache::builder()
        .url(&SERVER.url())
        .namespace("tasks:")
        .build_async()
        .unwrap();
    let start = Instant::now();
    let invalidated = rt.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let cache = cache.clone();
                tokio::spawn(async move {
                    let mut rng = Rng::new(t as u64 + 1000);
                    let mut invalidated = 0u64;
                    for _ in 0..CALLS {
                        let r = rng.next();
                        let k = r % KEYS;
                        if (r >> 32).is_multiple_of(10) {
                            invalidated += u64::from(invalidate_shared_async(&cache, k).await);
                        } else {
                            ASYNC_LEDGER.assert_issued(k, shared_async(&cache, k).await);
                        }
                    }
                    invalidated
                })
            })
            .collect();
        let all = async {
            let mut n = 0;
            for t in tasks {
                n += t.await.unwrap();
            }
            n
        };
        tokio::time::timeout(DEADLINE, all)
            .await
            .expect("tasks did not finish: deadlock")
    });
    let stats = cache.stats();
    eprintln!(
        "{TASKS} tasks x {CALLS} calls: {:?}, {} bodies, {invalidated} invalidations, {stats:?}",
        start.elapsed(),
        ASYNC_LEDGER.bodies()
    );
    assert_eq!(stats.errors, 0, "no call failed under contention");
    assert!(invalidated > 0);
    assert!(stats.hits > 0);
    assert!(ASYNC_LEDGER.bodies() >= KEYS);
}

// ---------------------------------------------------------------- isolation

/// Which cache wrote a value: (cache tag, key, writer's counter).
type Tagged = (u32, u64, u64);

#[rc::cache(cache = cache, skip(cache, tag))]
fn whose(cache: &Cache, tag: u32, k: u64) -> (u32, u64) {
    let _ = cache;
    (tag, k)
}

#[rc::cache(cache = cache, skip(cache, tag))]
async fn whose_async(cache: &AsyncCache, tag: u32, k: u64) -> (u32, u64) {
    let _ = cache;
    (tag, k)
}

/// Namespace and db of each isolated cache; all use the same logical keys.
const PLACES: [(&str, i64); 5] = [
    ("iso-a:", 0),
    ("iso-b:", 0),
    ("", 1),
    ("", 2),
    ("iso-a:", 3),
];

fn isolated(tag: usize) -> rc::CacheBuilder {
    let (ns, db) = PLACES[tag];
    Cache::builder()
        .host_config(SERVER.host_config().db(db))
        .namespace(ns)
}

#[test]
fn values_never_cross_namespaces_or_dbs() {
    const ROUNDS: u64 = 1500;
    let caches: Vec<Cache> = (0..PLACES.len())
        .map(|t| isolated(t).build().unwrap())
        .collect();
    let start = Instant::now();
    let (tx, rx) = channel();
    let mut workers = Vec::new();
    // Two threads per cache, all caches at once.
    for (tag, cache) in caches.iter().enumerate() {
        for w in 0..2u64 {
            let cache = cache.clone();
            let tx = tx.clone();
            workers.push(thread::spawn(move || {
                let tag = tag as u32;
                let mut rng = Rng::new(u64::from(tag) * 10 + w + 7);
                for i in 0..ROUNDS {
                    let k = rng.next() % KEYS;
                    let key = format!("iso {k}");
                    match i % 4 {
                        0 => assert!(cache.set(&key, &(tag, k, i), None).unwrap()),
                        1 => {
                            if let Some((t, kk, _)) = cache.get::<Tagged>(&key).unwrap() {
                                assert_eq!((t, kk), (tag, k), "read another cache's value");
                            }
                        }
                        2 => {
                            let keys: Vec<String> = (0..KEYS).map(|k| format!("iso {k}")).collect();
                            for (k, v) in cache
                                .get_many::<Tagged, _, _>(&keys)
                                .unwrap()
                                .into_iter()
                                .enumerate()
                            {
                                if let Some((t, kk, _)) = v {
                                    assert_eq!((t, kk), (tag, k as u64), "get_many crossed caches");
                                }
                            }
                        }
                        _ => {
                            if rng.next().is_multiple_of(8) {
                                invalidate_whose(&cache, tag, k);
                            }
                            assert_eq!(
                                whose(&cache, tag, k),
                                (tag, k),
                                "decorated value crossed caches"
                            );
                        }
                    }
                }
                tx.send(tag as usize).unwrap();
            }));
        }
    }
    drop(tx);
    await_workers(rx, workers.len(), start);
    for w in workers {
        w.join().unwrap();
    }
    // Every cache holds its own values for every key.
    for (tag, cache) in caches.iter().enumerate() {
        for k in 0..KEYS {
            let (t, kk, _) = cache.get::<Tagged>(&format!("iso {k}")).unwrap().unwrap();
            assert_eq!((t, kk), (tag as u32, k));
            assert_eq!(
                whose(cache, 99, k),
                (tag as u32, k),
                "served from this cache's store"
            );
        }
        assert_eq!(cache.stats().errors, 0);
    }
    // db 0 holds only the namespaced keys; the un-namespaced caches wrote elsewhere.
    for k in 0..KEYS {
        assert_eq!(SERVER.cli(&["EXISTS", &format!("iso {k}")]), "0");
        assert_eq!(SERVER.cli(&["EXISTS", &format!("iso-a:iso {k}")]), "1");
        assert_eq!(SERVER.cli(&["EXISTS", &format!("iso-b:iso {k}")]), "1");
    }
}

#[test]
fn async_values_never_cross_namespaces_or_dbs() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let caches: Vec<AsyncCache> = (0..PLACES.len())
        .map(|t| {
            isolated(t)
                .namespace(format!("async-{}", PLACES[t].0))
                .build_async()
                .unwrap()
        })
        .collect();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for (tag, cache) in caches.iter().enumerate() {
            for w in 0..20u64 {
                let cache = cache.clone();
                tasks.push(tokio::spawn(async move {
                    let tag = tag as u32;
                    let mut rng = Rng::new(u64::from(tag) * 100 + w + 3);
                    for i in 0..100u64 {
                        let k = rng.next() % KEYS;
                        let key = format!("iso {k}");
                        if i.is_multiple_of(2) {
                            assert!(cache.set(&key, &(tag, k, i), None).await.unwrap());
                        }
                        if let Some((t, kk, _)) = cache.get::<Tagged>(&key).await.unwrap() {
                            assert_eq!((t, kk), (tag, k), "read another cache's value");
                        }
                        if i.is_multiple_of(10) {
                            invalidate_whose_async(&cache, tag, k).await;
                        }
                        assert_eq!(whose_async(&cache, tag, k).await, (tag, k));
                    }
                }));
            }
        }
        let all = async {
            for t in tasks {
                t.await.unwrap();
            }
        };
        tokio::time::timeout(DEADLINE, all)
            .await
            .expect("tasks did not finish: deadlock");
        for (tag, cache) in caches.iter().enumerate() {
            for k in 0..KEYS {
                assert_eq!(whose_async(cache, 99, k).await, (tag as u32, k));
            }
            assert_eq!(cache.stats().errors, 0);
        }
    });
}

// ---------------------------------------------------------------- passwords

const RIGHT_PASSWORD: &str = "Right-Pw-4c8e1b";
const WRONG_PASSWORD: &str = "Wrong-Pw-93d0aa";

/// Everything `tracing` printed in this test binary.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Installs (once) a global subscriber at TRACE level writing into a buffer.
fn captured_log() -> Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        log
    })
    .clone()
}

#[rc::cache(cache = cache, skip(cache))]
fn guarded(cache: &Cache, x: u32) -> u32 {
    let _ = cache;
    x + 1
}

#[rc::cache(cache = cache, skip(cache))]
async fn guarded_async(cache: &AsyncCache, x: u32) -> u32 {
    let _ = cache;
    x + 2
}

fn assert_no_password(what: &str, text: &str) {
    for secret in [RIGHT_PASSWORD, WRONG_PASSWORD] {
        assert!(!text.contains(secret), "{what} shows a password: {text}");
    }
}

fn assert_error_hides_password(e: &Error) {
    assert_no_password("error", &format!("{e} {e:?}"));
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        assert_no_password("error source", &format!("{s} {s:?}"));
        source = s.source();
    }
}

#[test]
fn passwords_never_appear_in_logs_or_debug() {
    let log = captured_log();
    let server = RedisServer::builder().password(RIGHT_PASSWORD).start();
    let port = server.port().unwrap();
    let timeout = Duration::from_millis(200);
    let wrong_host = HostConfig::new()
        .host("127.0.0.1")
        .port(port)
        .password(WRONG_PASSWORD);
    let by_builder = Cache::builder()
        .host_config(wrong_host.clone())
        .connect_timeout(timeout)
        .socket_timeout(timeout);
    let by_url = Cache::builder()
        .url(&format!("redis://:{WRONG_PASSWORD}@127.0.0.1:{port}/0"))
        .connect_timeout(timeout);
    let cluster = CacheCluster::builder()
        .host("one", wrong_host.clone())
        .host("two", wrong_host.clone().db(1))
        .connect_timeout(timeout);
    let cluster_cfg: ClusterConfig = serde_json::from_str(&format!(
        r#"{{"hosts": {{"c": {{"host": "127.0.0.1", "port": {port}, "password": "{WRONG_PASSWORD}"}}}}}}"#
    ))
    .unwrap();
    for shown in [
        format!("{by_builder:?}"),
        format!("{by_url:?}"),
        format!("{cluster:?}"),
        format!("{cluster_cfg:?}"),
        format!("{wrong_host:?} {}", wrong_host.address()),
        format!(
            "{server:?} {:?}",
            RedisServer::builder().password(RIGHT_PASSWORD)
        ),
    ] {
        assert_no_password("Debug", &shown);
    }

    let caches = [
        by_builder.build().unwrap(),
        by_url.build().unwrap(),
        cluster.build().unwrap(),
        cluster_cfg.into_builder().build().unwrap(),
    ];
    let mut errors = 0;
    for cache in &caches {
        assert_no_password("Debug", &format!("{cache:?}"));
        for round in 0..3 {
            for r in [
                cache.get::<u32>("k").map(drop),
                cache.set("k", &1, None).map(drop),
                cache.get_many::<u32, _, _>(["a", "b", "c"]).map(drop),
                cache.delete_many(["a", "b"]).map(drop),
            ] {
                let e = r.expect_err("a wrong password cannot work");
                assert_error_hides_password(&e);
                errors += 1;
            }
            assert_eq!(guarded(cache, round), round + 1, "fails open");
            invalidate_guarded(cache, round);
            let batch = cache.batch();
            let p = batch_guarded(&batch, cache, 7);
            batch.run();
            assert_eq!(p.into_value(), Some(8));
            // Past the backoff: the next call probes the server again.
            thread::sleep(Duration::from_millis(120));
        }
        assert!(cache.stats().errors > 0);
    }
    assert!(errors > 0);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cache = AsyncCache::builder()
            .host_config(wrong_host.clone())
            .connect_timeout(timeout)
            .socket_timeout(timeout)
            .build_async()
            .unwrap();
        assert_no_password("Debug", &format!("{cache:?}"));
        for round in 0..3 {
            let e = cache.get::<u32>("k").await.unwrap_err();
            assert_error_hides_password(&e);
            assert_eq!(guarded_async(&cache, round).await, round + 2);
            tokio::time::sleep(Duration::from_millis(120)).await;
        }
    });

    // The right password works, and its caches do not print it either.
    let good = Cache::open(&server.url()).unwrap();
    assert!(good.set("k", &1, None).unwrap());
    assert_no_password("Debug", &format!("{good:?}"));
    server.kill();
    let e = good.get::<u32>("k").unwrap_err();
    assert_error_hides_password(&e);
    assert_eq!(guarded(&good, 1), 2);

    let text = log.text();
    // The capture works and saw the failures it must not leak from.
    assert!(text.contains("marked down"), "log: {text}");
    assert!(
        text.contains("WRONGPASS") || text.to_lowercase().contains("auth"),
        "log: {text}"
    );
    assert_no_password("log", &text);
}

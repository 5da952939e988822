//! Stampede protection beyond one process, stale-while-revalidate,
//! stale-if-error and expiry jitter, against a real redis-server, sync and
//! async. A value is made stale by shortening its key's time left (what a
//! reader measures staleness from), so no test sleeps through an expiry.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Barrier, LazyLock, Mutex};
use std::time::{Duration, Instant};

use rc::testing::RedisServer;
use rc::{AsyncCache, Cache};

static SERVER: LazyLock<RedisServer> = LazyLock::new(RedisServer::start);
static CACHE: LazyLock<Cache> = LazyLock::new(|| Cache::open(&SERVER.url()).unwrap());
static ASYNC: LazyLock<AsyncCache> = LazyLock::new(|| AsyncCache::open(&SERVER.url()).unwrap());

/// Leaves `key` `left` of its stored time: with a stale window `w`,
/// `w - 1` s left is one second past its expiry.
fn set_left(server: &RedisServer, key: &str, left: Duration) {
    let reply = server.cli(&["PEXPIRE", key, &left.as_millis().to_string()]);
    assert_eq!(reply, "1", "{key} is stored");
}

/// Waits (bounded) until `f` holds.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `f` on `n` threads released at once; returns their results.
fn at_once<T: Send + 'static>(n: usize, f: impl Fn(usize) -> T + Send + Sync + 'static) -> Vec<T> {
    let start = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (start, f) = (start.clone(), f.clone());
            std::thread::spawn(move || {
                start.wait();
                f(i)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

// ---- stale_while_revalidate ----

static SWR_VERSION: AtomicU32 = AtomicU32::new(1);
static SWR_RUNS: AtomicU32 = AtomicU32::new(0);
/// Held by the test to keep a refresh in its body.
static SWR_GATE: Mutex<()> = Mutex::new(());

#[rc::cache(cache = CACHE, module = "t", expire = 60, stale_while_revalidate = 30)]
fn swr(name: &str) -> String {
    SWR_RUNS.fetch_add(1, SeqCst);
    drop(SWR_GATE.lock().unwrap());
    format!("{name} v{}", SWR_VERSION.load(SeqCst))
}

#[test]
fn stale_while_revalidate_serves_stale_at_once_then_the_refreshed_value() {
    assert_eq!(swr("a"), "a v1");
    assert_eq!(SWR_RUNS.load(SeqCst), 1);
    assert_eq!(swr("a"), "a v1", "fresh hit");
    assert_eq!(SWR_RUNS.load(SeqCst), 1);
    let stats = CACHE.stats();

    SWR_VERSION.store(2, SeqCst);
    set_left(&SERVER, "t swr a", Duration::from_secs(29));
    // The refresh waits at the gate: every stale call must return meanwhile.
    let gate = SWR_GATE.lock().unwrap();
    let values = at_once(16, |_| swr("a"));
    assert!(values.iter().all(|v| v == "a v1"), "{values:?}");
    eventually("the refresh to start", || SWR_RUNS.load(SeqCst) == 2);
    assert_eq!(swr("a"), "a v1", "still stale while the refresh runs");
    drop(gate);
    eventually("the refreshed value", || {
        CACHE.get::<String>("t swr a").unwrap().as_deref() == Some("a v2")
    });
    assert_eq!(swr("a"), "a v2");
    assert_eq!(SWR_RUNS.load(SeqCst), 2, "exactly one refresh");
    let after = CACHE.stats();
    assert_eq!(after.refreshes - stats.refreshes, 1);
    assert!(after.stale_hits - stats.stale_hits >= 17);
    // Refreshed: fresh again, for expire + the window.
    let left = CACHE.ttl("t swr a").unwrap().unwrap();
    assert!(left > Duration::from_secs(29), "{left:?}");
}

static ASWR_VERSION: AtomicU32 = AtomicU32::new(1);
static ASWR_RUNS: AtomicU32 = AtomicU32::new(0);
static ASWR_GATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[rc::cache(cache = ASYNC, module = "t", expire = 60, stale_while_revalidate = 30)]
async fn swr_async(name: &str) -> String {
    ASWR_RUNS.fetch_add(1, SeqCst);
    drop(ASWR_GATE.lock().await);
    format!("{name} v{}", ASWR_VERSION.load(SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_async_refreshes_in_a_task() {
    assert_eq!(swr_async("a").await, "a v1");
    ASWR_VERSION.store(2, SeqCst);
    set_left(&SERVER, "t swr_async a", Duration::from_secs(29));
    let gate = ASWR_GATE.lock().await;
    let tasks: Vec<_> = (0..200)
        .map(|_| tokio::spawn(async { swr_async("a").await }))
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "a v1");
    }
    let end = Instant::now() + Duration::from_secs(10);
    while ASWR_RUNS.load(SeqCst) < 2 {
        assert!(Instant::now() < end, "the refresh did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(gate);
    while ASYNC
        .get::<String>("t swr_async a")
        .await
        .unwrap()
        .as_deref()
        != Some("a v2")
    {
        assert!(Instant::now() < end, "the refresh did not store");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(swr_async("a").await, "a v2");
    assert_eq!(ASWR_RUNS.load(SeqCst), 2, "exactly one refresh");
}

static TWO_SWR_RUNS: AtomicU32 = AtomicU32::new(0);
static TWO_SWR_GATE: Mutex<()> = Mutex::new(());

#[rc::cache(cache = cache, skip(cache), module = "t", expire = 60, stale_while_revalidate = 30)]
fn swr_shared(cache: &Cache, id: u32) -> String {
    let _ = cache;
    let run = TWO_SWR_RUNS.fetch_add(1, SeqCst);
    drop(TWO_SWR_GATE.lock().unwrap());
    format!("{id} run {run}")
}

/// Two caches (two processes) serve the same stale value: the lease lets
/// exactly one of them refresh it.
#[test]
fn two_caches_refresh_a_stale_value_once() {
    let caches = Arc::new([
        Cache::open(&SERVER.url()).unwrap(),
        Cache::open(&SERVER.url()).unwrap(),
    ]);
    assert_eq!(swr_shared(&caches[0], 1), "1 run 0");
    set_left(&SERVER, "t swr_shared 1", Duration::from_secs(29));
    let gate = TWO_SWR_GATE.lock().unwrap();
    let values = {
        let caches = caches.clone();
        at_once(8, move |i| swr_shared(&caches[i % 2], 1))
    };
    assert!(values.iter().all(|v| v == "1 run 0"), "{values:?}");
    eventually("a refresh to start", || TWO_SWR_RUNS.load(SeqCst) == 2);
    drop(gate);
    eventually("the refreshed value", || {
        caches[1]
            .get::<String>("t swr_shared 1")
            .unwrap()
            .as_deref()
            == Some("1 run 1")
    });
    // Both caches served stale hits, so both started refreshes (some may
    // take the lease only after the store: they find the value fresh).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(TWO_SWR_RUNS.load(SeqCst), 2, "one refresh in all");
    let refreshes: u64 = caches.iter().map(|c| c.stats().refreshes).sum();
    assert_eq!(refreshes, 1);
    assert!(caches.iter().all(|c| c.stats().stale_hits > 0));
}

static DOWN_RUNS: AtomicU32 = AtomicU32::new(0);
static DOWN_GATE: Mutex<()> = Mutex::new(());

#[rc::cache(cache = cache, skip(cache), module = "t", expire = 60, stale_while_revalidate = 30)]
fn swr_down(cache: &Cache, x: u64) -> u64 {
    let _ = cache;
    let run = DOWN_RUNS.fetch_add(1, SeqCst);
    drop(DOWN_GATE.lock().unwrap());
    x * 100 + u64::from(run)
}

/// Redis goes away while a background refresh computes: the refresh's store
/// fails (counted), nothing hangs or panics, and calls then fail open.
#[test]
fn redis_down_during_a_background_refresh() {
    let server = RedisServer::start();
    let cache = Arc::new(common::cache_for(&server));
    assert_eq!(swr_down(&cache, 7), 700);
    set_left(&server, "t swr_down 7", Duration::from_secs(29));
    let gate = DOWN_GATE.lock().unwrap();
    assert_eq!(swr_down(&cache, 7), 700, "stale, served at once");
    eventually("the refresh to start", || DOWN_RUNS.load(SeqCst) == 2);
    server.kill();
    let errors = cache.stats().errors;
    drop(gate);
    eventually("the refresh's store to fail", || {
        cache.stats().errors > errors
    });
    // Fails open: computed, the current value.
    assert_eq!(swr_down(&cache, 7), 702);
    server.restart();
    eventually("the server back", || cache.ping().is_ok());
    let v = swr_down(&cache, 7);
    assert_eq!(v, 703, "a miss on the empty server");
    assert_eq!(swr_down(&cache, 7), 703, "and stored");
}

static ADOWN_RUNS: AtomicU32 = AtomicU32::new(0);
static ADOWN_GATE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[rc::cache(cache = cache, skip(cache), module = "t", expire = 60, stale_while_revalidate = 30)]
async fn swr_down_async(cache: &AsyncCache, x: u64) -> u64 {
    let _ = cache;
    let run = ADOWN_RUNS.fetch_add(1, SeqCst);
    drop(ADOWN_GATE.lock().await);
    x * 100 + u64::from(run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_during_a_background_refresh_async() {
    let server = RedisServer::start();
    let cache = common::async_cache_for(&server);
    assert_eq!(swr_down_async(&cache, 7).await, 700);
    set_left(&server, "t swr_down_async 7", Duration::from_secs(29));
    let gate = ADOWN_GATE.lock().await;
    assert_eq!(
        swr_down_async(&cache, 7).await,
        700,
        "stale, served at once"
    );
    let end = Instant::now() + Duration::from_secs(10);
    while ADOWN_RUNS.load(SeqCst) < 2 {
        assert!(Instant::now() < end, "the refresh did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill();
    let errors = cache.stats().errors;
    drop(gate);
    while cache.stats().errors == errors {
        assert!(Instant::now() < end, "the refresh's store did not fail");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(swr_down_async(&cache, 7).await, 702, "fails open");
}

/// A cache-wide `stale_while_revalidate` on a function whose attribute does
/// not name it (its body may borrow): the caller that takes the lease
/// recomputes in the foreground; others get the stale value at once.
#[test]
fn a_builder_default_window_refreshes_in_the_foreground() {
    static VERSION: AtomicU32 = AtomicU32::new(1);
    static GATE: Mutex<()> = Mutex::new(());
    #[rc::cache(cache = cache, skip(cache), module = "t", expire = 60)]
    fn plain(cache: &Cache, id: &str) -> String {
        let _ = cache;
        drop(GATE.lock().unwrap());
        format!("{id} v{}", VERSION.load(SeqCst))
    }
    let cache = Arc::new(
        Cache::builder()
            .url(&SERVER.url())
            .namespace("fg:")
            .stale_while_revalidate(Duration::from_secs(30))
            .build()
            .unwrap(),
    );
    assert_eq!(plain(&cache, "a"), "a v1");
    VERSION.store(2, SeqCst);
    set_left(&SERVER, "fg:t plain a", Duration::from_secs(29));
    let gate = GATE.lock().unwrap();
    let refresher = {
        let cache = cache.clone();
        std::thread::spawn(move || plain(&cache, "a"))
    };
    eventually("the refresher to take the lease", || {
        SERVER.cli(&["EXISTS", "rc-lease:{fg:t plain a}"]) == "1"
    });
    assert_eq!(plain(&cache, "a"), "a v1", "stale at once meanwhile");
    drop(gate);
    assert_eq!(
        refresher.join().unwrap(),
        "a v2",
        "the refresher's own value"
    );
    assert_eq!(plain(&cache, "a"), "a v2");
}

static MANY_VERSION: AtomicU32 = AtomicU32::new(1);
/// Held by the test to keep refreshes in their bodies.
static MANY_GATE: Mutex<()> = Mutex::new(());

#[rc::cache(cache = CACHE, module = "t", expire = 60, stale_while_revalidate = 30)]
fn swr_many(i: u32) -> String {
    drop(MANY_GATE.lock().unwrap());
    format!("{i} v{}", MANY_VERSION.load(SeqCst))
}

/// More refreshes at once than the blocking face has refresh threads (64):
/// callers still get the stale value at once, and the refreshes that had to
/// wait for a thread run when one is free; none is lost.
#[test]
fn more_refreshes_than_refresh_threads_all_finish() {
    const KEYS: u32 = 100;
    for i in 0..KEYS {
        assert_eq!(swr_many(i), format!("{i} v1"));
    }
    MANY_VERSION.store(2, SeqCst);
    for i in 0..KEYS {
        set_left(&SERVER, &format!("t swr_many {i}"), Duration::from_secs(29));
    }
    let gate = MANY_GATE.lock().unwrap();
    for i in 0..KEYS {
        assert_eq!(
            swr_many(i),
            format!("{i} v1"),
            "stale at once, refresh threads busy"
        );
    }
    drop(gate);
    eventually("every refresh", || {
        (0..KEYS).all(|i| swr_many(i) == format!("{i} v2"))
    });
}

// ---- stale_if_error ----

static SIE_FAIL: Mutex<bool> = Mutex::new(false);
static SIE_VERSION: AtomicU32 = AtomicU32::new(1);

#[rc::cache(cache = CACHE, module = "t", expire = 60, stale_if_error = 3600)]
fn sie(id: u32) -> Result<String, String> {
    if *SIE_FAIL.lock().unwrap() {
        return Err("the database is down".into());
    }
    Ok(format!("{id} v{}", SIE_VERSION.load(SeqCst)))
}

#[test]
fn stale_if_error_returns_the_old_value_and_counts_it() {
    assert_eq!(sie(1), Ok("1 v1".into()));
    // rc's plain format, no envelope: what Python rc reads.
    let mut raw = CACHE.client("t sie 1").unwrap().get_connection().unwrap();
    let bytes: Vec<u8> = rc::redis::cmd("GET")
        .arg("t sie 1")
        .query(&mut raw)
        .unwrap();
    assert_eq!(bytes, br#""1 v1""#);
    // Fresh: a hit, the body does not run (it would fail).
    *SIE_FAIL.lock().unwrap() = true;
    assert_eq!(sie(1), Ok("1 v1".into()));
    let before = CACHE.stats().stale_served;
    // An hour minus a second left: a second past its expiry.
    set_left(&SERVER, "t sie 1", Duration::from_secs(3599));
    assert_eq!(sie(1), Ok("1 v1".into()), "the stale value stands in");
    assert_eq!(CACHE.stats().stale_served, before + 1);
    // Without a stale value the error is returned.
    assert_eq!(sie(2), Err("the database is down".into()));
    // Once the body works again, a stale value is recomputed.
    *SIE_FAIL.lock().unwrap() = false;
    SIE_VERSION.store(2, SeqCst);
    assert_eq!(sie(1), Ok("1 v2".into()));
    assert_eq!(CACHE.stats().stale_served, before + 1);
}

static ASIE_FAIL: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = ASYNC, module = "t", expire = 60, stale_if_error = 60)]
async fn sie_async(id: u32) -> Result<u32, String> {
    match ASIE_FAIL.load(SeqCst) {
        0 => Ok(id * 10),
        _ => Err("down".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_if_error_async() {
    assert_eq!(sie_async(4).await, Ok(40));
    ASIE_FAIL.store(1, SeqCst);
    set_left(&SERVER, "t sie_async 4", Duration::from_secs(59));
    let before = ASYNC.stats().stale_served;
    assert_eq!(sie_async(4).await, Ok(40));
    assert_eq!(ASYNC.stats().stale_served, before + 1);
    assert_eq!(sie_async(5).await, Err("down".into()));
}

/// A cache-wide default applies to every function; the attribute overrides it.
#[test]
fn builder_default_stale_if_error_and_the_attribute_override() {
    static FAIL: Mutex<bool> = Mutex::new(false);
    #[rc::cache(cache = cache, skip(cache), module = "t", expire = 60)]
    fn by_default(cache: &Cache, id: u32) -> Result<u32, String> {
        let _ = cache;
        if *FAIL.lock().unwrap() {
            Err("down".into())
        } else {
            Ok(id)
        }
    }
    #[rc::cache(cache = cache, skip(cache), module = "t", expire = 60, stale_if_error = 0)]
    fn turned_off(cache: &Cache, id: u32) -> Result<u32, String> {
        let _ = cache;
        if *FAIL.lock().unwrap() {
            Err("down".into())
        } else {
            Ok(id)
        }
    }
    let cache = Cache::builder()
        .url(&SERVER.url())
        .namespace("defaults:")
        .stale_if_error(Duration::from_secs(600))
        .build()
        .unwrap();
    assert_eq!(by_default(&cache, 1), Ok(1));
    assert_eq!(turned_off(&cache, 1), Ok(1));
    let left = cache.ttl("t by_default 1").unwrap().unwrap();
    assert!(
        left > Duration::from_secs(600),
        "stored for the window too: {left:?}"
    );
    let left = cache.ttl("t turned_off 1").unwrap().unwrap();
    assert!(left <= Duration::from_secs(60), "{left:?}");
    *FAIL.lock().unwrap() = true;
    set_left(&SERVER, "defaults:t by_default 1", Duration::from_secs(599));
    assert_eq!(by_default(&cache, 1), Ok(1), "the default applies");
    SERVER.cli(&["PEXPIRE", "defaults:t turned_off 1", "1"]);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(turned_off(&cache, 1), Err("down".into()));
    assert_eq!(cache.stats().stale_served, 1);
}

// ---- expire_jitter ----

#[rc::cache(cache = CACHE, module = "t", expire = 100, expire_jitter = 0.5)]
fn jittered(id: u32) -> u32 {
    id
}

#[test]
fn jitter_spreads_the_expiries_of_keys_written_together() {
    let lefts: Vec<Duration> = (0..50)
        .map(|i| {
            assert_eq!(jittered(i), i);
            CACHE.ttl(&format!("t jittered {i}")).unwrap().unwrap()
        })
        .collect();
    assert!(
        lefts
            .iter()
            .all(|l| *l >= Duration::from_secs(49) && *l <= Duration::from_secs(100)),
        "within [expire / 2, expire]: {lefts:?}"
    );
    let seconds: std::collections::HashSet<u64> = lefts.iter().map(Duration::as_secs).collect();
    assert!(
        seconds.len() >= 10,
        "spread over {} seconds only",
        seconds.len()
    );
}

#[rc::cache(cache = ASYNC, module = "t", expire = 100, expire_jitter = 0.5)]
async fn jittered_async(id: u32) -> u32 {
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_spreads_the_expiries_async() {
    let mut seconds = std::collections::HashSet::new();
    for i in 0..50 {
        assert_eq!(jittered_async(i).await, i);
        let left = ASYNC
            .ttl(&format!("t jittered_async {i}"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            left >= Duration::from_secs(49) && left <= Duration::from_secs(100),
            "{left:?}"
        );
        seconds.insert(left.as_secs());
    }
    assert!(
        seconds.len() >= 10,
        "spread over {} seconds only",
        seconds.len()
    );
}

// ---- across processes: two caches on one server ----

static TWO_RUNS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = cache, skip(cache), module = "t")]
fn shared(cache: &Cache, id: u32) -> String {
    let _ = cache;
    TWO_RUNS.fetch_add(1, SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    format!("value {id}")
}

/// Two caches (as two processes would) on one server: a miss whose lease the
/// other holds waits for its value instead of computing it too.
#[test]
fn two_caches_on_one_server_compute_once() {
    let caches: Arc<[Cache; 2]> = Arc::new([
        Cache::open(&SERVER.url()).unwrap(),
        Cache::open(&SERVER.url()).unwrap(),
    ]);
    let values = at_once(16, move |i| shared(&caches[i % 2], 1));
    assert!(values.iter().all(|v| v == "value 1"), "{values:?}");
    assert_eq!(TWO_RUNS.load(SeqCst), 1);
}

static ATWO_RUNS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = cache, skip(cache), module = "t")]
async fn shared_async(cache: &AsyncCache, id: u32) -> String {
    let _ = cache;
    ATWO_RUNS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    format!("value {id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_async_caches_on_one_server_compute_once() {
    let caches = Arc::new([
        AsyncCache::open(&SERVER.url()).unwrap(),
        AsyncCache::open(&SERVER.url()).unwrap(),
    ]);
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let caches = caches.clone();
            tokio::spawn(async move { shared_async(&caches[i % 2], 1).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "value 1");
    }
    assert_eq!(ATWO_RUNS.load(SeqCst), 1);
}

static PANIC_RUNS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = cache, skip(cache), module = "t")]
fn panics_first(cache: &Cache, id: u32) -> String {
    let _ = cache;
    if PANIC_RUNS.fetch_add(1, SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(200));
        panic!("the first computation fails");
    }
    format!("value {id}")
}

/// The computing cache's body panics while the other cache's callers wait
/// for its value: its lease is given back, so they compute at once rather
/// than wait out their bound.
#[test]
fn a_body_that_panics_while_another_cache_waits() {
    let wait = Duration::from_secs(5);
    let first = Arc::new(Cache::open(&SERVER.url()).unwrap());
    let second = Arc::new(
        Cache::builder()
            .url(&SERVER.url())
            .lease_wait(wait)
            .build()
            .unwrap(),
    );
    let leader = {
        let first = first.clone();
        std::thread::spawn(move || panics_first(&first, 1))
    };
    std::thread::sleep(Duration::from_millis(50)); // the first holds the lease
    let started = Instant::now();
    let values = at_once(4, move |_| panics_first(&second, 1));
    assert!(leader.join().is_err(), "the first computation panicked");
    assert!(values.iter().all(|v| v == "value 1"), "{values:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the lease was given back, not waited out: {:?}",
        started.elapsed()
    );
    assert_eq!(
        PANIC_RUNS.load(SeqCst),
        2,
        "one leader in the waiting cache"
    );
}

static APANIC_RUNS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = cache, skip(cache), module = "t")]
async fn panics_first_async(cache: &AsyncCache, id: u32) -> String {
    let _ = cache;
    if APANIC_RUNS.fetch_add(1, SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        panic!("the first computation fails");
    }
    format!("value {id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_panics_while_another_async_cache_waits() {
    let wait = Duration::from_secs(5);
    let first = Arc::new(AsyncCache::open(&SERVER.url()).unwrap());
    let second = Arc::new(
        AsyncCache::builder()
            .url(&SERVER.url())
            .lease_wait(wait)
            .build_async()
            .unwrap(),
    );
    let leader = tokio::spawn(async move { panics_first_async(&first, 1).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let second = second.clone();
            tokio::spawn(async move { panics_first_async(&second, 1).await })
        })
        .collect();
    assert!(leader.await.is_err(), "the first computation panicked");
    for w in waiters {
        assert_eq!(w.await.unwrap(), "value 1");
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the lease was given back, not waited out: {:?}",
        started.elapsed()
    );
    assert_eq!(
        APANIC_RUNS.load(SeqCst),
        2,
        "one leader in the waiting cache"
    );
}

/// Staleness on a `CacheCluster`: each key's value and time left come from its host.
#[test]
fn stale_if_error_on_a_cluster() {
    static FAIL: Mutex<bool> = Mutex::new(false);
    #[rc::cache(cache = cache, skip(cache), module = "t", expire = 60, stale_if_error = 600)]
    fn on_cluster(cache: &Cache, id: u32) -> Result<u32, String> {
        let _ = cache;
        if *FAIL.lock().unwrap() {
            Err("down".into())
        } else {
            Ok(id)
        }
    }
    let servers = [RedisServer::start(), RedisServer::start()];
    let cache = rc::CacheCluster::builder()
        .host("a", servers[0].host_config())
        .host("b", servers[1].host_config())
        .build()
        .unwrap();
    for id in 0..8 {
        assert_eq!(on_cluster(&cache, id), Ok(id));
    }
    *FAIL.lock().unwrap() = true;
    for id in 0..8 {
        let key = format!("t on_cluster {id}");
        let server = servers
            .iter()
            .find(|s| s.cli(&["EXISTS", &key]) == "1")
            .expect("stored on a host");
        set_left(server, &key, Duration::from_secs(599));
        assert_eq!(on_cluster(&cache, id), Ok(id), "stale stands in");
    }
    assert_eq!(cache.stats().stale_served, 8);
}

// ---- single flight in batches ----

static BATCH_RUNS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE, module = "t")]
fn batched(id: u32) -> String {
    BATCH_RUNS.fetch_add(1, SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    format!("value {id}")
}

#[test]
fn two_batches_that_need_the_same_missing_key_compute_it_once() {
    let values = at_once(2, |i| {
        let batch = CACHE.batch();
        // Each batch also has a key of its own, and the shared one.
        let own = batch_batched(&batch, 100 + i as u32);
        let shared = batch_batched(&batch, 1);
        batch.run();
        (own.into_value().unwrap(), shared.into_value().unwrap())
    });
    assert_eq!(values[0], ("value 100".to_string(), "value 1".to_string()));
    assert_eq!(values[1], ("value 101".to_string(), "value 1".to_string()));
    assert_eq!(BATCH_RUNS.load(SeqCst), 3, "the shared key once");
}

static ABATCH_RUNS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = ASYNC, module = "t")]
async fn batched_async(id: u32) -> String {
    ABATCH_RUNS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    format!("value {id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_async_batches_that_need_the_same_missing_key_compute_it_once() {
    let run = |i: u32| async move {
        let batch = ASYNC.batch();
        let own = batch_batched_async(&batch, 100 + i);
        let shared = batch_batched_async(&batch, 1);
        batch.run().await;
        (own.into_value().unwrap(), shared.into_value().unwrap())
    };
    let (a, b) = tokio::join!(tokio::spawn(run(0)), tokio::spawn(run(1)));
    assert_eq!(a.unwrap(), ("value 100".to_string(), "value 1".to_string()));
    assert_eq!(b.unwrap(), ("value 101".to_string(), "value 1".to_string()));
    assert_eq!(ABATCH_RUNS.load(SeqCst), 3, "the shared key once");
}

static BSIE_VERSION: AtomicU32 = AtomicU32::new(1);
static BSIE_FAIL: Mutex<bool> = Mutex::new(false);
static BSIE_RUNS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE, module = "t", expire = 60, stale_if_error = 600)]
fn bsie(id: u32) -> Result<u32, String> {
    BSIE_RUNS.fetch_add(1, SeqCst);
    if *BSIE_FAIL.lock().unwrap() {
        return Err("down".into());
    }
    Ok(id + 1000 * BSIE_VERSION.load(SeqCst))
}

/// In a batch a stale value is computed again, and stands in for an `Err`.
#[test]
fn batches_recompute_stale_values_and_fall_back_on_errors() {
    let run = || {
        let batch = CACHE.batch();
        let p = batch_bsie(&batch, 1);
        batch.run();
        p.into_value().unwrap()
    };
    assert_eq!(run(), Ok(1001));
    assert_eq!(run(), Ok(1001), "fresh hit");
    assert_eq!(BSIE_RUNS.load(SeqCst), 1);
    BSIE_VERSION.store(2, SeqCst);
    set_left(&SERVER, "t bsie 1", Duration::from_secs(599));
    assert_eq!(run(), Ok(2001), "stale: computed again");
    set_left(&SERVER, "t bsie 1", Duration::from_secs(599));
    *BSIE_FAIL.lock().unwrap() = true;
    let before = CACHE.stats().stale_served;
    assert_eq!(run(), Ok(2001), "the stale value stands in");
    assert_eq!(CACHE.stats().stale_served, before + 1);
    assert_eq!(BSIE_RUNS.load(SeqCst), 3);
}

mod common;

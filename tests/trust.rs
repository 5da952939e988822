//! No read after a completed write returns an older value: deletes that
//! missed a frozen server are replayed before anything else reaches it, and
//! leases keep a slow miss from storing a value older than an invalidation.
//! Sync and async, against real redis-servers.

mod common;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Barrier, LazyLock, Mutex};
use std::time::Duration;

use common::{async_cache_for, cache_for};
use rc::testing::RedisServer;
use rc::{AsyncCache, Cache, CacheCluster};

/// The source of truth the cached functions read.
static TITLES: LazyLock<Mutex<std::collections::HashMap<u32, String>>> =
    LazyLock::new(Default::default);

fn title(id: u32) -> String {
    TITLES.lock().unwrap().get(&id).cloned().unwrap_or_default()
}

fn write_title(id: u32, t: &str) {
    TITLES.lock().unwrap().insert(id, t.to_owned());
}

/// Calls until `f` is true, for up to 15 s (a failed server is retried after its backoff).
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(15);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

static FROZEN: LazyLock<RedisServer> = LazyLock::new(RedisServer::start);
static FROZEN_CACHE: LazyLock<Cache> = LazyLock::new(|| cache_for(&FROZEN));

#[rc::cache(cache = FROZEN_CACHE, expire = 3600)]
fn post_title(id: u32) -> String {
    title(id)
}

/// The blog's measured problem: view a post, freeze Redis, edit the post
/// (its invalidation fails), thaw Redis: the old title must not come back.
#[test]
fn an_invalidation_that_missed_a_frozen_server_is_replayed() {
    write_title(150, "old");
    assert_eq!(post_title(150), "old");
    assert_eq!(FROZEN.cli(&["EXISTS", &post_title_key(150)]), "1");

    FROZEN.pause();
    // A read times out and marks the server down: the invalidation that
    // follows fails at once and is never sent (a timed-out command would
    // still run when the server thaws).
    assert!(FROZEN_CACHE.get::<String>("warm-up").is_err());
    write_title(150, "new");
    let err = try_invalidate_post_title(150).unwrap_err();
    assert!(matches!(err, rc::Error::HostDown { .. }), "{err}");
    assert_eq!(post_title(150), "new", "fails open while frozen");
    FROZEN.resume();

    // Every read after the failed invalidation answers the new title: the
    // delete reaches the server before the first command that follows.
    assert!(eventually(|| {
        let t = post_title(150);
        assert_eq!(
            t, "new",
            "a read after the invalidation returned the old value"
        );
        FROZEN.cli(&["GET", &post_title_key(150)]) == "\"new\""
    }));
}

fn post_title_key(id: u32) -> String {
    format!("{} post_title {id}", module_path!())
}

/// A direct `set` that failed is remembered too: the old value is deleted.
#[test]
fn a_failed_set_deletes_the_old_value_when_the_server_answers_again() {
    let server = RedisServer::start();
    let cache = cache_for(&server);
    cache.set("k", &"old", None).unwrap();
    server.pause();
    assert!(
        cache.get::<String>("warm-up").is_err(),
        "times out, marks the server down"
    );
    let err = cache.set("k", &"new", None).unwrap_err();
    assert!(matches!(err, rc::Error::HostDown { .. }), "{err}");
    server.resume();
    assert!(eventually(|| cache.get::<String>("k").is_ok()));
    assert_eq!(
        cache.get::<String>("k").unwrap(),
        None,
        "the old value is gone"
    );
}

#[tokio::test]
async fn async_an_invalidation_that_missed_a_frozen_server_is_replayed() {
    let server = RedisServer::start();
    let cache = async_cache_for(&server);
    cache.set("post:1", &"old", None).await.unwrap();
    server.pause();
    assert!(
        cache.get::<String>("warm-up").await.is_err(),
        "marks the server down"
    );
    let err = cache.delete("post:1").await.unwrap_err();
    assert!(matches!(err, rc::Error::HostDown { .. }), "{err}");
    server.resume();
    let end = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        match cache.get::<String>("post:1").await {
            Ok(v) => {
                assert_eq!(v, None, "the delete was replayed before the read");
                break;
            }
            Err(e) => assert!(
                std::time::Instant::now() < end,
                "server never came back: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.cli(&["EXISTS", "post:1"]), "0");
}

/// Each host of a cluster remembers its own missed deletes.
#[test]
fn a_cluster_replays_on_the_host_that_missed_the_delete() {
    let servers = [RedisServer::start(), RedisServer::start()];
    let cache = CacheCluster::builder()
        .host("a", servers[0].host_config())
        .host("b", servers[1].host_config())
        .socket_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    cache
        .set_many(keys.iter().map(|k| (k.as_str(), "old")), None)
        .unwrap();
    servers[1].pause();
    assert!(
        cache.get_many::<String, _, _>(&keys).is_err(),
        "marks host b down"
    );
    assert!(cache.delete_many(&keys).is_err(), "host b is frozen");
    servers[1].resume();
    assert!(eventually(|| cache.get_many::<String, _, _>(&keys).is_ok()));
    let values: Vec<Option<String>> = cache.get_many(&keys).unwrap();
    assert!(values.iter().all(Option::is_none), "{values:?}");
}

static RACE: LazyLock<RedisServer> = LazyLock::new(RedisServer::start);
static RACE_CACHE: LazyLock<Cache> = LazyLock::new(|| cache_for(&RACE));
static RACE_ASYNC: LazyLock<AsyncCache> = LazyLock::new(|| async_cache_for(&RACE));
static SLOW: LazyLock<Mutex<Option<Arc<Barrier>>>> = LazyLock::new(Default::default);
static SLOW_CALLS: AtomicU32 = AtomicU32::new(0);
/// The tests that park a computation on `SLOW` run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

#[rc::cache(cache = RACE_CACHE)]
fn slow_title(id: u32) -> String {
    SLOW_CALLS.fetch_add(1, SeqCst);
    let t = title(id);
    // Read the source, then wait while a writer updates it and invalidates.
    if let Some(b) = SLOW.lock().unwrap().take() {
        b.wait();
        b.wait();
    }
    t
}

/// The cache-aside race: a miss reads the source, a write and its
/// invalidation complete, then the slow miss stores what it read. With
/// leases the store is dropped and the next read computes the new value.
#[test]
fn a_slow_miss_never_stores_a_value_older_than_an_invalidation() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let calls = SLOW_CALLS.load(SeqCst);
    write_title(7, "v1");
    let b = Arc::new(Barrier::new(2));
    *SLOW.lock().unwrap() = Some(b.clone());
    let reader = std::thread::spawn(|| slow_title(7));
    b.wait(); // the reader has read "v1"
    write_title(7, "v2");
    assert!(!invalidate_slow_title(7), "nothing was cached yet");
    b.wait(); // let the reader store
    assert_eq!(
        reader.join().unwrap(),
        "v1",
        "the slow call returns what it read"
    );
    assert_eq!(slow_title(7), "v2", "but it did not store it");
    assert_eq!(slow_title(7), "v2");
    assert_eq!(
        SLOW_CALLS.load(SeqCst),
        calls + 2,
        "the second read was a hit"
    );
}

/// A direct write during the computation voids the lease as well.
#[test]
fn a_direct_set_during_a_miss_wins_over_the_slow_store() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    write_title(8, "computed");
    let b = Arc::new(Barrier::new(2));
    *SLOW.lock().unwrap() = Some(b.clone());
    let reader = std::thread::spawn(|| slow_title(8));
    b.wait();
    let key = format!("{} slow_title 8", module_path!());
    RACE_CACHE.set(&key, &"written", None).unwrap();
    b.wait();
    assert_eq!(reader.join().unwrap(), "computed");
    assert_eq!(
        RACE_CACHE.get::<String>(&key).unwrap().as_deref(),
        Some("written")
    );
}

static ASYNC_CALLS: AtomicU32 = AtomicU32::new(0);
static GATE: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(Default::default);

#[rc::cache(cache = RACE_ASYNC)]
async fn slow_title_async(id: u32) -> String {
    ASYNC_CALLS.fetch_add(1, SeqCst);
    let t = title(id);
    drop(GATE.lock().await); // held by the test while it writes
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_a_slow_miss_never_stores_a_value_older_than_an_invalidation() {
    write_title(9, "v1");
    let gate = GATE.lock().await;
    let reader = tokio::spawn(slow_title_async(9));
    while ASYNC_CALLS.load(SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    write_title(9, "v2");
    invalidate_slow_title_async(9).await;
    drop(gate);
    assert_eq!(reader.await.unwrap(), "v1");
    assert_eq!(
        slow_title_async(9).await,
        "v2",
        "the slow store was dropped"
    );
    assert_eq!(slow_title_async(9).await, "v2");
    assert_eq!(ASYNC_CALLS.load(SeqCst), 2);
}

static BATCH_CALLS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = RACE_CACHE)]
fn batch_title(id: u32) -> String {
    BATCH_CALLS.fetch_add(1, SeqCst);
    let t = title(id);
    if let Some(b) = SLOW.lock().unwrap().take() {
        b.wait();
        b.wait();
    }
    t
}

/// Batches take one lease per miss, in one round trip.
#[test]
fn a_batch_drops_the_stores_an_invalidation_voided() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    write_title(20, "a1");
    write_title(21, "b1");
    let b = Arc::new(Barrier::new(2));
    *SLOW.lock().unwrap() = Some(b.clone());
    let runner = std::thread::spawn(|| {
        let batch = RACE_CACHE.batch();
        let p20 = batch_batch_title(&batch, 20);
        let p21 = batch_batch_title(&batch, 21);
        batch.run();
        (p20.into_value().unwrap(), p21.into_value().unwrap())
    });
    b.wait(); // the first miss has read its source
    write_title(20, "a2");
    write_title(21, "b2");
    invalidate_batch_title(20);
    invalidate_batch_title(21);
    b.wait();
    let (a, _) = runner.join().unwrap();
    assert_eq!(a, "a1");
    assert_eq!(batch_title(20), "a2", "the voided store was dropped");
    assert_eq!(batch_title(21), "b2");
}

/// The record of missed deletes belongs to the server, not to one cache:
/// another cache of this process on the same server replays it too.
#[test]
fn another_cache_on_the_same_server_replays_a_missed_delete() {
    let server = RedisServer::start();
    let (a, b) = (cache_for(&server), cache_for(&server));
    a.set("k", &"old", None).unwrap();
    server.pause();
    assert!(a.get::<String>("warm-up").is_err(), "marks the server down");
    assert!(matches!(
        a.delete("k").unwrap_err(),
        rc::Error::HostDown { .. }
    ));
    server.resume();
    assert!(eventually(|| b.get::<String>("k").is_ok()));
    assert_eq!(
        b.get::<String>("k").unwrap(),
        None,
        "b replayed a's delete first"
    );
}

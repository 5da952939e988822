//! `#[rc::cache]` on async fns against a real redis-server.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use rc::testing::RedisServer;
use rc::{AsyncCache, Promise};

static SERVER: LazyLock<RedisServer> = LazyLock::new(RedisServer::start);
static CACHE: LazyLock<AsyncCache> = LazyLock::new(|| AsyncCache::open(&SERVER.url()).unwrap());

static FETCHES: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE, expire = 60)]
async fn fetch(id: u64) -> String {
    FETCHES.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(1)).await;
    format!("item {id}")
}

#[tokio::test]
async fn second_call_hits_and_invalidate_recomputes() {
    assert_eq!(fetch(1).await, "item 1");
    assert_eq!(fetch(1).await, "item 1");
    assert_eq!(FETCHES.load(SeqCst), 1);
    assert!(invalidate_fetch(1).await);
    assert_eq!(fetch(1).await, "item 1");
    assert_eq!(FETCHES.load(SeqCst), 2);
    assert_eq!(
        SERVER.cli(&["TTL", &format!("{} fetch 1", module_path!())]),
        "60"
    );
}

static HOT: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE)]
async fn hot(key: &str) -> u32 {
    HOT.fetch_add(1, SeqCst);
    7
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_tasks_on_one_key() {
    let tasks: Vec<_> = (0..100).map(|_| tokio::spawn(hot("the-key"))).collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 7);
    }
    let computed = HOT.load(SeqCst);
    assert!((1..=100).contains(&computed));
    // Once stored, every call hits.
    let tasks: Vec<_> = (0..100).map(|_| tokio::spawn(hot("the-key"))).collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 7);
    }
    assert_eq!(HOT.load(SeqCst), computed);
}

static SLOW: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE)]
async fn slow_identity(x: u32) -> u32 {
    SLOW.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(100)).await;
    x
}

#[rc::cache(cache = CACHE)]
async fn label(x: u32) -> Result<String, String> {
    if x == 0 {
        Err("zero".into())
    } else {
        Ok(format!("#{x}"))
    }
}

#[tokio::test]
async fn async_batch_runs_misses_concurrently_and_mixes_functions() {
    let batch = CACHE.batch();
    let ids: Vec<Promise<u32>> = (0..10).map(|i| batch_slow_identity(&batch, i)).collect();
    let labels: Vec<Promise<Result<String, String>>> =
        (0..3).map(|i| batch_label(&batch, i)).collect();
    let start = std::time::Instant::now();
    batch.run().await;
    // Ten 100 ms misses computed concurrently, not one after another.
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
    let got: Vec<u32> = ids.into_iter().map(|p| p.into_value().unwrap()).collect();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    let labels: Vec<_> = labels
        .into_iter()
        .map(|p| p.into_value().unwrap())
        .collect();
    assert_eq!(
        labels,
        vec![Err("zero".into()), Ok("#1".into()), Ok("#2".into())]
    );
    assert_eq!(SLOW.load(SeqCst), 10);
    for i in 0..10 {
        assert_eq!(slow_identity(i).await, i);
    }
    assert_eq!(SLOW.load(SeqCst), 10, "later plain calls hit");
    let zero_key = format!("{} label 0", module_path!());
    assert_eq!(SERVER.cli(&["EXISTS", &zero_key]), "0", "Err is not cached");
}

/// A `Result` alias that does not say `Result`.
type Fallible<T> = Result<T, String>;

static ALIASED: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE)]
async fn aliased(n: i64) -> Fallible<i64> {
    ALIASED.fetch_add(1, SeqCst);
    tokio::task::yield_now().await;
    if n < 0 {
        return Err(format!("{n} < 0"));
    }
    Ok(n * 2)
}

static IO_READS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE)]
async fn io_read(name: &str) -> std::io::Result<String> {
    IO_READS.fetch_add(1, SeqCst);
    if name.is_empty() {
        return Err(std::io::Error::other("no name"));
    }
    Ok(name.to_uppercase())
}

#[tokio::test]
async fn async_result_aliases_cache_only_ok() {
    assert_eq!(aliased(-1).await, Err("-1 < 0".into()));
    assert_eq!(aliased(-1).await, Err("-1 < 0".into()));
    assert_eq!(ALIASED.load(SeqCst), 2, "after an Err the body runs again");
    assert_eq!(aliased(4).await, Ok(8));
    assert_eq!(aliased(4).await, Ok(8));
    assert_eq!(ALIASED.load(SeqCst), 3, "Ok is cached");
    assert_eq!(
        SERVER.cli(&["GET", &format!("{} aliased 4", module_path!())]),
        "8"
    );
    assert_eq!(
        SERVER.cli(&["EXISTS", &format!("{} aliased -1", module_path!())]),
        "0"
    );

    assert!(io_read("").await.is_err());
    assert!(io_read("").await.is_err());
    assert_eq!(IO_READS.load(SeqCst), 2, "after an Err the body runs again");
    assert_eq!(io_read("a").await.unwrap(), "A");
    assert_eq!(io_read("a").await.unwrap(), "A");
    assert_eq!(IO_READS.load(SeqCst), 3, "Ok is cached");

    let batch = CACHE.batch();
    let err = batch_aliased(&batch, -2);
    let ok = batch_io_read(&batch, "a");
    batch.run().await;
    assert_eq!(err.into_value(), Some(Err("-2 < 0".into())));
    assert_eq!(ok.into_value().unwrap().unwrap(), "A");
    assert_eq!(IO_READS.load(SeqCst), 3, "the batch hit");
}

#[tokio::test]
async fn async_try_invalidate_tells_nothing_cached_from_a_failure() {
    let server = RedisServer::start();
    let cache = AsyncCache::builder()
        .url(&server.url())
        .connect_timeout(Duration::from_millis(200))
        .build_async()
        .unwrap();
    #[rc::cache(cache = cache, skip(cache))]
    async fn on(cache: &AsyncCache, n: u32) -> u32 {
        let _ = cache;
        n
    }
    assert!(
        !try_invalidate_on(&cache, 1).await.unwrap(),
        "nothing cached"
    );
    assert_eq!(on(&cache, 1).await, 1);
    assert!(try_invalidate_on(&cache, 1).await.unwrap());
    assert!(!try_invalidate_on(&cache, 1).await.unwrap());
    assert_eq!(on(&cache, 1).await, 1);
    server.kill();
    assert!(try_invalidate_on(&cache, 1).await.is_err());
    assert!(!invalidate_on(&cache, 1).await);
}

#[tokio::test]
async fn async_fail_open_when_the_server_is_killed() {
    let server = RedisServer::start();
    let cache = AsyncCache::builder()
        .url(&server.url())
        .connect_timeout(Duration::from_millis(200))
        .build_async()
        .unwrap();
    static CALLS: AtomicU32 = AtomicU32::new(0);
    #[rc::cache(cache = cache, skip(cache))]
    async fn tripled(cache: &AsyncCache, x: u32) -> u32 {
        let _ = cache;
        CALLS.fetch_add(1, SeqCst);
        x * 3
    }
    assert_eq!(tripled(&cache, 2).await, 6);
    assert_eq!(tripled(&cache, 2).await, 6);
    assert_eq!(CALLS.load(SeqCst), 1);
    server.kill();
    for _ in 0..5 {
        assert_eq!(tripled(&cache, 2).await, 6);
    }
    assert_eq!(CALLS.load(SeqCst), 6);
    assert!(cache.stats().errors >= 1);
}

//! Single flight: concurrent misses of one key in this process run the
//! function once; a leader that panics or fails wakes the others, who then
//! compute themselves; an invalidation voids a flight under way.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Barrier, LazyLock, Mutex};
use std::time::Duration;

use rc::testing::RedisServer;
use rc::{AsyncCache, Cache};

static SERVER: LazyLock<RedisServer> = LazyLock::new(RedisServer::start);
static CACHE: LazyLock<Cache> = LazyLock::new(|| Cache::open(&SERVER.url()).unwrap());
static ASYNC: LazyLock<AsyncCache> = LazyLock::new(|| AsyncCache::open(&SERVER.url()).unwrap());

/// Runs `f` on `n` threads released at once; returns their results.
fn at_once<T: Send + 'static>(
    n: usize,
    f: impl Fn() -> T + Send + Sync + 'static,
) -> Vec<std::thread::Result<T>> {
    let start = Arc::new(Barrier::new(n));
    let f = Arc::new(f);
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (start, f) = (start.clone(), f.clone());
            std::thread::spawn(move || {
                start.wait();
                f()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join()).collect()
}

static COLD: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE)]
fn cold(id: u32) -> String {
    COLD.fetch_add(1, SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    format!("value {id}")
}

#[test]
fn thirty_two_threads_on_a_cold_key_run_the_body_once() {
    let results = at_once(32, || cold(1));
    for r in results {
        assert_eq!(r.unwrap(), "value 1");
    }
    assert_eq!(COLD.load(SeqCst), 1);
}

static UNSHARED: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE, single_flight = false)]
fn unshared(id: u32) -> String {
    UNSHARED.fetch_add(1, SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    format!("value {id}")
}

#[test]
fn single_flight_can_be_turned_off() {
    let results = at_once(8, || unshared(1));
    assert!(results.into_iter().all(|r| r.unwrap() == "value 1"));
    assert!(UNSHARED.load(SeqCst) > 1, "each miss computes");
}

static PANICS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE)]
fn panics_first(id: u32) -> String {
    if PANICS.fetch_add(1, SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(200));
        panic!("the leader fails");
    }
    format!("value {id}")
}

#[test]
fn a_leader_that_panics_wakes_its_followers() {
    let started = std::time::Instant::now();
    let results = at_once(8, || panics_first(1));
    let ok: Vec<String> = results.into_iter().filter_map(Result::ok).collect();
    assert_eq!(ok.len(), 7, "only the leader panicked");
    assert!(ok.iter().all(|v| v == "value 1"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no follower waited out its bound"
    );
}

static FAILS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE)]
fn fails_first(id: u32) -> Result<String, String> {
    if FAILS.fetch_add(1, SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(200));
        return Err("the leader fails".into());
    }
    Ok(format!("value {id}"))
}

#[test]
fn a_leader_that_returns_err_wakes_its_followers() {
    let results = at_once(8, || fails_first(1));
    let values: Vec<Result<String, String>> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(
        values.iter().filter(|v| v.is_err()).count(),
        1,
        "only the leader's Err"
    );
    assert!(values.iter().flatten().all(|v| v == "value 1"));
}

static SOURCE: Mutex<&str> = Mutex::new("v1");
static SLOW_GATE: Mutex<()> = Mutex::new(());

#[rc::cache(cache = CACHE)]
fn gated(id: u32) -> String {
    let v = *SOURCE.lock().unwrap();
    drop(SLOW_GATE.lock().unwrap());
    format!("{v} {id}")
}

/// A call that starts after an invalidation returned never joins a flight
/// that read the source before it.
#[test]
fn an_invalidation_voids_the_flight_under_way() {
    let gate = SLOW_GATE.lock().unwrap();
    let leader = std::thread::spawn(|| gated(1));
    std::thread::sleep(Duration::from_millis(100)); // the leader has read "v1"
    *SOURCE.lock().unwrap() = "v2";
    invalidate_gated(1);
    let after = std::thread::spawn(|| gated(1));
    std::thread::sleep(Duration::from_millis(100));
    drop(gate);
    assert_eq!(leader.join().unwrap(), "v1 1");
    assert_eq!(
        after.join().unwrap(),
        "v2 1",
        "started after the invalidation"
    );
    assert_eq!(gated(1), "v2 1");
}

static TASKS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = ASYNC)]
async fn cold_async(id: u32) -> String {
    TASKS.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    format!("value {id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tasks_on_a_cold_key_run_the_body_once() {
    let tasks: Vec<_> = (0..1000).map(|_| tokio::spawn(cold_async(7))).collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "value 7");
    }
    assert_eq!(TASKS.load(SeqCst), 1);
}

static CANCELLED: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = ASYNC)]
async fn slow_async(id: u32) -> String {
    CANCELLED.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    format!("value {id}")
}

/// A leader whose future is dropped (a timeout, a cancelled request) wakes
/// its followers, who compute themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_leader_wakes_its_followers() {
    let leader = tokio::spawn(slow_async(3));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let follower = tokio::spawn(slow_async(3));
    tokio::time::sleep(Duration::from_millis(50)).await;
    leader.abort();
    let started = std::time::Instant::now();
    assert_eq!(follower.await.unwrap(), "value 3");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(CANCELLED.load(SeqCst), 2, "the follower computed itself");
}

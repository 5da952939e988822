//! Tests running side by side each give `#[rc::cache]` functions their own
//! default cache: a task's ([`AsyncCache::scope_default`]) or a thread's
//! ([`Cache::set_thread_default`]), ahead of the process-wide one.
//!
//! Every test calls the same decorated functions with the same keys; only the
//! (skipped) `test` argument differs, so a call that reached another test's
//! cache, or the process-wide one, returns another test's value or leaves
//! this test's counters off. With `install_default` in each test instead (the
//! old way), these tests failed 1–3 per run.

use rc::{AsyncCache, Cache};

const KEYS: u32 = 10;
const ROUNDS: u32 = 40;

/// What test `test` computes for `n`: distinct per test.
fn value(test: u32, n: u32) -> u32 {
    test * 1000 + n
}

#[rc::cache(skip(test))]
async fn lookup(test: u32, n: u32) -> u32 {
    tokio::task::yield_now().await;
    value(test, n)
}

#[rc::cache(skip(test))]
fn lookup_sync(test: u32, n: u32) -> u32 {
    value(test, n)
}

/// Calls `lookup` `ROUNDS` times per key and checks that every call was
/// answered by `cache`: one miss per key, then hits, all of this test's values.
async fn exercise(test: u32, cache: AsyncCache) {
    for round in 0..ROUNDS {
        for n in 0..KEYS {
            let got = lookup(test, n).await;
            assert_eq!(
                got,
                value(test, n),
                "test {test}, round {round}: another cache answered"
            );
            tokio::task::yield_now().await;
        }
    }
    let s = cache.stats();
    assert_eq!(
        (s.misses, s.hits, s.sets),
        (KEYS as u64, (KEYS * (ROUNDS - 1)) as u64, KEYS as u64),
        "test {test}: its cache saw other calls than its own"
    );
}

/// [`exercise`] in a scope of its own cache, in the test's task.
async fn scoped(test: u32) {
    let cache = rc::testing::FakeRedisCache::new_async();
    cache.scope_default(exercise(test, cache.clone())).await;
}

/// [`exercise`] in a scope of its own cache, in a spawned task, which the
/// multi-thread runtime moves between its worker threads.
async fn scoped_spawned(test: u32) {
    let cache = rc::testing::FakeRedisCache::new_async();
    let task = cache.scope_default(exercise(test, cache.clone()));
    tokio::spawn(task).await.unwrap();
}

#[tokio::test]
async fn task_1() {
    scoped(1).await;
}

#[tokio::test]
async fn task_2() {
    scoped(2).await;
}

#[tokio::test]
async fn task_3() {
    scoped(3).await;
}

#[tokio::test]
async fn task_4() {
    scoped(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_5_multi_thread() {
    scoped_spawned(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_6_multi_thread() {
    scoped_spawned(6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_7_multi_thread() {
    scoped(7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_8_multi_thread() {
    // Several tasks of one test, each with its own cache.
    let tasks: Vec<_> = (80..84)
        .map(|test| {
            let cache = rc::testing::FakeRedisCache::new_async();
            tokio::spawn(cache.scope_default(exercise(test, cache.clone())))
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// The blocking face: `lookup_sync` under a thread guard of its own cache.
fn exercise_sync(test: u32) {
    let cache = rc::testing::FakeRedisCache::new();
    let _guard = cache.set_thread_default();
    for round in 0..ROUNDS {
        for n in 0..KEYS {
            let got = lookup_sync(test, n);
            assert_eq!(
                got,
                value(test, n),
                "test {test}, round {round}: another cache answered"
            );
            std::thread::yield_now();
        }
    }
    let s = cache.stats();
    assert_eq!(
        (s.misses, s.hits, s.sets),
        (KEYS as u64, (KEYS * (ROUNDS - 1)) as u64, KEYS as u64),
        "test {test}: its cache saw other calls than its own"
    );
}

#[test]
fn thread_1() {
    exercise_sync(101);
}

#[test]
fn thread_2() {
    exercise_sync(102);
}

#[test]
fn threads_3_to_10() {
    let threads: Vec<_> = (103..111)
        .map(|test| std::thread::spawn(move || exercise_sync(test)))
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn thread_guards_nest() {
    let outer = rc::testing::FakeRedisCache::new();
    let inner = rc::testing::FakeRedisCache::new();
    let _outer = outer.set_thread_default();
    assert_eq!(lookup_sync(201, 1), value(201, 1));
    {
        let _inner = inner.set_thread_default();
        assert_eq!(lookup_sync(202, 1), value(202, 1));
    }
    // The outer cache is back, with its own value.
    assert_eq!(lookup_sync(202, 1), value(201, 1));
    assert_eq!((outer.stats().misses, outer.stats().hits), (1, 1));
    assert_eq!((inner.stats().misses, inner.stats().hits), (1, 0));
}

/// Applications' process-wide defaults, installed while the tests above run:
/// reached by calls outside any scope, never by calls inside one.
#[test]
fn process_wide_defaults_apply_outside_scopes() {
    let global = rc::testing::FakeRedisCache::new();
    global.clone().install_default();
    let global_async = rc::testing::FakeRedisCache::new_async();
    global_async.clone().install_default();

    assert_eq!(lookup_sync(301, 1), value(301, 1));
    assert_eq!(lookup_sync(302, 1), value(301, 1));
    assert_eq!(Cache::installed_default().unwrap().stats().misses, 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(lookup(301, 1).await, value(301, 1));
        assert_eq!(lookup(302, 1).await, value(301, 1));
        // A task spawned from a scope is outside it.
        let scope = rc::testing::FakeRedisCache::new_async();
        let spawned = scope
            .scope_default(async { tokio::spawn(lookup(303, 1)).await.unwrap() })
            .await;
        assert_eq!(spawned, value(301, 1));
        assert_eq!(scope.stats().misses, 0);
    });
    assert_eq!(AsyncCache::installed_default().unwrap().stats().hits, 2);
}

//! `Cache::builder().sentinel(..)`: every operation on a Sentinel-watched
//! primary (values checked against the server), a forced failover (writes
//! follow `+switch-master` while the old primary still accepts them) and a
//! killed primary (decorated calls fail open, then hit on the new primary).

mod common;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use common::{TIMEOUT, cube, square};
use rc::testing::{RedisSentinel, RedisServer};
use rc::{AsyncCache, Cache};

fn cache_on(sentinel: &RedisSentinel) -> Cache {
    Cache::builder()
        .sentinel(sentinel.master_name(), sentinel.sentinel_urls())
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
        .build()
        .unwrap()
}

fn async_cache_on(sentinel: &RedisSentinel) -> AsyncCache {
    Cache::builder()
        .sentinel(sentinel.master_name(), sentinel.sentinel_urls())
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
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

/// Whether `server` says it is a primary.
fn is_primary(server: &RedisServer) -> bool {
    let role = server.cli(&["ROLE"]);
    role.lines().next().is_some_and(|l| l.ends_with("master"))
}

/// Whether a Sentinel names `server` as the primary.
fn announced(sentinel: &RedisSentinel, server: &RedisServer) -> bool {
    let port = server.port().unwrap().to_string();
    let ask = [
        "SENTINEL",
        "get-master-addr-by-name",
        sentinel.master_name(),
    ];
    sentinel.sentinels().iter().any(|s| {
        s.cli(&ask)
            .lines()
            .nth(1)
            .is_some_and(|l| l.ends_with(&port))
    })
}

#[test]
fn every_operation_on_the_primary_sync_and_async() {
    let sentinel = RedisSentinel::builder().password("pw-s3cret").start();
    let cache = Cache::builder()
        .sentinel(sentinel.master_name(), sentinel.sentinel_urls())
        .password("pw-s3cret")
        .namespace("n:")
        .build()
        .unwrap();
    assert!(cache.set("k", &"v", None).unwrap());
    assert_eq!(sentinel.cli_primary(&["GET", "n:k"]), "\"v\"");
    assert_eq!(cache.get::<String>("k").unwrap().as_deref(), Some("v"));
    let items: Vec<(String, u32)> = (0..100).map(|i| (format!("i{i}"), i)).collect();
    assert!(cache.set_many(items.clone(), None).unwrap());
    let got: Vec<Option<u32>> = cache.get_many(items.iter().map(|(k, _)| k)).unwrap();
    assert_eq!(got, (0..100).map(Some).collect::<Vec<_>>());
    assert_eq!(
        cache.delete_many(items.iter().map(|(k, _)| k)).unwrap(),
        100
    );
    assert!(cache.delete("k").unwrap());
    assert_eq!(cache.get::<String>("k").unwrap(), None);
    let calls = AtomicU32::new(0);
    for _ in 0..2 {
        for x in 0..20 {
            assert_eq!(square(&cache, &calls, x), x * x);
        }
    }
    assert_eq!(calls.load(SeqCst), 20);
    assert!(common::invalidate_square(&cache, &calls, 5));
    assert_eq!(square(&cache, &calls, 5), 25);
    assert_eq!(calls.load(SeqCst), 21);
    assert_eq!(cache.stats().errors, 0);

    // No password: refused, and the error names the primary.
    let refused = cache_on(&sentinel);
    let err = refused.get::<String>("k").unwrap_err().to_string();
    assert!(err.contains("127.0.0.1:"), "{err}");
    assert!(!err.contains("pw-s3cret"), "{err}");

    runtime().block_on(async {
        let cache = Cache::builder()
            .sentinel(sentinel.master_name(), sentinel.sentinel_urls())
            .password("pw-s3cret")
            .build_async()
            .unwrap();
        assert!(cache.set("a", &[1.5, 2.25], None).await.unwrap());
        assert_eq!(sentinel.cli_primary(&["GET", "a"]), "[1.5,2.25]");
        assert_eq!(
            cache.get::<Vec<f64>>("a").await.unwrap(),
            Some(vec![1.5, 2.25])
        );
        let calls = AtomicU32::new(0);
        for _ in 0..2 {
            for x in 0..20 {
                assert_eq!(cube(&cache, &calls, x).await, x * x * x);
            }
        }
        assert_eq!(calls.load(SeqCst), 20);
        assert_eq!(cache.stats().errors, 0);
    });
}

#[test]
fn an_unknown_master_is_an_error_naming_it() {
    let sentinel = RedisSentinel::start();
    let cache = Cache::builder()
        .sentinel("nosuchmaster", sentinel.sentinel_urls())
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
        .build()
        .unwrap();
    let err = cache.get::<u32>("k").unwrap_err();
    assert!(err.to_string().contains("nosuchmaster"), "{err}");
    let calls = AtomicU32::new(0);
    assert_eq!(square(&cache, &calls, 3), 9, "decorated calls fail open");
}

/// `SENTINEL FAILOVER`: the old primary keeps accepting writes for 10 to
/// 20 s afterwards, so writes must move to the new primary when Sentinel
/// announces the switch. Writes a counter all along and checks where it lands.
#[test]
fn writes_follow_a_forced_failover_when_it_is_announced() {
    let sentinel = RedisSentinel::start();
    let cache = cache_on(&sentinel);
    assert!(cache.set("seq", &0u64, None).unwrap());
    let old = sentinel.primary();
    let new = sentinel.replica();
    let name = sentinel.master_name().to_owned();
    let accepted = sentinel
        .sentinels()
        .iter()
        .any(|s| s.cli(&["SENTINEL", "FAILOVER", &name]) == "OK");
    assert!(accepted, "a sentinel starts the failover");
    let started = Instant::now();
    let (mut promoted, mut switched, mut followed) = (None, None, None);
    let mut last_ack = 0u64;
    let mut errors = 0u32;
    let mut i = 0u64;
    while Instant::now() < started + Duration::from_secs(30) {
        i += 1;
        match cache.set("seq", &i, None) {
            Ok(true) => last_ack = i,
            Ok(false) | Err(_) => errors += 1,
        }
        if promoted.is_none() && is_primary(new) {
            promoted = Some(Instant::now());
        }
        if switched.is_none() && announced(&sentinel, new) {
            switched = Some(Instant::now());
        }
        if switched.is_some() && new.cli(&["GET", "seq"]) == last_ack.to_string() {
            followed.get_or_insert_with(Instant::now);
            if Instant::now() > followed.unwrap() + Duration::from_millis(500) {
                break;
            }
        }
        thread::sleep(Duration::from_millis(10));
    }
    let promoted = promoted.expect("the replica was promoted");
    let switched = switched.expect("the sentinels announced the switch");
    let followed = followed.expect("writes reached the new primary");
    eprintln!(
        "sentinel forced failover: replica promoted {:?} and switch announced {:?} after \
         SENTINEL FAILOVER; writes on the new primary {:?} after the announcement; \
         {errors} failed writes of {i}",
        promoted - started,
        switched - started,
        followed.saturating_duration_since(switched),
    );
    assert!(
        followed <= switched + Duration::from_secs(2),
        "writes follow the switch within seconds, not on the next error"
    );
    // Every acknowledged write since went to the new primary, none to the old.
    assert_eq!(new.cli(&["GET", "seq"]), last_ack.to_string());
    assert_ne!(
        old.cli(&["GET", "seq"]),
        last_ack.to_string(),
        "the old primary got none"
    );
    assert_eq!(cache.get::<u64>("seq").unwrap(), Some(last_ack));
    sentinel.wait_for_new_primary();
}

/// A killed primary: decorated calls keep answering right values (failing
/// open) and hit again once Sentinel promotes the replica.
#[test]
fn a_killed_primary_is_followed_sync_and_async() {
    let sentinel = RedisSentinel::start();
    let cache = cache_on(&sentinel);
    let rt = runtime();
    let async_cache = async_cache_on(&sentinel);
    let (calls, async_calls) = (AtomicU32::new(0), AtomicU32::new(0));
    let xs: Vec<u64> = (0..50).collect();
    for &x in &xs {
        assert_eq!(square(&cache, &calls, x), x * x);
    }
    rt.block_on(async {
        for &x in &xs {
            assert_eq!(cube(&async_cache, &async_calls, x).await, x * x * x);
        }
    });
    thread::sleep(Duration::from_millis(300)); // the replica has them
    let killed = Instant::now();
    sentinel.kill_primary();
    thread::scope(|s| {
        let waiter = s.spawn(|| {
            sentinel.wait_for_new_primary();
            Instant::now()
        });
        let (mut back, mut async_back) = (None, None);
        while Instant::now() < killed + Duration::from_secs(30) {
            let before = (calls.load(SeqCst), async_calls.load(SeqCst));
            for &x in &xs {
                assert_eq!(square(&cache, &calls, x), x * x, "never a wrong value");
            }
            rt.block_on(async {
                for &x in &xs {
                    assert_eq!(cube(&async_cache, &async_calls, x).await, x * x * x);
                }
            });
            if back.is_none() && calls.load(SeqCst) == before.0 {
                back = Some(Instant::now());
            }
            if async_back.is_none() && async_calls.load(SeqCst) == before.1 {
                async_back = Some(Instant::now());
            }
            if back.is_some() && async_back.is_some() && waiter.is_finished() {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        let promoted = waiter.join().unwrap();
        let (back, async_back) = (
            back.expect("sync hits again"),
            async_back.expect("async hits again"),
        );
        eprintln!(
            "sentinel killed primary: new primary agreed {:?} after the kill; hits again {:?} (sync) \
             and {:?} (async) after the kill",
            promoted - killed,
            back - killed,
            async_back - killed,
        );
        for b in [back, async_back] {
            assert!(
                b <= promoted + Duration::from_secs(2),
                "hits within 2 s of the promotion"
            );
        }
    });
    assert!(
        cache.stats().errors > 0,
        "the outage was felt (and failed open)"
    );
}

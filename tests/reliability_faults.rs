//! Fault tests against real `redis-server` processes.
//!
//! For each fault: what direct calls return (an `Err` naming the host, of the
//! right kind), that decorated calls still return correct values (they fail
//! open), and that service resumes by itself once the fault ends. Every wait
//! is a bounded poll.

mod common;

use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

use common::{TIMEOUT, async_cache_for, cache_for, cube, square};
use rc::testing::RedisServer;
use rc::{AsyncCache, Cache, Error};

/// Connect and response timeout of every cache in this file.
/// Slack on top of a timeout for scheduling on a busy 2-core machine.
const MARGIN: Duration = Duration::from_millis(400);
/// How long service may take to come back after a fault ends (backoff is
/// 100 ms doubling, so a few seconds is ample).
const RECOVERY: Duration = Duration::from_secs(5);
/// A call to a host that is backing off must not wait for the network.
const FAST: Duration = Duration::from_millis(5);

/// The address rc names in errors for `server` (db 0).
fn address(server: &RedisServer) -> String {
    match server.socket_path() {
        Some(p) => format!("unix:{}?db=0", p.display()),
        None => format!("127.0.0.1:{}/0", server.port().unwrap()),
    }
}

fn assert_names_host(err: &Error, host: &str) {
    assert_eq!(err.host(), Some(host), "{err}");
    assert!(err.to_string().contains(host), "{err}");
}

/// Polls `f` until it is `Ok` (at most [`RECOVERY`]); returns the value and the wait.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Result<T, Error>) -> (T, Duration) {
    let start = Instant::now();
    loop {
        match f() {
            Ok(v) => return (v, start.elapsed()),
            Err(e) if start.elapsed() > RECOVERY => {
                panic!("{what}: still failing after {RECOVERY:?}: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

async fn eventually_async<T, F, Fut>(what: &str, mut f: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let start = Instant::now();
    loop {
        match f().await {
            Ok(v) => return (v, start.elapsed()),
            Err(e) if start.elapsed() > RECOVERY => {
                panic!("{what}: still failing after {RECOVERY:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Runs `f` `n` times; every call must be `Err(HostDown)` naming `host`.
/// Returns the median duration of a call.
fn assert_skipped(n: usize, host: &str, mut f: impl FnMut() -> Result<(), Error>) -> Duration {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let err = f().expect_err("a call to a host that is down must fail");
        times.push(start.elapsed());
        assert!(matches!(err, Error::HostDown { .. }), "{err:?}");
        assert_names_host(&err, host);
    }
    times.sort();
    let median = times[n / 2];
    assert!(median < FAST, "calls while down took {times:?}");
    assert!(
        times[n - 1] < TIMEOUT,
        "a call while down waited for the network: {times:?}"
    );
    median
}

#[rc::cache(cache = cache, skip(cache, calls))]
fn blob(cache: &Cache, calls: &AtomicU32, len: usize) -> String {
    let _ = cache;
    calls.fetch_add(1, SeqCst);
    "y".repeat(len)
}

/// Decorated `square(x)` is served from Redis: two calls, one body run.
fn assert_square_cached(cache: &Cache, x: u64) {
    let calls = AtomicU32::new(0);
    assert_eq!(square(cache, &calls, x), x * x);
    assert_eq!(square(cache, &calls, x), x * x);
    assert_eq!(calls.load(SeqCst), 1, "the second call must hit");
}

async fn assert_cube_cached(cache: &AsyncCache, x: u64) {
    let calls = AtomicU32::new(0);
    assert_eq!(cube(cache, &calls, x).await, x * x * x);
    assert_eq!(cube(cache, &calls, x).await, x * x * x);
    assert_eq!(calls.load(SeqCst), 1, "the second call must hit");
}

/// Decorated calls while the store fails: every one returns the body's value.
fn assert_square_fails_open(cache: &Cache) {
    let calls = AtomicU32::new(0);
    let errors = cache.stats().errors;
    for x in 0..5 {
        assert_eq!(square(cache, &calls, x), x * x);
        assert_eq!(square(cache, &calls, x), x * x);
    }
    assert_eq!(calls.load(SeqCst), 10, "the body runs for every call");
    assert!(cache.stats().errors >= errors + 10, "{:?}", cache.stats());
}

async fn assert_cube_fails_open(cache: &AsyncCache) {
    let calls = AtomicU32::new(0);
    let errors = cache.stats().errors;
    for x in 0..5 {
        assert_eq!(cube(cache, &calls, x).await, x * x * x);
        assert_eq!(cube(cache, &calls, x).await, x * x * x);
    }
    assert_eq!(calls.load(SeqCst), 10, "the body runs for every call");
    assert!(cache.stats().errors >= errors + 10, "{:?}", cache.stats());
}

// ---------------------------------------------------------------- kill / restart

#[test]
fn kill_then_restart_on_the_same_port() {
    let server = RedisServer::start();
    let host = address(&server);
    let cache = cache_for(&server);
    assert!(cache.set("k", &"before", None).unwrap());
    assert_square_cached(&cache, 3);

    server.kill();
    let start = Instant::now();
    let err = cache.get::<String>("k").unwrap_err();
    assert!(start.elapsed() < TIMEOUT + MARGIN, "{:?}", start.elapsed());
    assert!(matches!(err, Error::Redis { .. }), "{err:?}");
    assert!(err.is_unavailable(), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("refused"),
        "the cause is named: {err}"
    );
    assert_names_host(&err, &host);
    assert_skipped(20, &host, || cache.set("k", &"x", None).map(drop));
    assert_skipped(5, &host, || cache.get_many::<String, _, _>(["k"]).map(drop));
    assert_square_fails_open(&cache);

    server.restart();
    let (v, waited) = eventually("get after restart", || cache.get::<String>("k"));
    assert_eq!(v, None, "the restarted server starts empty");
    assert!(waited < RECOVERY);
    assert!(cache.set("k", &"after", None).unwrap());
    assert_eq!(cache.get::<String>("k").unwrap().as_deref(), Some("after"));
    assert_square_cached(&cache, 4);
}

#[tokio::test]
async fn async_kill_then_restart_on_the_same_port() {
    let server = RedisServer::start();
    let host = address(&server);
    let cache = async_cache_for(&server);
    assert!(cache.set("k", &"before", None).await.unwrap());
    assert_cube_cached(&cache, 3).await;

    server.kill();
    let start = Instant::now();
    let err = cache.get::<String>("k").await.unwrap_err();
    assert!(start.elapsed() < TIMEOUT + MARGIN, "{:?}", start.elapsed());
    assert!(err.is_unavailable(), "{err:?}");
    assert_names_host(&err, &host);
    // The multiplexed connection may see the close first (connection
    // dropped); the reconnect is refused. Either way the host is down now.
    let start = Instant::now();
    let err = loop {
        match cache.get::<String>("k").await {
            Err(e @ Error::HostDown { .. }) => break e,
            Err(e) => assert!(e.is_unavailable(), "{e:?}"),
            Ok(v) => panic!("a killed server answered {v:?}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "never marked down"
        );
    };
    assert_names_host(&err, &host);
    assert_cube_fails_open(&cache).await;

    server.restart();
    let (v, _) = eventually_async("get after restart", || cache.get::<String>("k")).await;
    assert_eq!(v, None, "the restarted server starts empty");
    assert!(cache.set("k", &"after", None).await.unwrap());
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("after")
    );
    assert_cube_cached(&cache, 4).await;
}

#[test]
fn restart_on_the_same_unix_socket() {
    let server = RedisServer::builder().unix_socket(true).start();
    let host = address(&server);
    let cache = cache_for(&server);
    assert!(cache.set("k", &1, None).unwrap());
    assert_square_cached(&cache, 5);

    server.kill();
    let err = cache.get::<i32>("k").unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert_names_host(&err, &host);
    assert!(
        err.to_string()
            .contains(server.socket_path().unwrap().to_str().unwrap()),
        "{err}"
    );
    assert_skipped(10, &host, || cache.get::<i32>("k").map(drop));
    assert_square_fails_open(&cache);

    server.restart();
    let (v, _) = eventually("get after restart", || cache.get::<i32>("k"));
    assert_eq!(v, None);
    assert!(cache.set("k", &2, None).unwrap());
    assert_eq!(cache.get::<i32>("k").unwrap(), Some(2));
    assert_square_cached(&cache, 6);
}

#[tokio::test]
async fn async_restart_on_the_same_unix_socket() {
    let server = RedisServer::builder().unix_socket(true).start();
    let host = address(&server);
    let cache = async_cache_for(&server);
    assert!(cache.set("k", &1, None).await.unwrap());
    assert_cube_cached(&cache, 5).await;

    server.kill();
    let err = cache.get::<i32>("k").await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert_names_host(&err, &host);
    assert_cube_fails_open(&cache).await;

    server.restart();
    let (v, _) = eventually_async("get after restart", || cache.get::<i32>("k")).await;
    assert_eq!(v, None);
    assert!(cache.set("k", &2, None).await.unwrap());
    assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(2));
    assert_cube_cached(&cache, 6).await;
}

// ---------------------------------------------------------------- SIGSTOP / SIGCONT

#[test]
fn sigstop_times_out_then_host_is_skipped_then_sigcont_resumes() {
    let server = RedisServer::start();
    let host = address(&server);
    let cache = cache_for(&server);
    assert!(cache.set_many([("a", "A"), ("b", "B")], None).unwrap());
    assert_square_cached(&cache, 7);

    server.pause();
    let start = Instant::now();
    let err = cache.get::<String>("a").unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_names_host(&err, &host);
    assert!(
        took >= TIMEOUT - Duration::from_millis(20) && took < TIMEOUT + MARGIN,
        "a stalled server costs the timeout, no more: {took:?}"
    );
    let median = assert_skipped(20, &host, || cache.get::<String>("b").map(drop));
    eprintln!("sigstop: first call {took:?}, then calls while down: median {median:?}");
    // Decorated calls return the body's values; each costs at most one timeout.
    let calls = AtomicU32::new(0);
    for x in 0..3 {
        let start = Instant::now();
        assert_eq!(square(&cache, &calls, x), x * x);
        assert!(start.elapsed() < TIMEOUT + MARGIN, "{:?}", start.elapsed());
    }
    assert_eq!(calls.load(SeqCst), 3);

    server.resume();
    let (v, _) = eventually("get after SIGCONT", || cache.get::<String>("b"));
    // The reply to the timed-out `GET a` went to a connection that was
    // dropped: no later command may read it as its own.
    assert_eq!(v.as_deref(), Some("B"));
    for _ in 0..20 {
        assert_eq!(cache.get::<String>("b").unwrap().as_deref(), Some("B"));
        assert_eq!(cache.get::<String>("a").unwrap().as_deref(), Some("A"));
    }
    assert_eq!(
        cache.get_many::<String, _, _>(["b", "nope", "a"]).unwrap(),
        [Some("B".to_owned()), None, Some("A".to_owned())]
    );
    assert_square_cached(&cache, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_sigstop_times_out_then_host_is_skipped_then_sigcont_resumes() {
    let server = RedisServer::start();
    let host = address(&server);
    let cache = async_cache_for(&server);
    assert!(
        cache
            .set_many([("a", "A"), ("b", "B")], None)
            .await
            .unwrap()
    );
    assert_cube_cached(&cache, 7).await;

    server.pause();
    let start = Instant::now();
    let err = cache.get::<String>("a").await.unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert_names_host(&err, &host);
    assert!(
        took >= TIMEOUT - Duration::from_millis(20) && took < TIMEOUT + MARGIN,
        "a stalled server costs the timeout, no more: {took:?}"
    );
    let mut times = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        let err = cache.get::<String>("b").await.unwrap_err();
        times.push(start.elapsed());
        assert!(matches!(err, Error::HostDown { .. }), "{err:?}");
        assert_names_host(&err, &host);
    }
    times.sort();
    assert!(times[10] < FAST, "calls while down took {times:?}");
    assert!(times[19] < TIMEOUT, "{times:?}");
    let calls = AtomicU32::new(0);
    for x in 0..3 {
        let start = Instant::now();
        assert_eq!(cube(&cache, &calls, x).await, x * x * x);
        assert!(start.elapsed() < TIMEOUT + MARGIN, "{:?}", start.elapsed());
    }
    assert_eq!(calls.load(SeqCst), 3);

    server.resume();
    let (v, _) = eventually_async("get after SIGCONT", || cache.get::<String>("b")).await;
    assert_eq!(v.as_deref(), Some("B"));
    for _ in 0..20 {
        assert_eq!(
            cache.get::<String>("b").await.unwrap().as_deref(),
            Some("B")
        );
        assert_eq!(
            cache.get::<String>("a").await.unwrap().as_deref(),
            Some("A")
        );
    }
    assert_eq!(
        cache
            .get_many::<String, _, _>(["b", "nope", "a"])
            .await
            .unwrap(),
        [Some("B".to_owned()), None, Some("A".to_owned())]
    );
    assert_cube_cached(&cache, 8).await;
}

// ---------------------------------------------------------------- CLIENT KILL

fn client_kill(server: &RedisServer) -> u64 {
    let reply = server.cli(&["CLIENT", "KILL", "TYPE", "normal"]);
    reply
        .parse()
        .unwrap_or_else(|_| panic!("CLIENT KILL: {reply}"))
}

#[test]
fn client_kill_of_our_connections_is_retried_transparently() {
    let server = RedisServer::start();
    let cache = cache_for(&server);
    // Several pooled connections: four threads at once.
    std::thread::scope(|s| {
        for t in 0..4 {
            let cache = &cache;
            s.spawn(move || {
                for i in 0..100 {
                    assert!(cache.set(&format!("k{t}"), &i, None).unwrap());
                }
            });
        }
    });
    let errors = cache.stats().errors;
    assert!(client_kill(&server) >= 1, "our connections were killed");
    // Every pooled connection is now stale; each is replaced on first use.
    for round in 0..20 {
        for t in 0..4 {
            assert_eq!(cache.get::<i32>(&format!("k{t}")).unwrap(), Some(99));
        }
        assert!(cache.set("round", &round, None).unwrap());
        assert_eq!(cache.get::<i32>("round").unwrap(), Some(round));
    }
    assert_eq!(cache.stats().errors, errors, "no call failed");

    // Decorated: the value stored before the kill is served after it.
    let calls = AtomicU32::new(0);
    assert_eq!(square(&cache, &calls, 9), 81);
    assert!(client_kill(&server) >= 1);
    assert_eq!(square(&cache, &calls, 9), 81);
    assert_eq!(calls.load(SeqCst), 1, "served from Redis after the kill");
    assert_eq!(cache.stats().errors, errors);
}

#[tokio::test]
async fn async_client_kill_service_resumes_without_reply_mixup() {
    let server = RedisServer::start();
    let host = address(&server);
    let cache = async_cache_for(&server);
    assert!(
        cache
            .set_many([("a", "A"), ("b", "B")], None)
            .await
            .unwrap()
    );
    for _ in 0..3 {
        assert!(client_kill(&server) >= 1, "our connection was killed");
        // A failure, if any, names the host and is followed by recovery.
        if let Err(e) = cache.get::<String>("a").await {
            assert_names_host(&e, &host);
        }
        let (v, _) = eventually_async("get after CLIENT KILL", || cache.get::<String>("b")).await;
        assert_eq!(v.as_deref(), Some("B"));
        for _ in 0..5 {
            assert_eq!(
                cache.get::<String>("a").await.unwrap().as_deref(),
                Some("A")
            );
            assert_eq!(
                cache.get::<String>("b").await.unwrap().as_deref(),
                Some("B")
            );
        }
    }
    // Decorated calls return the right value right after a kill.
    let calls = AtomicU32::new(0);
    assert_eq!(cube(&cache, &calls, 9).await, 729);
    assert!(client_kill(&server) >= 1);
    assert_eq!(cube(&cache, &calls, 9).await, 729);
    eventually_async("get after CLIENT KILL", || cache.get::<String>("a")).await;
    assert_cube_cached(&cache, 19).await;
}

#[tokio::test]
async fn async_client_kill_of_our_connection_is_retried_transparently() {
    let server = RedisServer::start();
    let cache = async_cache_for(&server);
    assert!(cache.set("k", &1, None).await.unwrap());
    let errors = cache.stats().errors;
    for round in 0..5 {
        assert!(client_kill(&server) >= 1, "our connection was killed");
        // The server is healthy: a dropped idle connection is reopened, not
        // reported (the commands are idempotent, as the blocking pool assumes).
        assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(1));
        assert!(cache.set("round", &round, None).await.unwrap());
        assert_eq!(cache.get::<i32>("round").await.unwrap(), Some(round));
    }
    assert_eq!(cache.stats().errors, errors, "no call failed");
    let calls = AtomicU32::new(0);
    assert_eq!(cube(&cache, &calls, 9).await, 729);
    assert!(client_kill(&server) >= 1);
    assert_eq!(cube(&cache, &calls, 9).await, 729);
    assert_eq!(calls.load(SeqCst), 1, "served from Redis after the kill");
}

// ---------------------------------------------------------------- maxclients

/// Takes the server's only client slot with a raw connection (retrying
/// while the server still counts the start-up probe's connection).
fn occupy_slot(server: &RedisServer) -> TcpStream {
    let start = Instant::now();
    loop {
        let mut slot = TcpStream::connect(("127.0.0.1", server.port().unwrap())).unwrap();
        slot.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        slot.write_all(b"PING\r\n").unwrap();
        let mut buf = [0u8; 7];
        slot.read_exact(&mut buf).unwrap();
        if &buf == b"+PONG\r\n" {
            return slot;
        }
        assert!(
            start.elapsed() < RECOVERY,
            "cannot take the only client slot: {}",
            String::from_utf8_lossy(&buf)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn assert_max_clients(err: &Error, host: &str) {
    assert_names_host(err, host);
    let text = err.to_string();
    assert!(
        text.contains("max number of clients") || matches!(err, Error::HostDown { .. }),
        "{err:?}"
    );
}

#[test]
fn maxclients_1_with_the_slot_taken() {
    let server = RedisServer::builder().config("maxclients", "1").start();
    let host = address(&server);
    let cache = cache_for(&server);
    let slot = occupy_slot(&server);

    let err = cache.get::<i32>("k").unwrap_err();
    assert_names_host(&err, &host);
    assert!(
        err.to_string().contains("max number of clients"),
        "the first error names the cause: {err:?}"
    );
    for _ in 0..5 {
        let err = cache.set("k", &1, None).unwrap_err();
        assert_max_clients(&err, &host);
    }
    assert_square_fails_open(&cache);

    drop(slot);
    eventually("set after the slot is freed", || cache.set("k", &1, None));
    assert_eq!(cache.get::<i32>("k").unwrap(), Some(1));
    assert_square_cached(&cache, 10);
}

#[tokio::test]
async fn async_maxclients_1_with_the_slot_taken() {
    let server = RedisServer::builder().config("maxclients", "1").start();
    let host = address(&server);
    let cache = async_cache_for(&server);
    let slot = occupy_slot(&server);

    // The cause is checked by `async_maxclients_error_names_the_cause`.
    for _ in 0..5 {
        let err = cache.set("k", &1, None).await.unwrap_err();
        assert_names_host(&err, &host);
        assert!(
            err.is_unavailable() || err.to_string().contains("max number of clients"),
            "{err:?}"
        );
    }
    assert_cube_fails_open(&cache).await;

    drop(slot);
    eventually_async("set after the slot is freed", || cache.set("k", &1, None)).await;
    assert_eq!(cache.get::<i32>("k").await.unwrap(), Some(1));
    assert_cube_cached(&cache, 10).await;
}

#[tokio::test]
async fn async_maxclients_error_names_the_cause() {
    let server = RedisServer::builder().config("maxclients", "1").start();
    let host = address(&server);
    let _slot = occupy_slot(&server);
    // Whether the server's refusal or the hang-up reaches the caller first
    // depends on timing: try fresh caches until one shows it.
    for _ in 0..50 {
        let cache = async_cache_for(&server);
        let err = cache.get::<i32>("k").await.unwrap_err();
        assert_names_host(&err, &host);
        assert!(
            err.to_string().contains("max number of clients"),
            "the error names the cause, as the blocking cache's does: {err:?}"
        );
    }
}

// ---------------------------------------------------------------- wrong password

const RIGHT_PASSWORD: &str = "right-pw-7f3a61";
const WRONG_PASSWORD: &str = "wrong-pw-91c2e8";

fn assert_auth_error(err: &Error, host: &str) {
    let text = format!("{err} {err:?}");
    assert!(
        text.to_lowercase().contains("authentication")
            || text.contains("WRONGPASS")
            || text.contains("NOAUTH"),
        "the error names the cause: {text}"
    );
    assert!(!text.contains(WRONG_PASSWORD), "{text}");
    assert!(!text.contains(RIGHT_PASSWORD), "{text}");
    assert_names_host(err, host);
}

fn assert_auth_failure(err: &Error, host: &str) {
    if let Error::HostDown { last_error, .. } = err {
        assert!(!last_error.contains(WRONG_PASSWORD), "{last_error}");
        assert_names_host(err, host);
    } else {
        assert_auth_error(err, host);
    }
}

#[test]
fn wrong_password() {
    let server = RedisServer::builder().password(RIGHT_PASSWORD).start();
    let host = address(&server);
    let port = server.port().unwrap();
    let builder = || {
        Cache::builder()
            .host("127.0.0.1")
            .port(port)
            .connect_timeout(TIMEOUT)
            .socket_timeout(TIMEOUT)
    };
    let wrong = builder().password(WRONG_PASSWORD).build().unwrap();
    let none = builder().build().unwrap();

    assert_auth_error(&wrong.get::<i32>("k").unwrap_err(), &host);
    assert_auth_error(&none.get::<i32>("k").unwrap_err(), &host);
    for _ in 0..3 {
        assert_auth_failure(&wrong.set("k", &1, None).unwrap_err(), &host);
        assert_auth_failure(&none.set("k", &1, None).unwrap_err(), &host);
    }
    assert!(!format!("{wrong:?}").contains(WRONG_PASSWORD));
    assert_square_fails_open(&wrong);
    assert_square_fails_open(&none);

    // The fault ends: the server now requires the password `wrong` has.
    assert_eq!(
        server.cli(&["CONFIG", "SET", "requirepass", WRONG_PASSWORD]),
        "OK"
    );
    eventually("set with the now right password", || {
        wrong.set("k", &1, None)
    });
    assert_eq!(wrong.get::<i32>("k").unwrap(), Some(1));
    assert_square_cached(&wrong, 11);
}

#[tokio::test]
async fn async_wrong_password() {
    let server = RedisServer::builder().password(RIGHT_PASSWORD).start();
    let host = address(&server);
    let wrong = AsyncCache::builder()
        .host("127.0.0.1")
        .port(server.port().unwrap())
        .password(WRONG_PASSWORD)
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
        .build_async()
        .unwrap();
    assert_auth_error(&wrong.get::<i32>("k").await.unwrap_err(), &host);
    for _ in 0..3 {
        assert_auth_failure(&wrong.set("k", &1, None).await.unwrap_err(), &host);
    }
    assert_cube_fails_open(&wrong).await;

    assert_eq!(
        server.cli(&["CONFIG", "SET", "requirepass", WRONG_PASSWORD]),
        "OK"
    );
    eventually_async("set with the now right password", || {
        wrong.set("k", &1, None)
    })
    .await;
    assert_eq!(wrong.get::<i32>("k").await.unwrap(), Some(1));
    assert_cube_cached(&wrong, 11).await;
}

// ---------------------------------------------------------------- maxmemory

fn full_server() -> RedisServer {
    RedisServer::builder()
        .config("maxmemory", "1mb")
        .config("maxmemory-policy", "noeviction")
        .start()
}

const FILL: usize = 16 * 1024;

#[test]
fn maxmemory_noeviction_full() {
    let server = full_server();
    let host = address(&server);
    let cache = cache_for(&server);
    assert!(cache.set("small", &"s", None).unwrap());
    let filler = "x".repeat(FILL);
    let mut stored = 0;
    let err = loop {
        match cache.set(&format!("fill{stored}"), &filler, None) {
            Ok(true) => stored += 1,
            Ok(false) => panic!("set answered false, not an error"),
            Err(e) => break e,
        }
        assert!(stored < 1000, "16 MiB stored under maxmemory 1mb");
    };
    assert!(err.to_string().contains("OOM"), "{err:?}");
    assert!(!err.is_unavailable(), "a full server is not down: {err:?}");
    assert_names_host(&err, &host);
    // Reads still work at once: the host was not marked down.
    assert_eq!(cache.get::<String>("small").unwrap().as_deref(), Some("s"));
    assert!(
        cache
            .set_many([("m1", 1), ("m2", 2)], None)
            .unwrap_err()
            .to_string()
            .contains("OOM")
    );
    assert_square_fails_open(&cache);
    let calls = AtomicU32::new(0);
    assert_eq!(blob(&cache, &calls, 100).len(), 100);

    // The fault ends.
    assert_eq!(server.cli(&["CONFIG", "SET", "maxmemory", "0"]), "OK");
    assert!(cache.set("after", &"a", None).unwrap());
    assert_eq!(cache.get::<String>("after").unwrap().as_deref(), Some("a"));
    assert_square_cached(&cache, 12);
}

#[tokio::test]
async fn async_maxmemory_noeviction_full() {
    let server = full_server();
    let host = address(&server);
    let cache = async_cache_for(&server);
    assert!(cache.set("small", &"s", None).await.unwrap());
    let filler = "x".repeat(FILL);
    let mut stored = 0;
    let err = loop {
        match cache.set(&format!("fill{stored}"), &filler, None).await {
            Ok(true) => stored += 1,
            Ok(false) => panic!("set answered false, not an error"),
            Err(e) => break e,
        }
        assert!(stored < 1000, "16 MiB stored under maxmemory 1mb");
    };
    assert!(err.to_string().contains("OOM"), "{err:?}");
    assert!(!err.is_unavailable(), "a full server is not down: {err:?}");
    assert_names_host(&err, &host);
    assert_eq!(
        cache.get::<String>("small").await.unwrap().as_deref(),
        Some("s")
    );
    assert_cube_fails_open(&cache).await;

    assert_eq!(server.cli(&["CONFIG", "SET", "maxmemory", "0"]), "OK");
    assert!(cache.set("after", &"a", None).await.unwrap());
    assert_cube_cached(&cache, 12).await;
}

// ---------------------------------------------------------------- proto-max-bulk-len

const BULK_LIMIT: usize = 1024 * 1024;

fn small_bulk_server() -> RedisServer {
    RedisServer::builder()
        .config("proto-max-bulk-len", "1mb")
        .start()
}

/// Waits until `a` and `b` read back as set, then checks them many times:
/// every reply belongs to its own command.
fn assert_in_step(cache: &Cache) {
    let (v, _) = eventually("get after the oversized write", || cache.get::<String>("a"));
    assert_eq!(v.as_deref(), Some("A"));
    for _ in 0..10 {
        assert_eq!(cache.get::<String>("a").unwrap().as_deref(), Some("A"));
        assert_eq!(cache.get::<String>("b").unwrap().as_deref(), Some("B"));
        assert_eq!(
            cache.get_many::<String, _, _>(["b", "x", "a"]).unwrap(),
            [Some("B".to_owned()), None, Some("A".to_owned())]
        );
    }
}

#[test]
fn value_larger_than_proto_max_bulk_len() {
    let server = small_bulk_server();
    let host = address(&server);
    let cache = cache_for(&server);
    assert!(cache.set_many([("a", "A"), ("b", "B")], None).unwrap());
    let under = "u".repeat(BULK_LIMIT / 2);
    assert!(cache.set("under", &under, None).unwrap());

    let over = "o".repeat(2 * BULK_LIMIT);
    let err = cache.set("over", &over, None).unwrap_err();
    assert_names_host(&err, &host);
    assert_in_step(&cache);
    assert_eq!(cache.get::<String>("over").unwrap(), None);
    assert_eq!(cache.get::<String>("under").unwrap(), Some(under));

    // Pipelined: a too-big value among good ones.
    let err = cache
        .set_many([("p1", "1"), ("p2", over.as_str()), ("p3", "3")], None)
        .unwrap_err();
    assert_names_host(&err, &host);
    assert_in_step(&cache);

    // Decorated: the too-big result is returned each time (never stored).
    let calls = AtomicU32::new(0);
    assert_eq!(blob(&cache, &calls, 2 * BULK_LIMIT).len(), 2 * BULK_LIMIT);
    assert_eq!(blob(&cache, &calls, 2 * BULK_LIMIT).len(), 2 * BULK_LIMIT);
    assert_eq!(calls.load(SeqCst), 2);
    assert_in_step(&cache);
    assert_square_cached(&cache, 13);
}

#[test]
fn oversized_value_does_not_take_the_host_down() {
    let server = small_bulk_server();
    let cache = cache_for(&server);
    assert!(cache.set_many([("a", "A"), ("b", "B")], None).unwrap());
    let over = "o".repeat(2 * BULK_LIMIT);
    assert!(cache.set("over", &over, None).is_err());
    // The very next calls on the same cache work: the server is healthy.
    assert_eq!(cache.get::<String>("a").unwrap().as_deref(), Some("A"));
    assert_eq!(cache.get::<String>("b").unwrap().as_deref(), Some("B"));
    // A decorated fn with a too-big result does not disturb other calls.
    let calls = AtomicU32::new(0);
    assert_eq!(blob(&cache, &calls, 2 * BULK_LIMIT).len(), 2 * BULK_LIMIT);
    assert_eq!(cache.get::<String>("a").unwrap().as_deref(), Some("A"));
    assert_square_cached(&cache, 14);
}

#[tokio::test]
async fn async_value_larger_than_proto_max_bulk_len() {
    let server = small_bulk_server();
    let host = address(&server);
    let cache = async_cache_for(&server);
    assert!(
        cache
            .set_many([("a", "A"), ("b", "B")], None)
            .await
            .unwrap()
    );
    let over = "o".repeat(2 * BULK_LIMIT);
    let err = cache.set("over", &over, None).await.unwrap_err();
    assert_names_host(&err, &host);
    let (v, _) =
        eventually_async("get after the oversized write", || cache.get::<String>("a")).await;
    assert_eq!(v.as_deref(), Some("A"));
    for _ in 0..10 {
        assert_eq!(
            cache.get::<String>("a").await.unwrap().as_deref(),
            Some("A")
        );
        assert_eq!(
            cache.get::<String>("b").await.unwrap().as_deref(),
            Some("B")
        );
    }
    assert_eq!(cache.get::<String>("over").await.unwrap(), None);
    assert_cube_cached(&cache, 13).await;
}

#[tokio::test]
async fn async_oversized_value_does_not_take_the_host_down() {
    let server = small_bulk_server();
    let cache = async_cache_for(&server);
    assert!(
        cache
            .set_many([("a", "A"), ("b", "B")], None)
            .await
            .unwrap()
    );
    let over = "o".repeat(2 * BULK_LIMIT);
    assert!(cache.set("over", &over, None).await.is_err());
    assert_eq!(
        cache.get::<String>("a").await.unwrap().as_deref(),
        Some("A")
    );
    assert_eq!(
        cache.get::<String>("b").await.unwrap().as_deref(),
        Some("B")
    );
    assert_cube_cached(&cache, 14).await;
}

// ---------------------------------------------------------------- overhead while down

fn report(label: &str, mut each: Vec<Duration>, total: Duration) {
    each.sort();
    let n = each.len();
    eprintln!(
        "{label}: {n} decorated calls with Redis down: total {total:?}, p50 {:?}, p99 {:?}, max {:?}",
        each[n / 2],
        each[n * 99 / 100],
        each[n - 1]
    );
}

#[test]
fn decorated_call_overhead_while_down() {
    let server = RedisServer::start();
    let cache = cache_for(&server);
    assert_square_cached(&cache, 2);
    server.kill();
    let calls = AtomicU32::new(0);
    assert_eq!(square(&cache, &calls, 2), 4, "the first failure");
    let errors = cache.stats().errors;
    let mut each = Vec::with_capacity(1000);
    let start = Instant::now();
    for x in 0..1000 {
        let t = Instant::now();
        assert_eq!(square(&cache, &calls, x), x * x);
        each.push(t.elapsed());
    }
    let total = start.elapsed();
    report("sync", each, total);
    assert_eq!(calls.load(SeqCst), 1001, "every call ran the body");
    assert!(cache.stats().errors >= errors + 1000);
    assert!(
        total < Duration::from_millis(200),
        "the host must be skipped, not dialled per call: {total:?}"
    );
}

#[tokio::test]
async fn async_decorated_call_overhead_while_down() {
    let server = RedisServer::start();
    let cache = async_cache_for(&server);
    assert_cube_cached(&cache, 2).await;
    server.kill();
    let calls = AtomicU32::new(0);
    assert_eq!(cube(&cache, &calls, 2).await, 8, "the first failure");
    let errors = cache.stats().errors;
    let mut each = Vec::with_capacity(1000);
    let start = Instant::now();
    for x in 0..1000 {
        let t = Instant::now();
        assert_eq!(cube(&cache, &calls, x).await, x * x * x);
        each.push(t.elapsed());
    }
    let total = start.elapsed();
    report("async", each, total);
    assert_eq!(calls.load(SeqCst), 1001, "every call ran the body");
    assert!(cache.stats().errors >= errors + 1000);
    assert!(
        total < Duration::from_millis(200),
        "the host must be skipped, not dialled per call: {total:?}"
    );
}

/// A "server" that accepts each connection and hangs up at once, counting
/// the connections: every call that really dials the host shows up here.
fn hang_up_server() -> (u16, Arc<AtomicU32>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dials = Arc::new(AtomicU32::new(0));
    let seen = dials.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            seen.fetch_add(1, SeqCst);
            drop(conn);
        }
    });
    (port, dials)
}

/// How many dials a host that is skipped while down may see in `elapsed`:
/// the first failure plus one probe per backoff window (100 ms, doubling).
fn allowed_dials(elapsed: Duration) -> u32 {
    3 + (elapsed.as_millis() / 100) as u32
}

#[test]
fn a_failing_host_is_not_dialled_per_call() {
    let (port, dials) = hang_up_server();
    let cache = Cache::builder()
        .host("127.0.0.1")
        .port(port)
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
        .build()
        .unwrap();
    let host = format!("127.0.0.1:{port}/0");
    let err = cache.get::<u64>("k").unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert_names_host(&err, &host);
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    for x in 0..1000 {
        assert_eq!(square(&cache, &calls, x), x * x);
    }
    let elapsed = start.elapsed();
    assert_eq!(calls.load(SeqCst), 1000);
    let dialled = dials.load(SeqCst);
    eprintln!("sync: 1000 decorated calls to a failing host: {elapsed:?}, {dialled} dials");
    assert!(
        dialled <= allowed_dials(elapsed),
        "{dialled} connections in {elapsed:?}: the host is dialled per call"
    );
}

#[tokio::test]
async fn async_a_failing_host_is_not_dialled_per_call() {
    let (port, dials) = hang_up_server();
    let cache = AsyncCache::builder()
        .host("127.0.0.1")
        .port(port)
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
        .build_async()
        .unwrap();
    let host = format!("127.0.0.1:{port}/0");
    let err = cache.get::<u64>("k").await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert_names_host(&err, &host);
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    for x in 0..1000 {
        assert_eq!(cube(&cache, &calls, x).await, x * x * x);
    }
    let elapsed = start.elapsed();
    assert_eq!(calls.load(SeqCst), 1000);
    let dialled = dials.load(SeqCst);
    eprintln!("async: 1000 decorated calls to a failing host: {elapsed:?}, {dialled} dials");
    assert!(
        dialled <= allowed_dials(elapsed),
        "{dialled} connections in {elapsed:?}: the host is dialled per call"
    );
}

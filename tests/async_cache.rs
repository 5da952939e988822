//! The async `AsyncCache` against a real redis-server: the twin of `cache.rs`.

use std::time::{Duration, Instant};

use rc::testing::{FakeRedisCache, NullCache, RedisServer};
use rc::{AsyncCache, CborSerializer, Error};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    name: String,
    sizes: Vec<u32>,
}

#[tokio::test]
async fn seed_simple_example_line_by_line() {
    let server = RedisServer::start();
    let cache = AsyncCache::open(&server.url()).unwrap();
    assert!(cache.set("key", &"value", None).await.unwrap());
    assert_eq!(
        cache.get::<String>("key").await.unwrap().as_deref(),
        Some("value")
    );
    assert_eq!(cache.get::<String>("foo").await.unwrap(), None);
    assert!(cache.set("list", &vec![1], None).await.unwrap());
    assert_eq!(cache.get::<Vec<i32>>("list").await.unwrap(), Some(vec![1]));
    assert_eq!(server.cli(&["GET", "list"]), "[1]");
}

#[tokio::test]
async fn namespace_many_and_expiry() {
    let server = RedisServer::builder().unix_socket(true).start();
    let plain = AsyncCache::open(&server.url()).unwrap();
    let ns = AsyncCache::builder()
        .url(&server.url())
        .namespace("test:")
        .build_async()
        .unwrap();
    plain.set("k", &1, None).await.unwrap();
    assert_eq!(ns.get::<i32>("k").await.unwrap(), None);
    assert!(
        ns.set_many([("a", 1), ("c", 3)], Some(Duration::from_secs(1)))
            .await
            .unwrap()
    );
    let got: Vec<Option<i32>> = ns.get_many(["c", "b", "a"]).await.unwrap();
    assert_eq!(got, vec![Some(3), None, Some(1)]);
    assert_eq!(ns.get_many::<i32, _, &str>([]).await.unwrap(), vec![]);
    assert!(ns.set_many(Vec::<(&str, i32)>::new(), None).await.unwrap());
    assert_eq!(server.cli(&["TTL", "test:a"]), "1");
    let ttl: i64 = server.cli(&["TTL", "k"]).parse().unwrap();
    assert!((259_190..=259_200).contains(&ttl));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(ns.get::<i32>("a").await.unwrap(), None);
    ns.set_many([("x", 1), ("y", 2)], None).await.unwrap();
    assert_eq!(ns.delete_many(["x", "y", "z"]).await.unwrap(), 2);
    assert_eq!(ns.delete_many(Vec::<String>::new()).await.unwrap(), 0);
    assert!(plain.delete("k").await.unwrap());
    assert!(!plain.delete("k").await.unwrap());
}

#[tokio::test]
async fn cbor_big_value_and_bad_bytes() {
    let server = RedisServer::start();
    let cache = AsyncCache::builder()
        .url(&server.url())
        .serializer(CborSerializer)
        .build_async()
        .unwrap();
    let item = Item {
        name: "ünïcödé ✓".into(),
        sizes: (0..100_000).collect(),
    };
    cache.set("item", &item, None).await.unwrap();
    assert_eq!(cache.get::<Item>("item").await.unwrap(), Some(item));
    server.cli(&["SET", "bad", "\u{1}garbage"]);
    let err = cache.get::<Item>("bad").await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
}

#[tokio::test]
async fn closed_port_errors_name_the_host_within_the_timeout() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cache = AsyncCache::builder()
        .host("127.0.0.1")
        .port(port)
        .connect_timeout(Duration::from_millis(300))
        .build_async()
        .unwrap();
    let start = Instant::now();
    let err = cache.get::<String>("k").await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    let err = cache.get::<String>("k").await.unwrap_err();
    assert!(matches!(err, Error::HostDown { .. }), "{err}");
}

#[tokio::test]
async fn concurrent_tasks_share_one_connection() {
    let server = RedisServer::start();
    let cache = AsyncCache::open(&server.url()).unwrap();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache.set(&format!("k{i}"), &i, None).await.unwrap();
                cache.get::<i32>(&format!("k{i}")).await.unwrap()
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap(), Some(i as i32));
    }
    let clients = server.cli(&["CLIENT", "LIST"]);
    // Ours plus the cli's own connection.
    assert_eq!(clients.lines().count(), 2, "{clients}");
}

#[tokio::test]
async fn null_and_fake_async() {
    let null = NullCache::new_async();
    assert!(null.set("k", &1, None).await.unwrap());
    assert_eq!(null.get::<i32>("k").await.unwrap(), None);
    let fake = FakeRedisCache::new_async();
    fake.set("k", &1, Some(Duration::from_millis(50)))
        .await
        .unwrap();
    assert_eq!(fake.get::<i32>("k").await.unwrap(), Some(1));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(fake.get::<i32>("k").await.unwrap(), None);
}

/// Many tasks share the cache's one connection; a third of their reads are
/// dropped right after they were sent. Every read that finishes must get
/// its own key's value: a cancelled call's reply is never handed to the
/// next caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_calls_never_shift_replies() {
    const KEYS: usize = 200;
    let server = RedisServer::start();
    let cache = AsyncCache::open(&server.url()).unwrap();
    let key = |i: usize| format!("shared{i}");
    for i in 0..KEYS {
        assert!(cache.set(&key(i), &i, None).await.unwrap());
    }
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..8 {
        let cache = cache.clone();
        tasks.spawn(async move {
            let (mut checked, mut cancelled) = (0, 0);
            for n in 0..300 {
                let i = (t * 7919 + n * 31) % KEYS;
                if n % 3 == 0 {
                    let k = key(i);
                    let read = cache.get::<usize>(&k);
                    // Polled once (so the command is sent), then dropped.
                    tokio::select! {
                        biased;
                        got = read => {
                            assert_eq!(got.unwrap(), Some(i));
                            checked += 1;
                        }
                        () = std::future::ready(()) => cancelled += 1,
                    }
                } else if n % 3 == 1 {
                    assert_eq!(cache.get::<usize>(&key(i)).await.unwrap(), Some(i));
                    checked += 1;
                } else {
                    let keys = [key(i), key((i + 1) % KEYS), format!("missing{i}")];
                    let got: Vec<Option<usize>> = cache.get_many(&keys).await.unwrap();
                    assert_eq!(got, [Some(i), Some((i + 1) % KEYS), None]);
                    checked += 1;
                }
            }
            (checked, cancelled)
        });
    }
    let (mut checked, mut cancelled) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (c, x) = done.unwrap();
        checked += c;
        cancelled += x;
    }
    assert!(
        cancelled > 100,
        "calls were cancelled in flight: {cancelled}"
    );
    assert_eq!(checked + cancelled, 8 * 300);
    assert_eq!(cache.get::<usize>(&key(7)).await.unwrap(), Some(7));
}

/// The shared connection closes once the cache is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_cache_closes_its_connection() {
    let server = RedisServer::start();
    let clients = || {
        let info = server.cli(&["INFO", "clients"]);
        let line = info
            .lines()
            .find(|l| l.starts_with("connected_clients:"))
            .unwrap()
            .to_owned();
        line["connected_clients:".len()..]
            .trim()
            .parse::<u32>()
            .unwrap()
    };
    let before = clients();
    let cache = AsyncCache::open(&server.url()).unwrap();
    assert!(cache.set("k", &1, None).await.unwrap());
    assert_eq!(clients(), before + 1);
    drop(cache);
    let deadline = Instant::now() + Duration::from_secs(5);
    while clients() != before {
        assert!(Instant::now() < deadline, "the connection is still open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

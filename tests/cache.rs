//! The blocking `Cache` against a real redis-server.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rc::testing::{FakeRedisCache, NullCache, RedisServer};
use rc::{BoxError, Cache, CborSerializer, Decode, Error, JsonSerializer, Serializer};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Post {
    id: i64,
    title: String,
    tags: Vec<String>,
    meta: BTreeMap<String, Option<f64>>,
    author: Author,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Author {
    name: String,
    karma: u32,
}

fn post() -> Post {
    Post {
        id: 7,
        title: "Hello, wörld — 你好 🚀".into(),
        tags: vec!["rust".into(), "redis cache".into()],
        meta: BTreeMap::from([("score".into(), Some(4.5)), ("none".into(), None)]),
        author: Author {
            name: "Zoë".into(),
            karma: 42,
        },
    }
}

#[test]
fn seed_simple_example_line_by_line() {
    let server = RedisServer::start();
    let cache = Cache::open(&server.url()).unwrap();
    assert!(cache.set("key", &"value", None).unwrap());
    assert_eq!(
        cache.get::<String>("key").unwrap().as_deref(),
        Some("value")
    );
    assert_eq!(cache.get::<String>("foo").unwrap(), None);
    assert!(cache.set("list", &vec![1], None).unwrap());
    assert_eq!(cache.get::<Vec<i32>>("list").unwrap(), Some(vec![1]));
    // Stored as rc 0.3.1's JSON serializer would store it.
    assert_eq!(server.cli(&["GET", "key"]), "\"value\"");
    assert_eq!(server.cli(&["GET", "list"]), "[1]");
}

#[test]
fn unix_socket_and_builder() {
    let server = RedisServer::builder().unix_socket(true).start();
    let path = server.socket_path().unwrap().to_path_buf();
    let cache = Cache::builder()
        .unix_socket_path(&path)
        .db(3)
        .build()
        .unwrap();
    assert!(cache.set("k", &1u8, None).unwrap());
    assert_eq!(cache.get::<u8>("k").unwrap(), Some(1));
    assert_eq!(server.cli(&["SELECT", "3"]), "OK");
    let via_url = Cache::open(&format!("redis+unix://{}?db=3", path.display())).unwrap();
    assert_eq!(via_url.get::<u8>("k").unwrap(), Some(1));
    let other_db = Cache::open(&server.url()).unwrap();
    assert_eq!(other_db.get::<u8>("k").unwrap(), None);
}

#[test]
fn namespace_hides_other_keys() {
    let server = RedisServer::start();
    let plain = Cache::open(&server.url()).unwrap();
    let ns = Cache::builder()
        .url(&server.url())
        .namespace("test:")
        .build()
        .unwrap();
    assert!(plain.set("shared", &"plain", None).unwrap());
    assert_eq!(ns.get::<String>("shared").unwrap(), None);
    assert!(ns.set("shared", &"ns", None).unwrap());
    assert_eq!(
        plain.get::<String>("shared").unwrap().as_deref(),
        Some("plain")
    );
    assert_eq!(
        plain.get::<String>("test:shared").unwrap().as_deref(),
        Some("ns")
    );
    assert_eq!(
        ns.get_many::<String, _, _>(["shared", "nope"]).unwrap(),
        vec![Some("ns".into()), None]
    );
    assert_eq!(ns.delete_many(["shared"]).unwrap(), 1);
    assert_eq!(
        plain.get::<String>("shared").unwrap().as_deref(),
        Some("plain")
    );
}

#[test]
fn expiry_short_and_default() {
    let server = RedisServer::start();
    let cache = Cache::open(&server.url()).unwrap();
    cache
        .set("short", &1, Some(Duration::from_secs(1)))
        .unwrap();
    cache.set("long", &1, None).unwrap();
    let ttl: i64 = server.cli(&["TTL", "long"]).parse().unwrap();
    assert!((259_190..=259_200).contains(&ttl), "default TTL {ttl}");
    let ttl: i64 = server.cli(&["TTL", "short"]).parse().unwrap();
    assert!((0..=1).contains(&ttl), "short TTL {ttl}");
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(cache.get::<i32>("short").unwrap(), None);
    assert_eq!(cache.get::<i32>("long").unwrap(), Some(1));

    let day = Cache::builder()
        .url(&server.url())
        .default_expire(Duration::from_secs(86_400))
        .build()
        .unwrap();
    day.set_many([("a", 1), ("b", 2)], None).unwrap();
    let ttl: i64 = server.cli(&["TTL", "b"]).parse().unwrap();
    assert!(
        (86_390..=86_400).contains(&ttl),
        "builder default TTL {ttl}"
    );
    let err = cache.set("zero", &1, Some(Duration::ZERO)).unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

#[test]
fn many_keys_order_holes_and_empty_inputs() {
    let server = RedisServer::start();
    let cache = Cache::open(&server.url()).unwrap();
    assert!(cache.set_many([("a", 1), ("c", 3)], None).unwrap());
    let got: Vec<Option<i32>> = cache.get_many(["c", "b", "a", "c"]).unwrap();
    assert_eq!(got, vec![Some(3), None, Some(1), Some(3)]);
    assert_eq!(cache.get_many::<i32, _, &str>([]).unwrap(), vec![]);
    assert!(cache.set_many(Vec::<(&str, i32)>::new(), None).unwrap());
    assert_eq!(cache.delete_many(Vec::<String>::new()).unwrap(), 0);
    assert_eq!(cache.delete_many(["a", "b", "c"]).unwrap(), 2);
    assert!(!cache.delete("a").unwrap());
    cache.set("a", &1, None).unwrap();
    assert!(cache.delete("a").unwrap());
    assert_eq!(cache.stats().sets, 3);
}

#[test]
fn json_and_cbor_round_trips() {
    let server = RedisServer::start();
    let json = Cache::open(&server.url()).unwrap();
    let cbor = Cache::builder()
        .url(&server.url())
        .serializer(CborSerializer)
        .namespace("cbor:")
        .build()
        .unwrap();
    let big = "x".repeat(1 << 20);
    for cache in [&json, &cbor] {
        cache.set("post", &post(), None).unwrap();
        assert_eq!(cache.get::<Post>("post").unwrap(), Some(post()));
        cache.set("ключ 🔑", &"значение", None).unwrap();
        assert_eq!(
            cache.get::<String>("ключ 🔑").unwrap().as_deref(),
            Some("значение")
        );
        cache.set("big", &big, None).unwrap();
        assert_eq!(
            cache.get::<String>("big").unwrap().map(|s| s.len()),
            Some(1 << 20)
        );
        let map = BTreeMap::from([(1u8, vec![0u8, 255]), (2, vec![])]);
        cache.set("map", &map, None).unwrap();
        assert_eq!(
            cache.get::<BTreeMap<u8, Vec<u8>>>("map").unwrap(),
            Some(map)
        );
    }
    // CBOR is binary, JSON is text: the same struct is stored differently.
    assert!(server.cli(&["GET", "post"]).starts_with('{'));
    assert!(!server.cli(&["GET", "cbor:post"]).starts_with('{'));
}

/// A custom serializer: JSON with a version byte in front.
struct Versioned;

impl Serializer for Versioned {
    fn name(&self) -> &'static str {
        "versioned-json"
    }
    fn encode(&self, value: &dyn erased_serde::Serialize) -> Result<Vec<u8>, BoxError> {
        let mut out = vec![b'1'];
        serde_json::to_writer(&mut out, value)?;
        Ok(out)
    }
    fn decode(&self, bytes: &[u8], out: Decode<'_>) -> Result<(), BoxError> {
        let body = bytes.strip_prefix(b"1").ok_or("unknown version")?;
        out.from(&mut serde_json::Deserializer::from_slice(body))
    }
}

#[test]
fn custom_serializer() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .url(&server.url())
        .serializer(Versioned)
        .build()
        .unwrap();
    cache.set("p", &post(), None).unwrap();
    assert_eq!(cache.get::<Post>("p").unwrap(), Some(post()));
    assert!(server.cli(&["GET", "p"]).starts_with("1{"));
    server.cli(&["SET", "bad", "2{}"]);
    let err = cache.get::<Post>("bad").unwrap_err();
    assert!(
        err.to_string().contains("versioned-json") && err.to_string().contains("unknown version"),
        "{err}"
    );
}

#[test]
fn undecodable_bytes_are_an_error() {
    let server = RedisServer::start();
    let cache = Cache::open(&server.url()).unwrap();
    server.cli(&["SET", "k", "not json"]);
    let err = cache.get::<i32>("k").unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    assert!(err.to_string().contains("\"k\""), "{err}");
    cache.set("n", &"text", None).unwrap();
    assert!(cache.get::<i32>("n").is_err());
    assert_eq!(cache.stats().decode_errors, 2);
    let cbor = Cache::builder()
        .url(&server.url())
        .serializer(CborSerializer)
        .build()
        .unwrap();
    assert!(cbor.get::<Post>("k").is_err());
}

#[test]
fn closed_port_errors_name_the_host_within_the_timeout() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cache = Cache::builder()
        .host("127.0.0.1")
        .port(port)
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = cache.get::<String>("k").unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.is_unavailable());
    // The host is now backing off: the next call fails at once.
    let start = Instant::now();
    let err = cache.set("k", &1, None).unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(50));
    assert!(matches!(err, Error::HostDown { .. }), "{err}");
    assert!(cache.stats().errors >= 2);
}

#[test]
fn password_is_never_printed() {
    let server = RedisServer::builder().password("hunter2-secret").start();
    let cache = Cache::open(&server.url()).unwrap();
    assert!(cache.set("k", &1, None).unwrap());
    let wrong = Cache::builder()
        .host("127.0.0.1")
        .port(server.port().unwrap())
        .password("wrong-pass-123")
        .build()
        .unwrap();
    let err = wrong.get::<i32>("k").unwrap_err();
    let text = format!("{err} {err:?} {wrong:?}");
    assert!(!text.contains("wrong-pass-123"), "{text}");
    assert!(
        text.to_lowercase().contains("auth") || text.contains("WRONGPASS"),
        "{text}"
    );
    let b = Cache::builder().url(&server.url());
    assert!(!format!("{b:?}").contains("hunter2"));
    let bad = Cache::open("redis://:hunter2-secret@127.0.0.1:99999").unwrap_err();
    assert!(!bad.to_string().contains("hunter2"), "{bad}");
    assert!(bad.to_string().contains("99999"), "{bad}");
}

#[test]
fn null_and_fake_caches() {
    let null = NullCache::new();
    assert!(null.set("k", &1, None).unwrap());
    assert_eq!(null.get::<i32>("k").unwrap(), None);
    assert_eq!(
        null.get_many::<i32, _, _>(["a", "b"]).unwrap(),
        vec![None, None]
    );
    assert!(null.delete("k").unwrap());

    let fake = FakeRedisCache::new();
    fake.set("k", &"v", Some(Duration::from_millis(100)))
        .unwrap();
    fake.set("p", &post(), None).unwrap();
    assert_eq!(fake.get::<String>("k").unwrap().as_deref(), Some("v"));
    assert_eq!(fake.get::<Post>("p").unwrap(), Some(post()));
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(fake.get::<String>("k").unwrap(), None);
    assert_eq!(fake.delete_many(["k", "p"]).unwrap(), 1);

    let ns =
        FakeRedisCache::build(Cache::builder().namespace("n:").serializer(JsonSerializer)).unwrap();
    ns.set("x", &1, None).unwrap();
    assert_eq!(ns.namespace(), "n:");
    assert_eq!(ns.get::<i32>("x").unwrap(), Some(1));
}

#[test]
fn bad_urls_are_clear_errors() {
    for url in [
        "http://localhost",
        "redis://localhost:0",
        "redis://localhost:99999",
        "redis://localhost:abc",
        "redis://localhost/notadb",
        "redis+unix://",
        "localhost:6379",
        "",
    ] {
        let err = Cache::open(url).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{url}: {err}");
    }
}

/// A store that answers a multi-get key by key in reverse order (as a
/// cluster does when a later server answers first), failing `down:` keys.
struct Reversed(rc::MemoryBackend);

impl Reversed {
    fn outcome(&self, key: &str) -> rc::Result<Option<Vec<u8>>> {
        match key.strip_prefix("down:") {
            Some(_) => Err(Error::Backend {
                backend: "reversed".into(),
                source: std::sync::Arc::new(std::io::Error::other(format!("{key} is down"))),
            }),
            None => rc::Backend::get(&self.0, key),
        }
    }
}

impl rc::Backend for Reversed {
    fn get(&self, key: &str) -> rc::Result<Option<Vec<u8>>> {
        self.outcome(key)
    }
    fn get_many(&self, keys: &[&str]) -> Vec<rc::Result<Option<Vec<u8>>>> {
        keys.iter().map(|k| self.outcome(k)).collect()
    }
    fn get_many_each(
        &self,
        keys: &[&str],
        each: &mut dyn FnMut(usize, rc::Result<Option<Vec<u8>>>),
    ) {
        for (pos, key) in keys.iter().enumerate().rev() {
            each(pos, self.outcome(key));
        }
    }
    fn set(&self, key: &str, value: &[u8], expire: Duration) -> rc::Result<bool> {
        rc::Backend::set(&self.0, key, value, expire)
    }
    fn set_many(&self, items: &[rc::SetItem]) -> rc::Result<bool> {
        rc::Backend::set_many(&self.0, items)
    }
    fn delete(&self, key: &str) -> rc::Result<bool> {
        rc::Backend::delete(&self.0, key)
    }
    fn delete_many(&self, keys: &[&str]) -> rc::Result<u64> {
        rc::Backend::delete_many(&self.0, keys)
    }
    fn ttl(&self, key: &str) -> rc::Result<Option<Duration>> {
        rc::Backend::ttl(&self.0, key)
    }
    fn ping(&self) -> rc::Result<()> {
        Ok(())
    }
}

/// Replies handed out of key order still come back in key order, and the
/// error `get_many` returns is the first in key order (as if the keys were
/// read one after the other), whichever arrived first.
#[test]
fn multi_get_replies_in_any_order() {
    let store = std::sync::Arc::new(Reversed(rc::MemoryBackend::default()));
    let cache = Cache::builder().build_with_backend(store.clone()).unwrap();
    cache
        .set_many([("a", 1), ("b", 2), ("d", 4)], None)
        .unwrap();
    rc::Backend::set(&store.0, "bad", b"not json", Duration::from_secs(60)).unwrap();

    let got: Vec<Option<i32>> = cache.get_many(["a", "b", "c", "d", "a"]).unwrap();
    assert_eq!(got, [Some(1), Some(2), None, Some(4), Some(1)]);
    assert_eq!((cache.stats().hits, cache.stats().misses), (4, 1));

    // The failed server's key comes before the bad bytes, which arrive first.
    let err = cache
        .get_many::<i32, _, _>(["a", "down:1", "bad", "c"])
        .unwrap_err();
    assert!(err.to_string().contains("down:1 is down"), "{err}");
    // The bad bytes come first, though the failed server's reply arrives first.
    let err = cache.get_many::<i32, _, _>(["bad", "down:1"]).unwrap_err();
    assert!(
        matches!(&err, Error::Decode { key, .. } if key == "bad"),
        "{err}"
    );
    let stats = cache.stats();
    assert_eq!((stats.errors, stats.decode_errors), (1, 1));
    assert_eq!(
        (stats.hits, stats.misses),
        (4, 1),
        "a failed call counts no reads"
    );

    let results = cache.get_many_results::<i32, _, _>(["bad", "down:1", "b", "c"]);
    assert!(matches!(&results[0], Err(Error::Decode { key, .. }) if key == "bad"));
    assert!(matches!(&results[1], Err(Error::Backend { .. })));
    assert_eq!(results[2].as_ref().ok(), Some(&Some(2)));
    assert_eq!(results[3].as_ref().ok(), Some(&None));
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (5, 2));
    assert_eq!((stats.errors, stats.decode_errors), (2, 2));
}

/// Both faces connect as an ACL user to a database other than 0: the user
/// name and password go with `AUTH` and the database with `SELECT`, and the
/// value lands in that database as that user wrote it. A user the server
/// does not know is refused with a clear error.
#[tokio::test(flavor = "multi_thread")]
async fn acl_user_and_database_on_both_faces() {
    let server = RedisServer::builder().password("admin-pw").start();
    let setuser = ["ACL", "SETUSER", "alice", "on", ">alice-pw", "~*", "+@all"];
    assert_eq!(server.cli(&setuser), "OK");
    let as_user = |user: &str| {
        Cache::builder()
            .host("127.0.0.1")
            .port(server.port().unwrap())
            .username(user)
            .password("alice-pw")
            .db(2)
    };
    let cache = as_user("alice").build().unwrap();
    let async_cache = as_user("alice").build_async().unwrap();
    assert!(
        cache
            .set("sync", &"written by the blocking face", None)
            .unwrap()
    );
    assert!(
        async_cache
            .set("async", &"written by the async face", None)
            .await
            .unwrap()
    );
    // The source of truth: the `redis` crate's own connection, as alice to database 2.
    let mut conn = cache.client("sync").unwrap().get_connection().unwrap();
    let whoami: String = rc::redis::cmd("ACL")
        .arg("WHOAMI")
        .query(&mut conn)
        .unwrap();
    assert_eq!(whoami, "alice");
    for (key, value) in [
        ("sync", "written by the blocking face"),
        ("async", "written by the async face"),
    ] {
        let stored: Vec<u8> = rc::redis::cmd("GET").arg(key).query(&mut conn).unwrap();
        assert_eq!(stored, serde_json::to_vec(value).unwrap(), "{key}");
        assert_eq!(
            server.cli(&["EXISTS", key]),
            "0",
            "{key} is not in database 0"
        );
        assert_eq!(cache.get::<String>(key).unwrap().as_deref(), Some(value));
        assert_eq!(
            async_cache.get::<String>(key).await.unwrap().as_deref(),
            Some(value)
        );
    }
    let stranger = as_user("mallory").build().unwrap();
    let err = stranger.get::<String>("sync").unwrap_err().to_string();
    assert!(err.to_lowercase().contains("auth"), "{err}");
    assert!(
        err.contains(&server.port().unwrap().to_string()),
        "names the server: {err}"
    );
    let err = as_user("mallory")
        .build_async()
        .unwrap()
        .get::<String>("sync")
        .await
        .unwrap_err();
    assert!(err.to_string().to_lowercase().contains("auth"), "{err}");
}

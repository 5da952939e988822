//! `#[rc::cache]` against a real redis-server: hits, invalidation, prefixes,
//! methods, bypass values, batches, `Result`, and failing open.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, LazyLock, OnceLock};

use rc::testing::RedisServer;
use rc::{Cache, Promise};
use serde::{Deserialize, Serialize};

/// One server for this file; each test uses its own functions and keys.
static SERVER: LazyLock<RedisServer> = LazyLock::new(RedisServer::start);
static CACHE: LazyLock<Cache> = LazyLock::new(|| Cache::open(&SERVER.url()).unwrap());

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Post {
    id: i64,
    title: String,
}

static LOADS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE, expire = 3600)]
fn load_post(id: i64, title: &str) -> Post {
    LOADS.fetch_add(1, SeqCst);
    Post {
        id,
        title: title.to_owned(),
    }
}

#[test]
fn second_call_is_served_from_redis() {
    let before = CACHE.stats();
    assert_eq!(
        load_post(1, "hello world"),
        Post {
            id: 1,
            title: "hello world".into()
        }
    );
    assert_eq!(
        load_post(1, "hello world"),
        Post {
            id: 1,
            title: "hello world".into()
        }
    );
    assert_eq!(LOADS.load(SeqCst), 1);
    let after = CACHE.stats();
    assert!(after.hits > before.hits && after.misses > before.misses);
    let key = format!("{} load_post 1 hello%20world", module_path!());
    assert_eq!(SERVER.cli(&["TTL", &key]), "3600");
    assert!(SERVER.cli(&["GET", &key]).contains("\"hello world\""));
}

static RELOADS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE)]
fn reload(name: &str, offset: u32) -> String {
    RELOADS.fetch_add(1, SeqCst);
    format!("{name}:{offset}")
}

#[test]
fn invalidate_then_recompute() {
    assert_eq!(reload("name", 10), "name:10");
    assert_eq!(reload("name", 10), "name:10");
    assert_eq!(RELOADS.load(SeqCst), 1);
    assert!(invalidate_reload("name", 10));
    assert!(!invalidate_reload("name", 10));
    assert_eq!(reload("name", 10), "name:10");
    assert_eq!(RELOADS.load(SeqCst), 2);
    // Other arguments were never cached.
    assert!(!invalidate_reload("name", 11));
}

mod a {
    #[rc::cache(cache = super::CACHE)]
    pub fn same(x: u32) -> String {
        format!("a{x}")
    }
}

mod b {
    pub struct Data;
    impl Data {
        #[rc::cache(cache = super::CACHE, key_prefix = "another")]
        pub fn same(&self, x: u32) -> String {
            format!("b{x}")
        }
    }
    #[rc::cache(cache = super::CACHE, key_prefix = "v1")]
    pub fn versioned(x: u32) -> String {
        format!("v1-{x}")
    }
    pub mod v2 {
        #[rc::cache(cache = super::super::CACHE, key_prefix = "v2")]
        pub fn versioned(x: u32) -> String {
            format!("v2-{x}")
        }
    }
}

#[test]
fn key_prefix_separates_same_named_functions() {
    assert_eq!(a::same(1), "a1");
    assert_eq!(b::Data.same(1), "b1");
    assert_eq!(a::same(1), "a1");
    assert_eq!(b::Data.same(1), "b1");
    assert_eq!(b::versioned(1), "v1-1");
    assert_eq!(b::v2::versioned(1), "v2-1");
    let keys = SERVER.cli(&["KEYS", "another *"]);
    assert!(keys.contains("another decorator::b same 1"), "{keys}");
}

struct User {
    name: String,
}

impl std::fmt::Display for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "user:{}", self.name)
    }
}

static GREETS: AtomicU32 = AtomicU32::new(0);

impl User {
    #[rc::cache(cache = CACHE, include_self = true)]
    fn greet(&self, greeting: &str) -> String {
        GREETS.fetch_add(1, SeqCst);
        format!("{greeting}, {}", self.name)
    }

    #[rc::cache(cache = CACHE)]
    fn shared(&self, n: u32) -> String {
        format!("{}{n}", self.name)
    }

    #[rc::cache(cache = CACHE)]
    fn rename(&mut self, n: u32) -> u32 {
        self.name = format!("renamed{n}");
        n
    }

    #[rc::cache(cache = CACHE)]
    fn arc_len(self: Arc<Self>, extra: usize) -> usize {
        self.name.len() + extra
    }

    #[rc::cache(cache = CACHE)]
    fn associated(n: u32) -> u32 {
        n * 2
    }
}

#[test]
fn methods_and_include_self() {
    let ann = User { name: "ann".into() };
    let bob = User { name: "bob".into() };
    assert_eq!(ann.greet("hi"), "hi, ann");
    assert_eq!(bob.greet("hi"), "hi, bob");
    assert_eq!(ann.greet("hi"), "hi, ann");
    assert_eq!(GREETS.load(SeqCst), 2);
    assert!(ann.invalidate_greet("hi"));
    // Without include_self, instances share a key: the first result wins.
    assert_eq!(ann.shared(1), "ann1");
    assert_eq!(bob.shared(1), "ann1");
    let mut m = User { name: "m".into() };
    assert_eq!(m.rename(3), 3);
    assert_eq!(m.name, "renamed3");
    let mut m2 = User { name: "m2".into() };
    assert_eq!(m2.rename(3), 3);
    assert_eq!(
        m2.name, "m2",
        "second call is served from the cache; the body did not run"
    );
    assert_eq!(Arc::new(User { name: "abc".into() }).arc_len(1), 4);
    assert_eq!(User::associated(21), 42);
    assert_eq!(User::associated(21), 42);
}

static FINDS: AtomicU32 = AtomicU32::new(0);
static BYPASS: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .url(&SERVER.url())
        .namespace("bypass:")
        .bypass_values([None::<()>])
        .build()
        .unwrap()
});

#[rc::cache(cache = BYPASS)]
fn find(id: u32) -> Option<String> {
    FINDS.fetch_add(1, SeqCst);
    (id == 1).then(|| "one".to_owned())
}

static NONES: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE)]
fn find_cached_none(id: u32) -> Option<String> {
    NONES.fetch_add(1, SeqCst);
    (id == 1).then(|| "one".to_owned())
}

#[test]
fn bypass_none_and_cached_none() {
    assert_eq!(find(2), None);
    assert_eq!(find(2), None);
    assert_eq!(
        FINDS.load(SeqCst),
        2,
        "None is bypassed: computed each time"
    );
    assert_eq!(find(1).as_deref(), Some("one"));
    assert_eq!(find(1).as_deref(), Some("one"));
    assert_eq!(FINDS.load(SeqCst), 3);
    assert_eq!(BYPASS.stats().bypassed, 2);
    assert_eq!(find_cached_none(2), None);
    assert_eq!(find_cached_none(2), None);
    assert_eq!(
        NONES.load(SeqCst),
        1,
        "without bypass values None is cached"
    );
}

static PARSES: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE)]
fn parse(s: &str) -> Result<i64, std::num::ParseIntError> {
    PARSES.fetch_add(1, SeqCst);
    let n: i64 = s.trim().parse()?;
    if n < 0 {
        return Ok(0);
    }
    Ok(n)
}

#[test]
fn result_errors_are_not_cached() {
    assert!(parse("x").is_err());
    assert!(parse("x").is_err());
    assert_eq!(PARSES.load(SeqCst), 2);
    assert_eq!(parse("-5"), Ok(0));
    assert_eq!(parse("-5"), Ok(0));
    assert_eq!(PARSES.load(SeqCst), 3);
}

/// A `Result` alias that does not say `Result`.
type Fallible<T> = Result<T, String>;

static ALIASED: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE)]
fn aliased(n: i64) -> Fallible<i64> {
    ALIASED.fetch_add(1, SeqCst);
    if n < 0 {
        return Err(format!("{n} < 0"));
    }
    Ok(n * 2)
}

static IO_READS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE)]
fn io_read(name: &str) -> std::io::Result<String> {
    IO_READS.fetch_add(1, SeqCst);
    if name.is_empty() {
        return Err(std::io::Error::other("no name"));
    }
    Ok(name.to_uppercase())
}

#[test]
fn result_aliases_cache_only_ok() {
    assert_eq!(aliased(-1), Err("-1 < 0".into()));
    assert_eq!(ALIASED.load(SeqCst), 1);
    assert_eq!(aliased(-1), Err("-1 < 0".into()));
    assert_eq!(ALIASED.load(SeqCst), 2, "after an Err the body runs again");
    let err_key = format!("{} aliased -1", module_path!());
    assert_eq!(SERVER.cli(&["EXISTS", &err_key]), "0");
    assert_eq!(aliased(4), Ok(8));
    assert_eq!(aliased(4), Ok(8));
    assert_eq!(ALIASED.load(SeqCst), 3, "Ok is cached");
    // The `Ok` value itself is stored, not the `Result`.
    let ok_key = format!("{} aliased 4", module_path!());
    assert_eq!(SERVER.cli(&["GET", &ok_key]), "8");

    assert_eq!(io_read("").unwrap_err().to_string(), "no name");
    assert!(io_read("").is_err());
    assert_eq!(IO_READS.load(SeqCst), 2, "after an Err the body runs again");
    assert_eq!(io_read("a").unwrap(), "A");
    assert_eq!(io_read("a").unwrap(), "A");
    assert_eq!(IO_READS.load(SeqCst), 3, "Ok is cached");
    let key = format!("{} io_read a", module_path!());
    assert_eq!(SERVER.cli(&["GET", &key]), "\"A\"");

    // In a batch too.
    let batch = CACHE.batch();
    let err = batch_aliased(&batch, -2);
    let ok = batch_io_read(&batch, "a");
    batch.run();
    assert_eq!(err.into_value(), Some(Err("-2 < 0".into())));
    assert_eq!(ok.into_value().unwrap().unwrap(), "A");
    assert_eq!(IO_READS.load(SeqCst), 3, "the batch hit");
    assert_eq!(
        SERVER.cli(&["EXISTS", &format!("{} aliased -2", module_path!())]),
        "0"
    );
}

static TRIES: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE)]
fn tried(n: u32) -> u32 {
    TRIES.fetch_add(1, SeqCst);
    n + 1
}

#[test]
fn try_invalidate_tells_nothing_cached_from_a_failure() {
    assert!(!try_invalidate_tried(1).unwrap(), "nothing cached yet");
    assert_eq!(tried(1), 2);
    assert!(try_invalidate_tried(1).unwrap());
    assert!(!try_invalidate_tried(1).unwrap());
    assert_eq!(tried(1), 2);
    assert_eq!(TRIES.load(SeqCst), 2, "recomputed after the invalidation");

    // Against a server that went away: an error, where `invalidate_` says false.
    let server = RedisServer::start();
    let cache = Cache::builder()
        .url(&server.url())
        .connect_timeout(std::time::Duration::from_millis(200))
        .build()
        .unwrap();
    #[rc::cache(cache = cache, skip(cache))]
    fn on(cache: &Cache, n: u32) -> u32 {
        let _ = cache;
        n
    }
    assert_eq!(on(&cache, 1), 1);
    assert!(try_invalidate_on(&cache, 1).unwrap());
    assert_eq!(on(&cache, 1), 1);
    server.kill();
    let errors = cache.stats().errors;
    assert!(try_invalidate_on(&cache, 1).is_err());
    assert!(!invalidate_on(&cache, 1));
    assert!(cache.stats().errors > errors, "failures are counted");
}

static IDENT_CALLS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(cache = CACHE)]
fn identity(param: u32) -> u32 {
    IDENT_CALLS.fetch_add(1, SeqCst);
    param
}

#[rc::cache(cache = CACHE)]
fn square(param: u32) -> u64 {
    u64::from(param) * u64::from(param)
}

#[test]
fn batch_resolves_promises_and_later_calls_hit() {
    let batch = CACHE.batch();
    let results: Vec<Promise<u32>> = (0..10).map(|i| batch_identity(&batch, i)).collect();
    let squares: Vec<Promise<u64>> = (0..3).map(|i| batch_square(&batch, i)).collect();
    assert_eq!(batch.len(), 13);
    assert!(results.iter().all(Promise::is_pending));
    assert_eq!(IDENT_CALLS.load(SeqCst), 0, "nothing runs before run()");
    batch.run();
    for (i, rv) in results.into_iter().enumerate() {
        assert!(rv.is_resolved());
        assert_eq!(rv.into_value(), Some(i as u32));
    }
    let sq: Vec<u64> = squares
        .into_iter()
        .map(|p| p.into_value().unwrap())
        .collect();
    assert_eq!(sq, vec![0, 1, 4]);
    assert_eq!(IDENT_CALLS.load(SeqCst), 10);
    for i in 0..10 {
        assert_eq!(identity(i), i);
    }
    assert_eq!(
        IDENT_CALLS.load(SeqCst),
        10,
        "plain calls hit what the batch stored"
    );
    // A second batch is all hits.
    let batch = CACHE.batch();
    let again: Vec<Promise<u32>> = (0..10).map(|i| batch_identity(&batch, i)).collect();
    batch.run();
    assert_eq!(IDENT_CALLS.load(SeqCst), 10);
    assert_eq!(
        again
            .into_iter()
            .map(|p| p.into_value().unwrap())
            .sum::<u32>(),
        45
    );
}

#[test]
fn batch_dropped_without_run_computes_nothing() {
    static DROPS: AtomicU32 = AtomicU32::new(0);
    #[rc::cache(cache = CACHE)]
    fn dropped(x: u32) -> u32 {
        DROPS.fetch_add(1, SeqCst);
        x
    }
    let batch = CACHE.batch();
    let p = batch_dropped(&batch, 1);
    let seen = Arc::new(OnceLock::new());
    let s = seen.clone();
    let p = p.then(move |v| {
        s.set(*v).unwrap();
    });
    drop(batch);
    assert!(p.is_pending());
    assert_eq!(p.into_value(), None);
    assert_eq!(DROPS.load(SeqCst), 0);
    assert!(seen.get().is_none());
}

#[test]
fn undecodable_bytes_are_recomputed_and_overwritten() {
    static CALLS: AtomicU32 = AtomicU32::new(0);
    #[rc::cache(cache = CACHE)]
    fn fragile(x: u32) -> Vec<u32> {
        CALLS.fetch_add(1, SeqCst);
        vec![x]
    }
    let key = format!("{} fragile 5", module_path!());
    SERVER.cli(&["SET", &key, "{not json"]);
    assert_eq!(fragile(5), vec![5]);
    assert_eq!(SERVER.cli(&["GET", &key]), "[5]");
    assert_eq!(fragile(5), vec![5]);
    assert_eq!(CALLS.load(SeqCst), 1);
}

#[test]
fn fail_open_when_the_server_is_killed() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .url(&server.url())
        .connect_timeout(std::time::Duration::from_millis(200))
        .build()
        .unwrap();
    static CALLS: AtomicU32 = AtomicU32::new(0);
    #[rc::cache(cache = cache, skip(cache))]
    fn doubled(cache: &Cache, x: u32) -> u32 {
        let _ = cache;
        CALLS.fetch_add(1, SeqCst);
        x * 2
    }
    // The cache comes in as an argument, left out of the key.
    assert_eq!(doubled(&cache, 2), 4);
    assert_eq!(doubled(&cache, 2), 4);
    assert_eq!(CALLS.load(SeqCst), 1);
    server.kill();
    for _ in 0..5 {
        assert_eq!(doubled(&cache, 2), 4);
    }
    assert_eq!(
        CALLS.load(SeqCst),
        6,
        "the body ran for every call while Redis was down"
    );
    assert!(cache.stats().errors >= 1);
    let batch = cache.batch();
    let ps: Vec<_> = (0..3).map(|i| batch_doubled(&batch, &cache, i)).collect();
    batch.run();
    assert_eq!(
        ps.into_iter()
            .map(|p| p.into_value().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 2, 4]
    );
}

static PY_CALLS: AtomicU32 = AtomicU32::new(0);

/// Python's `@cache.cache()` on `get_post(post_id)` in module `blog.models`.
#[rc::cache(cache = CACHE, module = "blog.models")]
fn get_post(post_id: i64) -> Option<String> {
    PY_CALLS.fetch_add(1, SeqCst);
    Some(format!("post {post_id}"))
}

/// `name` replaces the function's part of the key too.
#[rc::cache(cache = CACHE, module = "blog.models", name = "get_post")]
fn load_post_for_python(post_id: i64) -> Option<String> {
    Some(format!("rust {post_id}"))
}

/// With `module` (and `name`), a decorated fn reads and writes the very
/// entries Python rc's twin does: the key is byte for byte rc's.
#[test]
fn module_and_name_give_python_rcs_key() {
    // As Python rc 0.3.1 stores it: SETEX "blog.models get_post 7" with JSON.
    SERVER.cli(&[
        "SET",
        "blog.models get_post 7",
        "\"from python\"",
        "EX",
        "60",
    ]);
    assert_eq!(get_post(7).as_deref(), Some("from python"));
    assert_eq!(PY_CALLS.load(SeqCst), 0, "read Python's entry");
    assert_eq!(get_post(8).as_deref(), Some("post 8"));
    assert_eq!(
        SERVER.cli(&["GET", "blog.models get_post 8"]),
        "\"post 8\"",
        "JSON, as rc writes it"
    );
    assert_eq!(
        load_post_for_python(7).as_deref(),
        Some("from python"),
        "same key"
    );
    assert!(invalidate_load_post_for_python(7));
    assert_eq!(SERVER.cli(&["EXISTS", "blog.models get_post 7"]), "0");
}

/// Python's `@cache.cache()` on `def search(q, page, exact, ratio, owner)`
/// in module `blog.search`.
#[rc::cache(cache = CACHE, module = "blog.search", name = "search", python_args)]
fn search_for_python(
    q: &str,
    page: u32,
    exact: bool,
    ratio: f64,
    owner: Option<i64>,
) -> Vec<String> {
    vec![format!("{q}/{page}/{exact}/{ratio}/{owner:?}")]
}

/// With `python_args`, arguments are written as rc writes them: `True`,
/// `None`, `1.0`, spaces as they are (no `%20`).
#[test]
fn python_args_give_python_rcs_key() {
    // Keys as Python 2's rc 0.3.1 builds them for these calls.
    let cases = [
        (
            ("a b", 1, true, 1.0, None),
            "blog.search search a b 1 True 1.0 None",
        ),
        (
            ("é%", 2, false, 1e16, Some(-3)),
            "blog.search search é% 2 False 1e+16 -3",
        ),
        (
            ("", 0, true, 1.0 / 3.0, Some(0)),
            "blog.search search  0 True 0.333333333333 0",
        ),
    ];
    for ((q, page, exact, ratio, owner), key) in cases {
        SERVER.cli(&["SET", key, "[\"from python\"]", "EX", "60"]);
        assert_eq!(
            search_for_python(q, page, exact, ratio, owner),
            ["from python"],
            "{key}"
        );
        assert!(invalidate_search_for_python(q, page, exact, ratio, owner));
        assert_eq!(SERVER.cli(&["EXISTS", key]), "0", "{key}");
        search_for_python(q, page, exact, ratio, owner);
        assert_eq!(
            SERVER.cli(&["EXISTS", key]),
            "1",
            "stored under rc's key: {key}"
        );
    }
}

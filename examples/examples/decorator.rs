//! `#[rc::cache]`: cache a function's result with one line.
//!
//! Run: `cargo run --example decorator` (Redis at `REDIS_URL`, default
//! `redis://127.0.0.1:6379`).

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use rc::Cache;

/// Counts how often a body really ran, to show which calls were cached.
static RUNS: AtomicU32 = AtomicU32::new(0);

/// The key of a call is `<module path> <fn name> <args..>`, here
/// `decorator load name 10`; the result expires after `expire` seconds.
#[rc::cache(expire = 60)]
fn load(name: &str, offset: u32) -> Vec<String> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    println!("    (load({name:?}, {offset}) runs: imagine a slow query)");
    (offset..offset + 3)
        .map(|i| format!("{name}-{i}"))
        .collect()
}

/// A second `load` in the same module would share the keys of the first:
/// `key_prefix` keeps them apart (`another decorator load ..`). `self` is not
/// part of the key unless `include_self = true`.
struct Data;

impl Data {
    #[rc::cache(key_prefix = "another", expire = 60)]
    fn load(&self, name: &str, offset: u32) -> Vec<String> {
        RUNS.fetch_add(1, Ordering::SeqCst);
        println!("    (Data::load({name:?}, {offset}) runs)");
        vec![format!("{name} from another place, offset {offset}")]
    }
}

/// With `include_self = true`, the instance is part of the key, through its
/// `Display`: give it one that identifies it.
struct User {
    id: u64,
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user{}", self.id)
    }
}

impl User {
    #[rc::cache(include_self = true, expire = 60)]
    fn greeting(&self, lang: &str) -> String {
        RUNS.fetch_add(1, Ordering::SeqCst);
        println!("    (greeting for user {} in {lang} runs)", self.id);
        match lang {
            "fr" => format!("Bonjour, n°{}", self.id),
            _ => format!("Hello, #{}", self.id),
        }
    }
}

/// `async fn`s are cached the same way, in the installed `AsyncCache`.
#[rc::cache(expire = 60)]
async fn square(n: u64) -> u64 {
    RUNS.fetch_add(1, Ordering::SeqCst);
    println!("    (square({n}) runs)");
    n * n
}

fn main() -> Result<(), rc::Error> {
    examples::init_logs();
    let url = examples::redis_url();
    // Functions without `cache = ..` use the installed default cache. The
    // namespace keeps this example's keys apart from anything else in Redis.
    let cache = Cache::builder()
        .url(&url)
        .namespace("rc-example:")
        .build()?;
    cache.clone().install_default();

    // Start from a clean slate, in case an earlier run left results behind:
    // `invalidate_<fn>` is generated next to each cached function.
    invalidate_load("name", 10);
    Data::invalidate_load(&Data, "name", 10);
    let alice = User { id: 7 };
    alice.invalidate_greeting("fr");

    println!("load(\"name\", 10), twice:");
    let first = load("name", 10);
    let second = load("name", 10);
    println!("  -> {second:?}");
    assert_eq!(first, second);
    assert_eq!(
        RUNS.load(Ordering::SeqCst),
        1,
        "the second call is served from Redis"
    );

    // The value is an ordinary cache entry under the documented key.
    let stored: Option<Vec<String>> = cache.get("decorator load name 10")?;
    println!("  stored under \"decorator load name 10\": {stored:?}");
    assert_eq!(stored.as_ref(), Some(&first));

    println!("Data::load(\"name\", 10), twice (key_prefix = \"another\"):");
    let other = Data.load("name", 10);
    assert_eq!(Data.load("name", 10), other);
    println!("  -> {other:?}");
    assert_ne!(other, first, "a different key than the free function's");
    assert_eq!(RUNS.load(Ordering::SeqCst), 2);

    println!("alice.greeting(\"fr\"), twice (include_self = true):");
    println!("  -> {}", alice.greeting("fr"));
    alice.greeting("fr");
    let stored: Option<String> = cache.get("decorator greeting user7 fr")?;
    println!("  stored under \"decorator greeting user7 fr\": {stored:?}");
    assert_eq!(RUNS.load(Ordering::SeqCst), 3);

    // The async twin: an AsyncCache installed as the async default.
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    runtime.block_on(async {
        let cache = rc::AsyncCache::builder()
            .url(&url)
            .namespace("rc-example:")
            .build_async()?;
        cache.install_default();
        invalidate_square(12).await;
        println!("square(12).await, twice:");
        let a = square(12).await;
        let b = square(12).await;
        println!("  -> {b}");
        assert_eq!((a, b), (144, 144));
        Ok::<(), rc::Error>(())
    })?;
    assert_eq!(RUNS.load(Ordering::SeqCst), 4);

    println!("{:?}", cache.stats());
    println!("decorator: ok, 8 calls, 4 bodies run");
    Ok(())
}

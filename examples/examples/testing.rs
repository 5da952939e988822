//! Testing code that caches, without a Redis server.
//!
//! - `NullCache`: stores nothing, so every call runs its body: test the
//!   logic as if there were no cache.
//! - `FakeRedisCache`: an in-process store that behaves like Redis (expiry
//!   included): test the caching itself.
//! - (`RedisServer` starts a throwaway real `redis-server` for integration
//!   tests; see `examples/tests/blog.rs`.)
//!
//! Run: `cargo run --example testing` (needs no Redis).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rc::Cache;
use rc::testing::{FakeRedisCache, NullCache};

/// A service that takes its cache as a value: tests hand it a test double.
struct Catalog {
    cache: Cache,
    db_reads: AtomicU32,
}

impl Catalog {
    fn new(cache: Cache) -> Self {
        Catalog {
            cache,
            db_reads: AtomicU32::new(0),
        }
    }

    /// `cache = self.cache`: each `Catalog` caches in its own cache.
    #[rc::cache(cache = self.cache, expire = 600)]
    fn price(&self, item: &str) -> u32 {
        self.db_reads.fetch_add(1, Ordering::SeqCst);
        item.len() as u32 * 100 // the "database"
    }

    fn reads(&self) -> u32 {
        self.db_reads.load(Ordering::SeqCst)
    }
}

fn main() -> Result<(), rc::Error> {
    examples::init_logs();
    // NullCache: writes "succeed", reads always miss.
    let null = NullCache::new();
    assert!(null.set("k", &1, None)?);
    println!("NullCache: set -> true, get -> {:?}", null.get::<i32>("k")?);

    let catalog = Catalog::new(NullCache::new());
    assert_eq!(catalog.price("apple"), 500);
    assert_eq!(catalog.price("apple"), 500);
    println!(
        "NullCache: price(\"apple\") twice -> {} database reads",
        catalog.reads()
    );
    assert_eq!(catalog.reads(), 2);

    // FakeRedisCache: real caching, in this process.
    let catalog = Catalog::new(FakeRedisCache::new());
    catalog.price("apple");
    catalog.price("apple");
    println!(
        "FakeRedisCache: price(\"apple\") twice -> {} database read",
        catalog.reads()
    );
    assert_eq!(catalog.reads(), 1);
    assert!(catalog.invalidate_price("apple"));
    catalog.price("apple");
    println!(
        "FakeRedisCache: after invalidate_price -> {} database reads",
        catalog.reads()
    );
    assert_eq!(catalog.reads(), 2);
    println!("FakeRedisCache: stats {:?}", catalog.cache.stats());

    // It honours expiry, and takes the same front options as a real cache.
    let fake = FakeRedisCache::build(Cache::builder().namespace("test:"))?;
    fake.set("short", &"lived", Some(Duration::from_millis(50)))?;
    println!(
        "FakeRedisCache: get(\"short\") -> {:?}",
        fake.get::<String>("short")?
    );
    std::thread::sleep(Duration::from_millis(80));
    let gone = fake.get::<String>("short")?;
    println!("FakeRedisCache: 80 ms later  -> {gone:?}");
    assert_eq!(gone, None);

    println!("testing: ok");
    Ok(())
}

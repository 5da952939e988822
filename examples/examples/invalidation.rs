//! Invalidation: drop a cached value when the data behind it changes.
//!
//! Run: `cargo run --example invalidation` (Redis at `REDIS_URL`, default
//! `redis://127.0.0.1:6379`).

use std::sync::atomic::{AtomicU32, Ordering};

use rc::Cache;

static RUNS: AtomicU32 = AtomicU32::new(0);

#[rc::cache(expire = 60)]
fn load(name: &str, offset: u32) -> String {
    let n = RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    format!("{name}@{offset} (computation #{n})")
}

/// To drop every result of a function at once, change its `key_prefix`
/// (from "version01" to "version02", say): old entries are never read again
/// and go away when they expire.
#[rc::cache(key_prefix = "version02", expire = 60)]
fn render(page: &str) -> String {
    format!("<h1>{page}</h1>")
}

fn main() -> Result<(), rc::Error> {
    examples::init_logs();
    let url = examples::redis_url();
    let cache = Cache::builder()
        .url(&url)
        .namespace("rc-example:")
        .build()?;
    cache.clone().install_default();

    // A key you set yourself: delete it.
    cache.set("key", &"value", None)?;
    let deleted = cache.delete("key")?;
    let again = cache.delete("key")?;
    println!("delete(\"key\") -> {deleted}, then -> {again}");
    assert!(deleted && !again);
    cache.set_many([("a", 1), ("b", 2)], None)?;
    println!(
        "delete_many([\"a\", \"b\", \"c\"]) -> {}",
        cache.delete_many(["a", "b", "c"])?
    );

    // A decorated function: `invalidate_load` takes the same arguments as
    // `load` and deletes the value cached for exactly those arguments.
    invalidate_load("name", 10);
    invalidate_load("name", 11);
    let v1 = load("name", 10);
    println!("load(\"name\", 10)       -> {v1}");
    assert_eq!(load("name", 10), v1, "cached");
    let other = load("name", 11);

    let invalidated = invalidate_load("name", 10);
    println!("invalidate_load(\"name\", 10) -> {invalidated}");
    assert!(invalidated);
    let v2 = load("name", 10);
    println!("load(\"name\", 10)       -> {v2}   (computed again)");
    assert_ne!(v1, v2);
    assert_eq!(load("name", 11), other, "other arguments are untouched");

    render("home");
    let key = "version02 invalidation render home";
    println!(
        "render(\"home\") is stored under {key:?}: {:?}",
        cache.get::<String>(key)?
    );
    assert!(cache.get::<String>(key)?.is_some());

    println!("invalidation: ok");
    Ok(())
}

//! Quickstart: one cache on one Redis server, values in and out.
//!
//! Run: `cargo run --example quickstart` (Redis at `REDIS_URL`, default
//! `redis://127.0.0.1:6379`).

use rc::Cache;

fn main() -> Result<(), rc::Error> {
    examples::init_logs();
    let url = examples::redis_url();
    // Building a cache does not connect: the first call does.
    let cache = Cache::open(&url)?;

    // Any serde value goes in; `None` as the expiry means the cache's
    // default (3 days). Values are stored as JSON.
    assert!(cache.set("key", &"value", None)?);
    let value: Option<String> = cache.get("key")?;
    println!("get(\"key\")  -> {value:?}");
    assert_eq!(value.as_deref(), Some("value"));

    // A key that was never set is `None`, not an error.
    let missing: Option<String> = cache.get("foo")?;
    println!("get(\"foo\")  -> {missing:?}");
    assert_eq!(missing, None);

    // Collections work the same way; the type you ask for decodes them.
    assert!(cache.set("list", &vec![1], None)?);
    let list: Option<Vec<i32>> = cache.get("list")?;
    println!("get(\"list\") -> {list:?}");
    assert_eq!(list, Some(vec![1]));

    // Several keys in one round trip, in order, `None` where missing.
    let many: Vec<Option<String>> = cache.get_many(["key", "foo"])?;
    println!("get_many([\"key\", \"foo\"]) -> {many:?}");
    assert_eq!(many, [Some("value".to_owned()), None]);

    // Clean up after ourselves.
    cache.delete_many(["key", "list"])?;
    println!("quickstart: ok");
    Ok(())
}

//! Expiry: every value rc writes expires; how long is up to you.
//!
//! Run: `cargo run --example expiry` (Redis at `REDIS_URL`, default
//! `redis://127.0.0.1:6379`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::Duration;

use rc::Cache;

static RUNS: AtomicU32 = AtomicU32::new(0);

/// `expire` on a decorated function is in whole seconds.
#[rc::cache(expire = 1)]
fn now_playing() -> String {
    let n = RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    format!("song #{n}")
}

fn main() -> Result<(), rc::Error> {
    examples::init_logs();
    let url = examples::redis_url();

    // The default expiry applies to every write that gives none; rc's
    // default is 3 days. This cache keeps things for one day.
    let cache = Cache::builder()
        .url(&url)
        .namespace("rc-example:")
        .default_expire(Duration::from_secs(24 * 3600))
        .build()?;
    println!("{cache:?}");
    cache.set("day", &"kept for a day", None)?;

    // Or choose per write: one hour here, 300 ms there.
    cache.set("hour", &"kept for an hour", Some(Duration::from_secs(3600)))?;
    cache.set("blink", &"gone in 300 ms", Some(Duration::from_millis(300)))?;
    println!("blink right away  -> {:?}", cache.get::<String>("blink")?);
    sleep(Duration::from_millis(500));
    let gone: Option<String> = cache.get("blink")?;
    println!("blink after 0.5 s -> {gone:?}");
    assert_eq!(gone, None);
    assert!(cache.get::<String>("hour")?.is_some());

    // A decorated function's result expires too, and is then computed again.
    cache.clone().install_default();
    invalidate_now_playing();
    let first = now_playing();
    assert_eq!(now_playing(), first, "cached for one second");
    println!("now_playing()         -> {first}");
    sleep(Duration::from_millis(1200));
    let later = now_playing();
    println!("now_playing() after 1.2 s -> {later}");
    assert_ne!(later, first);

    cache.delete_many(["day", "hour"])?;
    println!("expiry: ok");
    Ok(())
}

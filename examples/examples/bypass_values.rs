//! Bypass values: results a decorated function returns but rc never stores,
//! typically "not found", so the next call looks again.
//!
//! Run: `cargo run --example bypass_values` (Redis at `REDIS_URL`, default
//! `redis://127.0.0.1:6379`).

use std::sync::atomic::{AtomicU32, Ordering};

use rc::Cache;

static LOOKUPS: AtomicU32 = AtomicU32::new(0);

/// `None` means "no such user yet": caching it would hide a user created a
/// moment later, for the whole expiry.
#[rc::cache(expire = 60)]
fn find_user(id: u32) -> Option<String> {
    LOOKUPS.fetch_add(1, Ordering::SeqCst);
    (id == 1).then(|| "alice".to_owned())
}

fn main() -> Result<(), rc::Error> {
    examples::init_logs();
    let url = examples::redis_url();
    // Values are compared by their encoded bytes, so `None::<()>` matches the
    // `None` of any `Option`. Several calls to `bypass_values` add up.
    let cache = Cache::builder()
        .url(&url)
        .namespace("rc-example:")
        .bypass_values([None::<()>])
        .build()?;
    cache.clone().install_default();
    invalidate_find_user(1);
    invalidate_find_user(2);

    println!(
        "find_user(1) twice -> {:?}, {:?}",
        find_user(1),
        find_user(1)
    );
    assert_eq!(LOOKUPS.load(Ordering::SeqCst), 1, "found: cached");

    println!(
        "find_user(2) twice -> {:?}, {:?}",
        find_user(2),
        find_user(2)
    );
    assert_eq!(
        LOOKUPS.load(Ordering::SeqCst),
        3,
        "not found: looked up every time"
    );

    let stats = cache.stats();
    println!(
        "lookups: {}, stats: {stats:?}",
        LOOKUPS.load(Ordering::SeqCst)
    );
    assert_eq!(stats.bypassed, 2);
    println!("bypass_values: ok");
    Ok(())
}

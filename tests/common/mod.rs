//! Helpers the integration tests share.
#![allow(dead_code)] // each test file uses a part

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::time::Duration;

use rc::testing::RedisServer;
use rc::{AsyncCache, Cache};

/// Connect and reply timeouts of the fault tests: short, so a fault is felt at once.
pub const TIMEOUT: Duration = Duration::from_millis(200);

/// A blocking cache on `server` with [`TIMEOUT`]s.
pub fn cache_for(server: &RedisServer) -> Cache {
    Cache::builder()
        .url(&server.url())
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
        .build()
        .unwrap()
}

/// An async cache on `server` with [`TIMEOUT`]s.
pub fn async_cache_for(server: &RedisServer) -> AsyncCache {
    AsyncCache::builder()
        .url(&server.url())
        .connect_timeout(TIMEOUT)
        .socket_timeout(TIMEOUT)
        .build_async()
        .unwrap()
}

/// A decorated fn for the fault tests: counts its runs in `calls`.
#[rc::cache(cache = cache, skip(cache, calls))]
pub fn square(cache: &Cache, calls: &AtomicU32, x: u64) -> u64 {
    let _ = cache;
    calls.fetch_add(1, SeqCst);
    x * x
}

/// The async twin of [`square`], cubing.
#[rc::cache(cache = cache, skip(cache, calls))]
pub async fn cube(cache: &AsyncCache, calls: &AtomicU32, x: u64) -> u64 {
    let _ = cache;
    calls.fetch_add(1, SeqCst);
    x * x * x
}

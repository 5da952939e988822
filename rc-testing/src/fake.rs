//! [`FakeRedisCache`]: a cache on an in-process store.

use std::sync::Arc;

use rc_core::{AsyncCache, Cache, CacheBuilder, MemoryBackend, Result};

/// A cache on an in-process store that behaves like Redis for rc's commands
/// (expiry included), for unit tests that need real caching without a server.
///
/// ```
/// use std::time::Duration;
/// let cache = rc_testing::FakeRedisCache::new();
/// cache.set("k", &"v", Some(Duration::from_millis(50))).unwrap();
/// assert_eq!(cache.get::<String>("k").unwrap().as_deref(), Some("v"));
/// std::thread::sleep(Duration::from_millis(80));
/// assert_eq!(cache.get::<String>("k").unwrap(), None);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct FakeRedisCache;

impl FakeRedisCache {
    /// A blocking cache on a new, empty in-process store.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Cache {
        Self::build(CacheBuilder::new()).expect("default front options are valid")
    }

    /// An async cache on a new, empty in-process store.
    pub fn new_async() -> AsyncCache {
        Self::build_async(CacheBuilder::new()).expect("default front options are valid")
    }

    /// A blocking cache with the front options (namespace, serializer,
    /// default expiry, bypass values) of `builder`.
    pub fn build(builder: CacheBuilder) -> Result<Cache> {
        builder.build_with_backend(Arc::new(MemoryBackend::new()))
    }

    /// An async cache with the front options of `builder`.
    pub fn build_async(builder: CacheBuilder) -> Result<AsyncCache> {
        builder.build_async_with_backend(Arc::new(MemoryBackend::new()))
    }
}

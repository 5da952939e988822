//! [`NullCache`]: a cache that stores nothing.

use std::sync::Arc;

use rc_core::{AsyncCache, Cache, CacheBuilder, NullBackend, Result};

/// A cache that never stores anything: every read misses, every write and
/// delete reports success. Decorated functions always run their body.
///
/// ```
/// let cache = rc_testing::NullCache::new();
/// assert!(cache.set("k", &1, None).unwrap());
/// assert_eq!(cache.get::<i32>("k").unwrap(), None);
/// assert_eq!(cache.get_many::<i32, _, _>(["a", "b"]).unwrap(), vec![None, None]);
/// assert!(cache.delete("k").unwrap());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NullCache;

impl NullCache {
    /// A blocking null cache.
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> Cache {
        Self::build(CacheBuilder::new()).expect("default front options are valid")
    }

    /// An async null cache.
    pub fn new_async() -> AsyncCache {
        Self::build_async(CacheBuilder::new()).expect("default front options are valid")
    }

    /// A blocking null cache with the front options of `builder`.
    pub fn build(builder: CacheBuilder) -> Result<Cache> {
        builder.build_with_backend(Arc::new(NullBackend))
    }

    /// An async null cache with the front options of `builder`.
    pub fn build_async(builder: CacheBuilder) -> Result<AsyncCache> {
        builder.build_async_with_backend(Arc::new(NullBackend))
    }
}

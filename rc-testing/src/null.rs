//! [`NullCache`]: a cache that stores nothing.

use std::sync::Arc;
use std::time::Duration;

use rc_core::{AsyncBackend, AsyncCache, Backend, BoxFuture, Cache, CacheBuilder, Result, SetItem};

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

/// The byte store of [`NullCache`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NullBackend;

impl Backend for NullBackend {
    fn get(&self, _key: &str) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn get_many(&self, keys: &[String]) -> Vec<Result<Option<Vec<u8>>>> {
        keys.iter().map(|_| Ok(None)).collect()
    }
    fn set(&self, _key: &str, _value: &[u8], _expire: Duration) -> Result<bool> {
        Ok(true)
    }
    fn set_many(&self, _items: &[SetItem]) -> Result<bool> {
        Ok(true)
    }
    fn delete(&self, _key: &str) -> Result<bool> {
        Ok(true)
    }
    fn delete_many(&self, keys: &[String]) -> Result<u64> {
        Ok(keys.len() as u64)
    }
}

impl AsyncBackend for NullBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>>> {
        Box::pin(std::future::ready(Backend::get(self, key)))
    }
    fn get_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Vec<Result<Option<Vec<u8>>>>> {
        Box::pin(std::future::ready(Backend::get_many(self, keys)))
    }
    fn set<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        expire: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(std::future::ready(Backend::set(self, key, value, expire)))
    }
    fn set_many<'a>(&'a self, items: &'a [SetItem]) -> BoxFuture<'a, Result<bool>> {
        Box::pin(std::future::ready(Backend::set_many(self, items)))
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(std::future::ready(Backend::delete(self, key)))
    }
    fn delete_many<'a>(&'a self, keys: &'a [String]) -> BoxFuture<'a, Result<u64>> {
        Box::pin(std::future::ready(Backend::delete_many(self, keys)))
    }
}

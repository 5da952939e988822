//! [`FakeRedisCache`]: a cache on an in-process store.

use rc_core::MemoryBackend;

test_double! {
    /// A cache on an in-process store that behaves like Redis for rc's commands
    /// (expiry included), for unit tests that need real caching without a server.
    ///
    /// `FakeRedisCache` itself is never a value: it only carries the
    /// constructors of a [`Cache`](rc_core::Cache) ([`new`](Self::new),
    /// [`build`](Self::build)) or an [`AsyncCache`](rc_core::AsyncCache)
    /// ([`new_async`](Self::new_async), [`build_async`](Self::build_async)),
    /// each on a new, empty store.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = rc::testing::FakeRedisCache::new();
    /// cache.set("k", &"v", Some(Duration::from_millis(50))).unwrap();
    /// assert_eq!(cache.get::<String>("k").unwrap().as_deref(), Some("v"));
    /// std::thread::sleep(Duration::from_millis(80));
    /// assert_eq!(cache.get::<String>("k").unwrap(), None);
    /// ```
    ///
    /// ```compile_fail
    /// // Not a cache: use `FakeRedisCache::new()`.
    /// rc::testing::FakeRedisCache::default().set("k", &1, None);
    /// ```
    FakeRedisCache,
    "cache on a new, empty in-process store",
    MemoryBackend::new()
}

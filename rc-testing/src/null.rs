//! [`NullCache`]: a cache that stores nothing.

use rc_core::NullBackend;

test_double! {
    /// A cache that never stores anything: every read misses, every write and
    /// delete reports success. Decorated functions always run their body.
    ///
    /// `NullCache` itself is never a value: it only carries the constructors
    /// of a [`Cache`](rc_core::Cache) ([`new`](Self::new),
    /// [`build`](Self::build)) or an [`AsyncCache`](rc_core::AsyncCache)
    /// ([`new_async`](Self::new_async), [`build_async`](Self::build_async)).
    ///
    /// ```
    /// let cache = rc::testing::NullCache::new();
    /// assert!(cache.set("k", &1, None).unwrap());
    /// assert_eq!(cache.get::<i32>("k").unwrap(), None);
    /// assert_eq!(cache.get_many::<i32, _, _>(["a", "b"]).unwrap(), vec![None, None]);
    /// assert!(cache.delete("k").unwrap());
    /// ```
    NullCache,
    "null cache",
    NullBackend
}

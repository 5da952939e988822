//! The [`Router`] trait: which host of a cluster holds a key.

use std::sync::Arc;

/// Picks the host that holds a key.
///
/// A router is built from the cluster's host map (host name →
/// [`HostConfig`](crate::HostConfig)) and answers with one of its host
/// names. It sees the full Redis key, namespace included. It must be a pure
/// function of the key: the same key must always go to the same host, or
/// values written there are never found again.
///
/// rc ships [`Crc32HashRouter`](crate::Crc32HashRouter) (the default) and
/// [`ConsistentHashRouter`](crate::ConsistentHashRouter). A router of your
/// own plugs in through [`ClusterBuilder::router`](crate::ClusterBuilder::router),
/// which hands your constructor the host map:
///
/// ```
/// use std::collections::BTreeMap;
/// use rc::{CacheCluster, HostConfig, Router};
///
/// /// Keys that start with `user:` live on `users`, everything else on `misc`.
/// struct PrefixRouter;
///
/// impl PrefixRouter {
///     fn new(hosts: &BTreeMap<String, HostConfig>) -> Self {
///         assert!(hosts.contains_key("users") && hosts.contains_key("misc"));
///         PrefixRouter
///     }
/// }
///
/// impl Router for PrefixRouter {
///     fn host_for_key(&self, key: &str) -> &str {
///         if key.starts_with("user:") { "users" } else { "misc" }
///     }
/// }
///
/// let backend = CacheCluster::builder()
///     .host("users", HostConfig::new().host("redis-users"))
///     .host("misc", HostConfig::new().host("redis-misc"))
///     .router(PrefixRouter::new)
///     .build_backend()?; // no network traffic until the first call
/// assert_eq!(backend.host_for_key("user:42"), Some("users"));
/// assert_eq!(backend.host_for_key("post:7"), Some("misc"));
/// # Ok::<(), rc::Error>(())
/// ```
///
/// A name that is not in the host map makes the operations on that key fail
/// with a configuration error; it never panics.
pub trait Router: Send + Sync + 'static {
    /// The name of the host that holds `key`.
    fn host_for_key(&self, key: &str) -> &str;

    /// The position of `key`'s host among the host names in sorted order,
    /// for a router that knows it without looking the name up (the built-in
    /// ones do: it saves a name lookup per key of a 1000-key `get_many`).
    /// Must agree with [`host_for_key`](Self::host_for_key). `None`, the
    /// default, makes the cluster look the name up.
    fn host_index(&self, key: &str) -> Option<usize> {
        let _ = key;
        None
    }
}

impl<R: Router + ?Sized> Router for Box<R> {
    fn host_for_key(&self, key: &str) -> &str {
        (**self).host_for_key(key)
    }
    fn host_index(&self, key: &str) -> Option<usize> {
        (**self).host_index(key)
    }
}

impl<R: Router + ?Sized> Router for Arc<R> {
    fn host_for_key(&self, key: &str) -> &str {
        (**self).host_for_key(key)
    }
    fn host_index(&self, key: &str) -> Option<usize> {
        (**self).host_index(key)
    }
}

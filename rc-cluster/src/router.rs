//! The [`Router`] trait: which host of a cluster holds a key.

use std::sync::Arc;

#[cfg(doc)]
use crate::HostName;

/// Picks the host that holds a key.
///
/// A router is built from the cluster's host map ([`HostName`] →
/// [`HostConfig`](crate::HostConfig), iterating in the order rc sorts the
/// names) and answers with one of its host names, as text: an integer name
/// answers with its decimal text ([`HostName::as_str`]), which is unique
/// within a cluster. It sees the full Redis key, namespace included. It must be a pure
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
/// use rc::{CacheCluster, HostConfig, HostName, Router};
///
/// /// Keys that start with `user:` live on `users`, everything else on `misc`.
/// struct PrefixRouter;
///
/// impl PrefixRouter {
///     fn new(hosts: &BTreeMap<HostName, HostConfig>) -> Self {
///         assert!(hosts.contains_key(&HostName::from("users")));
///         assert!(hosts.contains_key(&HostName::from("misc")));
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
///
/// A router over integer names keeps their text to answer with:
///
/// ```
/// use std::collections::BTreeMap;
/// use rc::{CacheCluster, HostConfig, HostName, Router};
///
/// /// Key `shard-<n>:...` lives on host `n`.
/// struct ShardRouter {
///     names: Vec<HostName>, // sorted: 0, 1, 2
/// }
///
/// impl Router for ShardRouter {
///     fn host_for_key(&self, key: &str) -> &str {
///         let shard = key.strip_prefix("shard-").and_then(|k| k.split(':').next());
///         let n: i64 = shard.and_then(|s| s.parse().ok()).unwrap_or(0);
///         self.names.iter().find(|h| **h == n).map_or("", HostName::as_str)
///     }
/// }
///
/// let backend = CacheCluster::builder()
///     .hosts((0..3).map(|i| (i, HostConfig::new().port(7000 + i as u16))))
///     .router(|hosts: &BTreeMap<HostName, HostConfig>| ShardRouter {
///         names: hosts.keys().cloned().collect(),
///     })
///     .build_backend()?;
/// assert_eq!(backend.host_for_key("shard-2:user:42"), Some("2"));
/// # Ok::<(), rc::Error>(())
/// ```
pub trait Router: Send + Sync + 'static {
    /// The name of the host that holds `key` (for an integer name, its
    /// decimal text).
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

    /// [`host_index`](Self::host_index) of each of `keys`, appended to `out`
    /// in order: a multi-key call routes all its keys with one call. The
    /// default asks `host_index` key by key; [`Crc32HashRouter`](crate::Crc32HashRouter)
    /// runs one tight loop (half the routing instructions of a 1000-key
    /// `get_many`, callgrind).
    fn host_indexes(&self, keys: &[&str], out: &mut Vec<Option<usize>>) {
        out.extend(keys.iter().map(|k| self.host_index(k)));
    }
}

impl<R: Router + ?Sized> Router for Box<R> {
    fn host_for_key(&self, key: &str) -> &str {
        (**self).host_for_key(key)
    }
    fn host_index(&self, key: &str) -> Option<usize> {
        (**self).host_index(key)
    }
    fn host_indexes(&self, keys: &[&str], out: &mut Vec<Option<usize>>) {
        (**self).host_indexes(keys, out)
    }
}

impl<R: Router + ?Sized> Router for Arc<R> {
    fn host_for_key(&self, key: &str) -> &str {
        (**self).host_for_key(key)
    }
    fn host_index(&self, key: &str) -> Option<usize> {
        (**self).host_index(key)
    }
    fn host_indexes(&self, keys: &[&str], out: &mut Vec<Option<usize>>) {
        (**self).host_indexes(keys, out)
    }
}

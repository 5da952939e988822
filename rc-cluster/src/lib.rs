//! Spread rc cache keys over many Redis servers.
//!
//! A [`CacheCluster`] is a [`Cache`](rc_core::Cache) (or
//! [`AsyncCache`](rc_core::AsyncCache)) whose byte store is a set of Redis
//! servers, each named in a host map. A [`Router`] picks the server of every
//! key; multi-key calls talk to all the servers they need at once.
//!
//! Given the same host map, the built-in routers put every key on the same
//! server as rc 0.3.1 (Python) does, so a Rust service can share a running
//! rc cluster:
//!
//! - [`Crc32HashRouter`] (default): `crc32(key) % host count` over the
//!   sorted host names.
//! - [`ConsistentHashRouter`]: rc's ketama ring; adding or removing a host
//!   moves only about `1/n` of the keys.
//!
//! ```
//! # let servers: Vec<_> = (0..3).map(|_| rc::testing::RedisServer::start()).collect();
//! # let host = |i: usize| servers[i].host_config();
//! use std::time::Duration;
//! use rc::{CacheCluster, HostConfig};
//!
//! // Usually: HostConfig::new().host("redis-host01"), ...; here: throwaway local servers.
//! let cache = CacheCluster::builder()
//!     .host("cache01", host(0))
//!     .host("cache02", host(1))
//!     .host("cache03", host(2))
//!     .host("cache04", host(2).db(1))
//!     .namespace("models:")
//!     .default_expire(Duration::from_secs(3600))
//!     .build()?; // a `rc::Cache`; no connection is opened yet
//!
//! cache.set("post:1", &"hello", None)?;
//! cache.set_many([("post:2", "two"), ("post:3", "three")], None)?;
//! // One MGET per server, all servers at once, results in key order.
//! let posts: Vec<Option<String>> = cache.get_many(["post:1", "post:9", "post:3"])?;
//! assert_eq!(posts, [Some("hello".into()), None, Some("three".into())]);
//! assert_eq!(cache.delete_many(["post:1", "post:2", "post:3"])?, 3);
//! # Ok::<(), rc::Error>(())
//! ```
//!
//! The async twin is [`ClusterBuilder::build_async`], which gives an
//! [`AsyncCache`](rc_core::AsyncCache) with the same methods.
//!
//! Host names are strings or integers ([`HostName`]), sorted as rc (Python 2)
//! sorts them; give them as rc's host map has them (`.host(0, ..)` for
//! `{0: {...}}`).
//!
//! A cluster can also come from a config file, see [`ClusterConfig`].
#![deny(missing_docs)]

mod backend;
mod config;
mod crc32;
mod host_name;
mod ketama;
mod router;

pub use backend::{AsyncClusterBackend, ClusterBackend};
pub use config::{ClusterBuilder, ClusterConfig, DEFAULT_MAX_CONCURRENCY, RouterKind};
pub use crc32::Crc32HashRouter;
pub use host_name::HostName;
pub use ketama::ConsistentHashRouter;
pub use rc_core::{Error, HostConfig, Result};
pub use router::Router;

/// Entry point of cache clusters: [`CacheCluster::builder`].
///
/// A cluster is not a value of its own (this type has none): building one gives a
/// [`Cache`](rc_core::Cache) or an [`AsyncCache`](rc_core::AsyncCache) whose
/// backend is a [`ClusterBackend`] or an [`AsyncClusterBackend`], so every
/// feature of a cache (decorated functions, batches, stats) works on it.
///
/// ```
/// # let servers = [rc::testing::RedisServer::start(), rc::testing::RedisServer::start()];
/// use rc::{CacheCluster, ConsistentHashRouter};
///
/// # async fn run(servers: &[rc::testing::RedisServer]) -> rc::Result<()> {
/// let cache = CacheCluster::builder()
///     .host("cache01", servers[0].host_config())
///     .host("cache02", servers[1].host_config())
///     .router(ConsistentHashRouter::new)
///     .build_async()?;
/// cache.set("key", &[1, 2, 3], None).await?;
/// assert_eq!(cache.get::<Vec<u8>>("key").await?, Some(vec![1, 2, 3]));
/// # Ok(())
/// # }
/// # tokio::runtime::Runtime::new().unwrap().block_on(run(&servers)).unwrap();
/// ```
#[derive(Debug)]
pub enum CacheCluster {}

impl CacheCluster {
    /// Starts configuring a cluster.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::new()
    }
}

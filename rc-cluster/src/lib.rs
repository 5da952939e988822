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
//! use rc_cluster::{CacheCluster, HostConfig};
//!
//! let backend = CacheCluster::builder()
//!     .host("cache01", HostConfig::new().host("redis-host01"))
//!     .host("cache02", HostConfig::new().host("redis-host02"))
//!     .host("cache03", HostConfig::new().host("redis-host03"))
//!     .host("cache04", HostConfig::new().host("redis-host04").db(1))
//!     .build_backend()?; // does not connect yet
//! assert_eq!(backend.host_for_key("user:42"), Some("cache03"));
//! # Ok::<(), rc_cluster::Error>(())
//! ```
#![deny(missing_docs)]

mod backend;
mod config;
mod crc32;
mod ketama;
mod router;

pub use backend::{AsyncClusterBackend, ClusterBackend};
pub use config::{ClusterBuilder, ClusterConfig, DEFAULT_MAX_CONCURRENCY, RouterKind};
pub use crc32::Crc32HashRouter;
pub use ketama::ConsistentHashRouter;
pub use rc_core::{Error, HostConfig, Result};
pub use router::Router;

/// Entry point of cache clusters: [`CacheCluster::builder`].
///
/// A cluster is not a type of its own: building one gives a
/// [`Cache`](rc_core::Cache) or an [`AsyncCache`](rc_core::AsyncCache) whose
/// backend is a [`ClusterBackend`] or an [`AsyncClusterBackend`].
#[derive(Debug)]
pub struct CacheCluster {
    _no_values: (),
}

impl CacheCluster {
    /// Starts configuring a cluster.
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::new()
    }
}

//! Test helpers for rc.
//!
//! - [`NullCache`]: a cache that stores nothing.
//! - [`FakeRedisCache`]: a cache on an in-process store that honours expiry.
//! - [`RedisServer`]: a throwaway real `redis-server` (free TCP port or unix
//!   socket, in its own temp dir), with fault helpers for reliability tests.
//! - [`DelayProxy`]: a TCP proxy that delays (never reorders) the bytes
//!   between a cache and a server, to put a slow network between them.
//! - [`RedisCluster`]: a Redis Cluster of such servers (primaries and
//!   replicas), with failovers and slot migrations.
//! - [`RedisSentinel`]: a primary, its replica and three Sentinels, with
//!   failovers.
//! - [`TestCertificates`]: a throwaway CA and a server certificate, for
//!   servers and clusters that talk TLS only (with rc's `tls` feature).
#![deny(missing_docs)]

/// Declares a test double: a type that cannot be instantiated (an empty
/// enum) and only carries the constructors of a [`Cache`](rc_core::Cache) or
/// [`AsyncCache`](rc_core::AsyncCache) over the store `$store` makes (a new
/// one per cache). `$what` completes "A blocking …" in the constructors' docs.
macro_rules! test_double {
    ($(#[$attr:meta])* $name:ident, $what:literal, $store:expr) => {
        $(#[$attr])*
        pub enum $name {}

        impl $name {
            #[doc = concat!("A blocking ", $what, ".")]
            #[allow(clippy::new_ret_no_self)]
            pub fn new() -> ::rc_core::Cache {
                Self::build(::rc_core::CacheBuilder::new())
                    .expect("default front options are valid")
            }

            #[doc = concat!("An async ", $what, ".")]
            pub fn new_async() -> ::rc_core::AsyncCache {
                Self::build_async(::rc_core::CacheBuilder::new())
                    .expect("default front options are valid")
            }

            #[doc = concat!(
                "A blocking ", $what, " with the front options (namespace, serializer, ",
                "default expiry, bypass values) of `builder`; server options are an error."
            )]
            pub fn build(builder: ::rc_core::CacheBuilder) -> ::rc_core::Result<::rc_core::Cache> {
                builder.build_with_backend(::std::sync::Arc::new($store))
            }

            #[doc = concat!("An async ", $what, " with the front options of `builder`.")]
            pub fn build_async(
                builder: ::rc_core::CacheBuilder,
            ) -> ::rc_core::Result<::rc_core::AsyncCache> {
                builder.build_async_with_backend(::std::sync::Arc::new($store))
            }
        }
    };
}

mod cluster;
mod fake;
mod null;
mod proxy;
mod sentinel;
mod server;
mod tls;

pub use cluster::{CLUSTER_SLOTS, ClusterRole, RedisCluster, RedisClusterBuilder};
pub use fake::FakeRedisCache;
pub use null::NullCache;
pub use proxy::DelayProxy;
pub use rc_core::NullBackend;
pub use sentinel::{RedisSentinel, RedisSentinelBuilder};
pub use server::{RedisServer, RedisServerBuilder};
pub use tls::TestCertificates;

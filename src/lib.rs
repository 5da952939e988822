#![doc = include_str!("../docs/guide.md")]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The guide links to `testing::…`, which exists only with the `testing`
// feature; builds with it (docs.rs, `cargo xtask test`) still check every link.
#![cfg_attr(not(feature = "testing"), allow(rustdoc::broken_intra_doc_links))]

pub use rc_core::{
    AsyncBackend, AsyncBatch, AsyncCache, Backend, Batch, BoxError, BoxFuture, Cache, CacheBuilder,
    CacheConfig, CacheOptions, CborSerializer, DEFAULT_EXPIRE, Decode, DefaultGuard, Error,
    HostConfig, JsonSerializer, MemoryBackend, NullBackend, Promise, PythonArg, Result, Secret,
    SentinelConfig, Serializer, ServerLink, SetItem, SslOptions, Stats, Timeouts, ValueTtl,
    erased_serde, redis,
};
// The single-server stores and their health, for apps that build a cache on
// their own backend (`CacheOptions::build_async`) and watch the server.
pub use rc_core::metrics;
pub use rc_core::{AsyncRedisBackend, Health, RedisBackend};

/// Caches a function's results; see the [crate documentation](crate#caching-function-results).
pub use rc_macros::cache;

pub use rc_cluster::{
    AsyncClusterBackend, CacheCluster, ClusterBackend, ClusterBuilder, ClusterConfig,
    ConsistentHashRouter, Crc32HashRouter, DEFAULT_MAX_CONCURRENCY, HostName, Router, RouterKind,
};

/// Test doubles and a throwaway `redis-server`: [`testing::NullCache`],
/// [`testing::FakeRedisCache`], [`testing::RedisServer`], [`testing::DelayProxy`].
///
/// Only with the `testing` feature, usually turned on in `[dev-dependencies]`.
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing {
    pub use rc_testing::*;
}

/// Runtime items for the code `#[rc::cache]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use rc_core::__private::*;
}

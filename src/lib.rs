//! # rc — the Redis cache
//!
//! Cache function results and values in Redis with one line.
#![deny(missing_docs)]

pub use rc_core::{
    AsyncBackend, AsyncBatch, AsyncCache, Backend, Batch, BoxError, BoxFuture, Cache, CacheBuilder,
    CborSerializer, DEFAULT_EXPIRE, Decode, Error, HostConfig, JsonSerializer, MemoryBackend,
    Promise, Result, Secret, Serializer, SetItem, SslOptions, Stats, Timeouts,
};

/// Test doubles and a throwaway `redis-server`: [`testing::NullCache`],
/// [`testing::FakeRedisCache`], [`testing::RedisServer`].
pub mod testing {
    pub use rc_testing::*;
}

/// Runtime items for the code `#[rc::cache]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use rc_core::__private::*;
}

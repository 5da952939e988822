//! Runtime of rc: the cache fronts, byte stores, serializers and batches.
//!
//! Applications depend on the `rc` facade crate, which re-exports everything
//! here along with the `#[rc::cache]` attribute; see its documentation for
//! the guide.
#![deny(missing_docs)]

mod async_cache;
mod backend;
mod batch;
mod builder;
mod cache;
mod commands;
mod config;
mod connection;
mod core;
mod default;
mod error;
mod flight;
mod front;
mod health;
mod host;
mod host_de;
mod key;
mod log_limit;
mod managed;
mod memory;
pub mod metrics;
mod multiplexed;
mod near;
mod null;
mod option_setters;
mod pool;
mod promise;
mod python_arg;
mod replay;
mod resp;
mod serializer;
mod server;
mod stale;
mod stampede;
mod stats;

#[doc(hidden)]
pub mod __private;

pub use async_cache::AsyncCache;
pub use backend::{AsyncBackend, Backend, BoxFuture, ServerLink, SetItem, ValueTtl};
pub use batch::{AsyncBatch, Batch};
pub use builder::{CacheBuilder, CacheOptions};
pub use cache::Cache;
pub use commands::MgetReplies;
#[doc(hidden)]
pub use config::opt_secs;
pub use config::{CacheConfig, SentinelConfig};
pub use default::DefaultGuard;
pub use error::{BoxError, Error, Result};
pub use front::DEFAULT_EXPIRE;
pub use health::Health;
pub use host::{HostConfig, Secret, SslOptions, Timeouts};
pub use memory::MemoryBackend;
pub use multiplexed::AsyncRedisBackend;
pub use null::NullBackend;
pub use pool::{DEFAULT_POOL_SIZE, Pending, RedisBackend};
pub use promise::Promise;
pub use python_arg::PythonArg;
pub use serializer::{CborSerializer, Decode, JsonSerializer, Serializer};
pub use stats::Stats;

/// The `redis` crate rc talks through, re-exported for raw commands on the
/// client of [`Cache::client`] without a second, possibly different, version.
pub use redis;

/// The type-erasure crate that [`Serializer`] signatures use, re-exported so
/// a custom serializer needs no extra dependency.
pub use erased_serde;

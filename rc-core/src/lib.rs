//! Runtime of rc. Users depend on the `rc` facade crate, which re-exports this.
#![deny(missing_docs)]

mod backend;
mod error;
mod health;
mod host;
mod multiplexed;
mod pool;
pub mod protocol;

pub use backend::{AsyncBackend, Backend, BoxFuture, SetItem};
pub use error::{BoxError, Error, Result};
pub use health::Health;
pub use host::{HostConfig, Secret, SslOptions, Timeouts};
pub use multiplexed::AsyncRedisBackend;
pub use pool::{DEFAULT_POOL_SIZE, InFlight, RedisBackend};

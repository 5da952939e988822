//! Test helpers for rc.
//!
//! - [`NullCache`]: a cache that stores nothing.
//! - [`FakeRedisCache`]: a cache on an in-process store that honours expiry.
//! - [`RedisServer`]: a throwaway real `redis-server` (free TCP port or unix
//!   socket, in its own temp dir), with fault helpers for reliability tests.
#![deny(missing_docs)]

mod fake;
mod null;
mod server;

pub use fake::FakeRedisCache;
pub use null::NullCache;
pub use rc_core::NullBackend;
pub use server::{RedisServer, RedisServerBuilder};
